package esl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultEvents is the subscription the runtime needs.
var DefaultEvents = []string{
	"CHANNEL_CREATE", "CHANNEL_EXECUTE", "CHANNEL_ANSWER", "CHANNEL_BRIDGE",
	"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "DTMF", "RECORD_START",
	"RECORD_STOP", "BACKGROUND_JOB", "HEARTBEAT",
	// Call shapes (SPEC 2.7): a transfer or a bow-out unbridges, a park
	// answers on the platform, early media lets a recording start.
	"CHANNEL_UNBRIDGE", "CHANNEL_PARK", "CHANNEL_PROGRESS_MEDIA",
}

// Defaults of Config's durations.
const (
	DefaultDialTimeout      = 5 * time.Second
	DefaultCommandTimeout   = 10 * time.Second
	DefaultHeartbeatTimeout = 60 * time.Second // FreeSWITCH sends HEARTBEAT every 20 s
	DefaultBackoffMin       = 500 * time.Millisecond
	DefaultBackoffMax       = 30 * time.Second
)

// maxCommandTimeout keeps CommandTimeout below go-eventsocket's own 60 s
// Send timeout, after which it would stop waiting for a reply it may
// still receive (and its reader would then block for good).
const maxCommandTimeout = 55 * time.Second

// Config configures a Client for one switch.
type Config struct {
	// Address is the switch's event socket, host:port.
	Address string
	// Password is the event-socket password. It is never logged.
	Password string
	// Events is the subscription; default DefaultEvents. BACKGROUND_JOB
	// and HEARTBEAT are always added (BgAPI and the heartbeat watchdog
	// need them).
	Events []string
	// DialTimeout bounds the TCP connection and the authentication;
	// default DefaultDialTimeout.
	DialTimeout time.Duration
	// CommandTimeout bounds the wait for a command's reply (and for a
	// bgapi's BACKGROUND_JOB); default DefaultCommandTimeout, at most 55 s.
	// A reply that does not come in time closes the connection.
	CommandTimeout time.Duration
	// HeartbeatTimeout: a switch that sends nothing at all (no HEARTBEAT,
	// no event, no reply) for this long is treated as gone and the
	// connection is closed and retried; default DefaultHeartbeatTimeout.
	HeartbeatTimeout time.Duration
	// BackoffMin and BackoffMax bound the delay between connection
	// attempts; it doubles from BackoffMin up to BackoffMax, jittered, and
	// starts over after a connection that delivered events for at least
	// BackoffMax (a switch that drops every connection soon after it is
	// made is retried at the capped pace, not at BackoffMin).
	BackoffMin, BackoffMax time.Duration
	// Gate, when set, is asked on every connection, once authenticated and
	// before the subscription, whether to serve the switch; api runs one
	// api command on that connection. An error ends the connection, which
	// is retried with backoff like any other: a runtime that does not own
	// the switch (another holds its lease) keeps asking until it does.
	Gate func(ctx context.Context, api func(ctx context.Context, cmd string) (string, error)) error
	// Logger receives connection, protocol and command logs; nil discards.
	Logger *slog.Logger
}

// Handler receives a switch's connection state and events. Its methods
// are called from one goroutine, in order: Connected, the connection's
// events, Disconnected, and again for each new connection.
type Handler interface {
	// Connected is called once per connection, after authentication and
	// subscription, with the switch's Core-UUID (taken from the first
	// event; the client provokes one at once). A Core-UUID different from
	// the previous one means the switch restarted.
	Connected(coreUUID string)
	// Event is called for every subscribed event except BACKGROUND_JOB
	// (the result of a BgAPI call, handed to its caller). It must not
	// block for long: events queue behind it.
	Event(ev *Event)
	// Disconnected is called when a connection ends, after its last
	// event, and when a connection attempt fails (dial, authentication,
	// subscription), with the reason; errors.Is(err, ErrAuth) tells a
	// wrong password.
	Disconnected(err error)
}

