package esl

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recpol/recpol/fakeswitch"
	"github.com/recpol/recpol/runtime/eslwire"
)

// guard bounds every wait of a test so that a bug fails it instead of
// hanging it; no assertion depends on it.
const guard = 15 * time.Second

// startSwitch starts a fake switch listening on addr ("127.0.0.1:0" for
// any port) and returns it with its address.
func startSwitch(t *testing.T, addr string, cfg fakeswitch.Config) (*fakeswitch.Server, string) {
	t.Helper()
	if cfg.RecordingsDir == "" {
		cfg.RecordingsDir = t.TempDir()
	}
	srv := fakeswitch.New(cfg)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return srv, ln.Addr().String()
}

// recorder is a Handler keeping every call, in order.
type recorder struct {
	mu    sync.Mutex
	calls []call
	wake  chan struct{}
	slow  time.Duration // Event sleeps this long
}

type call struct {
	kind int
	core string
	ev   *Event
	err  error
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) add(c call) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *recorder) Connected(core string) { r.add(call{kind: itemConnected, core: core}) }
func (r *recorder) Event(ev *Event) {
	if r.slow > 0 {
		time.Sleep(r.slow)
	}
	r.add(call{kind: itemEvent, ev: ev})
}
func (r *recorder) Disconnected(err error) {
	r.add(call{kind: itemDisconnected, err: err})
}

func (r *recorder) snapshot() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// waitFor waits until some call at index >= from satisfies ok and returns
// its index.
func (r *recorder) waitFor(t *testing.T, from int, what string, ok func(call) bool) int {
	t.Helper()
	timeout := time.After(guard)
	for {
		calls := r.snapshot()
		for i := from; i < len(calls); i++ {
			if ok(calls[i]) {
				return i
			}
		}
		select {
		case <-r.wake:
		case <-timeout:
			t.Fatalf("waiting for %s: not seen in %d calls", what, len(calls))
		}
	}
}

// waitCount waits until n calls satisfy ok.
func (r *recorder) waitCount(t *testing.T, what string, n int, ok func(call) bool) {
	t.Helper()
	timeout := time.After(guard)
	for {
		got := 0
		for _, c := range r.snapshot() {
			if ok(c) {
				got++
			}
		}
		if got >= n {
			return
		}
		select {
		case <-r.wake:
		case <-timeout:
			t.Fatalf("waiting for %d %s: got %d", n, what, got)
		}
	}
}

func (r *recorder) waitConnected(t *testing.T, from int) (int, string) {
	t.Helper()
	i := r.waitFor(t, from, "Connected", func(c call) bool { return c.kind == itemConnected })
	return i, r.snapshot()[i].core
}

func (r *recorder) waitDisconnected(t *testing.T, from int) (int, error) {
	t.Helper()
	i := r.waitFor(t, from, "Disconnected", func(c call) bool { return c.kind == itemDisconnected })
	return i, r.snapshot()[i].err
}

func (r *recorder) waitEvent(t *testing.T, from int, name, uuid string) (int, *Event) {
	t.Helper()
	i := r.waitFor(t, from, name+" "+uuid, func(c call) bool {
		return c.kind == itemEvent && c.ev.Name == name && (uuid == "" || c.ev.Get("Unique-ID") == uuid)
	})
	return i, r.snapshot()[i].ev
}

func testLogger() *slog.Logger {
	if os.Getenv("ESL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testConfig is a Config for addr with test-sized durations.
func testConfig(addr string) Config {
	return Config{
		Address:          addr,
		Password:         "ClueCon",
		DialTimeout:      guard,
		CommandTimeout:   guard,
		HeartbeatTimeout: time.Minute,
		BackoffMin:       10 * time.Millisecond,
		BackoffMax:       50 * time.Millisecond,
		Logger:           testLogger(),
	}
}

// runClient runs a client until the test ends.
func runClient(t *testing.T, cfg Config) (*Client, *recorder) {
	t.Helper()
	return runClientWith(t, cfg, newRecorder())
}

func runClientWith(t *testing.T, cfg Config, rec *recorder) (*Client, *recorder) {
	t.Helper()
	c := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, rec) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(guard):
			t.Errorf("Run did not return")
		}
	})
	return c, rec
}

// rawSwitch is a scripted event-socket peer for what the fake switch
// does not do (misbehave). Each connection runs serve.
type rawSwitch struct {
	ln    net.Listener
	mu    sync.Mutex
	conns int
	wake  chan struct{}
}

func startRaw(t testing.TB, serve func(c *rawConn)) *rawSwitch {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := &rawSwitch{ln: ln, wake: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			rs.mu.Lock()
			rs.conns++
			rs.mu.Unlock()
			select {
			case rs.wake <- struct{}{}:
			default:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				serve(&rawConn{conn: conn, r: bufio.NewReader(conn)})
			}()
		}
	}()
	return rs
}

func (rs *rawSwitch) addr() string { return rs.ln.Addr().String() }

func (rs *rawSwitch) count() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.conns
}

// waitConns waits until n connections were accepted.
func (rs *rawSwitch) waitConns(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(guard)
	for rs.count() < n {
		select {
		case <-rs.wake:
		case <-timeout:
			t.Fatalf("waiting for %d connections, got %d", n, rs.count())
		}
	}
}

type rawConn struct {
	conn net.Conn
	r    *bufio.Reader
}

func (c *rawConn) write(s string) bool {
	_, err := c.conn.Write([]byte(s))
	return err == nil
}

// command reads one command line ("" when the connection ended).
func (c *rawConn) command() (eslwire.Command, bool) {
	cmd, err := eslwire.ReadCommand(c.r)
	return cmd, err == nil
}

const rawCore = "00000000-0000-4000-8000-00000000c0de"

// rawEvent is a text/event-plain frame of an event named name.
func rawEvent(name string, hs ...eslwire.Header) string {
	ev := &eslwire.Event{}
	ev.Add("Event-Name", name)
	ev.Add("Core-UUID", rawCore)
	for _, h := range hs {
		ev.Add(h.Name, h.Value)
	}
	return string(ev.PlainFrame().Bytes())
}

// login plays a well-behaved switch up to the client's Connected: greeting,
// auth, subscription, the bgapi's reply and its BACKGROUND_JOB.
func (c *rawConn) login() bool {
	if !c.write("Content-Type: auth/request\n\n") {
		return false
	}
	for {
		cmd, ok := c.command()
		if !ok {
			return false
		}
		verb, _, _ := strings.Cut(cmd.Line, " ")
		switch verb {
		case "auth":
			c.write("Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
		case "event":
			c.write("Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n")
		case "bgapi":
			job := "11111111-2222-4333-8444-555555555555"
			c.write("Content-Type: command/reply\nReply-Text: +OK Job-UUID: " + job + "\nJob-UUID: " + job + "\n\n")
			ev := &eslwire.Event{Body: "FreeSWITCH Version raw\n"}
			ev.Add("Event-Name", "BACKGROUND_JOB")
			ev.Add("Core-UUID", rawCore)
			ev.Add("Job-UUID", job)
			return c.write(string(ev.PlainFrame().Bytes()))
		default:
			c.write("Content-Type: command/reply\nReply-Text: -ERR command not found\n\n")
		}
	}
}
