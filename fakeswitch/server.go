package fakeswitch

import (
	"bufio"
	"container/heap"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recpol/recpol/runtime/eslwire"
	"github.com/recpol/recpol/scenario"
)

// Config configures a Server.
type Config struct {
	// Password is the event-socket password; default "ClueCon".
	Password string
	// RecordingsDir is the directory recordings may be written under (an
	// absolute path, as FreeSWITCH sees it). uuid_record start of any path
	// outside it fails with -ERR Cannot record session!. Empty: recording
	// is refused.
	RecordingsDir string
	// Hostname is FreeSWITCH-Hostname and FreeSWITCH-Switchname; default
	// "fakeswitch".
	Hostname string
	// Epoch is the wall-clock time of virtual time zero, used for
	// Event-Date-* and the *-Time headers; default the time New is called.
	Epoch time.Time
	// Realtime makes the virtual clock follow the wall clock from New on:
	// a step at 60 s happens 60 s after its call was loaded, whatever the
	// clients do, and between scenario events the clock keeps moving, so
	// a command sent by hand (a mask through the runtime's API) acts at
	// the moment it arrives, also after the last scheduled event.
	// Otherwise Run plays as fast as the clients allow and the clock moves
	// only from one scheduled action to the next.
	Realtime bool
	// Quiet is how long Run waits, in real time, with no command arriving
	// and every event written, before it advances the virtual clock; it is
	// what lets a client react to an event (send uuid_record) at the
	// virtual time of that event. Default 20ms. Not used in Realtime mode.
	Quiet time.Duration
	// Settled, when set, is asked too before each advance of the clock
	// (not in Realtime mode), with how many events the server has
	// written to its clients: a client that counts the events it is done
	// with says whether it has caught up, which no quiet period can tell
	// on a loaded machine. Run waits for it for at most SettleTimeout
	// (default 5s) of real time per advance, then advances anyway.
	Settled func(eventsWritten int64) bool
	// SettleTimeout bounds the wait for Settled.
	SettleTimeout time.Duration
	// Heartbeat is the virtual-time interval of HEARTBEAT events; default
	// 20s, as FreeSWITCH. Negative disables them.
	Heartbeat time.Duration
	// Logger receives a line per connection, command and recording; nil
	// discards.
	Logger *slog.Logger
	// NoHistory keeps no record of commands and events (Commands and
	// Events return nothing) and hands each stopped recording to OnFile
	// instead of keeping it for Files: for long runs, whose history would
	// grow without bound.
	NoHistory bool
	// OnFile, when set, is called with each recording once its file is
	// written (or deleted), off the server's lock and before the
	// recording's RECORD_STOP is written to any client: a slow OnFile
	// holds that call's events back, as a slow disk does.
	OnFile func(FileRecord)
	// MP3 is how the server records .mp3 paths: MP3Stub (the default,
	// for clients that do not yet ask module_exists mod_shout: WAV bytes
	// under the .mp3 name), MP3Auto (real MP3 with the lame command when
	// one is found, else as MP3Off) or MP3Off (a FreeSWITCH without
	// mod_shout).
	MP3 MP3Support
	// LamePath is the lame command that encodes .mp3 recordings with
	// MP3Auto; default "lame", looked up on PATH when the server is
	// created.
	LamePath string
}

// MP3Support is how a server records .mp3 paths.
type MP3Support int

const (
	// MP3Stub writes WAV bytes under an .mp3 name and answers
	// `module_exists mod_shout` true: what the fake switch did before it
	// could encode, kept as the default while clients learn to check
	// module_exists.
	MP3Stub MP3Support = iota
	// MP3Auto writes real MP3 with the lame command when it is found
	// (module_exists mod_shout: true), and is a switch without mod_shout
	// (MP3Off) when it is not.
	MP3Auto
	// MP3Off is a FreeSWITCH without mod_shout: `api module_exists
	// mod_shout` answers false and `uuid_record <uuid> start <path>.mp3`
	// -ERR Cannot record session!, with no file and no RECORD_START (the
	// captures' probe-recording-vars.txt).
	MP3Off
)

