package rules

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// source resolves the files gates.yaml names: next to gates.yaml first,
// then in the built-in defaults. That is what lets a user copy gates.yaml
// anywhere, edit one gate and rerun with --rules.
type source struct {
	fsys     fs.FS  // where gates.yaml lives; nil means the OS file system
	dir      string // gates.yaml's directory within fsys (or on disk)
	fallback fs.FS
}

func (s source) read(p string) (data []byte, where string, builtin bool, err error) {
	local := p
	if !filepath.IsAbs(p) {
		local = s.join(p)
	}
	if s.fsys == nil {
		data, err = os.ReadFile(local)
	} else {
		data, err = fs.ReadFile(s.fsys, strings.TrimPrefix(path.Clean(local), "/"))
	}
	if err == nil {
		return data, local, s.fsys != nil && s.fsys == s.fallback, nil
	}
	if !errors.Is(err, fs.ErrNotExist) || s.fallback == nil || filepath.IsAbs(p) {
		return nil, local, false, fmt.Errorf("cannot read %s: %w", local, err)
	}
	data, ferr := fs.ReadFile(s.fallback, path.Clean(filepath.ToSlash(p)))
	if ferr != nil {
		return nil, local, false, fmt.Errorf("cannot read %s (not next to the gates file, and pgrules has no built-in %s)", local, p)
	}
	return data, "builtin:" + path.Clean(filepath.ToSlash(p)), true, nil
}

func (s source) join(p string) string {
	if s.fsys == nil {
		return filepath.Join(s.dir, p)
	}
	return path.Join(s.dir, filepath.ToSlash(p))
}

// list returns the names in dir ending in suffix, sorted.
func (s source) list(dir, suffix string) ([]string, error) {
	var entries []fs.DirEntry
	var err error
	if s.fsys == nil {
		entries, err = os.ReadDir(s.join(dir))
	} else {
		entries, err = fs.ReadDir(s.fsys, s.join(dir))
	}
	if err != nil && errors.Is(err, fs.ErrNotExist) && s.fallback != nil {
		entries, err = fs.ReadDir(s.fallback, path.Clean(filepath.ToSlash(dir)))
	}
	if err != nil {
		return nil, fmt.Errorf("cannot list schemas in %s: %w", s.join(dir), err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), suffix) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}
