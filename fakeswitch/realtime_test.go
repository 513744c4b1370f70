package fakeswitch

import (
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/recpol/recpol/scenario"
)

// fakeWall is a wall clock a test moves by hand.
type fakeWall struct {
	mu sync.Mutex
	t  time.Time
	// reads, when set, is told of every reading of the clock (without
	// waiting: a reading the buffer has no room for is not told).
	reads chan struct{}
}

func (w *fakeWall) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reads != nil {
		select {
		case w.reads <- struct{}{}:
		default:
		}
	}
	return w.t
}

func (w *fakeWall) set(t time.Time) {
	w.mu.Lock()
	w.t = t
	w.mu.Unlock()
}

// useWall makes a Realtime server follow a wall clock the test moves by
// hand from now on; at(d) sets it d after its start.
func useWall(srv *Server) (at func(d time.Duration)) {
	at, _ = useWallReads(srv)
	return at
}

// useWallReads is useWall that also returns a channel told of every
// reading of the clock, so a test knows when the server looked at it.
func useWallReads(srv *Server) (at func(d time.Duration), reads <-chan struct{}) {
	t0 := time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)
	w := &fakeWall{t: t0, reads: make(chan struct{}, 64)}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.wallNow = w.now
	srv.rtReal = w.now()
	srv.rtVirt = srv.now
	return func(d time.Duration) { w.set(t0.Add(d)) }, w.reads
}

// TestRealtimeFollowsWallClock: between the scenario's events, and after
// the last one, a Realtime server's clock is the wall clock, so commands
// sent by hand (a start, a mask, an unmask: what an operator does through
// the runtime's API) act when they arrive, and the file's masked span is
// where they were sent.
func TestRealtimeFollowsWallClock(t *testing.T) {
	srv, addr := startServer(t, Config{Realtime: true, Heartbeat: -1})
	at := useWall(srv)

	uuid := "11111111-2222-4333-8444-555555555555"
	if err := srv.Load(&scenario.Scenario{Calls: []scenario.Call{{
		ID:   "by-hand",
		Legs: []scenario.Leg{{Name: "a", UUID: uuid}},
		Steps: []scenario.Step{
			{AtMS: 0, Do: "create", Leg: "a"},
			{AtMS: 100, Do: "answer", Leg: "a"},
			{AtMS: 20000, Do: "hangup", Leg: "a"},
		},
	}}}); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, addr)
	c.login(t, "")
	path := filepath.Join(srv.cfg.RecordingsDir, "by-hand.wav")

	at(1 * time.Second) // the answer (100 ms) is past: the command runs it first
	if got := c.api(t, "uuid_record "+uuid+" start "+path); got != "+OK Success\n" {
		t.Fatalf("start: %q", got)
	}
	at(4 * time.Second)
	if got := c.api(t, "uuid_record "+uuid+" mask "+path); got != "+OK Success\n" {
		t.Fatalf("mask: %q", got)
	}
	at(6500 * time.Millisecond)
	if got := c.api(t, "uuid_record "+uuid+" unmask "+path); got != "+OK Success\n" {
		t.Fatalf("unmask: %q", got)
	}
	if got := srv.Now(); got != 6500*time.Millisecond {
		t.Errorf("virtual time %v at 6.5 s of wall clock", got)
	}
	at(25 * time.Second) // past the hangup: reading the clock runs it
	if got := srv.Now(); got != 25*time.Second {
		t.Errorf("virtual time %v at 25 s of wall clock", got)
	}
	files := srv.Files()
	if len(files) != 1 {
		t.Fatalf("%d recordings, want 1: %+v", len(files), files)
	}
	f := files[0]
	if f.StartedAt != time.Second || f.StoppedAt != 20*time.Second {
		t.Errorf("recorded %v-%v, want 1s-20s (sent at 1 s, hung up at 20 s)", f.StartedAt, f.StoppedAt)
	}
	if want := []Span{{FromMS: 3000, ToMS: 5500}}; !slices.Equal(f.Masked, want) {
		t.Errorf("masked %v in file time, want %v (mask sent at 4 s, unmask at 6.5 s, recording from 1 s)", f.Masked, want)
	}

	// After the scenario's last event the clock goes on: a call loaded now
	// starts now, not at the last event's time.
	at(40 * time.Second)
	if got := srv.Now(); got != 40*time.Second {
		t.Errorf("virtual time %v at 40 s of wall clock, after the last event", got)
	}
}

