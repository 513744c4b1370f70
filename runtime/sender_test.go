package runtime

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/runtime/esl"
	"github.com/recpol/recpol/runtime/eslcmd"
	"github.com/recpol/recpol/table"
)

// slowCommander answers commands for legs named "slow-..." only after
// release is closed, everything else at once, and records the order.
type slowCommander struct {
	release chan struct{}
	mu      sync.Mutex
	order   []string
	fail    map[string]int // commands that fail as unreached this many times
	failErr error          // how they fail; esl.ErrNotConnected if nil
	tries   map[string]int // every attempt, by command
}

func (s *slowCommander) BgAPI(ctx context.Context, cmd string) (string, error) {
	s.mu.Lock()
	if s.tries == nil {
		s.tries = map[string]int{}
	}
	s.tries[cmd]++
	if s.fail[cmd] > 0 {
		s.fail[cmd]--
		err := s.failErr
		if err == nil {
			err = esl.ErrNotConnected
		}
		s.mu.Unlock()
		return "", fmt.Errorf("bgapi: %w", err)
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
	e.mu.Lock()
	e.send(eslcmd.RecordStart{UUID: "slow-1", Path: "/rec/a/1.wav", TimeLimit: 10})
	e.send(eslcmd.Record{Op: eslcmd.Mask, UUID: "slow-1", Path: "/rec/a/1.wav"})
	for i := 0; i < 50; i++ {
		e.send(eslcmd.RecordStart{UUID: fmt.Sprintf("fast-%d", i), Path: fmt.Sprintf("/rec/a/%d.wav", i), TimeLimit: 10})
	}
	e.mu.Unlock()
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

// startSender starts an engine's sender on c, until the test ends, and
// queues cmds.
func startSender(t *testing.T, c Commander, cmds ...eslcmd.ChannelCommand) {
	e := newEngine(SwitchConfig{Name: "fs"}, Classify{Preset: "recpol"}, func() *table.Table { return nil }, &finishes{}, quietLogger(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.sender(ctx, c); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	e.mu.Lock()
	for _, cmd := range cmds {
		e.send(cmd)
	}
	e.mu.Unlock()
}

// TestCommandKeptWhileDisconnected: a command that finds no connection is
// sent again, in order with its leg's later commands, once the switch
// answers.
func TestCommandKeptWhileDisconnected(t *testing.T) {
	mask := eslcmd.Record{Op: eslcmd.Mask, UUID: "leg-1", Path: "/rec/a/1.wav"}
	unmask := eslcmd.Record{Op: eslcmd.Unmask, UUID: "leg-1", Path: "/rec/a/1.wav"}
	c := &slowCommander{release: make(chan struct{}), fail: map[string]int{mask.String(): 3}}
	startSender(t, c, mask, unmask)
	waitFor(t, "both commands", func() bool { return len(c.sent()) == 2 })
	if diff := cmp.Diff([]string{mask.String(), unmask.String()}, c.sent()); diff != "" {
		t.Errorf("order after the retries (-want +got):\n%s", diff)
	}
}

// TestBroadcastNotResentAfterTimeout: a command whose reply did not come
// is sent again, except one that is not Repeatable (a broadcast): the
// switch may have played it, and the parties would hear the notice twice.
// A broadcast that never left (no connection) is sent again.
func TestBroadcastNotResentAfterTimeout(t *testing.T) {
	for _, tc := range []struct {
		err        error
		broadcasts int
	}{
		{esl.ErrCommandTimeout, 1},
		{esl.ErrConnectionLost, 1},
		{esl.ErrNotConnected, 2},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			notice := eslcmd.Broadcast{UUID: "leg-1", Media: "/sounds/recorded.wav", Target: eslcmd.Both}
			mask := eslcmd.Record{Op: eslcmd.Mask, UUID: "leg-1", Path: "/rec/a/1.wav"}
			c := &slowCommander{release: make(chan struct{}), failErr: tc.err,
				fail: map[string]int{notice.String(): 1, mask.String(): 1}}
			startSender(t, c, notice, mask)
			// The mask, sent again, goes after the broadcast's attempts.
			waitFor(t, "the mask sent again", func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				return c.tries[mask.String()] == 2
			})
			c.mu.Lock()
			got := map[string]int{"broadcast": c.tries[notice.String()], "mask": c.tries[mask.String()]}
			c.mu.Unlock()
			if diff := cmp.Diff(map[string]int{"broadcast": tc.broadcasts, "mask": 2}, got); diff != "" {
				t.Errorf("attempts (-want +got):\n%s", diff)
			}
		})
	}
}
