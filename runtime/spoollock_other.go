//go:build !unix

package runtime

import "errors"

type spoolLock struct{}

// ErrSpoolLocked: another runtime uses the spool.
var ErrSpoolLocked = errors.New("the spool is in use by another runtime")

// lockSpool does nothing where flock(2) is missing.
func lockSpool(spool, name string) (*spoolLock, error) { return &spoolLock{}, nil }

func (l *spoolLock) release() {}
