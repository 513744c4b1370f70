// Package readlimit reads whole files that must be small (configs,
// secrets, journals, sidecars) without trusting their size: a file past
// its limit is an error, never an allocation of its size.
package readlimit

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTooLarge: the file is larger than the limit it is read with.
var ErrTooLarge = errors.New("file too large")

// File reads path whole if it holds at most max bytes.
func File(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: %w (more than %d bytes)", path, ErrTooLarge, max)
	}
	return b, nil
}
