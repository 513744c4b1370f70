package readlimit

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, 100), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		max     int64
		tooBig  bool
		wantLen int
	}{{100, false, 100}, {1000, false, 100}, {99, true, 0}} {
		b, err := File(p, tc.max)
		if tc.tooBig != errors.Is(err, ErrTooLarge) || (!tc.tooBig && (err != nil || len(b) != tc.wantLen)) {
			t.Errorf("max %d: %d bytes, %v", tc.max, len(b), err)
		}
	}
	if _, err := File(filepath.Join(t.TempDir(), "none"), 10); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}
