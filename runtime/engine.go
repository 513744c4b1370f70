package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/recpol/recpol/runtime/esl"
	"github.com/recpol/recpol/runtime/store"
	"github.com/recpol/recpol/table"
)

// Commander sends event-socket commands to one switch. BgAPI returns the
// body of the BACKGROUND_JOB ("+OK ..." or "-ERR ...").
type Commander interface {
	BgAPI(ctx context.Context, cmd string) (string, error)
}

// Finished is a recording the switch has stopped, ready to be stored.
type Finished struct {
	Meta      store.Metadata
	LocalPath string // the file as this runtime sees it
	Cause     string // Record-Completion-Cause
	// Done, when set, is called once the store's Finish has taken the
	// recording: it removes the recording's intent.
	Done func()
}

// Range is a span of a recording file, in milliseconds from its start.
type Range = store.Range

// Finisher takes stopped recordings. Finish must not block the engine for
// long: the store queues its work.
type Finisher interface {
	Finish(Finished)
}

// engine applies the policy to the events of one switch. Its state is
// guarded by mu; commands go out in order through one sender goroutine, so
// the event goroutine never waits on the switch.
type engine struct {
	sw     SwitchConfig
	cl     classifier
	preset string
	table  func() *table.Table
	fin    Finisher
	log    *slog.Logger
	obs    func(string) // metric observations: "started", "failed", ...

	intents *intents // nil: running recordings are kept in memory only

	mu       sync.Mutex
	coreUUID string
	legs     map[string]*leg
	byPath   map[string]*recording
	adopted  map[string]*intent // by path: recordings of an earlier run still running
	// unwritten holds, by path, the intents of starts still queued.
	unwritten map[string]*intent
	lastTS    int64       // the latest event time seen, µs on the switch's clock
	lastSeen  time.Time   // when it was seen
	out       chan string // commands, in order
}

// leg is one channel.
type leg struct {
	uuid       string
	call       *call // nil: not part of a call the engine follows
	isA        bool
	vars       map[string]string
	channel    string
	dest       string
	callerNum  string
	class      legClass
	classified bool
	answered   bool
	bridged    bool
	hungup     bool
	calleeDone bool
	recIDs     []string
	dtmf       map[string]*table.Collector // by the endpoint device whose metaflows listen
}

// call is the set of legs of one A-leg.
type call struct {
	a        *leg
	bs       []*leg
	tbl      *table.Table
	acct     *table.Account
	ignored  bool
	from     table.Network
	to       table.Network
	toKnown  bool
	inbound  bool // the account inbound decision was taken
	outbound bool // the account outbound and caller decisions were taken
	recorded bool // the account records the call
	recs     []*recording
	masked   bool
	paused   bool
}

type recState uint8

const (
	recWaiting   recState = iota // waits for answer or bridge
	recRequested                 // start sent
	recRunning                   // RECORD_START seen
	recStopped
	recFailed
)

