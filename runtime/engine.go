package runtime

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recpol/recpol/callstate"
	"github.com/recpol/recpol/callstate/classify"
	"github.com/recpol/recpol/internal/shrink"
	"github.com/recpol/recpol/runtime/eslcmd"
	"github.com/recpol/recpol/runtime/store"
	"github.com/recpol/recpol/table"
)

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

// engine drives the call state machine (package callstate) over one
// switch's event socket: it turns events into the machine's events and the
// machine's commands into event-socket commands, intents and finished
// recordings. Every decision about what is recorded and when is the
// machine's. Its state is guarded by mu; commands go out in order through
// one sender goroutine, so the event goroutine never waits on the switch.
//
// Its methods live by concern: this file (events, the machine's commands,
// recordings and their metadata), sender.go (the command queue and the
// sender), commands.go (the machine's commands as event-socket commands),
// recover.go (what happens at each connection: reconciliation, recovery
// of an earlier run's intents, the rebuild of calls in progress, the
// recheck of lost legs).
type engine struct {
	sw    SwitchConfig
	cl    classify.Classifier
	table func() *table.Table
	fin   Finisher
	log   *slog.Logger
	obs   func(string) // metric observations: "started", "failed", ...

	intents *intents // nil: running recordings are kept in memory only

	// mu guards the engine's state.
	//
	// Lock order: engine.mu, then intents.mu (the engine writes intents
	// with mu held; the intent log never calls back into the engine),
	// then the store's activeMu (intents.started, which never blocks) and
	// the intent log's own lock (intentlog.Log, which calls nothing while
	// holding it). The sender and the finish lane take none of them while
	// they wait on the switch or the store. send may wait for room in out
	// with mu held: the sender's dispatcher takes no lock of the engine's.
	mu       sync.Mutex
	m        *callstate.Machine
	coreUUID string
	byPath   map[string]*recording
	byID     map[string]*recording
	adopted  map[string]*intent // by path: recordings of an earlier run still running
	// continuing holds, by recording id, the intents of adopted
	// recordings the machine continues: their start goes to their path.
	continuing map[string]*intent
	// unwritten holds, by path, the intents of starts still queued.
	unwritten map[string]*intent
	lastTS    int64     // the latest event time seen, µs on the switch's clock
	lastSeen  time.Time // when it was seen
	// received is when the event being handled was read off the
	// connection (zero outside Handle): a start it decides is timed
	// from it (startDelay).
	received time.Time
	// startDelay observes, for each start command as it goes out, how
	// long it took since the event that decided it was read (nil: not
	// observed; recpol_start_delay_seconds).
	startDelay func(time.Duration)

	// out is the command queue, in order, drained by the sender;
	// senderStopped is closed once the sender has stopped (stopOnce).
	out           chan eslcmd.ChannelCommand
	senderStopped chan struct{}
	stopOnce      sync.Once
	// commands counts the commands queued and not yet done with: sent
	// and answered, failed, or given up (sendOne).
	commands atomic.Int64

	// mp3 is whether the switch can write mp3 (mod_shout loaded), asked
	// at each connection: mp3Unknown until it answers.
	mp3 atomic.Int32

	// seen is each followed leg's latest event time (µs, the switch's
	// clock); a leg silent for legIdle is asked about (uuid_exists) and
	// forgotten when the switch no longer has it: a leg whose hangup was
	// lost is not kept for ever.
	seen    map[string]int64
	legIdle time.Duration
}

// legIdleCheck is how long a leg may go without an event before the
// engine asks the switch whether it still exists; legChecksPerRound
// bounds those questions per recheck round.
const (
	legIdleCheck      = time.Hour
	legChecksPerRound = 100
)

// The switch's mp3 capability (engine.mp3).
const (
	mp3Unknown int32 = iota
	mp3Yes
	mp3No
)

// recording is what the engine keeps of a recording the machine started:
// where the switch writes it and where this runtime reads it.
type recording struct {
	*callstate.Recording
	path, local string
	started     time.Time
	// decided is when the event that decided the start was read off the
	// connection (the API call's time for a start asked by API).
	decided time.Time
	// format is the file's format: the policy's, or wav where the switch
	// cannot write the mp3 the policy asks for (formatRequested).
	format, formatRequested string
	// switchMasks are the masks and unmasks as the switch ran them (the
	// BACKGROUND_JOB of each command, µs on its clock), in the order they
	// ran: an MP3's masked spans, which the store cannot measure in the
	// file, come from them.
	switchMasks []switchMask
	// recheck: the recording was running across a reconnection and its
	// leg then still existed; the leg may have ended in between (a
	// hangup whose events were lost), so it is checked again until the
	// recording stops.
	recheck bool
}

