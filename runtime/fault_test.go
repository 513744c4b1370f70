package runtime

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recpol/recpol/fakeswitch"
	"github.com/recpol/recpol/runtime/store"
)

// proxy relays TCP connections to a target and can cut them, as a network
// or a switch that drops its event-socket clients does.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	down   bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down, to := p.down, p.target
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

// cut closes every relayed connection.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// retarget relays new connections to another address (a switch that
// came back as a new process).
func (p *proxy) retarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

func (p *proxy) setDown(d bool) {
	p.mu.Lock()
	p.down = d
	p.mu.Unlock()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// proxiedHarness is a runtime on the agreement policy whose connection to
// the fake switch goes through a proxy the test can cut.
func proxiedHarness(t *testing.T) (*fakeswitch.Server, *proxy, *harness) {
	t.Helper()
	rec := t.TempDir()
	srv := fakeswitch.New(fakeswitch.Config{Password: "ClueCon", RecordingsDir: rec, Quiet: 20 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	px := newProxy(t, ln.Addr().String())
	h := startHarnessOpts(t, "../testdata/policies/agreement", harnessOpts{srv: srv, addr: px.ln.Addr().String(), rec: rec})
	return srv, px, h
}

// TestConnectionDropMidCall: the event socket drops while two recordings
// run, the call hangs up while the runtime is disconnected (its
// RECORD_STOPs are lost), and after the reconnection the runtime finds the
// legs gone and stores both recordings from their files: nothing is lost.
func TestConnectionDropMidCall(t *testing.T) {
	srv, px, h := proxiedHarness(t)
	legs, err := srv.StartCall(twoLegCall("drop", 30000))
	if err != nil {
		t.Fatal(err)
	}
	// Play the call up to the bridge; both recordings start.
	srv.Advance(1010 * time.Millisecond)
	waitFor(t, "two recordings to start", func() bool {
		n := 0
		for _, c := range srv.Commands() {
			if strings.HasPrefix(c.Line, "bgapi uuid_record") && strings.Contains(c.Line, " start ") {
				n++
			}
		}
		return n == 2
	})
	time.Sleep(100 * time.Millisecond) // let RECORD_START reach the runtime

	// The connection drops; the call ends while nobody listens.
	px.setDown(true)
	px.cut()
	waitFor(t, "the runtime to notice", func() bool { return !h.rt.switches[0].client.Connected() })
	srv.Advance(30 * time.Second)
	if len(srv.Channels()) != 0 {
		t.Fatalf("legs still up: %v", srv.Channels())
	}
	px.setDown(false)
	waitFor(t, "the runtime to reconnect", func() bool { return h.rt.switches[0].client.Connected() })
	h.waitFinished(t, 2)

	stored, err := h.rt.Store.List(store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, m := range stored {
		got[m.CallID+" "+m.Scope] = m.DurationMS
	}
	// The clock jumped to the bridge (1010 ms) before the runtime's start
	// commands arrived, so both recordings run from 1010 ms to the hangup.
	want := map[string]int64{legs["a"] + " account": 28990, legs["b"] + " callee": 28990}
	for k, d := range want {
		if g, ok := got[k]; !ok || g != d {
			t.Errorf("recording %s: stored %v with duration %d, want duration %d (stored: %v)", k, ok, g, d, got)
		}
	}
}
