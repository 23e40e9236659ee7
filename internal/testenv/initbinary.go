package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	initOnce sync.Once
	initPath string
	initErr  error
	initOut  []byte
)

// GoTool returns the go command that builds test binaries: the one on PATH,
// else the toolchain's usual place.
func GoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// InitBinary builds isol8-init once per test binary (static, like `make
// build` does) and returns its path. ISOL8_INIT_PATH overrides the build.
func InitBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ISOL8_INIT_PATH"); p != "" {
		return p
	}
	initOnce.Do(func() {
		dir, err := os.MkdirTemp("", "isol8-init-test-")
		if err != nil {
			initErr = err
			return
		}
		initPath = filepath.Join(dir, "isol8-init")
		cmd := exec.Command(GoTool(), "build", "-trimpath", "-o", initPath, "github.com/isol8/isol8/cmd/isol8-init")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		initOut, initErr = cmd.CombinedOutput()
	})
	if initErr != nil {
		t.Fatalf("build isol8-init: %v\n%s", initErr, initOut)
	}
	return initPath
}