// validID reports whether s is an id the runtime puts in a path or a
// command (an account, a recording, a runtime's name):
// ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$, checked byte by byte (TestValidID).
func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}

func newEngine(sw SwitchConfig, cls Classify, tbl func() *table.Table, fin Finisher, log *slog.Logger, obs func(string)) *engine {
	if obs == nil {
		obs = func(string) {}
	}
	cl, err := classify.New(classify.Config{Preset: cls.Preset, Account: cls.Account, Device: cls.Device, Owner: cls.Owner, Network: cls.Network})
	if err != nil {
		log.Error("invalid classification: the recpol preset is used", "error", err)
		cl = classify.Must(classify.Config{})
	}
	e := &engine{sw: sw, cl: cl, table: tbl, fin: fin, log: log, obs: obs,
		byPath: map[string]*recording{}, byID: map[string]*recording{}, adopted: map[string]*intent{},
		continuing: map[string]*intent{}, unwritten: map[string]*intent{}, out: make(chan eslcmd.ChannelCommand, commandQueueSize), senderStopped: make(chan struct{}),
		seen: map[string]int64{}, legIdle: legIdleCheck}
	e.m = callstate.New(callstate.Config{Classifier: cl, Table: tbl, NewID: newID, Continue: e.continueAdopted})
	return e
}

// eventTS is an event's time in µs (Event-Date-Timestamp).
func eventTS(ev *Event) int64 {
	ts, _ := strconv.ParseInt(ev.Get("Event-Date-Timestamp"), 10, 64)
	return ts
}

// eventKinds maps the subscribed channel events onto the machine's.
var eventKinds = map[string]callstate.EventKind{
	"CHANNEL_CREATE": callstate.Create, "CHANNEL_EXECUTE": callstate.Execute,
	"CHANNEL_PROGRESS": callstate.Ring, "CHANNEL_PROGRESS_MEDIA": callstate.Media,
	"CHANNEL_ANSWER": callstate.Answer, "CHANNEL_BRIDGE": callstate.Bridge, "CHANNEL_UNBRIDGE": callstate.Unbridge,
	"CHANNEL_PARK": callstate.Park, "DTMF": callstate.DTMF, "CHANNEL_HANGUP": callstate.Hangup,
	"CHANNEL_HANGUP_COMPLETE": callstate.HangupComplete,
}

// Handle processes one event. It is called from one goroutine per switch.
func (e *engine) Handle(ev *Event) {
	e.mu.Lock()
	e.received = ev.Received
	defer func() {
		e.received = time.Time{}
		e.mu.Unlock()
	}()
	ts := eventTS(ev)
	if ts > e.lastTS {
		e.lastTS, e.lastSeen = ts, time.Now()
	}
	switch ev.Name {
	case "RECORD_START":
		if r := e.byPath[ev.Get("Record-File-Path")]; r != nil {
			if r.State == callstate.Requested {
				e.obs("started") // the switch took the start
			}
			e.do(e.m.Handle(&callstate.Event{Kind: callstate.RecordStarted, TS: ts, Rec: r.ID}))
		}
		return
	case "RECORD_STOP":
		e.recordStop(ev, ts)
		return
	case "HEARTBEAT", "BACKGROUND_JOB":
		return
	}
	id := ev.Get("Unique-ID")
	if id == "" {
		return
	}
	known := e.m.Leg(id) != nil
	if !known && !eslcmd.ValidUUID(id) {
		e.log.Warn("ignoring a channel with an invalid uuid")
		return
	}
	kind, ok := eventKinds[ev.Name]
	if !ok {
		kind = callstate.Other
	}
	if kind == callstate.HangupComplete && len(e.adopted) > 0 {
		e.adoptedLegGone(id)
	}
	cev := callstate.Event{Kind: kind, TS: ts, Leg: id, Vars: ev,
		ChannelName: ev.Get("Channel-Name"), Direction: ev.Get("Call-Direction"),
		Dest: ev.Get("Caller-Destination-Number"), CallerNum: ev.Get("Caller-Caller-ID-Number")}
	if !known {
		cev.OtherLeg = ev.Get("Other-Leg-Unique-ID")
		if cev.OtherLeg == "" {
			cev.OtherLeg = ev.Var("originator")
		}
		// The machine keeps a new leg's names for the leg's life: copies,
		// not slices of the event's frame (3 KB an event, kept whole).
		cev.Leg, cev.OtherLeg, cev.ChannelName = strings.Clone(cev.Leg), strings.Clone(cev.OtherLeg), strings.Clone(cev.ChannelName)
		cev.Direction, cev.Dest, cev.CallerNum = strings.Clone(cev.Direction), strings.Clone(cev.Dest), strings.Clone(cev.CallerNum)
	}
	switch kind {
	case callstate.Execute:
		cev.App, cev.AppData = ev.Get("Application"), ev.Get("Application-Data")
	case callstate.Bridge, callstate.Unbridge:
		cev.BridgeA, cev.BridgeB = ev.Get("Bridge-A-Unique-ID"), ev.Get("Bridge-B-Unique-ID")
		if cev.BridgeA == "" {
			cev.BridgeA = id
		}
	case callstate.DTMF:
		cev.Vars = nil
		cev.Digit = ev.Get("DTMF-Digit")
	}
	e.do(e.m.Handle(&cev))
	if l := e.m.Leg(id); l == nil {
		delete(e.seen, id)
		e.seen = shrink.Map(e.seen)
	} else {
		// The leg's own copy of its uuid: a map assignment stores the key
		// it is given, and id is a slice of this event's frame.
		e.seen[l.UUID] = ts
	}
}

