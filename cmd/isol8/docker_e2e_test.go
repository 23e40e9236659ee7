package main

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/isol8/isol8/driver"
	"github.com/isol8/isol8/driver/docker"
	"github.com/isol8/isol8/internal/dockertest"
)

func TestMain(m *testing.M) { dockertest.Main(m) }

// runDockerCLI runs the isol8 binary with env added (no config file).
func runDockerCLI(t *testing.T, env []string, args ...string) (e2eResult, int) {
	t.Helper()
	cmd := exec.Command(isol8Binary(t), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(append(os.Environ(), "HOME="+t.TempDir()), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run isol8 %v: %v", args, err)
	}
	return e2eResult{out.String(), errb.String(), code}, cmd.Process.Pid
}

// TestDockerRun: `--driver docker` and ISOL8_DRIVER=docker run code on the
// Docker daemon DOCKER_HOST names, and leave no container behind.
func TestDockerRun(t *testing.T) {
	host := dockertest.MustHave(t, "isol8:python", "isol8:bash")
	drv, err := docker.New(t.Context(), docker.Config{Host: host})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"flag", []string{"DOCKER_HOST=" + host}, []string{"--driver", "docker", "run", "-e", "import os; print('uid', os.getuid())"}, "uid 100\n"},
		{"env", []string{"DOCKER_HOST=" + host, "ISOL8_DRIVER=docker"}, []string{"run", "-r", "bash", "-e", "echo $HOME; exit 3"}, "/sandbox\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, pid := runDockerCLI(t, tc.env, tc.args...)
			wantCode := 0
			if tc.name == "env" {
				wantCode = 3
			}
			if res.stdout != tc.want || res.code != wantCode {
				t.Fatalf("stdout %q exit %d stderr %q", res.stdout, res.code, res.stderr)
			}
			left, err := drv.ListSandboxes(t.Context(), map[string]string{driver.LabelPID: strconv.Itoa(pid)})
			if err != nil || len(left) > 0 {
				t.Fatalf("containers left on docker: %v %v", left, err)
			}
		})
	}
}

// TestDockerUnreachable: setup fails at its first step with an error
// naming the socket, and run fails before any code runs.
func TestDockerUnreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	env := []string{"DOCKER_HOST=unix://" + sock}
	for _, args := range [][]string{
		{"setup", "--driver", "docker"},
		{"run", "--driver", "docker", "-e", "print('ran')"},
	} {
		start := time.Now()
		res, _ := runDockerCLI(t, env, args...)
		if res.code != 1 || !strings.Contains(res.stderr, "[ERR] Docker unreachable at "+sock) ||
			strings.Contains(res.stdout, "ran") || strings.Contains(res.stderr, "[OK]") {
			t.Fatalf("%v: exit %d stdout %q stderr %q", args, res.code, res.stdout, res.stderr)
		}
		if took := time.Since(start); took > 15*time.Second {
			t.Fatalf("%v took %s to fail", args, took)
		}
	}
}

// TestDockerSocketPermission: a user who may not use the Docker socket is
// told to run as root or join the docker group; a member of the group runs
// code (the Docker driver needs no root of its own: no user namespace is
// allocated for it).
func TestDockerSocketPermission(t *testing.T) {
	host := dockertest.MustHave(t, "isol8:bash")
	d, err := dockertest.Daemon.Get()
	if err != nil {
		t.Fatal(err)
	}
	grp, err := user.LookupGroup("docker")
	if err != nil {
		t.Skipf("no docker group: %v", err)
	}
	gid, _ := strconv.Atoi(grp.Gid)
	// Let others reach the socket's directory; the socket itself is
	// root:docker 0660.
	if err := os.Chmod(d.Dir, 0o711); err != nil {
		t.Fatal(err)
	}
	bin := isol8Binary(t)
	run := func(groups []uint32) e2eResult {
		cmd := exec.Command(bin, "run", "--driver", "docker", "-r", "bash", "-e", "echo ran")
		cmd.Dir = "/"
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "DOCKER_HOST=" + host}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: groups}}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("run isol8 as nobody: %v", err)
		}
		return e2eResult{out.String(), errb.String(), code}
	}
	res := run(nil)
	if res.code != 1 || !strings.Contains(res.stderr, "permission denied: run isol8 as root or join the docker group") || res.stdout != "" {
		t.Fatalf("without the docker group: exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	res = run([]uint32{uint32(gid)})
	if res.code != 0 || res.stdout != "ran\n" {
		t.Fatalf("in the docker group: exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
}
