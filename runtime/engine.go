package runtime

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recpol/recpol/callstate"
	"github.com/recpol/recpol/callstate/classify"
	"github.com/recpol/recpol/runtime/esl"
	"github.com/recpol/recpol/runtime/store"
	"github.com/recpol/recpol/table"
)

// Commander sends event-socket commands to one switch. BgAPI returns the
// body of the BACKGROUND_JOB ("+OK ..." or "-ERR ...").
type Commander interface {
	BgAPI(ctx context.Context, cmd string) (string, error)
}

// jobTimer is a Commander that also says when the switch ran a command
// (its BACKGROUND_JOB's Event-Date-Timestamp, µs): esl.Client.
type jobTimer interface {
	BgAPIJob(ctx context.Context, cmd string) (string, int64, error)
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

// engine drives the call state machine (package callstate) over one
// switch's event socket: it turns events into the machine's events and the
// machine's commands into event-socket commands, intents and finished
// recordings. Every decision about what is recorded and when is the
// machine's. Its state is guarded by mu; commands go out in order through
// one sender goroutine, so the event goroutine never waits on the switch.
type engine struct {
	sw    SwitchConfig
	cl    classify.Classifier
	table func() *table.Table
	fin   Finisher
	log   *slog.Logger
	obs   func(string) // metric observations: "started", "failed", ...

	intents *intents // nil: running recordings are kept in memory only

	// mu guards the engine's state. Lock order: engine.mu, then
	// intents.mu (the engine writes intents with mu held; the intent log
	// never calls back into the engine), then the store's activeMu (the
	// log's started hook, which never blocks). The sender and the finish
	// lane take none of them while they wait on the switch or the store.
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
	lastTS    int64       // the latest event time seen, µs on the switch's clock
	lastSeen  time.Time   // when it was seen
	out       chan string // commands, in order

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

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
var uuidRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,127}$`)

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
		continuing: map[string]*intent{}, unwritten: map[string]*intent{}, out: make(chan string, 4096),
		seen: map[string]int64{}, legIdle: legIdleCheck}
	e.m = callstate.New(callstate.Config{Classifier: cl, Table: tbl, NewID: newID, Continue: e.continueAdopted})
	return e
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
		// Recording commands (start, stop, mask, unmask, pause, resume)
		// and the others (tags, recording_follow_transfer) have slots of
		// their own: a burst of tags never holds up a start.
		slots    = make(chan struct{}, senderInFlight)
		slotsLow = make(chan struct{}, senderInFlight/4)
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
			pool := slotsLow
			if isRecordCommand(cmd) {
				pool = slots
			}
			select {
			case pool <- struct{}{}:
			case <-ctx.Done():
				return
			}
			e.sendOne(ctx, c, cmd)
			<-pool
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
	jt, timed := c.(jobTimer)
	for n := 0; ; n++ {
		var res string
		var at int64
		var err error
		if timed {
			res, at, err = jt.BgAPIJob(ctx, cmd)
		} else {
			res, err = c.BgAPI(ctx, cmd)
		}
		if err == nil && strings.HasPrefix(res, "+OK") {
			if n > 0 {
				e.log.Info("command sent after the switch came back", "command", cmd, "attempts", n+1)
			}
			e.ranAt(cmd, at)
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
			e.log.Warn("switch unreachable: command kept until it is back", "command", cmd, "error", err)
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
		if r := e.byPath[f[3]]; r != nil && (r.State == callstate.Requested || r.State == callstate.Running) {
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

// isRecordCommand reports whether cmd starts, stops, masks, unmasks,
// pauses or resumes a recording.
// isRecordCommand reports whether a command is one a recording needs:
// its start, stop, mask and pause, and its consent announcement (never
// shed: a recording must not go on without the notice the policy asks).
func isRecordCommand(cmd string) bool {
	return strings.HasPrefix(cmd, "uuid_record ") || strings.HasPrefix(cmd, "uuid_broadcast ")
}

// recordCommandWait bounds how long the engine waits for room in a full
// command queue before it gives a recording command up: the sender drains
// the queue without the engine's lock, so only a sender that stopped
// leaves it full that long.
const recordCommandWait = 5 * time.Second

// send queues a command for the sender. A full queue (the switch far
// behind) sheds what can wait (tags, recording_follow_transfer), never a
// recording command: for one the engine waits for room.
func (e *engine) send(cmd string) {
	select {
	case e.out <- cmd:
		return
	default:
	}
	if isRecordCommand(cmd) {
		e.obs("command_waited")
		t := time.NewTimer(recordCommandWait)
		defer t.Stop()
		select {
		case e.out <- cmd:
			return
		case <-t.C:
		}
	}
	e.log.Error("command queue full: command dropped", "command", cmd)
	e.obs("command_dropped")
}

// commandFailed handles a refused command: a start that failed means no
// RECORD_START or RECORD_STOP will follow.
func (e *engine) commandFailed(cmd, res string, err error) {
	e.log.Warn("switch refused a command", "command", cmd, "reply", strings.TrimSpace(res), "error", err)
	f := strings.Fields(cmd)
	refused := err == nil || errors.Is(err, esl.ErrRejected)
	if refused && len(f) >= 4 && f[0] == "uuid_record" && f[2] == "start" {
		// Only a refusal says the recording did not start; after a
		// timeout it may have, and the reconciliation settles it.
		e.mu.Lock()
		if r := e.byPath[f[3]]; r != nil && r.State == callstate.Requested {
			e.forget(r)
			if e.intents != nil {
				e.intents.forget(r.ID)
			}
			e.obs("failed")
			e.do(e.m.Handle(&callstate.Event{Kind: callstate.StartRefused, Rec: r.ID}))
		}
		e.mu.Unlock()
	}
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
	defer e.mu.Unlock()
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
	if !known && !uuidRE.MatchString(id) {
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
	if e.m.Leg(id) == nil {
		delete(e.seen, id)
	} else {
		e.seen[id] = ts
	}
}

// do carries out the machine's commands. e.mu is held.
func (e *engine) do(cmds []callstate.Command) {
	for _, c := range cmds {
		switch c.Kind {
		case callstate.Start:
			e.start(c.Rec)
		case callstate.TagLeg:
			e.send("uuid_setvar " + c.Leg + " " + e.cl.RecordingIDsVar() + " " + c.Value)
		case callstate.Follow:
			e.send("uuid_setvar " + c.Leg + " recording_follow_transfer " + c.Value)
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
		default:
			if r := e.byID[c.Rec.ID]; r != nil {
				e.send("uuid_record " + r.Leg.UUID + " " + c.Kind.String() + " " + r.path)
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
	if !idRE.MatchString(acct) || !uuidRE.MatchString(rec.Leg.UUID) || !idRE.MatchString(rec.ID) {
		e.log.Error("refusing to record: unsafe account, uuid or id")
		e.do(e.m.Handle(&callstate.Event{Kind: callstate.StartRefused, Rec: rec.ID}))
		return
	}
	r := &recording{Recording: rec, started: time.Now(), format: ext, formatRequested: requested}
	if it := e.continuing[rec.ID]; it != nil {
		delete(e.continuing, rec.ID)
		r.path = it.Path
		_, r.local = recordingPaths(e.sw, it.Meta.Account, rec.ID, it.Meta.Format)
		r.format, r.formatRequested = it.Meta.Format, it.Meta.FormatRequested
		r.started = it.Meta.Start
		e.log.Info("continuing a recording of an earlier run", "recording", rec.ID, "leg", it.Leg, "scope", rec.Scope)
	} else {
		r.path, r.local = recordingPaths(e.sw, acct, rec.ID, ext)
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
	e.send(startCommand(r))
}

// forget drops a recording the engine no longer follows. e.mu is held.
func (e *engine) forget(r *recording) {
	delete(e.byPath, r.path)
	delete(e.byID, r.ID)
}

// continueAdopted is the machine's question whether a recording it
// decides is one an earlier run started: an adopted intent of the same
// leg, scope and origin. e.mu is held.
func (e *engine) continueAdopted(leg, scope, origin string) (callstate.Continued, bool) {
	for p, it := range e.adopted {
		m := it.Meta
		if it.Leg != leg || m.Scope != scope || m.Origin != origin {
			continue
		}
		delete(e.adopted, p)
		e.continuing[m.RecordingID] = it
		c := callstate.Continued{ID: m.RecordingID, StartTS: m.Start.UnixMicro(), Format: m.Format,
			MaskedFromMS: it.MaskedFromMS}
		if it.StartTS > 0 {
			c.StartTS = it.StartTS
		}
		for _, rg := range m.MaskedRanges {
			c.Masks = append(c.Masks, callstate.Range{StartMS: rg.StartMS, EndMS: rg.EndMS})
		}
		return c, true
	}
	return callstate.Continued{}, false
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

// startCommand is a recording's start command, its settings in its own
// recording variables.
func startCommand(r *recording) string {
	vars := fmt.Sprintf("{RECORD_MIN_SEC=%d,record_sample_rate=%d", r.Settings.RecordMinSec, r.Settings.RecordSampleRate)
	if r.ReadOnly {
		vars += ",RECORD_READ_ONLY=true"
	} else if r.Settings.Stereo {
		// The leg's own party (read) left, the other (write) right:
		// switch_ivr_async.c, switch_ivr_record_session_event, SMBF_STEREO.
		vars += ",RECORD_STEREO=true"
	}
	return fmt.Sprintf("uuid_record %s start %s %d %s}", r.Leg.UUID, r.path, r.Settings.TimeLimit, vars)
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
		Scope: r.Scope, Leg: "b", Origin: r.Origin, Direction: r.Direction,
		From: c.A.CallerNum, To: c.A.Dest, Start: time.UnixMicro(r.StartTS).UTC(), DurationMS: durMS,
		Format: r.format, FormatRequested: r.formatRequested, SampleRate: r.Settings.RecordSampleRate, MaskedRanges: []Range{},
		PolicyVersion: c.Table.Version, Provenance: provenanceMap(&r.Provenance), Switch: e.sw.Name,
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

// announceRE is the media an announcement may play: an absolute path or
// a tone_stream, with nothing that could end or extend the command line
// (vet refuses the rest; this is the runtime's own check at the socket).
var announceRE = regexp.MustCompile(`^(/[A-Za-z0-9._+/-]+|tone_stream://[A-Za-z0-9%(),;=.+-]+)$`)

// announce plays a recording's consent announcement to the parties of
// its leg: uuid_broadcast <uuid> <media> <both|aleg|bleg>
// (mod_commands.c, uuid_broadcast_function). It goes out after the
// start, in the leg's command order. e.mu is held.
func (e *engine) announce(c callstate.Command) {
	switch {
	case !uuidRE.MatchString(c.Leg):
		e.log.Error("refusing to announce: unsafe leg uuid")
	case !announceRE.MatchString(c.Value) || strings.Contains(c.Value, ".."):
		e.log.Error("refusing to announce: unsafe media", "media", strconv.Quote(c.Value))
	case c.Target != "both" && c.Target != "aleg" && c.Target != "bleg":
		e.log.Error("refusing to announce: unknown target", "target", strconv.Quote(c.Target))
	default:
		e.send("uuid_broadcast " + c.Leg + " " + c.Value + " " + c.Target)
		return
	}
	e.obs("announce_refused")
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
	defer e.rebuild(ctx, c)
	defer e.recoverIntents(ctx, c, coreUUID)
	for _, r := range e.running() {
		gone := restarted
		if !gone {
			res, err := c.API(ctx, "uuid_exists "+r.Leg.UUID)
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

// finishLost finishes from its file a running recording whose leg is
// gone and whose RECORD_STOP was lost. e.mu is held.
func (e *engine) finishLost(r *recording) {
	e.forget(r)
	e.m.StopLost(r.Recording, time.Now().UnixMicro())
	e.log.Warn("recording finished while disconnected; finishing it from its file", "recording", r.ID, "leg", r.Leg.UUID)
	e.finish(r, 0, "reconciled")
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
	var idle []string
	for id, ts := range e.seen {
		if len(idle) == legChecksPerRound {
			break
		}
		if e.lastTS-ts >= e.legIdle.Microseconds() {
			idle = append(idle, id)
		}
	}
	now := e.lastTS
	e.mu.Unlock()
	gone := func(leg string) bool {
		res, err := c.API(ctx, "uuid_exists "+leg)
		return err == nil && strings.TrimSpace(res) == "false"
	}
	for _, id := range idle {
		if !gone(id) {
			e.mu.Lock()
			if _, ok := e.seen[id]; ok {
				e.seen[id] = e.lastTS // asked again after legIdle
			}
			e.mu.Unlock()
			continue
		}
		// Its hangup was lost: the machine sees it now.
		e.log.Info("forgetting a leg the switch no longer has (its hangup was not seen)", "leg", id)
		e.Handle(&Event{Name: "CHANNEL_HANGUP_COMPLETE", Headers: map[string]string{
			"Unique-ID": id, "Event-Date-Timestamp": strconv.FormatInt(now, 10)}})
	}
	for _, r := range recs {
		if !gone(r.Leg.UUID) {
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

// switchMask is a mask (or unmask) as the switch ran it.
type switchMask struct {
	mask bool
	at   int64 // µs on the switch's clock
}

// ranAt notes when the switch ran a recording's mask or unmask.
func (e *engine) ranAt(cmd string, at int64) {
	if at <= 0 || !strings.HasPrefix(cmd, "uuid_record ") {
		return
	}
	f := strings.Fields(cmd)
	if len(f) < 4 || (f[2] != "mask" && f[2] != "unmask") {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.byPath[f[3]]; r != nil {
		r.switchMasks = append(r.switchMasks, switchMask{mask: f[2] == "mask", at: at})
	}
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
