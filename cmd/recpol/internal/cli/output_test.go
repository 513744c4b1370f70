package cli

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWriteOutputKeepsSpecialFiles checks that -o writes into a named pipe
// (or a device such as /dev/null) instead of replacing it with a regular
// file, and replaces a regular file atomically.
func TestWriteOutputKeepsSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	got := make(chan []byte, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- nil
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- b
	}()
	s := &streams{stdout: io.Discard, stderr: io.Discard}
	if err := writeOutput(s, fifo, func(w io.Writer) error { _, err := w.Write([]byte("table\n")); return err }); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, []byte("table\n")) {
		t.Errorf("read %q from the pipe", b)
	}
	if info, err := os.Lstat(fifo); err != nil || info.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the named pipe was replaced: %v %v", info.Mode(), err)
	}

	regular := filepath.Join(dir, "table.json")
	os.WriteFile(regular, []byte("old"), 0o644)
	if err := writeOutput(s, regular, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(regular); string(b) != "new" {
		t.Errorf("regular file holds %q", b)
	}
	if err := writeOutput(s, dir, func(w io.Writer) error { return nil }); err == nil {
		t.Errorf("writing to a directory succeeded")
	}
}