// Server is the fake FreeSWITCH: an event-socket server, a virtual clock
// that plays scenario calls, and recordings written as WAV or MP3 files. All its
// methods are safe for concurrent use.
type Server struct {
	cfg      Config
	coreUUID string
	lame     string // the MP3 encoder with MP3Auto, "" for none
	log      *slog.Logger

	mu  sync.Mutex
	now int64 // virtual time in ms
	// In Realtime mode the virtual time rtVirt was the wall-clock time
	// rtReal; the clock follows wallNow (time.Now) from there.
	rtReal time.Time
	rtVirt int64
	// behindMax is the most milliseconds a step ran after it was due on
	// the wall clock since Behind last read it (written under mu).
	behindMax atomic.Int64
	// cmdLagMax is the most nanoseconds of wall clock a command waited
	// between its read off a client's socket and the server acting on
	// it, since CommandLag last read it (written under mu).
	cmdLagMax atomic.Int64
	wallNow   func() time.Time
	actions   actionHeap
	actionSeq uint64
	pending   int // scheduled call actions not yet run
	nextBeat  int64
	evSeq     uint64
	// The Event-Date-* of the second dateSec, formatted once (newEvent).
	dateSec            int64
	dateLocal, dateGMT string
	varHeaders         map[string]string // "variable_"+name by name (varHeader)
	sessions           int
	jobs               int
	channels           map[string]*channel
	// globals are the switch's global variables (global_setvar,
	// global_getvar).
	globals map[string]string
	// preAnswered: uuids of the legs a recording start pre-answered.
	preAnswered map[string]bool
	clients     map[*client]struct{}
	clientSeq   int
	listeners   []net.Listener
	closed      bool
	commands    []CommandRecord
	sent        []SentEvent
	activity    chan struct{} // signalled on every command and write
	// The writers' counters, for the quiet-period clock (waitQuiet):
	// atomic, so that a writer never waits for s.mu. A writer stores
	// lastBusy and eventsWritten before it takes its frames off
	// unwritten, and waitQuiet reads them in the other order: seeing
	// unwritten at 0 it sees the activity of the last write.
	born          time.Time    // the origin of lastBusy (monotonic)
	lastBusy      atomic.Int64 // real time of the last command or write, ns since born
	unwritten     atomic.Int64 // frames queued and not yet written
	eventsWritten atomic.Int64 // event frames written to clients (Config.Settled)
	wg            sync.WaitGroup
	// closing: the legs whose recording files are being closed, by
	// uuid, in the order their first file was (closingOrder, to forget
	// them once done); each counts its own files (channel.closing,
	// which the file jobs decrement without a lock).
	closing      map[string]*channel
	closingOrder []*channel
	// filesMu guards the files the jobs report (Files), so that a job
	// ending never waits for s.mu.
	filesMu sync.Mutex
	files   []FileRecord
	// The file jobs' bookkeeping: a job that ends takes jobsMu only when
	// someone waits (waitFileJobs, a writer holding frames), so that the
	// jobs of a busy switch do not queue on it, nor does fileJob, which
	// runs under s.mu.
	jobsMu     sync.Mutex
	jobsLeft   atomic.Int64  // file jobs not yet done
	jobsDone   *sync.Cond    // on jobsMu, broadcast when jobsLeft drops to 0
	jobsTick   chan struct{} // guarded by jobsMu, closed and replaced when a job ends while tickWanted
	tickWanted atomic.Bool   // set under jobsMu: a writer waits on jobsTick
}

// New returns a server. It does not listen until Serve or ListenAndServe.
func New(cfg Config) *Server {
	if cfg.Password == "" {
		cfg.Password = "ClueCon"
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "fakeswitch"
	}
	if cfg.Epoch.IsZero() {
		cfg.Epoch = time.Now().Truncate(time.Millisecond)
	}
	if cfg.SettleTimeout <= 0 {
		cfg.SettleTimeout = 5 * time.Second
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = 20 * time.Millisecond
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 20 * time.Second
	}
	if cfg.RecordingsDir != "" {
		cfg.RecordingsDir = filepath.Clean(cfg.RecordingsDir)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg,
		lame:     findLame(cfg),
		coreUUID: newUUID(),
		log:      log,
		channels: map[string]*channel{},
		closing:  map[string]*channel{},

		preAnswered: map[string]bool{},
		clients:     map[*client]struct{}{},
		activity:    make(chan struct{}, 1),
		born:        time.Now(),
		wallNow:     time.Now,
	}
	s.rtReal = s.wallNow()
	s.jobsDone = sync.NewCond(&s.jobsMu)
	s.jobsTick = make(chan struct{})
	if cfg.Heartbeat > 0 {
		s.nextBeat = cfg.Heartbeat.Milliseconds()
	} else {
		s.nextBeat = -1
	}
	return s
}

// CoreUUID is the Core-UUID this server puts on its events; each server
// has its own.
func (s *Server) CoreUUID() string { return s.coreUUID }

// newUUID returns a random version-4 uuid.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ListenAndServe listens on addr (e.g. "127.0.0.1:8021") and serves until
// Close.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("fakeswitch: listen: %w", err)
	}
	return s.Serve(ln)
}

// ErrClosed is returned by Serve after Close.
var ErrClosed = errors.New("fakeswitch: server closed")

