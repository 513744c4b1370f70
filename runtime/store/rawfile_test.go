package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRawFile: openRaw opens, creates and reports errors as openFile
// does; ReadAt keeps io.ReaderAt's contract (fewer bytes only with an
// error, io.EOF at the end); Write, Sync and Close work on files and Sync
// on directories.
func TestRawFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing")
	if err := os.WriteFile(existing, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	type read struct {
		N   int
		Got string
		EOF bool
	}
	readAt := func(f *rawFile, n int, off int64) read {
		p := make([]byte, n)
		m, err := f.ReadAt(p, off)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("ReadAt(%d, %d): %v", n, off, err)
		}
		return read{m, string(p[:m]), err != nil}
	}
	t.Run("read", func(t *testing.T) {
		f, err := openRaw(existing, os.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		got := []read{readAt(f, 4, 0), readAt(f, 10, 0), readAt(f, 4, 8), readAt(f, 4, 10), readAt(f, 20, 0)}
		want := []read{{4, "0123", false}, {10, "0123456789", false}, {2, "89", true}, {0, "", true}, {10, "0123456789", true}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("reads (-want +got):\n%s", diff)
		}
		if n, err := f.size(); n != 10 || err != nil {
			t.Errorf("size = %d, %v; want 10", n, err)
		}
	})
	t.Run("create, write, sync", func(t *testing.T) {
		p := filepath.Join(dir, "new")
		f, err := createExclRaw(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("written")); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); !errors.Is(err, os.ErrClosed) {
			t.Errorf("second Close = %v, want os.ErrClosed", err)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		if string(b) != "written" || fi.Mode().Perm() != 0o600 {
			t.Errorf("file %q, mode %v; want \"written\", 0600", b, fi.Mode().Perm())
		}
	})
	t.Run("sync a directory", func(t *testing.T) {
		if err := fsyncDir(dir); err != nil {
			t.Fatal(err)
		}
	})
	for _, tc := range []struct {
		name    string
		path    string
		flag    int
		wantErr error
	}{
		{"missing", filepath.Join(dir, "missing"), os.O_RDONLY, os.ErrNotExist},
		{"exclusive on an existing file", existing, os.O_WRONLY | os.O_CREATE | os.O_EXCL, os.ErrExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openRaw(tc.path, tc.flag, 0o600)
			var pe *os.PathError
			if !errors.Is(err, tc.wantErr) || !errors.As(err, &pe) || pe.Path != tc.path {
				t.Fatalf("openRaw = %v, want a *PathError of %s wrapping %v", err, tc.path, tc.wantErr)
			}
		})
	}
}

// TestHeadFile: a file read through readHead and headFile (the head in
// a buffer, the rest from the file) reads as the file does at every
// offset and length, whether the head holds all of it or not, and
// hashFrom after the head gives the file's sha256.
func TestHeadFile(t *testing.T) {
	t.Parallel()
	const bufSize = 16
	for _, size := range []int{1, 5, bufSize - 1, bufSize, bufSize + 1, 3*bufSize + 7} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte('a' + i%26)
		}
		p := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := openRaw(p, os.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, bufSize)
		hf, err := readHead(f, buf)
		if err != nil {
			t.Fatal(err)
		}
		if want := size < bufSize; hf.eof != want {
			t.Errorf("size %d: eof = %v, want %v", size, hf.eof, want)
		}
		ref := bytes.NewReader(data)
		type read struct {
			N   int
			Got string
			Err bool
		}
		for off := 0; off <= size+1; off++ {
			for _, n := range []int{1, 3, bufSize, 2*bufSize + 1} {
				pw, pg := make([]byte, n), make([]byte, n)
				nw, errw := ref.ReadAt(pw, int64(off))
				ng, errg := hf.ReadAt(pg, int64(off))
				want, got := read{nw, string(pw[:nw]), errw != nil}, read{ng, string(pg[:ng]), errg != nil}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("size %d: ReadAt(%d bytes at %d) (-want +got):\n%s", size, n, off, diff)
				}
			}
		}
		h := sha256.New()
		h.Write(hf.head)
		sum, err := hashFrom(h, f, int64(len(hf.head)), buf, p)
		f.Close()
		want := sha256.Sum256(data)
		if err != nil || sum != hex.EncodeToString(want[:]) {
			t.Errorf("size %d: hash %s, %v; want %x", size, sum, err, want)
		}
	}
}
