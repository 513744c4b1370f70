package runtime

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recpol/recpol/runtime/esl"
	"github.com/recpol/recpol/table"
)

// slowCommander answers commands for legs named "slow-..." only after
// release is closed, everything else at once, and records the order.
type slowCommander struct {
	release chan struct{}
	mu      sync.Mutex
	order   []string
	fail    map[string]int // commands that fail as unreached this many times
}

func (s *slowCommander) BgAPI(ctx context.Context, cmd string) (string, error) {
	s.mu.Lock()
	if s.fail[cmd] > 0 {
		s.fail[cmd]--
		s.mu.Unlock()
		return "", fmt.Errorf("bgapi: %w", esl.ErrNotConnected)
	}
	s.mu.Unlock()
	if strings.Contains(cmd, " slow-") {
		select {
		case <-s.release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	s.mu.Lock()
	s.order = append(s.order, cmd)
	s.mu.Unlock()
	return "+OK Success\n", nil
}

func (s *slowCommander) sent() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.order...)
}

// TestSlowSwitchDoesNotStallOtherCalls: a command the switch is slow to
// answer holds up the later commands of its own leg (they stay in order)
// but not those of other calls.
func TestSlowSwitchDoesNotStallOtherCalls(t *testing.T) {
	e := newEngine(SwitchConfig{Name: "fs"}, Classify{Preset: "recpol"}, func() *table.Table { return nil }, &finishes{}, quietLogger(), nil)
	c := &slowCommander{release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { e.sender(ctx, c); close(done) }()
	e.send("uuid_record slow-1 start /rec/a/1.wav 10 {}")
	e.send("uuid_record slow-1 mask /rec/a/1.wav")
	for i := 0; i < 50; i++ {
		e.send(fmt.Sprintf("uuid_record fast-%d start /rec/a/%d.wav 10 {}", i, i))
	}
	waitFor(t, "the other calls' commands", func() bool { return len(c.sent()) == 50 })
	for _, cmd := range c.sent() {
		if strings.Contains(cmd, "slow-") {
			t.Fatalf("the slow leg's command went out before the switch answered: %q", cmd)
		}
	}
	close(c.release)
	waitFor(t, "the slow leg's commands", func() bool { return len(c.sent()) == 52 })
	got := c.sent()
	if !strings.Contains(got[50], " start ") || !strings.Contains(got[51], " mask ") {
		t.Errorf("the slow leg's commands out of order: %q", got[50:])
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the sender did not stop")
	}
}

// TestCommandKeptWhileDisconnected: a command that finds no connection is
// sent again, in order with its leg's later commands, once the switch
// answers.
func TestCommandKeptWhileDisconnected(t *testing.T) {
	e := newEngine(SwitchConfig{Name: "fs"}, Classify{Preset: "recpol"}, func() *table.Table { return nil }, &finishes{}, quietLogger(), nil)
	mask := "uuid_record leg-1 mask /rec/a/1.wav"
	c := &slowCommander{release: make(chan struct{}), fail: map[string]int{mask: 3}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.sender(ctx, c)
	e.send(mask)
	e.send("uuid_record leg-1 unmask /rec/a/1.wav")
	waitFor(t, "both commands", func() bool { return len(c.sent()) == 2 })
	if got := c.sent(); got[0] != mask {
		t.Errorf("order after the retries: %q", got)
	}
}