// Errors of the client. Returned errors wrap them.
var (
	// ErrNotConnected: no connection to the switch is up.
	ErrNotConnected = errors.New("esl: not connected")
	// ErrInvalidCommand: the command is empty or holds CR, LF or NUL; it
	// was not sent.
	ErrInvalidCommand = errors.New("esl: invalid command")
	// ErrRejected: the switch answered -ERR or -USAGE; the text is in the
	// error and in the returned reply.
	ErrRejected = errors.New("esl: command rejected")
	// ErrCommandTimeout: no reply within CommandTimeout; the connection
	// was closed.
	ErrCommandTimeout = errors.New("esl: command timed out")
	// ErrJobTimeout: a bgapi's BACKGROUND_JOB did not come within
	// CommandTimeout; the connection is kept.
	ErrJobTimeout = errors.New("esl: background job timed out")
	// ErrAuth: the switch refused the password.
	ErrAuth = errors.New("esl: authentication failed")
	// ErrGated: Config.Gate declined to serve the switch on this
	// connection; the cause is wrapped too.
	ErrGated = errors.New("esl: not serving the switch")
	// ErrProtocol: the switch sent something the event socket protocol
	// does not allow (unknown Content-Type, malformed frame, a reply
	// nothing asked for); the connection was closed.
	ErrProtocol = errors.New("esl: protocol error")
	// ErrHeartbeat: the switch sent nothing for HeartbeatTimeout.
	ErrHeartbeat = errors.New("esl: switch silent, heartbeat timeout")
	// ErrConnectionLost: the connection ended.
	ErrConnectionLost = errors.New("esl: connection lost")
	// ErrConfig: the Config is unusable.
	ErrConfig = errors.New("esl: invalid config")
	// ErrRunning: Run is already running for this Client.
	ErrRunning = errors.New("esl: already running")
)

// Client is an event-socket client for one switch, built on
// go-eventsocket with its sharp edges kept away: every byte from the
// switch passes a strict frame reader first (a frame go-eventsocket
// would log.Fatal or panic on never reaches it), commands are validated
// and pipelined with their replies matched in order, events are drained by one goroutine that never waits on
// a command, and the connection is retried with backoff.
type Client struct {
	cfg Config
	log *slog.Logger

	running   atomic.Bool
	connected atomic.Bool
	backlog   atomic.Pointer[queue] // the delivery queue of the running Run
	jobsRead  atomic.Int64          // BACKGROUND_JOBs read (JobsRead)
	mu        sync.Mutex
	sess      *session // the usable connection, or nil
}

// Backlog returns how many events and state changes wait for the
// Handler: a Handler that does not keep up shows here first.
func (c *Client) Backlog() int {
	if q := c.backlog.Load(); q != nil {
		return q.len()
	}
	return 0
}

// JobsRead returns how many BACKGROUND_JOB events the client has read
// since New, on every connection: they answer BgAPI calls and never
// reach the Handler. With the events the Handler has handled, they are
// every event the switch has sent that the client is done with (a test
// switch waits for that before it moves its clock).
func (c *Client) JobsRead() int64 { return c.jobsRead.Load() }

// New returns a client; it connects when Run is called.
func New(cfg Config) *Client {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	cfg.CommandTimeout = min(cfg.CommandTimeout, maxCommandTimeout)
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	cfg.BackoffMax = max(cfg.BackoffMax, cfg.BackoffMin)
	if len(cfg.Events) == 0 {
		cfg.Events = DefaultEvents
	}
	cfg.Events = withRequired(cfg.Events)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, log: log.With("address", cfg.Address)}
}

func withRequired(evs []string) []string {
	out := append([]string(nil), evs...)
	for _, need := range []string{"BACKGROUND_JOB", "HEARTBEAT"} {
		found := false
		for _, e := range out {
			if strings.EqualFold(e, need) || strings.EqualFold(e, "ALL") {
				found = true
			}
		}
		if !found {
			out = append(out, need)
		}
	}
	return out
}