// Serve accepts event-socket clients on ln until Close. Each client is
// served in its own goroutines.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	for {
		conn, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("fakeswitch: accept: %w", err)
		}
		s.startClient(conn)
	}
}

// Close stops listening, disconnects every client and waits for their
// goroutines. Recordings still running are left unwritten.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, ln := range s.listeners {
		ln.Close()
	}
	for c := range s.clients {
		c.conn.Close()
		c.shutdown()
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.waitFileJobs()
	return nil
}

// client is one event-socket connection.
type client struct {
	s    *Server
	id   int
	conn net.Conn
	// wallNow is the server's wall clock when the client connected: the
	// reader stamps each command with it.
	wallNow func() time.Time

	authed   bool
	commands int    // commands received
	format   string // "plain" or "json"
	all      bool
	events   map[string]bool
	nix      map[string]bool
	filter   []eslwire.Header

	qmu   sync.Mutex
	queue []queued
	wake  chan struct{}
	done  bool // no more frames will be queued
}

func (s *Server) startClient(conn net.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close()
		return
	}
	s.clientSeq++
	c := &client{s: s, id: s.clientSeq, conn: conn, wallNow: s.wallNow, format: "plain", events: map[string]bool{}, nix: map[string]bool{}, wake: make(chan struct{}, 1)}
	s.clients[c] = struct{}{}
	s.log.Info("client connected", "client", c.id, "remote", conn.RemoteAddr().String())
	c.enqueue(eslwire.Frame{Headers: []eslwire.Header{{Name: "Content-Type", Value: eslwire.TypeAuthRequest}}})
	s.wg.Add(2)
	s.mu.Unlock()
	go c.writeLoop()
	go c.readLoop()
}

// queued is a frame waiting for the writer, the file job that must be
// done before it is written (a RECORD_STOP follows its file), and the call
// it belongs to ("": none). An event is queued as is (ev) and serialized
// by the writer, off the server's lock, in the client's format (json).
type queued struct {
	f    eslwire.Frame
	ev   *eslwire.Event
	json bool
	job  *fileJob
	key  string
}

// frame returns the frame q writes.
func (q *queued) frame() eslwire.Frame {
	switch {
	case q.ev == nil:
		return q.f
	case q.json:
		return q.ev.JSONFrame()
	}
	return q.ev.PlainFrame()
}

// enqueue queues a frame for the client's writer. Callers hold s.mu, so
// frames are queued in the server's global order.
func (c *client) enqueue(f eslwire.Frame) { c.push(queued{f: f}) }

// enqueueEvent queues ev, in the client's format, to be written once job
// (nil: none) is done and every earlier frame of the same call (key) is
// written. The event must not change once queued. Callers hold s.mu.
func (c *client) enqueueEvent(ev *eslwire.Event, job *fileJob, key string) {
	c.push(queued{ev: ev, json: c.format == "json", job: job, key: key})
}

