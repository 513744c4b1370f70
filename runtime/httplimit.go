package runtime

import (
	"net"
	"sync"
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

// limitListener accepts at most n connections at once; past it Accept
// waits for one to close (the kernel's backlog holds the rest), so a flood
// of idle connections costs the process n descriptors, not one each.
type limitListener struct {
	net.Listener
	sem chan struct{}
}

func newLimitListener(l net.Listener, n int) net.Listener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n)}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
