//go:build linux

package compiler

import (
	"io/fs"
	"syscall"
)

// statIdentity returns a file's device, inode and change time (which
// every write, rename and time change sets, so that restoring a file's
// modification time does not hide a change), or zeros when the file
// system does not say.
func statIdentity(info fs.FileInfo) (dev, ino uint64, ctimeNS int64) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Dev, st.Ino, st.Ctim.Nano()
	}
	return 0, 0, 0
}