// push queues q. Callers hold s.mu.
func (c *client) push(q queued) {
	c.qmu.Lock()
	if c.done {
		c.qmu.Unlock()
		return
	}
	c.queue = append(c.queue, q)
	c.qmu.Unlock()
	c.s.unwritten.Add(1)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// shutdown makes the writer exit once the queue is written.
func (c *client) shutdown() {
	c.qmu.Lock()
	c.done = true
	c.qmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// writeLoop writes the queued frames in order, except that a frame whose
// file job is not done yet is held, with the later frames of its call,
// while the frames of other calls go on: as on FreeSWITCH, where each
// channel's media thread closes its own files, a slow disk delays the
// events of the calls whose files it writes, not every call's.
func (c *client) writeLoop() {
	defer c.s.wg.Done()
	var buf []byte
	var held []queued // waiting for a file job, or behind a frame that is
	for {
		c.qmu.Lock()
		frames := c.queue
		c.queue = nil
		done := c.done
		c.qmu.Unlock()
		if len(held) > 0 {
			frames = append(held, frames...)
			held = nil
		}
		buf = buf[:0]
		n, events := 0, 0
		var blocked map[string]bool
		var tick <-chan struct{} // asked for only when a job may hold a frame
		for _, q := range frames {
			if q.job != nil {
				tick = c.s.jobEnded()
				break
			}
		}
		waiting := false // a held frame waits for a job
		for _, q := range frames {
			if (q.key != "" && blocked[q.key]) || blocked[""] {
				held = append(held, q)
				continue
			}
			if len(held) > 0 && q.f.Get("Content-Type") == eslwire.TypeDisconnectNotice {
				// The connection's last frame: after every held one.
				blocked[""] = true
				held = append(held, q)
				continue
			}
			if !q.job.finished() {
				if q.key == "" {
					q.job.wait()
				} else {
					if blocked == nil {
						blocked = map[string]bool{}
					}
					blocked[q.key] = true
					held = append(held, q)
					waiting = true
					continue
				}
			}
			buf = eslwire.AppendFrame(buf, q.frame())
			n++
			if q.ev != nil {
				events++
			}
		}
		if n > 0 {
			_, err := c.conn.Write(buf)
			c.s.markBusy()
			c.s.eventsWritten.Add(int64(events))
			c.s.unwritten.Add(-int64(n))
			if err != nil {
				c.conn.Close()
				c.drain(len(held))
				return
			}
			continue
		}
		if waiting {
			// Whatever is held is written once its job is done, even
			// after shutdown.
			select {
			case <-c.wake:
			case <-tick:
			}
			continue
		}
		if done {
			c.conn.Close()
			return
		}
		<-c.wake
	}
}

// drain drops whatever is queued after a write error, and the held
// frames the writer had taken from the queue.
func (c *client) drain(held int) {
	c.qmu.Lock()
	n := len(c.queue) + held
	c.queue = nil
	c.done = true
	c.qmu.Unlock()
	c.s.unwritten.Add(-int64(n))
}

// markBusy records activity for the quiet-period clock.
func (s *Server) markBusy() {
	s.lastBusy.Store(int64(time.Since(s.born)))
	select {
	case s.activity <- struct{}{}:
	default:
	}
}

func (c *client) readLoop() {
	defer c.s.wg.Done()
	r := bufio.NewReaderSize(c.conn, 64<<10)
	for {
		cmd, err := eslwire.ReadCommand(r)
		if err != nil {
			c.s.mu.Lock()
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.s.log.Info("client read error", "client", c.id, "err", err)
				c.s.record(CommandRecord{Client: c.id, At: c.s.nowDur(), Error: err.Error()})
			}
			c.s.removeClient(c)
			c.s.mu.Unlock()
			return
		}
		read := c.wallNow()
		// Busy from the moment the command is read, as while it runs.
		c.s.markBusy()
		c.s.mu.Lock()
		keep := c.s.handle(c, cmd, read)
		if !keep {
			c.s.removeClient(c)
		}
		c.s.mu.Unlock()
		c.s.markBusy()
		if !keep {
			return
		}
	}
}

// removeClient forgets c; its writer finishes the queue then closes the
// connection. Callers hold s.mu.
func (s *Server) removeClient(c *client) {
	if _, ok := s.clients[c]; !ok {
		return
	}
	delete(s.clients, c)
	c.shutdown()
	s.log.Info("client disconnected", "client", c.id)
}

func reply(text string) eslwire.Frame {
	return eslwire.Frame{Headers: []eslwire.Header{{Name: "Content-Type", Value: eslwire.TypeCommandReply}, {Name: "Reply-Text", Value: text}}}
}

func apiResponse(body string) eslwire.Frame {
	return eslwire.Frame{Headers: []eslwire.Header{{Name: "Content-Type", Value: eslwire.TypeAPIResponse}, {Name: "Content-Length", Value: strconv.Itoa(len(body))}}, Body: []byte(body)}
}

func disconnectNotice() eslwire.Frame {
	return eslwire.Frame{Headers: []eslwire.Header{{Name: "Content-Type", Value: eslwire.TypeDisconnectNotice}, {Name: "Content-Length", Value: strconv.Itoa(len(eslwire.DisconnectText))}}, Body: []byte(eslwire.DisconnectText)}
}

// handle runs one command, read off c's socket at read (c's wall clock),
// and queues its reply. It returns false when the connection must close.
// Callers hold s.mu.
func (s *Server) handle(c *client, cmd eslwire.Command, read time.Time) bool {
	s.followWall()
	// The command acts from here: the server holds its lock and its
	// clock has caught up with what fell due meanwhile.
	if lag := c.wallNow().Sub(read); lag > time.Duration(s.cmdLagMax.Load()) {
		s.cmdLagMax.Store(int64(lag))
	}
	line := cmd.Line
	c.commands++
	rec := CommandRecord{Client: c.id, At: s.nowDur(), Line: line}
	if strings.HasPrefix(line, "auth ") {
		rec.Line = "auth ********"
	}
	verb, args, _ := strings.Cut(line, " ")
	verb = strings.ToLower(verb)
	args = strings.TrimSpace(args)
	var after func()
	keep := true
	var out string
	if !c.authed {
		if verb == "auth" {
			if args == s.cfg.Password {
				c.authed = true
				out = "+OK accepted"
				c.enqueue(reply(out))
			} else {
				out = "-ERR invalid"
				c.enqueue(reply(out))
				c.enqueue(disconnectNotice())
				keep = false
			}
		} else {
			out = "-ERR command not found"
			c.enqueue(reply(out))
		}
		rec.Reply = out
		s.record(rec)
		s.log.Info("command", "client", c.id, "command", rec.Line, "reply", out)
		return keep
	}
	switch verb {
	case "api":
		name, a, _ := strings.Cut(args, " ")
		x := &apiCall{rec: &rec}
		body, post := s.api(name, strings.TrimSpace(a), x)
		out = body
		c.enqueue(apiResponse(body))
		after = func() {
			x.fire()
			if post != nil {
				post()
			}
		}
	case "bgapi":
		name, a, _ := strings.Cut(args, " ")
		a = strings.TrimSpace(a)
		job := s.jobUUID(cmd)
		out = "+OK Job-UUID: " + job
		c.enqueue(eslwire.Frame{Headers: []eslwire.Header{{Name: "Content-Type", Value: eslwire.TypeCommandReply}, {Name: "Reply-Text", Value: out}, {Name: "Job-UUID", Value: job}}})
		x := &apiCall{rec: &rec}
		body, post := s.api(name, a, x)
		rec.Job = job
		rec.JobResult = body
		ev := s.newEvent("BACKGROUND_JOB", "mod_event_socket.c", "api_exec", 1572)
		ev.Add("Job-UUID", job)
		ev.Add("Job-Command", name)
		if a != "" {
			ev.Add("Job-Command-Arg", a)
		}
		ev.Body = body
		after = func() {
			// What the command fires while it runs comes before its
			// BACKGROUND_JOB, which waits for the same file work.
			x.fire()
			s.publishKeyed(ev, x.holdJob, x.holdKey)
			if post != nil {
				post()
			}
		}
	case "event":
		out = s.subscribe(c, strings.Fields(args))
		c.enqueue(reply(out))
	case "nixevent":
		for _, n := range strings.Fields(args) {
			n = strings.ToUpper(n)
			if n == "ALL" {
				c.all = false
				clear(c.events)
				continue
			}
			delete(c.events, n)
			if c.all {
				c.nix[n] = true
			}
		}
		out = "+OK events nixed"
		c.enqueue(reply(out))
	case "noevents":
		if c.all || len(c.events) > 0 {
			c.all = false
			clear(c.events)
			clear(c.nix)
			out = "+OK no longer listening for events"
		} else {
			out = "-ERR not listening for events"
		}
		c.enqueue(reply(out))
	case "filter":
		out = c.setFilter(args)
		c.enqueue(reply(out))
	case "exit":
		out = "+OK bye"
		c.enqueue(reply(out))
		c.enqueue(disconnectNotice())
		keep = false
	default:
		out = "-ERR command not found"
		c.enqueue(reply(out))
	}
	rec.Reply = out
	s.record(rec)
	s.log.Info("command", "client", c.id, "command", rec.Line, "reply", strings.TrimRight(out, "\n"))
	if after != nil {
		after()
	}
	return keep
}

// jobUUID is the Job-UUID of a bgapi: the client's own Job-UUID header
// when it sent one (FreeSWITCH honours it), a new uuid otherwise.
func (s *Server) jobUUID(cmd eslwire.Command) string {
	if j := getHeader(cmd.Headers, "Job-UUID"); j != "" {
		return j
	}
	return newUUID()
}

func (s *Server) subscribe(c *client, fields []string) string {
	format := "plain"
	if len(fields) > 0 {
		switch strings.ToLower(fields[0]) {
		case "plain":
			fields = fields[1:]
		case "json":
			format = "json"
			fields = fields[1:]
		case "xml":
			return "-ERR xml events are not supported by the fake switch"
		}
	}
	c.format = format
	for _, n := range fields {
		n = strings.ToUpper(n)
		if n == "ALL" {
			c.all = true
			clear(c.nix)
			continue
		}
		c.events[n] = true
		delete(c.nix, n)
	}
	return "+OK event listener enabled " + format
}

func (c *client) setFilter(args string) string {
	fields := strings.SplitN(args, " ", 3)
	if len(fields) >= 1 && strings.EqualFold(fields[0], "delete") {
		if len(fields) < 2 {
			return "-ERR invalid syntax"
		}
		name, value := fields[1], ""
		if len(fields) == 3 {
			value = fields[2]
		}
		kept := c.filter[:0]
		for _, f := range c.filter {
			if strings.EqualFold(name, "all") || (f.Name == name && (value == "" || f.Value == value)) {
				continue
			}
			kept = append(kept, f)
		}
		c.filter = kept
		return fmt.Sprintf("+OK filter deleted. [%s]=[%s]", name, value)
	}
	if len(fields) < 2 {
		return "-ERR invalid syntax"
	}
	value := strings.Join(fields[1:], " ")
	c.filter = append(c.filter, eslwire.Header{Name: fields[0], Value: value})
	return fmt.Sprintf("+OK filter added. [%s]=[%s]", fields[0], value)
}

// wants reports whether c receives ev.
func (c *client) wants(ev *eslwire.Event) bool {
	if !c.authed {
		return false
	}
	name := ev.Name()
	if !(c.events[name] || (c.all && !c.nix[name])) {
		return false
	}
	if len(c.filter) == 0 {
		return true
	}
	for _, f := range c.filter {
		if ev.Has(f.Name) && ev.Get(f.Name) == f.Value {
			return true
		}
	}
	return false
}

// publish sends ev to every client that wants it. Callers hold s.mu.
func (s *Server) publish(ev *eslwire.Event) { s.publishAfter(ev, nil) }

// publishAfter publishes ev to each subscriber once job (nil: none) is
// done. Callers hold s.mu.
func (s *Server) publishAfter(ev *eslwire.Event, job *fileJob) {
	// A channel event belongs to its call: both legs of a bridged call
	// carry the originating leg's uuid.
	key := ev.Get("Channel-Call-UUID")
	if key == "" {
		key = ev.Get("Unique-ID")
	}
	s.publishKeyed(ev, job, key)
}

// callKey is the key of ch's events for the writers (publishAfter).
func callKey(ch *channel) string { return ch.callUUID }

// publishKeyed publishes ev to each subscriber once job (nil: none) is
// done and the earlier frames of key ("": none) are written. Callers hold
// s.mu.
func (s *Server) publishKeyed(ev *eslwire.Event, job *fileJob, key string) {
	for _, c := range s.sortedClients() {
		if !c.wants(ev) {
			continue
		}
		c.enqueueEvent(ev, job, key)
		if !s.cfg.NoHistory {
			s.sent = append(s.sent, SentEvent{Client: c.id, At: s.nowDur(), Event: ev})
		}
	}
}

func (s *Server) sortedClients() []*client {
	out := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		out = append(out, c)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].id < out[j-1].id; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// newEvent returns an event with FreeSWITCH's leading headers, stamped
// with the virtual time. Callers hold s.mu.
func (s *Server) newEvent(name, file, fn string, line int) *eslwire.Event {
	return s.newEventSized(name, file, fn, line, 32)
}

// newEventSized is newEvent with room for n headers. Callers hold s.mu.
func (s *Server) newEventSized(name, file, fn string, line, n int) *eslwire.Event {
	s.evSeq++
	t := s.wall()
	if sec := t.Unix(); sec != s.dateSec || s.dateLocal == "" {
		// The dates change once a second: formatted once a second.
		s.dateSec = sec
		s.dateLocal = t.Format("2006-01-02 15:04:05")
		s.dateGMT = t.Format("Mon, 02 Jan 2006 15:04:05 GMT")
	}
	ev := &eslwire.Event{Headers: make([]eslwire.Header, 0, n)}
	ev.Add("Event-Name", name)
	ev.Add("Core-UUID", s.coreUUID)
	ev.Add("FreeSWITCH-Hostname", s.cfg.Hostname)
	ev.Add("FreeSWITCH-Switchname", s.cfg.Hostname)
	ev.Add("FreeSWITCH-IPv4", "127.0.0.1")
	ev.Add("FreeSWITCH-IPv6", "::1")
	ev.Add("Event-Date-Local", s.dateLocal)
	ev.Add("Event-Date-GMT", s.dateGMT)
	ev.Add("Event-Date-Timestamp", strconv.FormatInt(t.UnixMicro(), 10))
	ev.Add("Event-Calling-File", file)
	ev.Add("Event-Calling-Function", fn)
	ev.Add("Event-Calling-Line-Number", strconv.Itoa(line))
	ev.Add("Event-Sequence", strconv.FormatUint(s.evSeq, 10))
	return ev
}

// wall is the wall-clock time of the virtual now, in UTC.
func (s *Server) wall() time.Time {
	return s.cfg.Epoch.Add(time.Duration(s.now) * time.Millisecond).UTC()
}

func (s *Server) usec() int64 { return s.wall().UnixMicro() }

func (s *Server) nowDur() time.Duration { return time.Duration(s.now) * time.Millisecond }

// --- the virtual clock ---

type action struct {
	at   int64
	seq  uint64
	call bool // part of a call: keeps the scenario "running"
	fn   func()
	dead bool
}

type actionHeap []*action

func (h actionHeap) Len() int { return len(h) }
func (h actionHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h actionHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *actionHeap) Push(x any)   { *h = append(*h, x.(*action)) }
func (h *actionHeap) Pop() any {
	old := *h
	a := old[len(old)-1]
	*h = old[:len(old)-1]
	return a
}

// schedule runs fn at virtual time at (ms). Callers hold s.mu.
func (s *Server) schedule(at int64, call bool, fn func()) *action {
	if at < s.now {
		at = s.now
	}
	s.actionSeq++
	a := &action{at: at, seq: s.actionSeq, call: call, fn: fn}
	heap.Push(&s.actions, a)
	if call {
		s.pending++
	}
	return a
}

// cancel drops a scheduled action. Callers hold s.mu.
func (s *Server) cancel(a *action) {
	if a == nil || a.dead {
		return
	}
	a.dead = true
	if a.call {
		s.pending--
	}
}

// nextAt returns the time of the next live action, heartbeats included.
// Callers hold s.mu.
func (s *Server) nextAt() (int64, bool) {
	for s.actions.Len() > 0 && s.actions[0].dead {
		heap.Pop(&s.actions)
	}
	at, ok := int64(0), false
	if s.actions.Len() > 0 {
		at, ok = s.actions[0].at, true
	}
	if s.nextBeat >= 0 && (!ok || s.nextBeat <= at) {
		return s.nextBeat, true
	}
	return at, ok
}

// runAt runs everything due at time at (actions, a heartbeat), with now
// set to at. Callers hold s.mu.
func (s *Server) runAt(at int64) {
	if at > s.now {
		s.now = at
	}
	for s.nextBeat >= 0 && s.nextBeat <= s.now {
		s.heartbeat()
		s.nextBeat += s.cfg.Heartbeat.Milliseconds()
	}
	for s.actions.Len() > 0 && s.actions[0].at <= s.now {
		a := heap.Pop(&s.actions).(*action)
		if a.dead {
			continue
		}
		a.dead = true
		if a.call {
			s.pending--
		}
		a.fn()
	}
}

// Now returns the virtual time. In Realtime mode it first brings the
// clock to the wall clock, running what fell due meanwhile.
func (s *Server) Now() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.followWall()
	return s.nowDur()
}

