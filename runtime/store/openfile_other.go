//go:build !unix

package store

import "os"

// openFile is os.OpenFile (see openfile_unix.go).
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, flag, perm)
}

// rawFile is an *os.File (see rawfile_unix.go).
type rawFile struct{ *os.File }

// openRaw is os.OpenFile.
func openRaw(path string, flag int, perm os.FileMode) (*rawFile, error) {
	f, err := os.OpenFile(path, flag, perm)
	if err != nil {
		return nil, err
	}
	return &rawFile{f}, nil
}

// size is the file's size.
func (f *rawFile) size() (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// renameFile is os.Rename.
func renameFile(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// oNoFollow is O_NOFOLLOW where there is one.
const oNoFollow = 0
