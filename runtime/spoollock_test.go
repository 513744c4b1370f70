package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSpoolLocked: a second runtime on the spool of a running one refuses
// to start and names the holder; once the first stops, it starts.
func TestSpoolLocked(t *testing.T) {
	h := startHarness(t, "../testdata/policies/agreement", "")
	cfg, err := LoadConfig(h.dir + "/runtime.cue")
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg, quietLogger())
	if !errors.Is(err, ErrSpoolLocked) || !strings.Contains(err.Error(), fmt.Sprintf("(pid %d)", os.Getpid())) {
		t.Fatalf("a second runtime on the spool: %v, want ErrSpoolLocked naming pid %d", err, os.Getpid())
	}
	h.stop()
	rt, err := New(cfg, quietLogger())
	if err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
