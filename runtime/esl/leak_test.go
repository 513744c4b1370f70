package esl

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/recpol/recpol/fakeswitch"
)

// TestRunLeavesNothing: once Run returns, every goroutine of every
// connection it made (relay, reader, watchdog, the library's) is gone.
func TestRunLeavesNothing(t *testing.T) {
	srv, addr := startSwitch(t, "127.0.0.1:0", fakeswitch.Config{})
	base := runtime.NumGoroutine() + 1 // the second switch's Serve
	c := New(testConfig(addr))
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, rec) }()
	i, _ := rec.waitConnected(t, 0)
	if _, err := c.BgAPI(ctx, "status"); err != nil {
		t.Fatal(err)
	}
	// Lose the switch once; the client reconnects to its successor.
	srv.Close()
	i, _ = rec.waitDisconnected(t, i)
	startSwitch(t, addr, fakeswitch.Config{})
	i, _ = rec.waitConnected(t, i)
	if _, err := c.API(ctx, "status"); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v", err)
	}
	if _, err := rec.waitDisconnected(t, i); err == nil {
		t.Error("Disconnected(nil)")
	}
	timeout := time.After(guard)
	for runtime.NumGoroutine() > base {
		select {
		case <-timeout:
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			var ours []string
			for _, g := range strings.Split(string(buf[:n]), "\n\n") {
				if strings.Contains(g, "runtime/esl") || strings.Contains(g, "eventsocket") {
					ours = append(ours, g)
				}
			}
			t.Fatalf("%d goroutines, %d before Run:\n%s", runtime.NumGoroutine(), base, strings.Join(ours, "\n\n"))
		case <-time.After(10 * time.Millisecond):
		}
	}
}
