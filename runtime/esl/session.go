package esl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiorix/go-eventsocket/eventsocket"
	"github.com/recpol/recpol/runtime/eslwire"
)

// A session is one connection to the switch. go-eventsocket can only
// Dial an address, so the session dials the switch itself and serves the
// library a loopback listener that accepts exactly one connection; a
// relay between the two reads every frame from the switch with an
// eslwire.Reader (ReadFrame's rules) and forwards only what the library handles safely:
//
//   - auth/request, first; then the auth reply (canonical "+OK accepted" or
//     "-ERR invalid");
//   - text/event-plain, parsed by eslwire and queued by the relay, each
//     event numbered in order; what the switch sent at once is forwarded
//     as one two-line event carrying the number of the last event of the
//     batch (the relay writes one whenever it is about to wait for the
//     switch, and after maxBatch events). The library's events are order tokens, each handing over
//     the queued events up to its number; the content comes from the
//     strict parse (exact header names, FreeSWITCH's decoding), and the
//     library parses one small placeholder a batch, not one an event;
//   - text/disconnect-notice is logged and not forwarded.
//
// After authentication the session writes commands to the switch itself
// and the relay hands each command/reply or api/response to the oldest
// command still waiting: FreeSWITCH answers the commands of a connection
// in the order it read them, so several commands can be in flight
// (pipelined) without go-eventsocket's Send, which matches replies to
// concurrent callers by whichever receives first and truncates -ERR.
//
// Anything else (an unknown Content-Type such as log/data, a malformed
// frame, a reply nobody asked for) closes the connection with ErrProtocol,
// and the library, which would log.Fatal on it, never sees it. Blank
// lines between frames are skipped, as mod_event_socket does.
type session struct {
	c   *Client
	log *slog.Logger
	q   *queue

	up   net.Conn // the switch
	lib  net.Conn // the relay's end of the library's connection
	conn *eventsocket.Connection

	// wmu orders the writes of commands with their waiters. It guards
	// wbuf, the commands queued while another goroutine writes (which
	// writes them too, in one write), writing, and wspare, the buffer
	// the last write used.
	wmu     sync.Mutex
	wbuf    []byte
	wspare  []byte
	writing bool

	mu          sync.Mutex
	authPending bool         // the library's auth awaits its reply
	waiters     []chan reply // commands written and awaiting a reply, oldest first
	relayClosed bool
	authReply   string
	// pending holds the events the relay parsed and the reader has not
	// taken yet, oldest first, from pending[head]; parsed counts the
	// events the relay parsed, taken those the reader took (the number
	// of the event before pending[head]).
	pending   []*eslwire.Event
	head      int
	parsed    uint64
	taken     uint64
	forwarded uint64 // placeholders written to the library
	// The reader goroutine's own buffers: the events of the batch it
	// delivers, and their Handler calls.
	batch []*eslwire.Event
	items []item
	jobs  map[string]chan *Event

	lastSeen     atomic.Int64 // unix nanos of the last frame from the switch
	wasConnected atomic.Bool
	abandoned    atomic.Bool

	once       sync.Once
	err        error
	done       chan struct{} // closed by fail
	relayDone  chan struct{}
	readerDone chan struct{}
}

// reply is a command's reply as the switch sent it.
type reply struct {
	text string // Reply-Text, or the api/response body
	job  string // Job-UUID header of a bgapi reply
	err  error  // set when the connection ended first
}

// relaySeqHeader carries the relay's sequence number on the events the
// library sees.
const relaySeqHeader = "Relay-Seq"

// maxBatch is the most events one placeholder hands over: the relay
// writes one when it is about to wait for the switch, or when this many
// events wait for one.
const maxBatch = 16

// fail ends the session with err (the first reason wins).
func (s *session) fail(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
		s.up.Close()
	})
}

func (s *session) reason() error {
	<-s.done
	return s.err
}

// connect dials the switch, authenticates through the relay, starts the
// reader and the watchdog, and subscribes.
// dialLibrary is go-eventsocket's Dial, through which the library
// connects to the relay; a test replaces it.
var dialLibrary = eventsocket.Dial

