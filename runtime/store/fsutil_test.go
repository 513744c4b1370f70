package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestCreateExcl: a new file is created, a stale one a crash left is
// replaced, and a symbolic link planted in its place is removed, never
// followed.
func TestCreateExcl(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		plant func(t *testing.T, path, target string)
	}{
		{"new", func(*testing.T, string, string) {}},
		{"stale file", func(t *testing.T, path, _ string) {
			if err := os.WriteFile(path, []byte("stale and longer"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"symbolic link", func(t *testing.T, path, target string) {
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path, target := filepath.Join(dir, "f.tmp"), filepath.Join(dir, "target")
			if err := os.WriteFile(target, []byte("untouched"), 0o600); err != nil {
				t.Fatal(err)
			}
			tc.plant(t, path, target)
			f, err := createExcl(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString("new"); err != nil {
				t.Fatal(err)
			}
			f.Close()
			fi, err := os.Lstat(path)
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
				t.Fatalf("%s: %v, mode %v", path, err, fi.Mode())
			}
			if b, _ := os.ReadFile(path); string(b) != "new" {
				t.Errorf("%s holds %q", path, b)
			}
			if b, _ := os.ReadFile(target); string(b) != "untouched" {
				t.Errorf("the link's target was written: %q", b)
			}
		})
	}
}

// TestOpenFile: openFile opens, creates and reports errors as os.OpenFile
// does, for the files and directories the store opens.
func TestOpenFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing")
	if err := os.WriteFile(existing, []byte("bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		flag    int
		wantErr error // nil: opens
		use     func(*os.File) error
	}{
		{"read a file", existing, os.O_RDONLY, nil, func(f *os.File) error {
			b, err := io.ReadAll(f)
			if err == nil && string(b) != "bytes" {
				err = fmt.Errorf("read %q", b)
			}
			return err
		}},
		{"create a new file", filepath.Join(dir, "new"), os.O_WRONLY | os.O_CREATE | os.O_EXCL, nil, func(f *os.File) error {
			if _, err := f.Write([]byte("x")); err != nil {
				return err
			}
			fi, err := f.Stat()
			if err == nil && fi.Mode().Perm()&0o077 != 0 {
				err = fmt.Errorf("mode %v", fi.Mode())
			}
			return err
		}},
		{"sync a directory", dir, os.O_RDONLY, nil, (*os.File).Sync},
		{"missing", filepath.Join(dir, "missing"), os.O_RDONLY, os.ErrNotExist, nil},
		{"exclusive on an existing file", existing, os.O_WRONLY | os.O_CREATE | os.O_EXCL, os.ErrExist, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := openFile(tc.path, tc.flag, 0o600)
			if tc.wantErr != nil {
				var pe *os.PathError
				if !errors.Is(err, tc.wantErr) || !errors.As(err, &pe) || pe.Path != tc.path {
					t.Fatalf("openFile = %v, want a *PathError of %s wrapping %v", err, tc.path, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := tc.use(f); err != nil {
				t.Error(err)
			}
		})
	}
}
