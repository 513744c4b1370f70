//go:build unix

package store

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// rawFile is one of the store's regular files or directories, open on a
// bare descriptor: read with pread, written, fsynced and closed by the
// system calls themselves. os.NewFile, which openFile ends with, asks
// every descriptor for its flags (an fcntl) to decide about the poller,
// and the store's files never go to the poller: a recording checked, a
// sidecar written and a directory fsynced each save that call.
type rawFile struct {
	fd   int
	name string
}

// openRaw opens path as openFile does, on a bare descriptor.
func openRaw(path string, flag int, perm os.FileMode) (*rawFile, error) {
	fd, err := openFD(path, flag, perm)
	if err != nil {
		return nil, err
	}
	return &rawFile{fd: fd, name: path}, nil
}

// ReadAt reads len(p) bytes at off, as os.File.ReadAt does: it returns
// fewer only with an error, io.EOF at the end of the file.
func (f *rawFile) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := syscall.Pread(f.fd, p[n:], off+int64(n))
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return n, &os.PathError{Op: "read", Path: f.name, Err: err}
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}

// Write writes all of p.
func (f *rawFile) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := syscall.Write(f.fd, p[n:])
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return n, &os.PathError{Op: "write", Path: f.name, Err: err}
		}
		if m == 0 {
			return n, &os.PathError{Op: "write", Path: f.name, Err: io.ErrShortWrite}
		}
		n += m
	}
	return n, nil
}

// Sync fsyncs the file.
func (f *rawFile) Sync() error {
	for {
		err := syscall.Fsync(f.fd)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "sync", Path: f.name, Err: err}
		}
		return nil
	}
}

// Close closes the descriptor (once: a second Close is an error).
func (f *rawFile) Close() error {
	if f.fd < 0 {
		return &os.PathError{Op: "close", Path: f.name, Err: os.ErrClosed}
	}
	err := syscall.Close(f.fd)
	f.fd = -1
	if err != nil {
		return &os.PathError{Op: "close", Path: f.name, Err: err}
	}
	return nil
}

// size is the file's size, from fstat.
func (f *rawFile) size() (int64, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(f.fd, &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: f.name, Err: err}
	}
	return st.Size, nil
}

// renameFile is os.Rename without its lstat of newpath (made to refuse
// replacing a directory, which rename(2) refuses by itself with EISDIR):
// the store renames a recording or a temporary file over a name it has
// just looked at, or that is its own.
func renameFile(oldpath, newpath string) error {
	for {
		err := syscall.Rename(oldpath, newpath)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
		}
		return nil
	}
}

// oNoFollow is O_NOFOLLOW: an open that fails on a symbolic link.
const oNoFollow = syscall.O_NOFOLLOW