func (c *Client) connect(ctx context.Context, q *queue) (*session, error) {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	up, err := d.DialContext(dctx, "tcp", c.cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("%w: dial: %w", ErrConnectionLost, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		up.Close()
		return nil, fmt.Errorf("esl: relay listener: %w", err)
	}
	type dialed struct {
		conn *eventsocket.Connection
		err  error
	}
	dch := make(chan dialed, 1)
	go func() {
		conn, err := dialLibrary(ln.Addr().String(), c.cfg.Password)
		dch <- dialed{conn, err}
	}()
	deadline, _ := dctx.Deadline()
	_ = ln.(*net.TCPListener).SetDeadline(deadline)
	type accepted struct {
		conn net.Conn
		err  error
	}
	ach := make(chan accepted, 1)
	go func() {
		conn, err := ln.Accept()
		ach <- accepted{conn, err}
	}()
	var lib net.Conn
	select {
	case a := <-ach:
		lib, err = a.conn, a.err
	case r := <-dch:
		// The library's dial ended before the relay accepted it: it
		// failed (a host out of ports, say), since it cannot log in
		// before the relay runs. Waiting for the accept until the dial
		// deadline would only delay the next attempt.
		ln.Close()
		if a := <-ach; a.conn != nil {
			a.conn.Close()
		}
		up.Close()
		if r.conn != nil {
			r.conn.Close()
		}
		if r.err == nil {
			r.err = errors.New("connected without the relay")
		}
		return nil, fmt.Errorf("%w: relay dial: %w", ErrConnectionLost, r.err)
	}
	ln.Close()
	if err != nil {
		up.Close()
		if r := <-dch; r.conn != nil {
			r.conn.Close()
		}
		return nil, fmt.Errorf("esl: relay accept: %w", err)
	}
	s := &session{
		c: c, log: c.log, q: q, up: up, lib: lib,
		jobs:       map[string]chan *Event{},
		done:       make(chan struct{}),
		relayDone:  make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	s.authPending = true
	s.lastSeen.Store(time.Now().UnixNano())
	go s.relay()
	go s.upstream()
	var r dialed
	select {
	case r = <-dch:
	case <-dctx.Done():
		s.fail(fmt.Errorf("%w: authentication: %w", ErrConnectionLost, dctx.Err()))
		r = <-dch // the relay's end makes Dial return
	}
	if r.err != nil {
		s.mu.Lock()
		auth := s.authReply
		s.mu.Unlock()
		if auth != "" && auth != "+OK accepted" {
			s.fail(fmt.Errorf("%w: switch answered %q", ErrAuth, auth))
		}
		s.fail(fmt.Errorf("%w: authentication: %w", ErrConnectionLost, r.err))
		s.abortSetup()
		return nil, s.reason()
	}
	s.conn = r.conn
	if ctx.Err() != nil || s.closed() {
		s.fail(fmt.Errorf("%w: %w", ErrConnectionLost, context.Cause(dctx)))
		s.conn.Close()
		s.abortSetup()
		return nil, s.reason()
	}
	go s.read()
	go s.watchdog()
	if c.cfg.Gate != nil {
		api := func(ctx context.Context, cmd string) (string, error) {
			if err := checkCommand(cmd); err != nil {
				return "", err
			}
			r, err := s.command(ctx, "api "+cmd)
			if err != nil {
				return "", fmt.Errorf("api %s: %w", verb(cmd), err)
			}
			if rejected(r.text) {
				return r.text, fmt.Errorf("api %s: %w: %s", verb(cmd), ErrRejected, strings.TrimSpace(r.text))
			}
			return r.text, nil
		}
		if err := c.cfg.Gate(ctx, api); err != nil {
			s.fail(fmt.Errorf("%w: %w", ErrGated, err))
			s.teardown()
			return nil, s.reason()
		}
	}
	sub := "event plain " + strings.Join(c.cfg.Events, " ")
	if rep, err := s.command(ctx, sub); err != nil || !strings.HasPrefix(rep.text, "+OK") {
		if err == nil {
			err = fmt.Errorf("%w: %s", ErrRejected, strings.TrimSpace(rep.text))
		}
		s.fail(fmt.Errorf("subscribe: %w", err))
		s.teardown()
		return nil, s.reason()
	}
	// A first event carries the Core-UUID that Connected reports; ask
	// for one now rather than wait for a call or a heartbeat.
	if _, err := s.command(ctx, "bgapi version"); err != nil {
		s.fail(fmt.Errorf("bgapi version: %w", err))
		s.teardown()
		return nil, s.reason()
	}
	return s, nil
}

func (s *session) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// abortSetup waits for the relay of a session whose reader never
// started and releases the library's side.
func (s *session) abortSetup() {
	<-s.relayDone
	s.lib.Close()
}

// teardown waits, after fail, for the reader to deliver the events the
// library still held, then releases everything. If the reader does not
// finish (it cannot, unless the library misbehaves), it is abandoned and
// its later events dropped.
func (s *session) teardown() {
	<-s.relayDone
	t := time.NewTimer(s.c.cfg.CommandTimeout)
	defer t.Stop()
	select {
	case <-s.readerDone:
	case <-t.C:
		s.abandoned.Store(true)
		s.log.Error("event socket: reader did not finish after the connection closed; abandoning it")
	}
	s.lib.Close()
	s.conn.Close()
}

// upstream copies what the library writes (auth, commands) to the switch.
func (s *session) upstream() {
	_, err := io.Copy(s.up, s.lib)
	if err == nil {
		err = io.EOF
	}
	s.fail(fmt.Errorf("%w: library side closed: %w", ErrConnectionLost, err))
}

// Canonical frames the relay writes to the library.
const (
	frameAuthRequest = "Content-Type: auth/request\n\n"
)

func frameReply(text string) string {
	return "Content-Type: command/reply\nReply-Text: " + text + "\n\n"
}

func frameEvent(seq uint64) string {
	body := relaySeqHeader + ": " + strconv.FormatUint(seq, 10) + "\n\n"
	return "Content-Length: " + strconv.Itoa(len(body)) + "\nContent-Type: text/event-plain\n\n" + body
}

// relay reads the switch and feeds the library until either side fails.
func (s *session) relay() {
	defer close(s.relayDone)
	err := s.relayLoop()
	s.fail(err)
	// Commands still waiting get an error rather than waiting out their
	// timeout; an authentication still waiting gets a refusal.
	s.mu.Lock()
	s.relayClosed = true
	waiting := s.waiters
	s.waiters = nil
	auth := s.authPending
	s.authPending = false
	s.mu.Unlock()
	for _, w := range waiting {
		w <- reply{err: fmt.Errorf("%w: %w", ErrConnectionLost, err)}
	}
	if auth {
		_, _ = io.WriteString(s.lib, frameReply("-ERR connection closed"))
	}
	// Half-close: the library reads everything written, then EOF.
	if tc, ok := s.lib.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	} else {
		s.lib.Close()
	}
}

func (s *session) relayLoop() error {
	fr := eslwire.NewReader(bufio.NewReaderSize(s.up, 64<<10))
	// Events go to the library in batches: what the switch sent at once
	// is written at once.
	lw := bufio.NewWriterSize(s.lib, 16<<10)
	placed := uint64(0) // the events a placeholder was written for
	place := func() error {
		s.mu.Lock()
		n := s.parsed
		s.mu.Unlock()
		if n == placed {
			return nil
		}
		if _, err := lw.WriteString(frameEvent(n)); err != nil {
			return fmt.Errorf("%w: relay to library: %w", ErrConnectionLost, err)
		}
		placed = n
		s.mu.Lock()
		s.forwarded++
		s.mu.Unlock()
		return nil
	}
	defer func() {
		// The events parsed before the end are still delivered.
		if place() == nil {
			lw.Flush()
		}
	}()
	authed := false
	for first := true; ; first = false {
		if fr.Buffered() == 0 {
			// About to wait for the switch: hand over what is held.
			if err := place(); err != nil {
				return err
			}
			if err := lw.Flush(); err != nil {
				return fmt.Errorf("%w: relay to library: %w", ErrConnectionLost, err)
			}
		}
		f, err := fr.Read() // valid until the next Read: what is kept is copied
		if err != nil {
			if s.closed() {
				return fmt.Errorf("%w: %w", ErrConnectionLost, err)
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: switch closed the connection", ErrConnectionLost)
			}
			var ne net.Error
			if errors.As(err, &ne) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: %w", ErrConnectionLost, err)
			}
			s.log.Error("event socket: malformed frame from the switch; closing", "err", err)
			return fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		s.lastSeen.Store(time.Now().UnixNano())
		ct := f.Get("Content-Type")
		var out string
		switch {
		case first:
			if ct != eslwire.TypeAuthRequest {
				return s.protocolError("expected auth/request, got Content-Type %q", ct)
			}
			out = frameAuthRequest
		case ct == eslwire.TypeCommandReply || ct == eslwire.TypeAPIResponse:
			r := reply{job: f.Get("Job-UUID")}
			if ct == eslwire.TypeCommandReply {
				r.text = f.Get("Reply-Text")
			} else {
				r.text = string(f.Body)
			}
			s.mu.Lock()
			if !authed {
				if !s.authPending {
					s.mu.Unlock()
					return s.protocolError("%s before authentication", ct)
				}
				s.authPending = false
				authed = true
				s.authReply = r.text
				s.mu.Unlock()
				if r.text == "+OK accepted" {
					out = frameReply("+OK accepted")
					break
				}
				// Fail before the library learns it, so that the
				// reason is this and not the library hanging up.
				err := fmt.Errorf("%w: switch answered %q", ErrAuth, r.text)
				s.fail(err)
				_, _ = io.WriteString(s.lib, frameReply("-ERR invalid"))
				return err
			}
			if len(s.waiters) == 0 {
				s.mu.Unlock()
				return s.protocolError("%s that no command asked for", ct)
			}
			w := s.waiters[0]
			s.waiters[0] = nil
			s.waiters = s.waiters[1:]
			s.mu.Unlock()
			w <- r // buffered, one reply per waiter
			continue
		case ct == eslwire.TypeEventPlain && authed:
			ev, err := eslwire.ParseEventPlain(f.Body)
			if err != nil {
				return s.protocolError("event: %v", err)
			}
			s.mu.Lock()
			if s.head > 0 && len(s.pending) == cap(s.pending) {
				// Full, with taken slots at its front: move down
				// rather than grow.
				n := copy(s.pending, s.pending[s.head:])
				clear(s.pending[n:])
				s.pending, s.head = s.pending[:n], 0
			}
			s.pending = append(s.pending, ev)
			s.parsed++
			s.mu.Unlock()
			if s.parsed-placed >= maxBatch {
				// A switch that never pauses still has its events
				// handed over as they come, not once it pauses.
				if err := place(); err != nil {
					return err
				}
				if err := lw.Flush(); err != nil {
					return fmt.Errorf("%w: relay to library: %w", ErrConnectionLost, err)
				}
			}
			continue
		case ct == eslwire.TypeDisconnectNotice:
			s.log.Info("event socket: switch sent a disconnect notice")
			continue
		default:
			return s.protocolError("unexpected Content-Type %q", ct)
		}
		if _, err := lw.WriteString(out); err != nil {
			return fmt.Errorf("%w: relay to library: %w", ErrConnectionLost, err)
		}
		if err := lw.Flush(); err != nil {
			return fmt.Errorf("%w: relay to library: %w", ErrConnectionLost, err)
		}
	}
}

func (s *session) protocolError(format string, args ...any) error {
	err := fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
	s.log.Error("event socket: dropping the connection", "err", err)
	return err
}

// read is the one goroutine draining the library's events. It never
// waits on a command or on the Handler: events go to the delivery queue,
// BACKGROUND_JOBs to their BgAPI caller's buffered channel.
func (s *session) read() {
	defer close(s.readerDone)
	var got uint64
	for {
		ev, err := s.conn.ReadEvent()
		if err != nil {
			s.fail(fmt.Errorf("%w: %w", ErrConnectionLost, err))
			break
		}
		got++
		s.handle(ev)
	}
	// Events the library queued before its read error are still due.
	<-s.relayDone
	s.mu.Lock()
	want := s.forwarded
	s.mu.Unlock()
	for got < want {
		ev, err := s.conn.ReadEvent()
		if err != nil {
			break
		}
		got++
		s.handle(ev)
	}
}

// maxKeptPending is the most parsed events' room the relay's queue keeps
// once drained; a larger array, grown by a burst, is let go.
const maxKeptPending = 1024

// handle takes the events a placeholder of the relay hands over and
// delivers them in order, queueing the Handler's calls of the batch at
// once. It runs on the reader goroutine only.
func (s *session) handle(lev *eventsocket.Event) {
	upTo, err := strconv.ParseUint(lev.Get(relaySeqHeader), 10, 64)
	s.mu.Lock()
	ok := err == nil && upTo > s.taken && upTo-s.taken <= uint64(len(s.pending)-s.head)
	if ok {
		n := int(upTo - s.taken)
		s.batch = append(s.batch[:0], s.pending[s.head:s.head+n]...)
		clear(s.pending[s.head : s.head+n])
		s.head += n
		if s.head == len(s.pending) {
			s.pending, s.head = s.pending[:0], 0
			if cap(s.pending) > maxKeptPending {
				// Drained after a burst: the array sized by it goes.
				s.pending = nil
			}
		}
		s.taken = upTo
	}
	s.mu.Unlock()
	if !ok {
		s.log.Error("event socket: event without its relay copy; dropped", "seq", lev.Get(relaySeqHeader))
		return
	}
	for i, w := range s.batch {
		s.batch[i] = nil
		s.deliver(w)
	}
	s.q.pushAll(s.items)
	clear(s.items)
	s.items = s.items[:0]
}

// deliver hands one event to its BgAPI caller, or adds its Handler call
// to s.items.
func (s *session) deliver(w *eslwire.Event) {
	if s.abandoned.Load() {
		return
	}
	ev := fromWire(w)
	if !s.wasConnected.Load() {
		s.wasConnected.Store(true)
		core := ev.Get("Core-UUID")
		s.c.mu.Lock()
		if !s.closed() {
			s.c.sess = s
			s.c.connected.Store(true)
		}
		s.c.mu.Unlock()
		s.log.Info("event socket: connected", "core_uuid", core)
		s.items = append(s.items, item{kind: itemConnected, core: core})
	}
	if ev.Name == "BACKGROUND_JOB" {
		job := ev.Get("Job-UUID")
		s.mu.Lock()
		ch := s.jobs[job]
		delete(s.jobs, job)
		s.mu.Unlock()
		if ch != nil {
			ch <- ev // buffered, one send per job
		}
		s.c.jobsRead.Add(1)
		return
	}
	s.items = append(s.items, item{kind: itemEvent, ev: ev})
}

// watchdog closes a connection the switch has been silent on for
// HeartbeatTimeout.
func (s *session) watchdog() {
	limit := s.c.cfg.HeartbeatTimeout
	tick := time.NewTicker(max(limit/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-tick.C:
			if silent := time.Since(time.Unix(0, s.lastSeen.Load())); silent > limit {
				s.log.Warn("event socket: switch silent; closing", "silent", silent.Round(time.Millisecond))
				s.fail(fmt.Errorf("%w: nothing for %v", ErrHeartbeat, silent.Round(time.Millisecond)))
				return
			}
		}
	}
}

// command writes one command to the switch and returns its exact reply.
// Commands are pipelined: each is written as soon as the previous one is
// written, and the relay hands replies to the waiting commands in the
// order the commands were written. The commands issued while a write is
// under way go out together in the next write (one system call for a
// burst). A reply missing after CommandTimeout closes the connection
// (every later reply would be matched to the wrong command otherwise); so
// does a write that cannot complete in that time. A cancelled ctx
// returns at once; the reply, when it comes, is consumed.
func (s *session) command(ctx context.Context, line string) (reply, error) {
	w := make(chan reply, 1)
	s.wmu.Lock()
	s.mu.Lock()
	if s.relayClosed {
		s.mu.Unlock()
		s.wmu.Unlock()
		return reply{}, s.reason()
	}
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()
	s.wbuf = append(append(s.wbuf, line...), "\n\n"...)
	if s.writing {
		// The goroutine writing now writes this command next.
		s.wmu.Unlock()
	} else if err := s.writeQueued(); err != nil {
		// The relay ends with the connection and answers every waiter,
		// this one included.
		s.fail(fmt.Errorf("%w: writing %s: %w", ErrConnectionLost, verb(line), err))
	}
	t := time.NewTimer(s.c.cfg.CommandTimeout)
	defer t.Stop()
	select {
	case r := <-w:
		return r, r.err
	case <-t.C:
		err := fmt.Errorf("%w: %s after %v", ErrCommandTimeout, verb(line), s.c.cfg.CommandTimeout)
		s.log.Error("event socket: command timed out; closing the connection", "command", verb(line))
		s.fail(err)
		return reply{}, err
	case <-ctx.Done():
		return reply{}, ctx.Err()
	}
}

// writeQueued writes the queued commands, and those queued meanwhile,
// until none is left or a write fails. s.wmu is held, and released.
func (s *session) writeQueued() error {
	s.writing = true
	var err error
	for len(s.wbuf) > 0 {
		buf := s.wbuf
		s.wbuf = s.wspare[:0]
		s.wmu.Unlock()
		_ = s.up.SetWriteDeadline(time.Now().Add(s.c.cfg.CommandTimeout))
		_, err = s.up.Write(buf)
		s.wmu.Lock()
		s.wspare = buf[:0]
		if err != nil {
			// Commands queued behind a failed write are answered by
			// the relay as the connection ends.
			s.wbuf = s.wbuf[:0]
			break
		}
	}
	s.writing = false
	s.wmu.Unlock()
	return err
}

func (s *session) addJob(job string) chan *Event {
	ch := make(chan *Event, 1)
	s.mu.Lock()
	s.jobs[job] = ch
	s.mu.Unlock()
	return ch
}

func (s *session) removeJob(job string) {
	s.mu.Lock()
	delete(s.jobs, job)
	s.mu.Unlock()
}