// TestBehind: a Realtime server says how late it ran the steps it had to
// catch up on, once, and nothing when it kept its schedule.
func TestBehind(t *testing.T) {
	srv, _ := startServer(t, Config{Realtime: true, Heartbeat: -1})
	at := useWall(srv)
	if err := srv.Load(&scenario.Scenario{Calls: []scenario.Call{{
		ID:   "late",
		Legs: []scenario.Leg{{Name: "a", UUID: "11111111-2222-4333-8444-555555555556"}},
		Steps: []scenario.Step{
			{AtMS: 100, Do: "create", Leg: "a"},
			{AtMS: 200, Do: "answer", Leg: "a"},
			{AtMS: 5000, Do: "hangup", Leg: "a"},
		},
	}}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		wall time.Duration
		want time.Duration
	}{
		{50 * time.Millisecond, 0},                       // nothing due yet
		{100 * time.Millisecond, 0},                      // the create, on time
		{900 * time.Millisecond, 700 * time.Millisecond}, // the answer, 700 ms late
		{1200 * time.Millisecond, 0},                     // read once: counting again
		{5300 * time.Millisecond, 300 * time.Millisecond},
	} {
		at(c.wall)
		srv.Now() // the clock follows the wall: what fell due runs
		if got := srv.Behind(); got != c.want {
			t.Errorf("at %v of wall clock: Behind() = %v, want %v", c.wall, got, c.want)
		}
	}
}

// TestCommandLag: the server says how long, at most, a command waited
// between its read off the socket and the server acting on it (here: the
// test holds the server's lock while the wall clock moves on), once, and
// nothing when every command acted as it arrived.
func TestCommandLag(t *testing.T) {
	srv, addr := startServer(t, Config{Realtime: true, Heartbeat: -1})
	at, reads := useWallReads(srv)
	c := dialRaw(t, addr)
	c.login(t, "")
	wall := time.Second
	for _, tt := range []struct {
		name string
		held []time.Duration // how long each command waits for the lock
		want time.Duration
	}{
		{"no command", nil, 0},
		{"one waits", []time.Duration{250 * time.Millisecond}, 250 * time.Millisecond},
		{"read once: counting again", nil, 0},
		{"acts as it arrives", []time.Duration{0}, 0},
		{"the longest of several", []time.Duration{100 * time.Millisecond, 400 * time.Millisecond, 50 * time.Millisecond}, 400 * time.Millisecond},
	} {
		for _, d := range tt.held {
			at(wall)
			for len(reads) > 0 { // the readings of the commands before
				<-reads
			}
			srv.mu.Lock()
			c.send(t, "api uuid_exists 11111111-2222-4333-8444-555555555555")
			// The reader stamps the command as it reads it, then waits
			// for the lock.
			select {
			case <-reads:
			case <-time.After(guard):
				srv.mu.Unlock()
				t.Fatalf("%s: the command was not read", tt.name)
			}
			wall += d
			at(wall)
			srv.mu.Unlock()
			if f := c.frame(t); string(f.Body) != "false" {
				t.Fatalf("%s: uuid_exists answered %q", tt.name, f.Body)
			}
		}
		if got := srv.CommandLag(); got != tt.want {
			t.Errorf("%s: CommandLag() = %v, want %v", tt.name, got, tt.want)
		}
	}
}
