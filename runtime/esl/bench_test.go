package esl

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/recpol/recpol/runtime/eslwire"
)

// counter is a Handler that counts events and says when it has n.
type counter struct {
	n, want   atomic.Int64
	done      chan struct{}
	connected chan struct{} // closed at the first Connected
}

func (c *counter) Connected(string) {
	select {
	case <-c.connected:
	default:
		close(c.connected)
	}
}
func (c *counter) Disconnected(error) {}
func (c *counter) Event(*Event) {
	if c.n.Add(1) == c.want.Load() {
		close(c.done)
	}
}

// BenchmarkClientEvents: the client's cost per event, from the switch's
// socket to the Handler: events of a hundred headers (7 KB framed, every
// value URL-encoded with several escapes: more decoding than the
// switch's 2.5 KB events need), written by the switch 20 at a time, as a
// call setup's events come. The switch's side shares the process.
func BenchmarkClientEvents(b *testing.B) {
	hs := []eslwire.Header{{Name: "Unique-ID", Value: "8d2c1a3e-1111-4222-8333-444455556666"}}
	for i := range 100 {
		hs = append(hs, eslwire.Header{Name: fmt.Sprintf("variable_sip_var_%d", i), Value: fmt.Sprintf("value %d: <sip:100%d@example.com>", i, i)})
	}
	ev := rawEvent("CHANNEL_ANSWER", hs...)
	burst := []byte(strings.Repeat(ev, 20))
	h := &counter{done: make(chan struct{}), connected: make(chan struct{})}
	h.want.Store(int64(b.N))
	start := make(chan struct{})
	rs := startRaw(b, func(c *rawConn) {
		if !c.login() {
			return
		}
		<-start
		for sent := 0; sent < b.N; sent += 20 {
			if _, err := c.conn.Write(burst); err != nil {
				return
			}
		}
		for {
			if _, ok := c.command(); !ok {
				return
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := New(Config{Address: rs.addr(), Password: "ClueCon", Logger: testLogger()})
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx, h) }()
	defer func() { cancel(); <-ran }()
	select {
	case <-h.connected:
	case err := <-ran:
		b.Fatal(err)
	}
	b.SetBytes(int64(len(ev)))
	b.ReportAllocs()
	b.ResetTimer()
	close(start)
	<-h.done
	b.StopTimer()
}