// recording is one recording the engine started or will start.
type recording struct {
	id             string
	call           *call
	leg            *leg
	scope          string // account, caller, callee, callflow, metaflow
	endpoint       string // device id, for endpoint recordings
	origin         string
	direction      string
	network        string
	settings       table.Settings
	provenance     table.Provenance
	readOnly       bool
	followTransfer bool
	waitFor        string // "", "answer", "bridge"
	path, local    string
	state          recState
	startTS        int64 // µs, RECORD_START's event time
	maskFrom       int64 // µs while masked, else -1
	pauseFrom      int64 // µs while paused, else -1
	paused         int64 // µs paused so far
	masks          []Range
	started        time.Time
	// recheck: the recording was running across a reconnection and its
	// leg then still existed; the leg may have ended in between (a
	// hangup whose events were lost), so it is checked again until the
	// recording stops.
	recheck bool
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
var uuidRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,127}$`)

func newEngine(sw SwitchConfig, cls Classify, tbl func() *table.Table, fin Finisher, log *slog.Logger, obs func(string)) *engine {
	if obs == nil {
		obs = func(string) {}
	}
	return &engine{sw: sw, cl: newClassifier(cls), preset: cls.Preset, table: tbl, fin: fin, log: log, obs: obs,
		legs: map[string]*leg{}, byPath: map[string]*recording{}, adopted: map[string]*intent{}, unwritten: map[string]*intent{}, out: make(chan string, 4096)}
}

// senderInFlight bounds how many commands may wait for their
// BACKGROUND_JOB at once (FreeSWITCH runs each in a thread of its own).
// A command holds its slot for a whole round trip through the switch's
// event stream, so the bound caps the command rate at senderInFlight per
// round trip: at 200 call setups/s (about 1,000 commands/s) a round trip
// of a few hundred milliseconds under load still fits.
const senderInFlight = 1024

// sender sends queued commands until ctx is done: in order per leg, legs
// in parallel. The commands of one leg go out one after the other, each
// once the previous one's BACKGROUND_JOB came (FreeSWITCH runs each bgapi
// job in its own thread: only waiting orders them); different legs do not
// wait for each other, so a command the switch is slow to answer holds up
// its own leg only.
func (e *engine) sender(ctx context.Context, c Commander) {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		queues = map[string][]string{} // by leg, while its worker runs
		slots  = make(chan struct{}, senderInFlight)
	)
	defer wg.Wait()
	work := func(leg string) {
		defer wg.Done()
		for {
			mu.Lock()
			q := queues[leg]
			if len(q) == 0 {
				delete(queues, leg)
				mu.Unlock()
				return
			}
			cmd := q[0]
			queues[leg] = q[1:]
			mu.Unlock()
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			e.sendOne(ctx, c, cmd)
			<-slots
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case cmd := <-e.out:
			leg := legOf(cmd)
			mu.Lock()
			q, running := queues[leg]
			queues[leg] = append(q, cmd)
			mu.Unlock()
			if !running {
				wg.Add(1)
				go work(leg)
			}
		}
	}
}

// legOf is the leg uuid a command names.
func legOf(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) < 2 {
		return ""
	}
	return f[1]
}

// sendOne sends one command. A command that could not reach the switch
// (no connection, the connection lost before its reply) is kept and sent
// again once the client has reconnected, in order: a mask issued while the
// switch is unreachable is not lost. Every recording command is idempotent
// on the switch (a second start of a path that records answers +OK and
// starts nothing), so sending one twice is harmless.
func (e *engine) sendOne(ctx context.Context, c Commander, cmd string) {
	e.writeIntent(cmd)
	delay := 20 * time.Millisecond
	for n := 0; ; n++ {
		res, err := c.BgAPI(ctx, cmd)
		if err == nil && strings.HasPrefix(res, "+OK") {
			if n > 0 {
				e.log.Info("command sent after the switch came back", "switch", e.sw.Name, "command", cmd, "attempts", n+1)
			}
			return
		}
		if ctx.Err() != nil {
			// Shutting down: whether the switch ran the command is
			// unknown; a start keeps its intent, which the next run
			// resolves.
			return
		}
		if err == nil || !unreached(err) {
			e.commandFailed(cmd, res, err)
			return
		}
		if n == 0 {
			e.log.Warn("switch unreachable: command kept until it is back", "switch", e.sw.Name, "command", cmd, "error", err)
			e.obs("command_deferred")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// writeIntent writes the intent of a start command before the command
// goes out: a recording the switch runs always has its intent on disk.
// A mask or unmask rewrites it with the recording's masking as it stands.
func (e *engine) writeIntent(cmd string) {
	if e.intents == nil || !strings.HasPrefix(cmd, "uuid_record ") {
		return
	}
	f := strings.Fields(cmd)
	if len(f) < 4 {
		return
	}
	var it *intent
	e.mu.Lock()
	switch f[2] {
	case "start":
		it = e.unwritten[f[3]]
		delete(e.unwritten, f[3])
	case "mask", "unmask":
		if r := e.byPath[f[3]]; r != nil && (r.state == recRequested || r.state == recRunning) {
			it = e.intentOf(r)
		}
	}
	e.mu.Unlock()
	if it == nil {
		return
	}
	if err := e.intents.write(it); err != nil {
		e.log.Error("writing a recording intent failed: the recording is not protected against a crash of the runtime",
			"recording", it.Meta.RecordingID, "error", err)
		e.obs("intent_failed")
	}
}

// unreached reports whether a command's error means it may not have
// reached the switch, so that it is worth sending again.
func unreached(err error) bool {
	return errors.Is(err, esl.ErrNotConnected) || errors.Is(err, esl.ErrConnectionLost) || errors.Is(err, esl.ErrCommandTimeout)
}

func (e *engine) send(cmd string) {
	select {
	case e.out <- cmd:
	default:
		e.log.Error("command queue full: command dropped", "command", cmd)
		e.obs("command_dropped")
	}
}

// commandFailed handles a refused command: a start that failed means no
// RECORD_START or RECORD_STOP will follow.
func (e *engine) commandFailed(cmd, res string, err error) {
	e.log.Warn("switch refused a command", "switch", e.sw.Name, "command", cmd, "reply", strings.TrimSpace(res), "error", err)
	f := strings.Fields(cmd)
	refused := err == nil || errors.Is(err, esl.ErrRejected)
	if refused && len(f) >= 4 && f[0] == "uuid_record" && f[2] == "start" {
		// Only a refusal says the recording did not start; after a
		// timeout it may have, and the reconciliation settles it.
		e.mu.Lock()
		if r := e.byPath[f[3]]; r != nil && r.state == recRequested {
			r.state = recFailed
			delete(e.byPath, r.path)
			if e.intents != nil {
				e.intents.forget(r.id)
			}
			e.obs("failed")
			e.reap(r.call)
		}
		e.mu.Unlock()
	}
}

// eventTS is an event's time in µs (Event-Date-Timestamp).
func eventTS(ev *Event) int64 {
	ts, _ := strconv.ParseInt(ev.Get("Event-Date-Timestamp"), 10, 64)
	return ts
}

// Handle processes one event. It is called from one goroutine per switch.
func (e *engine) Handle(ev *Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ts := eventTS(ev); ts > e.lastTS {
		e.lastTS, e.lastSeen = ts, time.Now()
	}
	switch ev.Name {
	case "RECORD_START":
		e.recordStart(ev)
		return
	case "RECORD_STOP":
		e.recordStop(ev)
		return
	case "HEARTBEAT", "BACKGROUND_JOB":
		return
	}
	id := ev.Get("Unique-ID")
	if id == "" {
		return
	}
	l := e.legs[id]
	if l == nil && ev.Name == "CHANNEL_HANGUP_COMPLETE" && len(e.adopted) > 0 {
		e.adoptedLegGone(id)
	}
	if l == nil {
		if ev.Name != "CHANNEL_CREATE" && ev.Name != "CHANNEL_EXECUTE" && ev.Name != "CHANNEL_ANSWER" {
			return
		}
		l = e.newLeg(ev)
		if l == nil {
			return
		}
	}
	ev.vars(l.vars)
	if n := ev.Get("Channel-Name"); n != "" {
		l.channel = n
	}
	if d := ev.Get("Caller-Destination-Number"); d != "" {
		l.dest = d
	}
	if n := ev.Get("Caller-Caller-ID-Number"); n != "" {
		l.callerNum = n
	}
	c := l.call
	switch ev.Name {
	case "CHANNEL_ANSWER":
		l.answered = true
	case "CHANNEL_BRIDGE":
		l.bridged = true
		if b := e.legs[ev.Get("Bridge-B-Unique-ID")]; b != nil && b.call == c {
			b.bridged = true
		}
	case "CHANNEL_EXECUTE":
		if strings.EqualFold(ev.Get("Application"), "transfer") && c != nil {
			e.transfer(l)
		}
	case "DTMF":
		if c != nil && !c.ignored {
			e.dtmf(l, ev.Get("DTMF-Digit"), eventTS(ev))
		}
	case "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE":
		l.hungup = true
		for _, r := range c.recsOf(l) {
			if r.state == recWaiting {
				r.state = recStopped
			}
		}
		if ev.Name == "CHANNEL_HANGUP_COMPLETE" {
			// The switch sends a recording's RECORD_STOP before its
			// leg's CHANNEL_HANGUP_COMPLETE: a recording still open
			// (a start whose reply was lost, a recording continued
			// from an earlier run) is settled from its file.
			for _, r := range c.recsOf(l) {
				if r.state == recRequested || r.state == recRunning {
					delete(e.byPath, r.path)
					if r.state == recRequested {
						r.startTS = eventTS(ev)
					}
					r.state = recStopped
					e.finish(r, 0, "no RECORD_STOP")
				}
			}
			e.reap(c)
		}
		return
	}
	if c != nil && !c.ignored {
		e.progress(c, eventTS(ev))
	}
}

func (c *call) recsOf(l *leg) []*recording {
	if c == nil {
		return nil
	}
	var out []*recording
	for _, r := range c.recs {
		if r.leg == l {
			out = append(out, r)
		}
	}
	return out
}

// newLeg registers a leg: an A-leg starts a call; a leg that names a known
// leg as its other leg or originator is a B-leg of that leg's call. The
// far side of a loopback is not a new call.
func (e *engine) newLeg(ev *Event) *leg {
	id := ev.Get("Unique-ID")
	if !uuidRE.MatchString(id) {
		e.log.Warn("ignoring a channel with an invalid uuid", "switch", e.sw.Name)
		return nil
	}
	l := &leg{uuid: id, vars: map[string]string{}, dtmf: map[string]*table.Collector{}}
	e.legs[id] = l
	other := ev.Get("Other-Leg-Unique-ID")
	if other == "" {
		other = ev.Var("originator")
	}
	if p := e.legs[other]; other != "" && p != nil && p.call != nil {
		l.call = p.call
		p.call.bs = append(p.call.bs, l)
		return l
	}
	name := ev.Get("Channel-Name")
	l.channel = name
	if strings.HasPrefix(name, "loopback/") && strings.HasSuffix(name, "-b") {
		// The far side of a loopback carries a copy of the variables of
		// its -a side: when that side is a leg of a call the engine
		// follows, the -b side is not a new call.
		a := strings.TrimSuffix(name, "-b") + "-a"
		for _, o := range e.legs {
			if o.channel == a && o.call != nil {
				return l
			}
		}
	}
	if other == "" && strings.EqualFold(ev.Get("Call-Direction"), "inbound") {
		l.isA = true
		l.call = &call{a: l, tbl: e.table()}
		if l.call.tbl == nil {
			l.call.ignored = true
		}
	}
	return l
}

// progress takes every decision whose facts are known (SPEC 2.3 and the
// runtime's timing): the account inbound decision and the callflows once
// the A-leg is classified; the account outbound and caller decisions once
// the first B-leg is; a callee decision when its leg answers (or bridges);
// and it starts recordings whose answer or bridge has come.
func (e *engine) progress(c *call, ts int64) {
	a := c.a
	if !a.classified {
		cls, ok := e.cl.classify(a.vars, a.channel)
		if !ok {
			return
		}
		a.class, a.classified = cls, true
		acct, ok := c.tbl.Account(cls.account)
		if !ok {
			e.log.Info("call of an account the policy does not know: not recorded", "switch", e.sw.Name, "account", cls.account, "call", a.uuid)
			c.ignored = true
			return
		}
		c.acct, c.from = acct, cls.network
	}
	if !c.inbound {
		c.inbound = true
		if r, ok := c.acct.AccountInbound(c.from); ok {
			c.recorded = true
			e.addPolicy(c, a, r)
		}
		e.callflows(c)
	}
	for _, b := range c.bs {
		if !b.classified {
			if cls, ok := e.cl.classify(b.vars, b.channel); ok {
				b.class, b.classified = cls, true
			}
		}
	}
	if !c.outbound {
		for _, b := range c.bs {
			if b.classified {
				c.to, c.toKnown, c.outbound = b.class.network, true, true
				break
			}
		}
		if c.outbound {
			if !c.recorded {
				if r, ok := c.acct.AccountOutbound(c.to); ok {
					c.recorded = true
					e.addPolicy(c, a, r)
				}
			}
			if a.class.network == table.Onnet && a.class.device != "" {
				if r, ok := c.acct.CallerDecision(a.class.device, c.to); ok {
					e.addPolicy(c, a, r)
				}
			}
		}
	}
	for _, b := range c.bs {
		if b.calleeDone || !b.classified || b.class.device == "" || b.class.account != c.acct.ID || !b.answered {
			continue
		}
		b.calleeDone = true
		if r, ok := c.acct.CalleeDecision(b.class.device, c.from); ok {
			e.addPolicy(c, b, r)
		}
	}
	for _, r := range c.recs {
		if r.state != recWaiting || r.leg.hungup {
			continue
		}
		if (r.waitFor == "answer" && !r.leg.answered) || (r.waitFor == "bridge" && !r.leg.bridged) {
			continue
		}
		e.start(r, ts)
	}
}

// addPolicy adds a recording decided by a table cell.
func (e *engine) addPolicy(c *call, l *leg, r table.Recording) {
	rec := &recording{call: c, leg: l, scope: r.Scope.String(), origin: r.Origin,
		direction: r.Direction.String(), network: r.Network.String(),
		settings: *r.Cell.Settings, provenance: *r.Cell.Provenance}
	if r.Scope != table.ScopeAccount {
		rec.endpoint = r.Endpoint
	}
	e.add(rec)
}

func (e *engine) add(r *recording) {
	r.id = newID()
	r.maskFrom, r.pauseFrom = -1, -1
	switch {
	case r.settings.RecordOnBridge:
		r.waitFor = "bridge"
	case r.settings.RecordOnAnswer:
		r.waitFor = "answer"
	}
	if r.scope == "callee" {
		r.waitFor = "" // a callee decision is taken at its answer already
		if r.settings.RecordOnBridge && !r.leg.bridged {
			r.waitFor = "bridge"
		}
	}
	r.call.recs = append(r.call.recs, r)
	if len(e.adopted) > 0 {
		e.reattach(r)
	}
}

// callflows runs the actions of the callflow matching the A-leg's
// destination number.
func (e *engine) callflows(c *call) {
	cf, ok := c.acct.MatchCallflow(c.a.dest)
	if !ok {
		return
	}
	for i := range cf.Actions {
		act := &cf.Actions[i]
		label := act.Label
		if label == "" {
			label = cf.ID
		}
		switch {
		case act.Module == "record_call" && act.Action == "stop":
			for _, r := range c.recsOf(c.a) {
				if r.scope == "callflow" {
					e.stop(r)
				}
			}
		case act.Module == "record_call" || act.Module == "record_caller":
			e.add(&recording{call: c, leg: c.a, scope: "callflow", origin: "callflow : " + label,
				settings: *act.Settings, provenance: *act.Provenance,
				readOnly: act.Module == "record_caller", followTransfer: act.FollowTransfer})
		}
	}
}

// start sends the start command of a recording. A recording that starts
// while the call is masked starts masked.
func (e *engine) start(r *recording, ts int64) {
	acct := r.call.acct.ID
	ext := "mp3"
	if r.settings.Format == "wav" {
		ext = "wav"
	}
	if !idRE.MatchString(acct) || !uuidRE.MatchString(r.leg.uuid) {
		e.log.Error("refusing to record: unsafe account or uuid", "switch", e.sw.Name)
		r.state = recFailed
		return
	}
	r.path, r.local = recordingPaths(e.sw, acct, r.id, ext)
	r.state = recRequested
	r.started = time.Now()
	e.byPath[r.path] = r
	if r.call.masked {
		r.maskFrom = ts
	}
	if e.intents != nil {
		// The sender writes the intent just before it sends the start,
		// off the event path and in parallel with other legs' commands.
		e.unwritten[r.path] = e.intentOf(r)
	}
	e.send(startCommand(r))
	if r.maskFrom >= 0 {
		e.send(fmt.Sprintf("uuid_record %s mask %s", r.leg.uuid, r.path))
	}
	r.leg.recIDs = append(r.leg.recIDs, r.id)
	idVar := "recpol_recording_ids"
	if e.preset == "kazoo" {
		idVar = "media_recording_id"
	}
	e.send(fmt.Sprintf("uuid_setvar %s %s %s", r.leg.uuid, idVar, strings.Join(r.leg.recIDs, ",")))
	e.obs("started")
}

// intentOf is the intent of a requested or running recording as the
// engine knows it now. e.mu is held.
func (e *engine) intentOf(r *recording) *intent {
	m := e.metadata(r, 0)
	m.Start = r.started.UTC()
	m.MaskedRanges = append([]Range{}, r.masks...)
	it := &intent{Version: 1, Switch: e.sw.Name, CoreUUID: e.coreUUID, Leg: r.leg.uuid, Path: r.path, Meta: m}
	if r.state == recRunning {
		it.StartTS = r.startTS
	}
	if r.maskFrom >= 0 {
		var from int64 // masked from the start while the start is pending
		if r.state == recRunning {
			from = r.fileMS(r.maskFrom)
		}
		it.MaskedFromMS = &from
	}
	return it
}

// startCommand is a recording's start command, its settings in its own
// recording variables.
func startCommand(r *recording) string {
	vars := fmt.Sprintf("{RECORD_MIN_SEC=%d,record_sample_rate=%d", r.settings.RecordMinSec, r.settings.RecordSampleRate)
	if r.readOnly {
		vars += ",RECORD_READ_ONLY=true"
	}
	return fmt.Sprintf("uuid_record %s start %s %d %s}", r.leg.uuid, r.path, r.settings.TimeLimit, vars)
}

func (e *engine) stop(r *recording) {
	switch r.state {
	case recWaiting:
		r.state = recStopped
	case recRequested, recRunning:
		e.send(fmt.Sprintf("uuid_record %s stop %s", r.leg.uuid, r.path))
	}
}

// transfer stops the recordings of a transferred leg that do not follow a
// transfer (those the policy started, as KAZOO's
// recording_follow_transfer=false).
func (e *engine) transfer(l *leg) {
	for _, r := range l.call.recsOf(l) {
		if !r.followTransfer {
			e.stop(r)
		}
	}
}

func (e *engine) recordStart(ev *Event) {
	r := e.byPath[ev.Get("Record-File-Path")]
	if r == nil || r.state != recRequested {
		return
	}
	r.state = recRunning
	r.startTS = eventTS(ev)
	if r.maskFrom >= 0 {
		r.maskFrom = r.startTS
	}
}

// fileMS converts an event time to a position in the recording's file:
// paused time is not in the file.
func (r *recording) fileMS(ts int64) int64 {
	paused := r.paused
	if r.pauseFrom >= 0 {
		paused += ts - r.pauseFrom
	}
	ms := (ts - r.startTS - paused) / 1000
	if ms < 0 {
		return 0
	}
	return ms
}

func (e *engine) recordStop(ev *Event) {
	p := ev.Get("Record-File-Path")
	r := e.byPath[p]
	if r == nil {
		if it := e.adopted[p]; it != nil {
			delete(e.adopted, p)
			durMS, _ := strconv.ParseInt(ev.Var("record_ms"), 10, 64)
			e.finishIntent(it, durMS, ev.Get("Record-Completion-Cause"))
		}
		return
	}
	e.stopAt(r, eventTS(ev))
	durMS, _ := strconv.ParseInt(ev.Var("record_ms"), 10, 64)
	e.finish(r, durMS, ev.Get("Record-Completion-Cause"))
	e.reap(r.call)
}

// finish hands a stopped recording to the store.
func (e *engine) finish(r *recording, durMS int64, cause string) {
	delete(e.unwritten, r.path)
	m := e.metadata(r, durMS)
	e.obs("stopped")
	f := Finished{Meta: m, LocalPath: r.local, Cause: cause}
	if e.intents != nil {
		if !e.intents.claim(r.id) {
			return // recovery has handed it to the store already
		}
		in, id := e.intents, r.id
		f.Done = func() { in.done(id) }
	}
	e.fin.Finish(f)
}

// metadata is a recording's metadata as far as the engine knows it.
func (e *engine) metadata(r *recording, durMS int64) store.Metadata {
	c := r.call
	m := store.Metadata{
		RecordingID: r.id, CallID: r.leg.uuid, InteractionID: c.a.uuid, Account: c.acct.ID,
		Scope: r.scope, Leg: "a", Origin: r.origin, Direction: r.direction,
		From: c.a.callerNum, To: c.a.dest, Start: time.UnixMicro(r.startTS).UTC(), DurationMS: durMS,
		Format: r.settings.Format, SampleRate: r.settings.RecordSampleRate, MaskedRanges: r.masks,
		PolicyVersion: c.tbl.Version, Provenance: provenanceMap(&r.provenance), Switch: e.sw.Name,
		URL: r.settings.URL, Method: r.settings.Method, RecordMinSec: r.settings.RecordMinSec,
	}
	if m.MaskedRanges == nil {
		m.MaskedRanges = []Range{}
	}
	if !r.leg.isA {
		m.Leg = "b"
	}
	if e.preset == "kazoo" {
		if id := c.a.vars["call-interaction-id"]; id != "" {
			m.InteractionID = id
		}
	}
	if r.endpoint != "" {
		m.Endpoint = "device:" + r.endpoint
		if d, ok := c.acct.Devices[r.endpoint]; ok {
			m.Owner = d.Owner
		}
	}
	n := 0
	for _, o := range c.recs {
		if o.leg == r.leg && o.state != recFailed && o.state != recWaiting {
			n++
		}
	}
	m.SameLegRecordings = n > 1
	return m
}

func provenanceMap(p *table.Provenance) map[string]string {
	m := map[string]string{
		"format": p.Format, "time_limit": p.TimeLimit, "record_min_sec": p.RecordMinSec,
		"record_sample_rate": p.RecordSampleRate, "record_on_answer": p.RecordOnAnswer,
		"record_on_bridge": p.RecordOnBridge, "method": p.Method,
	}
	if p.Enabled != "" {
		m["enabled"] = p.Enabled
	}
	if p.URL != "" {
		m["url"] = p.URL
	}
	return m
}

// reap forgets a call once every leg has hung up and no recording is
// still running.
func (e *engine) reap(c *call) {
	if c == nil {
		return
	}
	legs := append([]*leg{c.a}, c.bs...)
	for _, l := range legs {
		if !l.hungup {
			return
		}
	}
	for _, r := range c.recs {
		if r.state == recRequested || r.state == recRunning {
			return
		}
	}
	for _, l := range legs {
		delete(e.legs, l.uuid)
	}
}

// Running returns the recordings the engine believes are running, for
// reconciliation after a reconnect.
func (e *engine) running() []*recording {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*recording
	for _, r := range e.byPath {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// connected records the switch's Core-UUID and reports whether the switch
// restarted since the last connection.
//
// The intents of recordings the engine does not follow (an earlier run's)
// are adopted at once, before any event of this connection is handled, so
// that the calls they belong to, seen again mid-call, continue those
// recordings instead of starting them a second time; recoverIntents then
// finishes those whose leg is gone.
func (e *engine) connected(coreUUID string) (restarted bool) {
	var its []*intent
	if e.intents != nil {
		its = e.intents.list(e.sw)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	restarted = e.coreUUID != "" && e.coreUUID != coreUUID
	e.coreUUID = coreUUID
	for _, it := range its {
		if e.byPath[it.Path] != nil || (it.CoreUUID != "" && it.CoreUUID != coreUUID) {
			continue
		}
		e.adopted[it.Path] = it
	}
	return restarted
}

// APICommander runs a synchronous api command on a switch.
type APICommander interface {
	API(ctx context.Context, cmd string) (string, error)
}

// reconcile runs after every (re)connection. A recording whose leg no
// longer exists, or any recording after the switch restarted (a new
// Core-UUID), stopped while the connection was down and its RECORD_STOP
// was lost: it is finished from the file on disk.
func (e *engine) reconcile(ctx context.Context, c APICommander, coreUUID string, restarted bool) {
	defer e.recoverIntents(ctx, c, coreUUID)
	for _, r := range e.running() {
		gone := restarted
		if !gone {
			res, err := c.API(ctx, "uuid_exists "+r.leg.uuid)
			if err != nil {
				continue // try again on the next connection
			}
			gone = strings.TrimSpace(res) == "false"
		}
		e.mu.Lock()
		if !gone {
			r.recheck = true
		} else if cur := e.byPath[r.path]; cur == r {
			e.finishLost(r)
		}
		e.mu.Unlock()
	}
}

// stopAt marks a recording stopped at ts (µs), closing a mask in force.
// e.mu is held.
func (e *engine) stopAt(r *recording, ts int64) {
	delete(e.byPath, r.path)
	if r.state == recRequested {
		r.startTS = ts
	}
	if r.maskFrom >= 0 {
		r.masks = append(r.masks, Range{StartMS: r.fileMS(r.maskFrom), EndMS: r.fileMS(ts)})
		r.maskFrom = -1
	}
	r.state = recStopped
}

// finishLost finishes from its file a running recording whose leg is
// gone and whose RECORD_STOP was lost. e.mu is held.
func (e *engine) finishLost(r *recording) {
	e.stopAt(r, time.Now().UnixMicro())
	r.leg.hungup = true
	e.log.Warn("recording finished while disconnected; finishing it from its file", "recording", r.id, "leg", r.leg.uuid)
	e.finish(r, 0, "reconciled")
	e.reap(r.call)
}

// recheckEvery is how often the legs of recordings that were running
// across a reconnection, and of adopted recordings of an earlier run, are
// asked about again.
const recheckEvery = 5 * time.Second

// recheckLoop asks the switch, every recheckEvery while connected,
// whether the legs of recordings that straddled a reconnection and of
// adopted recordings still exist: a leg can end between the question at
// the reconnection and the subscription taking effect (FreeSWITCH keeps a
// session until its recording files are closed), and its hangup is then
// never seen. A leg that is gone has its recording finished from its file.
func (e *engine) recheckLoop(ctx context.Context, c APICommander, connected func() bool) {
	t := time.NewTicker(recheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if connected() {
			e.recheck(ctx, c)
		}
	}
}

// recheck is one round of recheckLoop.
func (e *engine) recheck(ctx context.Context, c APICommander) {
	e.mu.Lock()
	var recs []*recording
	for _, r := range e.byPath {
		if r.recheck {
			recs = append(recs, r)
		}
	}
	var its []*intent
	for _, it := range e.adopted {
		its = append(its, it)
	}
	e.mu.Unlock()
	gone := func(leg string) bool {
		res, err := c.API(ctx, "uuid_exists "+leg)
		return err == nil && strings.TrimSpace(res) == "false"
	}
	for _, r := range recs {
		if !gone(r.leg.uuid) {
			continue
		}
		e.mu.Lock()
		if cur := e.byPath[r.path]; cur == r {
			e.finishLost(r)
		}
		e.mu.Unlock()
	}
	for _, it := range its {
		if !gone(it.Leg) {
			continue
		}
		e.mu.Lock()
		if e.adopted[it.Path] == it {
			delete(e.adopted, it.Path)
			e.log.Warn("finishing the recording of an earlier run from its file: its leg is gone", "recording", it.Meta.RecordingID, "leg", it.Leg)
			e.finishIntent(it, 0, "recovered")
		}
		e.mu.Unlock()
	}
}
