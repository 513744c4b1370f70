package esl

import (
	"context"
	"net"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestCommandsCoalesced: the commands issued while a write is under way
// go out together in the next write, in the order they were issued, and
// each caller gets the reply matched to its own command.
func TestCommandsCoalesced(t *testing.T) {
	up, sw := net.Pipe() // a write returns only once the switch side read it
	defer up.Close()
	defer sw.Close()
	c := New(Config{Address: "pipe", CommandTimeout: 10 * time.Second})
	s := &session{c: c, log: c.log, up: up, done: make(chan struct{})}
	type result struct {
		line string
		r    reply
		err  error
	}
	results := make(chan result, 3)
	issue := func(line string) {
		r, err := s.command(context.Background(), line)
		results <- result{line, r, err}
	}
	go issue("api first")
	// The first command is being written (the switch has not read it):
	// two more queue behind it.
	waitFor(t, func() bool { s.wmu.Lock(); defer s.wmu.Unlock(); return s.writing })
	go issue("api second")
	waitFor(t, func() bool { s.wmu.Lock(); defer s.wmu.Unlock(); return len(s.wbuf) > 0 })
	go issue("api third")
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.waiters) == 3 })
	var writes []string
	buf := make([]byte, 4096)
	for len(writes) < 2 {
		n, err := sw.Read(buf) // one Read takes at most one write
		if err != nil {
			t.Fatal(err)
		}
		writes = append(writes, string(buf[:n]))
	}
	want := []string{"api first\n\n", "api second\n\napi third\n\n"}
	if diff := cmp.Diff(want, writes); diff != "" {
		t.Fatalf("writes -want +got:\n%s", diff)
	}
	// Replies go to the commands in the order they were written.
	s.mu.Lock()
	waiters := s.waiters
	s.waiters = nil
	s.mu.Unlock()
	for i, w := range waiters {
		w <- reply{text: []string{"+OK 1", "+OK 2", "+OK 3"}[i]}
	}
	got := map[string]string{}
	for range 3 {
		r := <-results
		if r.err != nil {
			t.Errorf("%s: %v", r.line, r.err)
		}
		got[r.line] = r.r.text
	}
	if diff := cmp.Diff(map[string]string{"api first": "+OK 1", "api second": "+OK 2", "api third": "+OK 3"}, got); diff != "" {
		t.Errorf("replies -want +got:\n%s", diff)
	}
}

// waitFor waits until cond holds, yielding meanwhile.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		runtime.Gosched()
	}
}

// TestNewUUID: a job's uuid is a random version-4 uuid, in lower-case
// hex.
func TestNewUUID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		u := newUUID()
		if !re.MatchString(u) {
			t.Fatalf("%q is not a version-4 uuid", u)
		}
		if seen[u] {
			t.Fatalf("%q twice", u)
		}
		seen[u] = true
	}
}
