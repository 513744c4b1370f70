package compiler

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/recpol/recpol/internal/readlimit"
)

// TestReadDirTooLarge: a policy file past MaxFileBytes is refused by its
// name, not read whole.
func TestReadDirTooLarge(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.cue"), []byte("package recpol\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	big, err := os.Create(filepath.Join(dir, "big.cue"))
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Truncate(MaxFileBytes + 1); err != nil {
		t.Fatal(err)
	}
	big.Close()
	_, err = ReadDir(dir)
	if !errors.Is(err, readlimit.ErrTooLarge) {
		t.Fatalf("ReadDir: %v, want ErrTooLarge", err)
	}
	if _, err := (Options{CacheDir: t.TempDir()}).Compile(dir); !errors.Is(err, readlimit.ErrTooLarge) {
		t.Fatalf("Compile: %v, want ErrTooLarge", err)
	}
}
