package docker

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/errdefs"
)

func TestUnreachableNamesSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "missing.sock")
	_, err := New(t.Context(), Config{Host: "unix://" + sock})
	if err == nil || !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), "Docker unreachable at "+sock) {
		t.Fatalf("err %v, want an unavailable error naming %s", err, sock)
	}
}

func TestDockerHostHonoured(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "env.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	_, err := New(t.Context(), Config{})
	if err == nil || !strings.Contains(err.Error(), sock) {
		t.Fatalf("err %v, want it to name DOCKER_HOST's socket %s", err, sock)
	}
}

func TestPermissionDeniedSaysWhatToDo(t *testing.T) {
	err := connectError("unix:///var/run/docker.sock",
		&net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)})
	if !errdefs.IsPermissionDenied(err) || !strings.Contains(err.Error(), "run isol8 as root or join the docker group") ||
		!strings.Contains(err.Error(), "/var/run/docker.sock") {
		t.Fatalf("err %v", err)
	}
}

// oldDaemon answers like a Docker daemon speaking API 1.24 (Docker 1.12).
func oldDaemon(t *testing.T) string {
	sock := filepath.Join(t.TempDir(), "old.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.24")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			_, _ = w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/version"):
			_, _ = w.Write([]byte(`{"Version":"1.12.6","ApiVersion":"1.24"}`))
		default:
			http.Error(w, "client is newer than server", http.StatusBadRequest)
		}
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return "unix://" + sock
}

func TestOldAPIVersionRefused(t *testing.T) {
	_, err := New(t.Context(), Config{Host: oldDaemon(t)})
	if err == nil || !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "too old") {
		t.Fatalf("err %v, want a failed-precondition error saying the daemon is too old", err)
	}
}