// validate checks what Run needs before it connects.
func (c *Client) validate() error {
	if c.cfg.Address == "" {
		return fmt.Errorf("%w: no address", ErrConfig)
	}
	if strings.ContainsAny(c.cfg.Password, "\r\n\x00") {
		return fmt.Errorf("%w: password holds CR, LF or NUL", ErrConfig)
	}
	for _, e := range c.cfg.Events {
		if e == "" || strings.IndexFunc(e, func(r rune) bool {
			return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == ':' || r == '.' || r == '-')
		}) >= 0 {
			return fmt.Errorf("%w: event name %q", ErrConfig, e)
		}
	}
	return nil
}

// Connected reports whether a connection is up and has delivered its
// Connected call.
func (c *Client) Connected() bool { return c.connected.Load() }

// Run connects, authenticates, subscribes and reads events, calling h,
// and reconnects with backoff whenever the connection fails, until ctx is
// done; it then returns ctx's error once h has had its last call. It
// returns at once with ErrConfig for an unusable Config and ErrRunning
// when Run is already running.
func (c *Client) Run(ctx context.Context, h Handler) error {
	if err := c.validate(); err != nil {
		return err
	}
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer c.running.Store(false)
	q := newQueue()
	c.backlog.Store(q)
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		q.run(h)
	}()
	defer func() {
		q.close()
		<-delivered
	}()
	attempt := 0
	for {
		began := time.Now()
		s, err := c.connect(ctx, q)
		if err == nil {
			c.setSession(s)
			select {
			case <-s.done:
			case <-ctx.Done():
				s.fail(fmt.Errorf("%w: %w", ErrConnectionLost, ctx.Err()))
			}
			c.mu.Lock()
			c.sess = nil
			c.connected.Store(false)
			c.mu.Unlock()
			s.teardown()
			err = s.reason()
			if s.wasConnected.Load() && time.Since(began) >= c.cfg.BackoffMax {
				attempt = 0
			}
		}
		c.connected.Store(false)
		if ctx.Err() != nil {
			q.push(item{kind: itemDisconnected, err: err})
			return ctx.Err()
		}
		delay := c.backoff(attempt)
		attempt++
		switch {
		case errors.Is(err, ErrAuth):
			c.log.Error("event socket: the switch refused the password; retrying", "err", err, "retry_in", delay)
		case errors.Is(err, ErrGated):
			c.log.Info("event socket: not serving the switch for now; asking again later", "reason", err, "retry_in", delay)
		default:
			c.log.Warn("event socket: disconnected; retrying", "err", err, "retry_in", delay)
		}
		q.push(item{kind: itemDisconnected, err: err})
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// backoff is the delay before attempt n+1: BackoffMin doubled n times,
// capped at BackoffMax, then a random point in its upper half.
func (c *Client) backoff(n int) time.Duration {
	d := c.cfg.BackoffMin
	for i := 0; i < n && d < c.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, c.cfg.BackoffMax)
	half := d / 2
	if half <= 0 {
		return d
	}
	j, err := rand.Int(rand.Reader, big.NewInt(int64(half)+1))
	if err != nil {
		return d
	}
	return half + time.Duration(j.Int64())
}

func (c *Client) setSession(s *session) {
	c.mu.Lock()
	c.sess = s
	c.mu.Unlock()
}

func (c *Client) current() (*session, error) {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s == nil {
		return nil, ErrNotConnected
	}
	return s, nil
}

