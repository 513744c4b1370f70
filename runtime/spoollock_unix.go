//go:build unix

package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// spoolLock is an exclusive lock on a spool directory: two runtimes on
// one spool would each store the other's recordings (a rolling update, a
// second service instance). The lock is flock(2) on <spool>/recpol.lock,
// released by the kernel when the process dies, so a kill -9 leaves no
// stale lock; the file says who holds it.
type spoolLock struct{ f *os.File }

// lockHolder is what the lock file says about the runtime holding it.
type lockHolder struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
}

// ErrSpoolLocked: another runtime uses the spool.
var ErrSpoolLocked = errors.New("the spool is in use by another runtime")

// lockSpool takes the spool's lock for this process, as name.
func lockSpool(spool, name string) (*spoolLock, error) {
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return nil, fmt.Errorf("locking the spool: %w", err)
	}
	p := filepath.Join(spool, "recpol.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking the spool: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		var h lockHolder
		b := make([]byte, 512)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if json.Unmarshal(b[:n], &h) == nil && h.PID > 0 {
				return nil, fmt.Errorf("%w %q (pid %d): %s", ErrSpoolLocked, h.Name, h.PID, p)
			}
			return nil, fmt.Errorf("%w: %s", ErrSpoolLocked, p)
		}
		return nil, fmt.Errorf("locking the spool %s: %w", p, err)
	}
	b, _ := json.Marshal(lockHolder{Name: name, PID: os.Getpid()})
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(b, 0)
	}
	return &spoolLock{f: f}, nil
}

// release gives the lock up.
func (l *spoolLock) release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