// do carries out the machine's commands. e.mu is held.
func (e *engine) do(cmds []callstate.Command) {
	for _, c := range cmds {
		switch c.Kind {
		case callstate.Start:
			e.start(c.Rec)
		case callstate.TagLeg:
			e.send(eslcmd.SetVar{UUID: c.Leg, Name: e.cl.RecordingIDsVar(), Value: c.Value})
		case callstate.Follow:
			e.send(eslcmd.SetVar{UUID: c.Leg, Name: followVar, Value: c.Value})
		case callstate.Moved:
			if r := e.byID[c.Rec.ID]; r != nil && e.intents != nil {
				// The recording goes on on another leg: its intent says
				// so, for a recovery that asks whether its leg exists.
				if err := e.intents.write(e.intentOf(r)); err != nil {
					e.log.Error("writing a recording intent failed", "recording", r.ID, "error", err)
					e.obs("intent_failed")
				}
			}
		case callstate.Settle:
			if r := e.byID[c.Rec.ID]; r != nil {
				e.forget(r)
				e.finish(r, 0, "no RECORD_STOP")
			}
		case callstate.Announce:
			e.announce(c)
		case callstate.Forget:
			// The leg's call ended, maybe on another leg's event: its
			// entry would otherwise stay until the idle check asked the
			// switch about it, an hour later.
			delete(e.seen, c.Leg)
			e.seen = shrink.Map(e.seen)
		default:
			if r := e.byID[c.Rec.ID]; r != nil {
				e.send(eslcmd.Record{Op: recordOps[c.Kind], UUID: r.Leg.UUID, Path: r.path})
			}
		}
	}
}

// start sends the start command of a recording the machine started, or
// of an earlier run's recording it continues (to the same path).
func (e *engine) start(rec *callstate.Recording) {
	acct := rec.Account.ID
	ext, requested := "mp3", ""
	if rec.Settings.Format == "wav" {
		ext = "wav"
	} else if e.mp3.Load() == mp3No {
		// A switch without mod_shout refuses an mp3 start (-ERR Cannot
		// record session!): the recording is made in WAV instead, and
		// its metadata says what was asked for.
		ext, requested = "wav", "mp3"
	}
	if !validID(acct) || !validID(rec.ID) {
		e.log.Error("refusing to record: unsafe account or id")
		e.do(e.m.Handle(&callstate.Event{Kind: callstate.StartRefused, Rec: rec.ID}))
		return
	}
	r := &recording{Recording: rec, started: time.Now(), format: ext, formatRequested: requested}
	r.decided = e.received
	if r.decided.IsZero() {
		r.decided = r.started
	}
	it := e.continuing[rec.ID]
	if it != nil {
		r.path = it.Path
		_, r.local = recordingPaths(e.sw, it.Meta.Account, rec.ID, it.Meta.Format)
		r.format, r.formatRequested = it.Meta.Format, it.Meta.FormatRequested
		r.started = it.Meta.Start
	} else {
		r.path, r.local = recordingPaths(e.sw, acct, rec.ID, ext)
	}
	cmd := startCommand(r)
	if err := cmd.Validate(); err != nil {
		e.log.Error("refusing to record: unsafe start command", "recording", rec.ID, "error", err)
		e.do(e.m.Handle(&callstate.Event{Kind: callstate.StartRefused, Rec: rec.ID}))
		return
	}
	if it != nil {
		delete(e.continuing, rec.ID)
		e.log.Info("continuing a recording of an earlier run", "recording", rec.ID, "leg", it.Leg, "scope", rec.Scope)
	} else {
		if e.intents != nil {
			// The sender writes the intent just before it sends the
			// start, off the event path and in parallel with other legs'
			// commands.
			e.unwritten[r.path] = e.intentOf(r)
		}
		e.obs("requested")
		e.log.Info("recording starting", "recording", rec.ID, "account", acct, "call", rec.Call.ID,
			"leg", rec.Leg.UUID, "scope", rec.Scope, "origin", rec.Origin)
	}
	e.byPath[r.path] = r
	e.byID[rec.ID] = r
	e.send(cmd)
}

