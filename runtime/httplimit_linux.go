package runtime

import (
	"net"
	"syscall"
	"unsafe"
)

// unread reports whether bytes have arrived on c that nobody has read
// yet: the kernel's count of its receive queue (ioctl TIOCINQ, alias
// FIONREAD; tcp(7)). A connection whose count cannot be read is taken as
// having none.
func unread(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int32
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	}); err != nil || errno != 0 {
		return false
	}
	return n > 0
}
