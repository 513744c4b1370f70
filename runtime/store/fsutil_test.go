package store

import (
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
