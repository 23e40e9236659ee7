package main

import (
	"bytes"
	"os/exec"
	"testing"

	"github.com/isol8/isol8/internal/pkgtest"
)

// `isol8 run --install` takes the registries from the host's own
// configuration: PIP_INDEX_URL and npm_config_registry in isol8's
// environment point pip and npm in the sandbox at the test's servers.
func TestE2EInstallUsesHostRegistry(t *testing.T) {
	idx := pkgtest.PyPIIndex(t, "isol8-probe", "isol8_probe-1.0-py3-none-any.whl",
		pkgtest.BuildWheel(t, "isol8_probe", "1.0", "isol8_probe", "wheel-ok"))
	npm := pkgtest.NpmRegistry(t, "isol8-probe", "1.0.0", pkgtest.NpmTarball(t, "isol8-probe", "1.0.0", "npm-ok"))
	for _, tc := range []struct {
		name string
		env  string
		args []string
		srv  *pkgtest.Server
		want string
	}{
		{"pip", "PIP_INDEX_URL=" + idx.URL + "/simple",
			[]string{"run", "--net", "host", "--install", "isol8-probe==1.0", "-e", "import isol8_probe; print(isol8_probe.VALUE)"}, idx, "wheel-ok\n"},
		{"npm", "npm_config_registry=" + npm.URL + "/",
			[]string{"run", "--net", "host", "-r", "node", "--install", "isol8-probe@1.0.0", "-e", `import v from "isol8-probe"; console.log(v)`}, npm, "npm-ok\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := isol8Cmd(t, "", tc.args...)
			cmd.Env = append(cmd.Env, tc.env)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			if _, ok := err.(*exec.ExitError); err != nil && !ok {
				t.Fatal(err)
			}
			if err != nil || out.String() != tc.want {
				t.Fatalf("err %v stdout %q stderr %q (server saw %q)", err, out.String(), errb.String(), tc.srv.Hits())
			}
			if len(tc.srv.Hits()) == 0 {
				t.Fatal("the server was not asked")
			}
		})
	}
}
