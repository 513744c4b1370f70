package runtime

import (
	"container/list"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// HTTP server bounds: a client cannot hold the API (and the file
// descriptors the store needs) with idle or slow connections.
const (
	httpMaxConns          = 256
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = 30 * time.Second // requests carry no body
	httpWriteTimeout      = 10 * time.Minute // a long recording's media over a slow link
	httpIdleTimeout       = 30 * time.Second
	httpMaxHeaderBytes    = 64 << 10
)

// limitListener holds at most n connections at once. Past it, Accept does
// not leave new connections in the kernel's accept queue behind idle ones:
// it closes the oldest connection that has sent no request yet or sits
// idle between requests (their state comes from http.Server.ConnState,
// track) and takes the new one. A connection serving a request is never
// closed, nor one whose request has arrived but is not served yet: its
// bytes wait in the kernel (unread, see unread) or the server has begun
// to read them (limitConn.got). Under a flood of silent connections a
// probe that sends its request at once is therefore never the one
// closed. When no connection can be closed, Accept waits for one to end
// or to fall idle.
type limitListener struct {
	net.Listener
	n     int
	mu    sync.Mutex
	freed *sync.Cond
	open  int
	// idle holds the connections that may be closed to make room, the
	// longest idle first (track appends); each *limitConn, its element
	// in limitConn.elem.
	idle *list.List
	// closed is set by Close: an Accept waiting for a slot gives up, so
	// that http.Server.Close, which waits for Serve to return before it
	// closes the busy connections, is not held by it.
	closed bool
	// waiting counts the Accepts waiting for a slot.
	waiting int
}

func newLimitListener(l net.Listener, n int) *limitListener {
	ll := &limitListener{Listener: l, n: n, idle: list.New()}
	ll.freed = sync.NewCond(&ll.mu)
	return ll
}

func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	for l.open >= l.n {
		// The longest idle that is silent: usually the first, so one
		// check (a system call) per connection accepted.
		var oldest *limitConn
		for el := l.idle.Front(); el != nil; el = el.Next() {
			if ic := el.Value.(*limitConn); ic.silent() {
				oldest = ic
				break
			}
		}
		if l.closed {
			l.mu.Unlock()
			c.Close()
			return nil, net.ErrClosed
		}
		if oldest == nil {
			l.waiting++
			l.freed.Wait()
			l.waiting--
			continue
		}
		l.releaseLocked(oldest)
		oldest.Conn.Close() // its server goroutine ends on the error
	}
	l.open++
	lc := &limitConn{Conn: c, l: l}
	l.mu.Unlock()
	return lc, nil
}

// Close closes the listener and wakes an Accept waiting for a slot.
func (l *limitListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.freed.Broadcast()
	l.mu.Unlock()
	return l.Listener.Close()
}

// track is the server's ConnState hook.
func (l *limitListener) track(c net.Conn, s http.ConnState) {
	lc, ok := c.(*limitConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lc.released {
		return
	}
	switch s {
	case http.StateNew, http.StateIdle:
		// Between requests the next one has not begun: what the
		// connection read so far belonged to the last one.
		lc.got.Store(false)
		if lc.elem != nil {
			l.idle.Remove(lc.elem)
		}
		lc.elem = l.idle.PushBack(lc)
		if l.waiting > 0 {
			// An Accept waiting because no connection could be closed
			// may close this one now.
			l.freed.Broadcast()
		}
	default:
		l.unidleLocked(lc)
	}
}

func (l *limitListener) releaseLocked(c *limitConn) {
	if c.released {
		return
	}
	c.released = true
	l.unidleLocked(c)
	l.open--
	l.freed.Signal()
}

// unidleLocked takes c out of the idle list, if it is in it.
func (l *limitListener) unidleLocked(c *limitConn) {
	if c.elem != nil {
		l.idle.Remove(c.elem)
		c.elem = nil
	}
}

type limitConn struct {
	net.Conn
	l        *limitListener
	released bool          // guarded by l.mu
	elem     *list.Element // in l.idle, or nil; guarded by l.mu
	// got is set when a Read returned bytes since the connection was
	// last idle (track): the server is reading a request.
	got atomic.Bool
}

// Read reads from the connection and notes that a request has begun.
func (c *limitConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.got.Store(true)
	}
	return n, err
}

// silent reports whether the connection can be closed to make room: the
// server has read nothing of a request on it and no bytes of one wait in
// the kernel.
func (c *limitConn) silent() bool {
	return !c.got.Load() && !unread(c.Conn)
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.l.mu.Lock()
	c.l.releaseLocked(c)
	c.l.mu.Unlock()
	return err
}
