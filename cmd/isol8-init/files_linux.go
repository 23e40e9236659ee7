package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/isol8/isol8/agent"
)

// File access on behalf of the engine. The agent runs as root, and user code
// may have planted symlinks or ".." tricks in /sandbox, so every access goes
// through an os.Root opened on /sandbox or /tmp: the kernel-backed resolution
// refuses any path that would leave that directory.

// insideSandbox reports whether an absolute, cleaned dir is /sandbox or below.
func insideSandbox(dir string) bool {
	if !path.IsAbs(dir) || strings.ContainsRune(dir, 0) {
		return false
	}
	c := path.Clean(dir)
	return c == agent.SandboxDir || strings.HasPrefix(c, agent.SandboxDir+"/")
}

// splitRoot maps a request path to the directory it must stay in and the
// path relative to it. Relative paths are taken relative to /sandbox.
func splitRoot(p string) (root, rel string, err error) {
	if p == "" || strings.ContainsRune(p, 0) {
		return "", "", fmt.Errorf("invalid path %q", p)
	}
	if !path.IsAbs(p) {
		p = agent.SandboxDir + "/" + p
	}
	c := path.Clean(p)
	for _, r := range []string{agent.SandboxDir, agent.TmpDir} {
		if rest, ok := strings.CutPrefix(c, r+"/"); ok && rest != "" {
			return r, rest, nil
		}
	}
	return "", "", fmt.Errorf("path %q is outside /sandbox", p)
}

// mkdirParents creates the parent directories of rel inside root, owned by
// the sandbox user.
func mkdirParents(root *os.Root, rel string) error {
	dir := path.Dir(rel)
	if dir == "." {
		return nil
	}
	cur := ""
	for _, part := range strings.Split(dir, "/") {
		cur = path.Join(cur, part)
		err := root.Mkdir(cur, 0o755)
		switch {
		case err == nil:
			if err := root.Lchown(cur, agent.SandboxUID, agent.SandboxGID); err != nil {
				return err
			}
		case errors.Is(err, fs.ErrExist):
		default:
			return err
		}
	}
	return nil
}

// createSandboxFile opens p for writing (created or truncated, never through
// a symlink that leaves its root) owned by the sandbox user.
func createSandboxFile(p string, mode uint32) (*os.File, error) {
	rootDir, rel, err := splitRoot(p)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(rootDir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if err := mkdirParents(root, rel); err != nil {
		return nil, fmt.Errorf("create parent directories of %s: %w", p, err)
	}
	if mode == 0 {
		mode = 0o644
	}
	f, err := openRegular(root, rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fs.FileMode(mode&0o777))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	if err := f.Chown(agent.SandboxUID, agent.SandboxGID); err != nil {
		f.Close()
		return nil, fmt.Errorf("chown %s: %w", p, err)
	}
	if err := f.Chmod(fs.FileMode(mode & 0o777)); err != nil {
		f.Close()
		return nil, fmt.Errorf("chmod %s: %w", p, err)
	}
	return f, nil
}

func writeSandboxFile(p string, data []byte, mode uint32) error {
	f, err := createSandboxFile(p, mode)
	if err != nil {
		return fmt.Errorf("Failed to write file %s: %w", p, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("Failed to write file %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("Failed to write file %s: %w", p, err)
	}
	return nil
}

// upload is a PutFile in progress.
type upload struct {
	path string
	f    *os.File
	size int64
	err  error
}

func (a *agentState) startUpload(id uint32, req agent.PutFile) {
	up := &upload{path: req.Path}
	up.f, up.err = createSandboxFile(req.Path, req.Mode)
	a.mu.Lock()
	a.uploads[id] = up
	a.mu.Unlock()
}

func (a *agentState) continueUpload(f agent.Frame) {
	a.mu.Lock()
	up := a.uploads[f.ID]
	if f.Type == agent.TypeFileEOF {
		delete(a.uploads, f.ID)
	}
	a.mu.Unlock()
	if up == nil {
		a.fail(f.ID, "invalid", errors.New("file data for unknown upload"))
		return
	}
	if f.Type == agent.TypeFileData {
		if up.err == nil {
			n, err := up.f.Write(f.Payload)
			up.size += int64(n)
			up.err = err
		}
		return
	}
	if up.f != nil {
		if err := up.f.Close(); up.err == nil {
			up.err = err
		}
	}
	if up.err != nil {
		a.fail(f.ID, "invalid", fmt.Errorf("Failed to write file %s: %w", up.path, up.err))
		return
	}
	a.ok(f.ID, up.size)
}

// sendFile streams a regular file back to the engine.
func (a *agentState) sendFile(id uint32, req agent.GetFile) {
	rootDir, rel, err := splitRoot(req.Path)
	if err != nil {
		a.fail(id, "invalid", err)
		return
	}
	root, err := os.OpenRoot(rootDir)
	if err != nil {
		a.fail(id, "", err)
		return
	}
	defer root.Close()
	f, err := openRegular(root, rel, os.O_RDONLY, 0)
	if err != nil {
		code := "invalid"
		if errors.Is(err, fs.ErrNotExist) {
			code = "notfound"
		}
		a.fail(id, code, fmt.Errorf("Failed to read file %s: %w", req.Path, err))
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		a.fail(id, "", fmt.Errorf("Failed to read file %s: %w", req.Path, err))
		return
	}
	if req.Stat {
		a.ok(id, st.Size())
		return
	}
	if req.MaxBytes > 0 && st.Size() > req.MaxBytes {
		a.fail(id, "invalid", fmt.Errorf("Failed to read file %s: %d bytes exceeds the limit of %d", req.Path, st.Size(), req.MaxBytes))
		return
	}
	buf := make([]byte, 256<<10)
	var sent int64
	for {
		n, rerr := f.Read(buf)
		if n > 0 {
			sent += int64(n)
			if req.MaxBytes > 0 && sent > req.MaxBytes {
				a.fail(id, "invalid", fmt.Errorf("Failed to read file %s: exceeds the limit of %d bytes", req.Path, req.MaxBytes))
				return
			}
			if err := a.out.Write(agent.TypeFileData, id, buf[:n]); err != nil {
				return
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			a.fail(id, "", fmt.Errorf("Failed to read file %s: %w", req.Path, rerr))
			return
		}
	}
	if err := a.out.Write(agent.TypeFileEOF, id, nil); err != nil {
		return
	}
}

// emptyDir removes everything inside dir without following symlinks.
func emptyDir(dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := root.RemoveAll(n); err != nil {
			return fmt.Errorf("remove %s/%s: %w", dir, n, err)
		}
	}
	return nil
}

// otherProcesses counts processes other than the agent.
func otherProcesses() (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	n := 0
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		n++
	}
	return n, nil
}
