package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// createExcl creates path for writing with mode 0600, removing a stale file
// of that name (one a crash left) and trying again when there is one;
// O_EXCL refuses to follow a symbolic link planted there.
func createExcl(path string) (*os.File, error) {
	f, err := openFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if !errors.Is(err, os.ErrExist) {
		return f, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return openFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

// createExclRaw is createExcl on a bare descriptor (rawFile).
func createExclRaw(path string) (*rawFile, error) {
	f, err := openRaw(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if !errors.Is(err, os.ErrExist) {
		return f, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return openRaw(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

// writeFileReplace writes data to path through a temporary file and a
// rename, without fsync: readers never see a half-written file, but a
// power failure may lose it. For copies that can be written again
// (sidecars: the catalog is the record).
func writeFileReplace(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := createExclRaw(tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = renameFile(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeFileAtomic writes data to path with mode 0600: a temporary file in
// the same directory, fsync, rename, fsync of the directory.
func (ds *dirSyncer) writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := createExcl(tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = renameFile(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return ds.sync(filepath.Dir(path))
}

// removeDurable removes path (absent is fine) and fsyncs its directory.
func (ds *dirSyncer) removeDurable(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove: %w", err)
	}
	return ds.sync(filepath.Dir(path))
}

// fileSHA256 returns the hex sha256 of a file's bytes.
func fileSHA256(path string) (string, error) {
	f, err := openRaw(path, os.O_RDONLY, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := getReadBuf()
	defer putReadBuf(buf)
	return hashFrom(sha256.New(), f, 0, *buf, path)
}

// readBufSize is the size of the buffers recordings are read with: a
// recording of a few seconds is read, checked and hashed in one or two
// reads (and one more that finds its end).
const readBufSize = 64 << 10

// readBufs are the buffers recordings are read with, reused: a finish
// allocates none.
var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

func getReadBuf() *[]byte  { return readBufs.Get().(*[]byte) }
func putReadBuf(b *[]byte) { readBufs.Put(b) }

// hashFrom adds the bytes of f from off to its end to h, reading them
// into buf, and returns h's hex sum; name is f's for errors.
func hashFrom(h hash.Hash, f io.ReaderAt, off int64, buf []byte, name string) (string, error) {
	for {
		n, err := f.ReadAt(buf, off)
		h.Write(buf[:n])
		off += int64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("hash %s: %w", name, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// inside reports whether path, cleaned, is root or below it.
func inside(root, path string) bool {
	rel, err := filepath.Rel(root, filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// mkdirSafe creates dir below root one component at a time with mode 0700.
// It refuses a component that is a symbolic link or not a directory, so a
// link planted in storage cannot redirect a recording elsewhere.
func (ds *dirSyncer) mkdirSafe(root, dir string) error {
	if !inside(root, dir) {
		return fmt.Errorf("%s is outside storage: %w", dir, ErrUnsafePath)
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, ErrUnsafePath)
	}
	cur := root
	if rel == "." {
		return nil
	}
	for _, c := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, c)
		fi, err := os.Lstat(cur)
		if errors.Is(err, os.ErrNotExist) {
			err = os.Mkdir(cur, 0o700)
			if errors.Is(err, os.ErrExist) {
				fi, err = os.Lstat(cur)
			} else if err == nil {
				if err := ds.sync(filepath.Dir(cur)); err != nil {
					return err
				}
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("create %s: %w", cur, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 || !fi.IsDir() {
			return fmt.Errorf("%s is a symbolic link or not a directory: %w", cur, ErrUnsafePath)
		}
	}
	return nil
}

// checkNoLinks verifies that no component of path below root is a
// symbolic link (the last one may be absent).
func checkNoLinks(root, path string) error {
	if !inside(root, path) {
		return fmt.Errorf("%s is outside %s: %w", path, root, ErrUnsafePath)
	}
	rel, _ := filepath.Rel(root, path)
	cur := root
	for _, c := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, c)
		fi, err := os.Lstat(cur)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link: %w", cur, ErrUnsafePath)
		}
	}
	return nil
}

// lstatBelow is os.Lstat of path after checkNoLinks of its directory:
// no directory between root and path is a symbolic link (error wrapping
// ErrUnsafePath); path itself is not followed, whatever it is. One lstat
// per component, the last one's result returned.
func lstatBelow(root, path string) (os.FileInfo, error) {
	if err := checkNoLinks(root, filepath.Dir(path)); err != nil {
		return nil, err
	}
	return os.Lstat(path)
}

// copyFile copies src to dst through dst+".tmp": write, fsync, rename,
// fsync of the directory.
func (ds *dirSyncer) copyFile(src, dst string) error {
	in, err := openFile(src, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := createExcl(tmp)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = renameFile(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	return ds.sync(filepath.Dir(dst))
}

// isNoSpace reports whether err is ENOSPC (or a disk quota exceeded).
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
