package esl

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// FuzzSession: whatever a switch sends after a good login (frames,
// fragments, garbage, replies nobody asked for), the client never panics
// and never hands go-eventsocket what would end the process: it delivers
// the events it could read, and when the connection ends it says why
// (a protocol error or a lost connection), then stops when asked.
//
// Every input of a process is served by one switch listener
// (fuzzSwitch), which closes each connection first, and each input's
// client connects once: an input leaves one socket in TIME_WAIT on a
// port of its own (the client's relay listener's, which the switch
// cannot reach), not a listener, a connection and a reconnection or two
// of its own, so that a 10-minute run does not use up the host's
// loopback ports.
func FuzzSession(f *testing.F) {
	f.Add([]byte(rawEvent("CHANNEL_CREATE")))
	f.Add([]byte("Content-Type: log/data\nContent-Length: 3\n\nabc"))
	f.Add([]byte("Content-Type: command/reply\nReply-Text: +OK nobody asked\n\n"))
	f.Add([]byte("Content-Type: text/event-plain\nContent-Length: 99999999\n\nEvent-Name: X"))
	f.Add([]byte("Content-Type: text/event-plain\nContent-Length: 12\n\nbad header\n\n"))
	f.Add([]byte("Content-Type: text/disconnect-notice\n\n"))
	f.Add([]byte("\n\n\n" + rawEvent("HEARTBEAT")))
	f.Fuzz(func(t *testing.T, b []byte) {
		sent := make(chan struct{})
		var once sync.Once
		addr := fuzzSwitch.use(t, func(c *rawConn) {
			if c.login() && c.write(string(b)) {
				once.Do(func() { close(sent) })
			}
			// The switch hangs up: the client sees the end of the
			// stream. The switch closes first and waits for the client
			// to close too, so that the connection's TIME_WAIT stays
			// on the switch's port rather than taking one of the
			// host's ephemeral ports for a minute.
			c.hangUp()
		})
		cfg := testConfig(addr)
		// The client comes back after 100-200 ms, long after the input
		// ends; a connection that could not be set up (the host short
		// of ports for the relay's listener) is tried again well
		// within guard.
		cfg.DialTimeout = DefaultDialTimeout
		cfg.BackoffMin, cfg.BackoffMax = 200*time.Millisecond, 200*time.Millisecond
		_, rec := runClient(t, cfg)
		// Disconnections before Connected are setups that failed and
		// were tried again; the one that counts ends the connection.
		i, _ := rec.waitConnected(t, 0)
		select {
		case <-sent:
		case <-time.After(guard):
			t.Fatal("the switch did not send the input")
		}
		_, err := rec.waitDisconnected(t, i)
		if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrConnectionLost) {
			t.Fatalf("disconnected with %v, want ErrProtocol or ErrConnectionLost", err)
		}
	})
}

// fuzzSwitch is the scripted switch of every FuzzSession input in the
// process. Inputs run one at a time; each sets the serve function its
// connections get, and a connection accepted between inputs (none is
// expected) is closed.
var fuzzSwitch sharedRaw

// sharedRaw is a rawSwitch whose listener outlives the tests using it.
type sharedRaw struct {
	once sync.Once
	ln   net.Listener
	err  error

	mu    sync.Mutex
	serve func(c *rawConn) // the current test's; nil between tests
	conns sync.WaitGroup   // connections being served
}

// use makes serve the handler of the listener's connections until t
// ends, starting the listener on first use, and returns its address.
// When t ends, the connections still being served are waited for.
func (s *sharedRaw) use(t *testing.T, serve func(c *rawConn)) string {
	t.Helper()
	s.once.Do(func() {
		s.ln, s.err = net.Listen("tcp", "127.0.0.1:0")
		if s.err == nil {
			go s.accept()
		}
	})
	if s.err != nil {
		t.Fatal(s.err)
	}
	s.mu.Lock()
	s.serve = serve
	s.mu.Unlock()
	t.Cleanup(func() {
		s.mu.Lock()
		s.serve = nil
		s.mu.Unlock()
		s.conns.Wait()
	})
	return s.ln.Addr().String()
}

func (s *sharedRaw) accept() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like pass
			continue
		}
		s.mu.Lock()
		serve := s.serve
		if serve != nil {
			s.conns.Add(1)
		}
		s.mu.Unlock()
		if serve == nil {
			conn.Close()
			continue
		}
		go func() {
			defer s.conns.Done()
			defer conn.Close()
			serve(&rawConn{conn: conn, r: bufio.NewReader(conn)})
		}()
	}
}

// hangUp closes the switch's side of the connection first (the client
// reads the end of the stream), then waits, for at most guard, until the
// client has closed its side.
func (c *rawConn) hangUp() {
	tc, ok := c.conn.(*net.TCPConn)
	if !ok {
		return
	}
	_ = tc.CloseWrite()
	_ = tc.SetReadDeadline(time.Now().Add(guard))
	_, _ = io.Copy(io.Discard, tc)
}
