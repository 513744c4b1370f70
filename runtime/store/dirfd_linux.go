//go:build linux

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The directory of a recording in storage is opened with openat2(2) and
// RESOLVE_NO_SYMLINKS: one system call checks that no component of the
// path is a symbolic link, where checkNoLinks and mkdirSafe lstat each
// component below storage, and what is done in it afterwards (the
// sidecar's temporary file created and renamed, the recording's file
// looked at) is done relative to the directory opened, so a link planted
// meanwhile is not followed either. Any failure (no such directory yet,
// a link anywhere in the path, storage's own ancestors included, a kernel
// without openat2) sends the caller to the component-by-component path,
// which creates what is missing and says what is unsafe.

// noOpenat2 is set once openat2 turned out to be unusable here (an old
// kernel, a seccomp filter): the component-by-component path is taken
// from then on.
var noOpenat2 atomic.Bool

// dirNoLinks is a directory opened (O_PATH) through a path without a
// symbolic link.
type dirNoLinks struct {
	fd   int
	path string
}

// openDirNoLinks opens dir, whose every component must be a directory and
// none a symbolic link; ok is false when it could not (see above).
func openDirNoLinks(dir string) (d dirNoLinks, ok bool) {
	if noOpenat2.Load() {
		return dirNoLinks{}, false
	}
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS}
	for {
		fd, err := unix.Openat2(unix.AT_FDCWD, dir, &how)
		switch {
		case err == nil:
			return dirNoLinks{fd: fd, path: dir}, true
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM), errors.Is(err, unix.EINVAL), errors.Is(err, unix.E2BIG):
			noOpenat2.Store(true)
		}
		return dirNoLinks{}, false
	}
}

func (d dirNoLinks) close() { unix.Close(d.fd) }

// lstat is os.Lstat of name in the directory.
func (d dirNoLinks) lstat(name string) (os.FileMode, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, &os.PathError{Op: "lstat", Path: filepath.Join(d.path, name), Err: err}
		}
		mode := os.FileMode(st.Mode & 0o777)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
		case unix.S_IFDIR:
			mode |= os.ModeDir
		case unix.S_IFLNK:
			mode |= os.ModeSymlink
		default:
			mode |= os.ModeIrregular
		}
		return mode, nil
	}
}

// chmod is os.Chmod of name in the directory.
func (d dirNoLinks) chmod(name string, mode os.FileMode) error {
	for {
		err := unix.Fchmodat(d.fd, name, uint32(mode.Perm()), 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "chmod", Path: filepath.Join(d.path, name), Err: err}
		}
		return nil
	}
}

// writeReplace is writeFileReplace of name in the directory: data into
// name+".tmp" (created with O_EXCL, a stale one removed first), renamed
// over name, without fsync.
func (d dirNoLinks) writeReplace(name string, data []byte) (err error) {
	tmp := name + ".tmp"
	flags := unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_CLOEXEC
	fd, err := unix.Openat(d.fd, tmp, flags, 0o600)
	if errors.Is(err, unix.EEXIST) {
		if err := unix.Unlinkat(d.fd, tmp, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("write %s: %w", filepath.Join(d.path, name), err)
		}
		fd, err = unix.Openat(d.fd, tmp, flags, 0o600)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(d.path, name), err)
	}
	f := &rawFile{fd: fd, name: filepath.Join(d.path, tmp)}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(d.fd, tmp, d.fd, name)
	}
	if err != nil {
		unix.Unlinkat(d.fd, tmp, 0)
		return fmt.Errorf("write %s: %w", filepath.Join(d.path, name), err)
	}
	return nil
}
