package runtime

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestLimitListenerEvictsIdle: at its limit the listener makes room for a
// new connection by closing the oldest one that sent no request, and never
// closes one serving a request.
func TestLimitListenerEvictsIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := newLimitListener(ln, 2)
	release := make(chan struct{})
	busy := make(chan struct{}, 4)
	srv := &http.Server{ConnState: ll.track, ReadHeaderTimeout: time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				busy <- struct{}{}
				<-release
			}
			io.WriteString(w, "ok")
		})}
	go srv.Serve(ll)
	t.Cleanup(func() { close(release); srv.Close() })
	addr := ln.Addr().String()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	get := func(c net.Conn, path string) (string, error) {
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return "", err
		}
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}

	// One connection serves a slow request; another sits idle.
	slow := dial()
	slowDone := make(chan string, 1)
	go func() {
		body, err := get(slow, "/slow")
		if err != nil {
			body = err.Error()
		}
		slowDone <- body
	}()
	<-busy
	idle := dial()
	waitFor(t, "both connections accepted", func() bool {
		ll.mu.Lock()
		defer ll.mu.Unlock()
		return ll.open == 2 && ll.idle.Len() == 1
	})
	// A third is answered: the idle one made room, not the busy one.
	if body, err := get(dial(), "/"); err != nil || body != "ok" {
		t.Fatalf("the third connection: %q %v", body, err)
	}
	_ = idle.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Error("the idle connection was not closed")
	}
	ll.mu.Lock()
	open := ll.open
	ll.mu.Unlock()
	if open > 2 {
		t.Errorf("%d connections open, limit 2", open)
	}
	release <- struct{}{}
	if body := <-slowDone; body != "ok" {
		t.Errorf("the slow request, on the connection never closed: %q", body)
	}
}

// TestLimitListenerClose: a server whose every slot serves a request
// closes at once, though its listener waits in Accept for a slot; before,
// http.Server.Close waited for Serve, which waited for a slot that only
// Close could free.
func TestLimitListenerClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := newLimitListener(ln, 1)
	release := make(chan struct{})
	defer close(release)
	busy := make(chan struct{}, 1)
	srv := &http.Server{ConnState: ll.track, ReadHeaderTimeout: time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			busy <- struct{}{}
			<-release
		})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ll) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	<-busy
	extra, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	waitFor(t, "Accept waiting for a slot", func() bool {
		ll.mu.Lock()
		defer ll.mu.Unlock()
		return ll.waiting > 0
	})
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("http.Server.Close still waiting after 30s")
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
	}
}

// TestLimitListenerKeepsArrivedRequest: at its limit the listener closes
// a silent connection to make room, but not one whose request has arrived
// and waits in the kernel unread, nor one whose request the server has
// begun to read; for those the new connection waits until the old one
// falls idle. Before, a health probe could be closed under a flood of
// silent connections before the server read its request.
func TestLimitListenerKeepsArrivedRequest(t *testing.T) {
	for _, tc := range []struct {
		name        string
		send, read  bool // the first client sends a request; the server reads it
		wantEvicted bool
	}{
		{name: "silent", wantEvicted: true},
		{name: "request unread in the kernel", send: true},
		{name: "request being read", send: true, read: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ll := newLimitListener(ln, 1)
			t.Cleanup(func() { ll.Close() })
			dial := func() net.Conn {
				t.Helper()
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				return c
			}
			first := dial()
			sc, err := ll.Accept()
			if err != nil {
				t.Fatal(err)
			}
			ll.track(sc, http.StateNew)
			if tc.send {
				if _, err := io.WriteString(first, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the request in the kernel", func() bool { return unread(sc.(*limitConn).Conn) })
			}
			if tc.read {
				// All of it: only the server's reading tells now.
				if _, err := sc.Read(make([]byte, 256)); err != nil {
					t.Fatal(err)
				}
				if unread(sc.(*limitConn).Conn) {
					t.Fatal("part of the request is still in the kernel")
				}
			}
			dial()
			accepted := make(chan net.Conn, 1)
			go func() {
				c, err := ll.Accept()
				if err != nil {
					c = nil
				}
				accepted <- c
			}()
			if tc.wantEvicted {
				c := <-accepted
				if c == nil {
					t.Fatal("Accept failed")
				}
				c.Close()
				_ = first.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, err := first.Read(make([]byte, 1)); err == nil {
					t.Error("the silent connection was not closed")
				}
				return
			}
			waitFor(t, "Accept waiting for a slot", func() bool {
				ll.mu.Lock()
				defer ll.mu.Unlock()
				return ll.waiting > 0
			})
			select {
			case <-accepted:
				t.Fatal("a connection with a request was closed to make room")
			default:
			}
			// The request served (read whole), the connection falls idle
			// between requests and makes room.
			drain := make([]byte, 256)
			for unread(sc.(*limitConn).Conn) {
				if _, err := sc.Read(drain); err != nil {
					t.Fatal(err)
				}
			}
			ll.track(sc, http.StateIdle)
			select {
			case c := <-accepted:
				if c == nil {
					t.Fatal("Accept failed")
				}
				c.Close()
			case <-time.After(30 * time.Second):
				t.Fatal("Accept still waiting after the connection fell idle")
			}
		})
	}
}
