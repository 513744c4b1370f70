//go:build unix

package store

import (
	"errors"
	"os"
	"syscall"
)

// openFile is os.OpenFile for the store's regular files and directories,
// without the poller. os.OpenFile offers every file it opens to epoll,
// which refuses a regular file or a directory, and sets and clears
// O_NONBLOCK around the offer: an epoll_ctl and four fcntl per open.
// os.NewFile asks one fcntl, sees a blocking descriptor and leaves it
// alone, which is where os.OpenFile ends up for these files anyway.
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	fd, err := openFD(path, flag, perm)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// openFD opens path with O_CLOEXEC added, again when interrupted, and
// returns the bare descriptor (openFile and openRaw).
func openFD(path string, flag int, perm os.FileMode) (int, error) {
	for {
		fd, err := syscall.Open(path, flag|syscall.O_CLOEXEC, uint32(perm.Perm()))
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}