// checkCommand refuses what must never be written to the socket.
func checkCommand(cmd string) error {
	if strings.TrimSpace(cmd) == "" {
		return fmt.Errorf("%w: empty", ErrInvalidCommand)
	}
	if strings.ContainsAny(cmd, "\r\n\x00") {
		return fmt.Errorf("%w: %q holds CR, LF or NUL", ErrInvalidCommand, truncate(cmd))
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// rejected reports whether a reply is a failure (-ERR, -USAGE).
func rejected(reply string) bool {
	return strings.HasPrefix(reply, "-")
}

// Drop ends the current connection with err (it is retried with backoff,
// and Gate asked again); it does nothing without a connection.
func (c *Client) Drop(err error) {
	if s, e := c.current(); e == nil {
		s.fail(err)
	}
}

// API runs "api <cmd>" and returns the switch's output. Commands are
// pipelined on the connection: API may be called from several goroutines,
// each gets its own command's reply. An output starting with "-" (-ERR,
// -USAGE) is returned with an error wrapping ErrRejected. A command with
// CR, LF or NUL is refused with ErrInvalidCommand and never sent; without
// a connection the error is ErrNotConnected.
func (c *Client) API(ctx context.Context, cmd string) (string, error) {
	if err := checkCommand(cmd); err != nil {
		return "", err
	}
	s, err := c.current()
	if err != nil {
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

// BgAPI runs "bgapi <cmd>" with a Job-UUID of its own, waits for the
// BACKGROUND_JOB carrying it and returns its body ("+OK Success\n",
// "-ERR ..."). A body starting with "-" is returned with an error
// wrapping ErrRejected. The wait ends with ErrJobTimeout after
// CommandTimeout (the connection is kept), with ErrConnectionLost when the
// connection ends (a job's result is lost with its connection), or with
// ctx.
func (c *Client) BgAPI(ctx context.Context, cmd string) (string, error) {
	body, _, err := c.BgAPIJob(ctx, cmd)
	return body, err
}

// BgAPIJob is BgAPI that also returns when the switch ran the command:
// its BACKGROUND_JOB's Event-Date-Timestamp (µs on the switch's clock, 0
// when the event has none), the time FreeSWITCH finished the job.
func (c *Client) BgAPIJob(ctx context.Context, cmd string) (string, int64, error) {
	if err := checkCommand(cmd); err != nil {
		return "", 0, err
	}
	s, err := c.current()
	if err != nil {
		return "", 0, err
	}
	job := newUUID()
	ch := s.addJob(job)
	defer s.removeJob(job)
	r, err := s.command(ctx, "bgapi "+cmd+"\nJob-UUID: "+job)
	if err != nil {
		return "", 0, fmt.Errorf("bgapi %s: %w", verb(cmd), err)
	}
	if !strings.HasPrefix(r.text, "+OK") {
		return r.text, 0, fmt.Errorf("bgapi %s: %w: %s", verb(cmd), ErrRejected, strings.TrimSpace(r.text))
	}
	if r.job != "" && r.job != job {
		return "", 0, fmt.Errorf("bgapi %s: %w: the switch answered Job-UUID %q, not the one sent", verb(cmd), ErrProtocol, r.job)
	}
	t := time.NewTimer(c.cfg.CommandTimeout)
	defer t.Stop()
	select {
	case ev := <-ch:
		at, _ := strconv.ParseInt(ev.Get("Event-Date-Timestamp"), 10, 64)
		if rejected(ev.Body) {
			return ev.Body, at, fmt.Errorf("bgapi %s: %w: %s", verb(cmd), ErrRejected, strings.TrimSpace(ev.Body))
		}
		return ev.Body, at, nil
	case <-s.done:
		return "", 0, fmt.Errorf("bgapi %s: %w", verb(cmd), ErrConnectionLost)
	case <-t.C:
		return "", 0, fmt.Errorf("bgapi %s: %w", verb(cmd), ErrJobTimeout)
	case <-ctx.Done():
		return "", 0, fmt.Errorf("bgapi %s: %w", verb(cmd), ctx.Err())
	}
}

// verb is a command's first word, for errors and logs.
func verb(cmd string) string {
	v, _, _ := strings.Cut(strings.TrimSpace(cmd), " ")
	return v
}

// newUUID returns a random version-4 uuid.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:16])
	return string(s[:])
}