// forget drops a recording the engine no longer follows. e.mu is held.
func (e *engine) forget(r *recording) {
	delete(e.byPath, r.path)
	delete(e.byID, r.ID)
	e.byPath, e.byID = shrink.Map(e.byPath), shrink.Map(e.byID)
}

// intentOf is the intent of a requested or running recording as the
// engine knows it now. e.mu is held.
func (e *engine) intentOf(r *recording) *intent {
	m := e.metadata(r, 0)
	m.Start = r.started.UTC()
	it := &intent{Version: 1, Switch: e.sw.Name, CoreUUID: e.coreUUID, Leg: r.Leg.UUID, Path: r.path, Meta: m}
	if r.State == callstate.Running {
		it.StartTS = r.StartTS
	}
	if from, ok := r.MaskedFromMS(); ok {
		it.MaskedFromMS = &from
	}
	return it
}

func (e *engine) recordStop(ev *Event, ts int64) {
	p := ev.Get("Record-File-Path")
	durMS, _ := strconv.ParseInt(ev.Var("record_ms"), 10, 64)
	r := e.byPath[p]
	if r == nil {
		if it := e.adopted[p]; it != nil {
			delete(e.adopted, p)
			e.finishIntent(it, durMS, strings.Clone(ev.Get("Record-Completion-Cause")))
		}
		return
	}
	e.forget(r)
	e.do(e.m.Handle(&callstate.Event{Kind: callstate.RecordStopped, TS: ts, Rec: r.ID}))
	e.finish(r, durMS, strings.Clone(ev.Get("Record-Completion-Cause")))
}

// finish hands a stopped recording to the store.
func (e *engine) finish(r *recording, durMS int64, cause string) {
	delete(e.unwritten, r.path)
	m := e.metadata(r, durMS)
	e.obs("stopped")
	f := Finished{Meta: m, LocalPath: r.local, Cause: cause}
	if e.intents != nil {
		if !e.intents.claim(r.ID) {
			return // recovery has handed it to the store already
		}
		in, id := e.intents, r.ID
		f.Done = func() { in.done(id) }
	}
	e.fin.Finish(f)
}

