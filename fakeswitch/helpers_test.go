package fakeswitch

import (
	"bufio"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/fiorix/go-eventsocket/eventsocket"
	"github.com/go-audio/wav"
	"github.com/recpol/recpol/runtime/eslwire"
	"github.com/recpol/recpol/scenario"
)

// guard bounds every wait of a test so a bug fails it instead of hanging;
// no assertion depends on it.
const guard = 20 * time.Second

// startServer starts a server on loopback and returns it and its address.
func startServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.RecordingsDir == "" {
		cfg.RecordingsDir = t.TempDir()
	}
	srv := New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, ln.Addr().String()
}

// esClient is a go-eventsocket connection whose events are drained in
// their own goroutine, as the library requires.
type esClient struct {
	conn *eventsocket.Connection
	evs  chan *eventsocket.Event
}

func dialES(t *testing.T, addr, pw string) *esClient {
	t.Helper()
	conn, err := eventsocket.Dial(addr, pw)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	c := &esClient{conn: conn, evs: make(chan *eventsocket.Event, 100000)}
	go func() {
		defer close(c.evs)
		for {
			ev, err := conn.ReadEvent()
			if err != nil {
				return
			}
			c.evs <- ev
		}
	}()
	t.Cleanup(conn.Close)
	return c
}

func (c *esClient) send(t *testing.T, cmd string) *eventsocket.Event {
	t.Helper()
	ev, err := c.conn.Send(cmd)
	if err != nil {
		t.Fatalf("Send(%q): %v", cmd, err)
	}
	return ev
}

// next returns the next event named name, skipping others.
func (c *esClient) next(t *testing.T, name string) *eventsocket.Event {
	t.Helper()
	timeout := time.After(guard)
	for {
		select {
		case ev, ok := <-c.evs:
			if !ok {
				t.Fatalf("connection closed waiting for %s", name)
			}
			if ev.Get("Event-Name") == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event", name)
		}
	}
}

// rawClient speaks the protocol byte by byte, to check exact frames.
type rawClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{conn: conn, r: bufio.NewReader(conn)}
	if f := c.frame(t); f.Get("Content-Type") != eslwire.TypeAuthRequest {
		t.Fatalf("greeting %+v", f)
	}
	return c
}

func (c *rawClient) send(t *testing.T, cmd string) {
	t.Helper()
	if _, err := c.conn.Write([]byte(cmd + "\n\n")); err != nil {
		t.Fatal(err)
	}
}

func (c *rawClient) frame(t *testing.T) eslwire.Frame {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(guard))
	f, err := eslwire.ReadFrame(c.r)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return f
}

// login authenticates and subscribes to events (plain).
func (c *rawClient) login(t *testing.T, events string) {
	t.Helper()
	c.send(t, "auth ClueCon")
	if got := c.frame(t).Get("Reply-Text"); got != "+OK accepted" {
		t.Fatalf("auth: %q", got)
	}
	if events != "" {
		c.send(t, "event plain "+events)
		if got := c.frame(t).Get("Reply-Text"); got != "+OK event listener enabled plain" {
			t.Fatalf("event: %q", got)
		}
	}
}

// api sends an api command and returns the body of its api/response; no
// event may come before it.
func (c *rawClient) api(t *testing.T, cmd string) string {
	t.Helper()
	c.send(t, "api "+cmd)
	f := c.frame(t)
	if f.Get("Content-Type") != eslwire.TypeAPIResponse {
		t.Fatalf("api %s: got %v before the api/response", cmd, f.Headers)
	}
	return string(f.Body)
}

// nextEvent reads frames up to the next event.
func (c *rawClient) nextEvent(t *testing.T) *eslwire.Event {
	t.Helper()
	f := c.frame(t)
	if f.Get("Content-Type") != eslwire.TypeEventPlain {
		t.Fatalf("frame %v is not an event", f.Headers)
	}
	ev, err := eslwire.ParseEventPlain(f.Body)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// readWAV decodes a mono recording.
func readWAV(t *testing.T, path string) (rate int, samples []int) {
	t.Helper()
	rate, chans := readWAVChannels(t, path)
	if len(chans) != 1 {
		t.Fatalf("%s: %d channels; want mono", path, len(chans))
	}
	return rate, chans[0]
}

// readWAVChannels decodes a 16-bit recording with go-audio/wav into its
// channels.
func readWAVChannels(t *testing.T, path string) (rate int, chans [][]int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := wav.NewDecoder(f)
	buf, err := d.FullPCMBuffer()
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	if d.BitDepth != 16 || d.NumChans < 1 || d.NumChans > 2 {
		t.Fatalf("%s: %d bits, %d channels; want 16-bit mono or stereo", path, d.BitDepth, d.NumChans)
	}
	n := int(d.NumChans)
	chans = make([][]int, n)
	for i, v := range buf.Data {
		chans[i%n] = append(chans[i%n], v)
	}
	return int(d.SampleRate), chans
}

// twoLegCall is the call of the late_vars_bridge capture: the caller's
// variables are set by the dialplan after CHANNEL_CREATE; the callee
// carries its own from creation.
func twoLegCall(id string, hangupMS int64) scenario.Call {
	return scenario.Call{
		ID: id,
		Legs: []scenario.Leg{
			{Name: "a", CallerIDNumber: "1001", DestinationNumber: "1002"},
			{Name: "b1", Parent: "a", DestinationNumber: "1002", Variables: map[string]string{
				"recpol_account": "acme", "recpol_device": "d2", "recpol_network": "onnet"}},
		},
		Steps: []scenario.Step{
			{AtMS: 0, Do: "create", Leg: "a"},
			{AtMS: 10, Do: "set", Leg: "a", Variables: map[string]string{"recpol_account": "acme", "recpol_device": "d1", "recpol_network": "onnet"}},
			{AtMS: 20, Do: "execute", Leg: "a", Application: "bridge", Data: "user/1002"},
			{AtMS: 30, Do: "create", Leg: "b1"},
			{AtMS: 40, Do: "ring", Leg: "b1"},
			{AtMS: 1000, Do: "answer", Leg: "b1"},
			{AtMS: 1000, Do: "answer", Leg: "a"},
			{AtMS: 1010, Do: "bridge", Leg: "a", Other: "b1"},
			{AtMS: 1500, Do: "dtmf", Leg: "a", Digits: "*7"},
			{AtMS: hangupMS, Do: "hangup", Leg: "a"},
		},
	}
}