// followWall brings the virtual clock of a Realtime server to the wall
// clock, running every action and heartbeat due on the way, each at its
// own time. Callers hold s.mu.
func (s *Server) followWall() {
	if !s.cfg.Realtime {
		return
	}
	target := s.rtVirt + s.wallNow().Sub(s.rtReal).Milliseconds()
	if at, ok := s.nextAt(); ok && at < target && target-at > s.behindMax.Load() {
		s.behindMax.Store(target - at)
	}
	s.advanceTo(target)
}

// Behind says how late on the wall clock, at most, a Realtime server ran
// the steps of its calls since the last call of Behind, and starts
// counting again: 0 when it kept its schedule. A step runs late when the
// server's goroutines wait for a CPU (or the lock); its events go out that
// late, though they carry the virtual time the step was due, so every lag
// measured from them includes it.
func (s *Server) Behind() time.Duration {
	return time.Duration(s.behindMax.Swap(0)) * time.Millisecond
}

// CommandLag says how long on the wall clock, at most, a command waited
// between its read off a client's socket and the server acting on it
// (holding its lock, its clock caught up with what fell due meanwhile)
// since the last call of CommandLag, and starts counting again: 0 when
// every command acted as it arrived. A command waits for the lock, behind
// other clients' commands and the steps of the calls, and for a CPU; what
// it does (a uuid_record's RECORD_START, a bgapi's BACKGROUND_JOB) goes
// out that much later than the client sent it.
func (s *Server) CommandLag() time.Duration {
	return time.Duration(s.cmdLagMax.Swap(0))
}