// metadata is a recording's metadata as far as the engine knows it.
func (e *engine) metadata(r *recording, durMS int64) store.Metadata {
	c := r.Call
	m := store.Metadata{
		RecordingID: r.ID, CallID: r.First.UUID, InteractionID: c.ID, Account: r.Account.ID,
		Scope: string(r.Scope), Leg: "b", Origin: r.Origin, Direction: r.Direction,
		From: c.A.CallerNum, To: c.A.Dest, Start: time.UnixMicro(r.StartTS).UTC(), DurationMS: durMS,
		Format: r.format, FormatRequested: r.formatRequested, SampleRate: r.Settings.RecordSampleRate, MaskedRanges: []Range{},
		PolicyVersion: c.Table.Version, Provenance: table.MetadataProvenance(&r.Provenance), Switch: e.sw.Name,
		URL: r.Settings.URL, Method: r.Settings.Method, RecordMinSec: r.Settings.RecordMinSec,
		SameLegRecordings: r.SameLeg(), MediaName: r.MediaName, StoppedBy: r.StoppedBy,
	}
	if r.First == c.A {
		m.Leg = "a"
	}
	for _, rg := range r.Masks() {
		m.MaskedRanges = append(m.MaskedRanges, Range{StartMS: rg.StartMS, EndMS: rg.EndMS})
	}
	if r.format == "mp3" {
		// The store measures a WAV's masked spans in the file; an MP3's
		// come from the switch's own times of the masks.
		if sw, ok := r.switchMaskRanges(r.Masks()); ok && !slices.Equal(sw, m.MaskedRanges) {
			m.ReportedMaskedRanges, m.MaskedRanges = m.MaskedRanges, sw
		}
	}
	if r.Endpoint != "" {
		m.Endpoint = "device:" + r.Endpoint
		m.Owner = r.Owner()
	}
	if m.Format == "" {
		m.Format = r.Settings.Format
	}
	if r.Settings.Stereo && !r.ReadOnly {
		// Left is the recorded leg's own party, right the other.
		m.Channels = []string{"callee", "caller"}
		if m.Leg == "a" {
			m.Channels = []string{"caller", "callee"}
		}
	}
	if r.AnnouncedAt > 0 {
		at := time.UnixMicro(r.AnnouncedAt).UTC()
		m.AnnouncedAt = &at
		m.Announce = table.AnnounceMedia(r.Settings.Announce)
	}
	return m
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
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// switchMask is a mask (or unmask) as the switch ran it.
type switchMask struct {
	mask bool
	at   int64 // µs on the switch's clock
}

// switchMaskRanges are a recording's masked spans from the switch's own
// times of its masks and unmasks, in ms from its start (RECORD_START's
// time), an open one to -1 (the store closes it at the file's end); ok is
// false when the switch's times are not known for every mask.
func (r *recording) switchMaskRanges(events []callstate.Range) ([]Range, bool) {
	if r.StartTS <= 0 || len(r.switchMasks) == 0 {
		return nil, false
	}
	ms := slices.Clone(r.switchMasks)
	slices.SortStableFunc(ms, func(a, b switchMask) int { return cmp.Compare(a.at, b.at) })
	var out []Range
	open := int64(-1)
	for _, m := range ms {
		t := max(0, (m.at-r.StartTS)/1000)
		switch {
		case m.mask && open < 0:
			open = t
		case !m.mask && open >= 0:
			out = append(out, Range{StartMS: open, EndMS: t})
			open = -1
		}
	}
	if open >= 0 {
		out = append(out, Range{StartMS: open, EndMS: -1})
	}
	if len(out) != len(events) {
		return nil, false // a mask whose time the switch did not give
	}
	return out, true
}

// engineSizes are the sizes of an engine's state: each must come back
// down when calls end, or the engine leaks.
type engineSizes struct {
	legs, recordings, adopted, seen int
}

// sizes reads the engine's state sizes.
func (e *engine) sizes() engineSizes {
	e.mu.Lock()
	defer e.mu.Unlock()
	return engineSizes{legs: e.m.Legs(), recordings: len(e.byID), adopted: len(e.adopted), seen: len(e.seen)}
}

// apiAction runs an API action on the call a leg belongs to. start and
// stop act on that leg (start uses the settings of the account's cell for
// the call, with an "api" origin); mask, unmask, pause and resume on every
// recording of the call.
func (e *engine) apiAction(uuid, action string, who callstate.Actor, ts int64) ([]string, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lastTS > 0 {
		// Masked ranges are measured on the switch's clock, as the
		// events' times are: estimate it from the latest event.
		ts = e.lastTS + time.Since(e.lastSeen).Microseconds()
	}
	return e.actLocked(uuid, action, who, ts)
}

// act runs an action on the call of a leg at ts (µs on the switch's clock)
// with every right.
func (e *engine) act(uuid, action string, ts int64) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, found, err := e.actLocked(uuid, action, callstate.Actor{Name: "runtime", PolicyStop: true}, ts)
	return found, err
}

// actLocked runs an action and returns the ids of the recordings it
// acted on (started, stopped, masked...). e.mu is held.
func (e *engine) actLocked(uuid, action string, who callstate.Actor, ts int64) ([]string, bool, error) {
	cmds, found, err := e.m.Act(uuid, action, who, ts)
	var ids []string
	for _, c := range cmds {
		if c.Rec != nil && !slices.Contains(ids, c.Rec.ID) {
			ids = append(ids, c.Rec.ID)
		}
	}
	e.do(cmds)
	return ids, found, err
}

// calls is a view of the engine's live calls.
func (e *engine) calls() []callstate.CallView {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.m.Calls()
}
