//go:build !linux

package store

import "os"

// dirNoLinks is a directory opened through a path without a symbolic
// link: openat2(2) only (see dirfd_linux.go); elsewhere the callers take
// the component-by-component path.
type dirNoLinks struct{}

// openDirNoLinks reports that it cannot open dir here.
func openDirNoLinks(string) (dirNoLinks, bool) { return dirNoLinks{}, false }

func (dirNoLinks) close()                            {}
func (dirNoLinks) lstat(string) (os.FileMode, error) { return 0, os.ErrInvalid }
func (dirNoLinks) chmod(string, os.FileMode) error   { return os.ErrInvalid }
func (dirNoLinks) writeReplace(string, []byte) error { return os.ErrInvalid }
