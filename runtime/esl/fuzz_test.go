package esl

import (
	"errors"
	"sync"
	"testing"
)

// FuzzSession: whatever a switch sends after a good login (frames,
// fragments, garbage, replies nobody asked for), the client never panics
// and never hands go-eventsocket what would end the process: it delivers
// the events it could read, and when the connection ends it says why
// (a protocol error or a lost connection), then stops when asked.
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
		rs := startRaw(t, func(c *rawConn) {
			if c.login() {
				c.write(string(b))
			}
			once.Do(func() { close(sent) }) // the client reconnects: later connections too
			// The switch hangs up: the client sees the end of the stream.
		})
		_, rec := runClient(t, testConfig(rs.addr()))
		rec.waitConnected(t, 0)
		<-sent
		_, err := rec.waitDisconnected(t, 0)
		if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrConnectionLost) {
			t.Fatalf("disconnected with %v, want ErrProtocol or ErrConnectionLost", err)
		}
	})
}