// Advance moves the virtual clock forward by d, running every step,
// recording limit and heartbeat due on the way, each at its own time.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceTo(s.now + d.Milliseconds())
}

// advanceTo moves the virtual clock forward to target (never back).
// Callers hold s.mu.
func (s *Server) advanceTo(target int64) {
	for {
		at, ok := s.nextAt()
		if !ok || at > target {
			break
		}
		s.runAt(at)
	}
	if target > s.now {
		s.now = target
	}
}

// Step runs everything due at the time of the next scheduled call action
// (moving the clock there) and reports whether there was one.
func (s *Server) Step() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stepLocked()
}

func (s *Server) stepLocked() bool {
	for s.pending > 0 {
		at, ok := s.nextAt()
		if !ok {
			return false
		}
		call := s.actions.Len() > 0 && s.actions[0].at == at
		s.runAt(at)
		if call {
			return true
		}
	}
	return false
}

// RunUntilIdle runs every scheduled call action in time order, as fast as
// possible, without waiting for clients between them. Commands that arrive
// meanwhile are applied at whatever virtual time the clock has reached.
func (s *Server) RunUntilIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.stepLocked() {
	}
}

// Pending reports how many call actions (steps, recording limits) are
// still scheduled.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// Run plays every scheduled call action and returns when none is left or
// ctx is done. Before each advance of the virtual clock it waits until the
// clients are idle: every queued event written and no command received
// for Config.Quiet of real time, so that a client reacting to an event
// (uuid_record on CHANNEL_ANSWER) acts at that event's virtual time. In
// Realtime mode it waits for the wall clock instead, never for the
// clients, as FreeSWITCH does: a client that reacts late acts late, and
// one that reads slowly finds its events queued.
func (s *Server) Run(ctx context.Context) error {
	if s.cfg.Realtime {
		return s.runRealtime(ctx)
	}
	for {
		if err := s.waitQuiet(ctx); err != nil {
			return err
		}
		s.mu.Lock()
		if s.pending == 0 {
			s.mu.Unlock()
			return nil
		}
		at, _ := s.nextAt()
		s.runAt(at)
		s.mu.Unlock()
	}
}

