package compiler

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/recpol/recpol/internal/readlimit"
)

// TestReadDirTooLarge: a policy file past MaxFileBytes is refused by its
// name, not read whole.
func TestReadDirTooLarge(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.cue"), []byte("package recpol\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	big, err := os.Create(filepath.Join(dir, "big.cue"))
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Truncate(MaxFileBytes + 1); err != nil {
		t.Fatal(err)
	}
	big.Close()
	_, err = ReadDir(dir)
	if !errors.Is(err, readlimit.ErrTooLarge) {
		t.Fatalf("ReadDir: %v, want ErrTooLarge", err)
	}
	if _, err := (Options{CacheDir: t.TempDir()}).Compile(dir); !errors.Is(err, readlimit.ErrTooLarge) {
		t.Fatalf("Compile: %v, want ErrTooLarge", err)
	}
}

// TestReadFilesParallel reads directories of many files, which readFiles
// reads in parallel: each file's data and sum in the entries' order, and
// of several files too large, the error of the first; a second read
// rereads none of the files that did not change.
func TestReadFilesParallel(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n        int
		tooLarge []int // indices of files past MaxFileBytes
	}{
		{"one", 1, nil},
		{"many", 200, nil},
		{"many, some too large", 200, []int{150, 40}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			large := map[int]bool{}
			for _, i := range tc.tooLarge {
				large[i] = true
			}
			var want []File
			for i := 0; i < tc.n; i++ {
				p := filepath.Join(dir, fmt.Sprintf("f%03d.cue", i))
				data := []byte(fmt.Sprintf("package recpol\nx%d: %d\n", i, i))
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Fatal(err)
				}
				if large[i] {
					if err := os.Truncate(p, MaxFileBytes+1); err != nil {
						t.Fatal(err)
					}
				}
				want = append(want, File{Name: p, Data: data})
			}
			entries, err := listDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			cm := NewCompiler(Options{Parallel: 4})
			files, _, sums, err := cm.readFiles(entries)
			if len(tc.tooLarge) > 0 {
				wantName := filepath.Join(dir, "f040.cue")
				if !errors.Is(err, readlimit.ErrTooLarge) || !strings.Contains(err.Error(), wantName) {
					t.Fatalf("readFiles: %v, want ErrTooLarge for %s", err, wantName)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, files); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			for i, f := range files {
				if sums[i] != fileSum(f) {
					t.Errorf("%s: wrong sum", f.Name)
				}
			}
			again, _, sums2, err := cm.readFiles(entries)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(files, again); diff != "" {
				t.Errorf("second read (-first +second):\n%s", diff)
			}
			if diff := cmp.Diff(sums, sums2); diff != "" {
				t.Errorf("second read's sums (-first +second):\n%s", diff)
			}
		})
	}
}
