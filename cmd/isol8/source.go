package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/isol8/isol8/engine"
	"github.com/isol8/isol8/runtimes"
)

// source is what `isol8 run` executes, once resolved.
type source struct {
	runtime  string
	code     string
	cmd      string
	codeURL  string
	codeHash string
	fileExt  string
	// fromStdin: the code was read from isol8's standard input.
	fromStdin bool
}

// abs resolves p against the app's working directory.
func (a *app) abs(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(a.cwd, p)
}

// resolveSource picks the source in order: --cmd, then a code URL
// (--url > --github > --gist), then -e, then the file, then process stdin.
func (a *app) resolveSource(f *runFlags, file string) (source, error) {
	hasURL := f.given("url") || f.given("github") || f.given("gist")
	switch {
	case f.given("cmd"):
		if file != "" || f.given("eval") || hasURL {
			return source{}, errf("--cmd cannot be combined with file input, --eval, --url, --github, or --gist.")
		}
		return source{runtime: orDefault(f.runtime, runtimes.Bash), cmd: f.cmd}, nil

	case hasURL:
		if file != "" || f.given("eval") {
			return source{}, errf("--url/--github/--gist cannot be used with file input or --eval.")
		}
		u, err := codeURL(f)
		if err != nil {
			return source{}, err
		}
		rt := f.runtime
		if rt == "" {
			p := u
			if parsed, err := url.Parse(u); err == nil {
				p = parsed.Path
			}
			if rt, err = runtimes.Detect(path.Base(p)); err != nil {
				return source{}, errf("Cannot detect runtime from URL path. Use --runtime to specify.")
			}
		}
		return source{runtime: rt, codeURL: u, codeHash: f.hash}, nil

	case f.given("eval"):
		// A file argument given with -e is ignored, like the reference.
		return source{runtime: orDefault(f.runtime, runtimes.Python), code: f.eval}, nil

	case file != "":
		data, err := os.ReadFile(a.abs(file))
		if errors.Is(err, fs.ErrNotExist) {
			return source{}, errf("File not found: %s", file)
		}
		if err != nil {
			return source{}, errf("Cannot read %s: %s", file, pathErrReason(err))
		}
		rt := f.runtime
		if rt == "" {
			if rt, err = runtimes.Detect(filepath.Base(file)); err != nil {
				return source{}, errf("Cannot detect runtime for %s. Use --runtime to specify.", file)
			}
		}
		if len(bytes.TrimSpace(data)) == 0 {
			return source{}, errf("File is empty: %s", file)
		}
		// A file runs as a file in the sandbox; one without an extension
		// gets its runtime's default extension so it still does.
		ext := filepath.Ext(filepath.Base(file))
		if ext == "" {
			if r, err := runtimes.Get(rt); err == nil {
				ext = r.Ext
			}
		}
		return source{runtime: rt, code: string(data), fileExt: ext}, nil
	}

	if a.stdinKind != nil && a.stdinKind() == stdinTerminal {
		fmt.Fprint(a.stderr, stdinPrompt)
	}
	data, err := io.ReadAll(io.LimitReader(a.stdin, engine.MaxCodeBytes+1))
	if err != nil {
		return source{}, errf("Cannot read code from stdin: %s", err)
	}
	if len(data) > engine.MaxCodeBytes {
		return source{}, errf("Code read from stdin exceeds %d bytes", engine.MaxCodeBytes)
	}
	return source{runtime: orDefault(f.runtime, runtimes.Python), code: string(data), fromStdin: true}, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func pathErrReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// codeURL maps --url, --github or --gist (in that priority) to a URL.
func codeURL(f *runFlags) (string, error) {
	switch {
	case f.given("url"):
		return f.url, nil
	case f.given("github"):
		return githubURL(f.github)
	default:
		return gistURL(f.gist)
	}
}

// githubURL maps owner/repo/ref/path/to/file to its raw.githubusercontent.com URL.
func githubURL(spec string) (string, error) {
	parts := strings.Split(strings.Trim(spec, "/"), "/")
	if len(parts) < 4 || slicesHasEmpty(parts) {
		return "", errf("--github format must be owner/repo/ref/path/to/file")
	}
	return "https://raw.githubusercontent.com/" + strings.Join(parts, "/"), nil
}

// gistURL maps gistId/file.ext to its gist.githubusercontent.com raw URL.
func gistURL(spec string) (string, error) {
	id, file, ok := strings.Cut(strings.Trim(spec, "/"), "/")
	if !ok || id == "" || file == "" {
		return "", errf("--gist format must be gistId/file.ext")
	}
	return "https://gist.githubusercontent.com/" + id + "/raw/" + file, nil
}

func slicesHasEmpty(parts []string) bool {
	for _, p := range parts {
		if p == "" {
			return true
		}
	}
	return false
}

// setupScript joins --setup values with "\n"; a value naming an existing
// local regular file is replaced by the file's content.
func (a *app) setupScript(values []string) (string, error) {
	parts := make([]string, 0, len(values))
	for _, v := range values {
		p := a.abs(v)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && v != "" {
			data, err := os.ReadFile(p)
			if err != nil {
				return "", errf("Cannot read setup script %s: %s", v, pathErrReason(err))
			}
			parts = append(parts, string(data))
			continue
		}
		parts = append(parts, v)
	}
	return strings.Join(parts, "\n"), nil
}

// skippedDirs are never injected by --files, at any depth.
var skippedDirs = map[string]bool{
	".git": true, "node_modules": true, "__pycache__": true, ".venv": true, "venv": true, ".tox": true,
}

// collectFiles reads a local directory for --files: every regular file
// rel/path becomes /sandbox/rel/path. Skipped
// directories, symlinks and special files are left out. The total is capped at
// engine.MaxFilesBytes. Content is copied byte for byte, binary files too.
func (a *app) collectFiles(dir string) (map[string]string, error) {
	root := a.abs(dir)
	st, err := os.Stat(root)
	if err != nil || !st.IsDir() {
		return nil, errf("--files path is not a directory: %s", dir)
	}
	if resolved, err := filepath.EvalSymlinks(root); err == nil {
		root = resolved
	}
	files := map[string]string{}
	var total int64
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return errf("--files: cannot read %s: %s", p, pathErrReason(err))
		}
		if p == root {
			return nil
		}
		if d.IsDir() {
			if skippedDirs[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // symlinks, sockets, devices, pipes
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return errf("--files: cannot read %s: %s", rel, pathErrReason(err))
		}
		if total+info.Size() > engine.MaxFilesBytes {
			return errf("--files: %s holds more than %d bytes of files (the limit)", dir, engine.MaxFilesBytes)
		}
		data, err := readCapped(p, engine.MaxFilesBytes-total)
		if err != nil {
			return errf("--files: %s", err)
		}
		total += int64(len(data))
		files[path.Join(runtimes.SandboxDir, rel)] = string(data)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return files, nil
}

// readCapped reads a file, failing if it holds more than limit bytes.
func readCapped(p string, limit int64) ([]byte, error) {
	fh, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %s", p, pathErrReason(err))
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %s", p, pathErrReason(err))
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("files exceed the limit of %d bytes", engine.MaxFilesBytes)
	}
	return data, nil
}