// runRealtime is Run of a Realtime server: it wakes when the next action
// falls due on the wall clock and brings the clock there. Commands move
// the clock too (followWall), between the actions.
func (s *Server) runRealtime(ctx context.Context) error {
	for {
		s.mu.Lock()
		s.followWall()
		if s.pending == 0 {
			s.mu.Unlock()
			return nil
		}
		at, _ := s.nextAt()
		due := s.rtReal.Add(time.Duration(at-s.rtVirt) * time.Millisecond)
		s.mu.Unlock()
		d := time.Until(due)
		if d <= 0 {
			d = time.Millisecond // the wall clock passed it: followWall runs it
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (s *Server) waitQuiet(ctx context.Context) error {
	settleBy := time.Now().Add(s.cfg.SettleTimeout)
	for {
		// In this order: see the writers' counters above.
		idle := s.unwritten.Load() == 0
		wait := s.cfg.Quiet - (time.Since(s.born) - time.Duration(s.lastBusy.Load()))
		written := s.eventsWritten.Load()
		if idle && wait <= 0 {
			if s.cfg.Settled == nil || s.cfg.Settled(written) {
				return nil
			}
			if time.Now().After(settleBy) {
				s.log.Warn("the client did not settle: advancing the clock anyway", "events_written", written)
				return nil
			}
		}
		if wait <= 0 {
			wait = s.cfg.Quiet
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-s.activity:
			t.Stop()
		case <-t.C:
		}
	}
}

// Play schedules the calls of sc (their StartMS relative to the current
// virtual time) and runs them with Run.
func (s *Server) Play(ctx context.Context, sc *scenario.Scenario) error {
	if err := s.Load(sc); err != nil {
		return err
	}
	return s.Run(ctx)
}

// Load schedules the calls of sc, StartMS relative to the current virtual
// time, without running anything: drive the clock with Advance, Step,
// RunUntilIdle or Run.
func (s *Server) Load(sc *scenario.Scenario) error {
	if err := sc.Validate(); err != nil {
		return fmt.Errorf("fakeswitch: %w", err)
	}
	cp := sc.Clone()
	cp.Normalize()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.followWall()
	for _, c := range cp.Calls {
		if err := s.checkFree(&c); err != nil {
			return err
		}
	}
	for i := range cp.Calls {
		s.startCall(cp.Calls[i])
	}
	return nil
}

// StartCall schedules one call, its StartMS relative to the current
// virtual time, and returns its legs' uuids by leg name.
func (s *Server) StartCall(call scenario.Call) (map[string]string, error) {
	sc := &scenario.Scenario{Calls: []scenario.Call{call.Clone()}}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("fakeswitch: %w", err)
	}
	sc.Normalize()
	c := sc.Calls[0]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.followWall()
	if err := s.checkFree(&c); err != nil {
		return nil, err
	}
	s.startCall(c)
	out := map[string]string{}
	for _, l := range c.Legs {
		out[l.Name] = l.UUID
	}
	return out, nil
}

func (s *Server) checkFree(c *scenario.Call) error {
	for _, l := range c.Legs {
		if _, busy := s.channels[l.UUID]; busy {
			return fmt.Errorf("fakeswitch: call %s: leg %s: uuid %s is already up", c.ID, l.Name, l.UUID)
		}
	}
	return nil
}

// WaitClients waits until n clients are authenticated and have sent a
// command since (typically their event subscription), or ctx is done.
// A demo calls it before Run so that the scenario is not over before the
// runtime connects.
func (s *Server) WaitClients(ctx context.Context, n int) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		ready := 0
		for c := range s.clients {
			if c.authed && c.commands > 1 {
				ready++
			}
		}
		s.mu.Unlock()
		if ready >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// record keeps a command for Commands, unless the server keeps no history.
func (s *Server) record(rec CommandRecord) {
	if !s.cfg.NoHistory {
		s.commands = append(s.commands, rec)
	}
}
