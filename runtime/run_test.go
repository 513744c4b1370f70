package runtime

import (
	"context"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/recpol/recpol/scenario"
)

// runtimeGoroutines returns the stacks of the live goroutines running the
// runtime's code (package runtime and its subpackages), by goroutine
// header, leaving out the tests' own goroutines and the fake switch's.
func runtimeGoroutines() map[string]string {
	buf := make([]byte, 8<<20)
	buf = buf[:goruntime.Stack(buf, true)]
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		id, _, _ := strings.Cut(header, " [") // "goroutine 12"
		switch {
		case !strings.Contains(g, "github.com/recpol/recpol/runtime"),
			strings.Contains(g, "testing.tRunner"), strings.Contains(g, "testing.(*T)"),
			strings.Contains(g, "github.com/recpol/recpol/fakeswitch"):
			continue
		}
		out[id] = g
	}
	return out
}

// TestRunLeavesNoGoroutine: every goroutine the runtime starts is Run's
// (the store's, the finish lane's, the sender's and its workers, the
// reconcile and recheck loops, the lease keeper, the HTTP server's):
// once Run has returned, none is left.
func TestRunLeavesNoGoroutine(t *testing.T) {
	before := runtimeGoroutines()
	h := startHarness(t, "../testdata/policies/agreement", "")
	sc, err := scenario.ParseFile("../testdata/scenarios/agreement.json")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.srv.Play(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if len(runtimeGoroutines()) <= len(before) {
		t.Fatal("no goroutine of the runtime running: the test proves nothing")
	}
	h.stop()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		var left []string
		for id, g := range runtimeGoroutines() {
			if _, ok := before[id]; !ok {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("%d goroutines of the runtime left after Run returned:\n\n%s", len(left), strings.Join(left, "\n\n"))
		case <-time.After(10 * time.Millisecond):
		}
	}
}
