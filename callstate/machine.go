// Package callstate is recpol's call state machine: the one place where the
// timing of a call's recordings is decided. It takes the events of a switch
// (legs created, answered, bridged, transferred, hung up, DTMF, recordings
// started and stopped) and returns the commands to send (start, stop, mask,
// unmask, pause, resume a recording; tag a leg with its recordings' ids).
// It does no I/O, reads no clock and starts no goroutine: the runtime drives
// it over the event socket, the simulator over a scenario's effects, and
// both see the same decisions (SPEC 2.3, 2.5, 2.7).
//
// The rules it keeps (SPEC 2.7):
//   - A recording belongs to its leg: it ends when the leg hangs up, its
//     limit is reached, or a stop names it; never at a transfer, at the
//     other party's hangup or at a re-bridge.
//   - A call is the set of legs bridged together, followed over time: a leg
//     joins the call of the leg that originated it, and a bridge between
//     legs of two calls merges them (the older call absorbs the newer).
//     Its identity is the interaction (the first A-leg's uuid, or the
//     preset's interaction id).
//   - The caller's account takes its account decision once per call, the
//     account inbound cell when the A-leg's facts are final (the first event
//     beyond the variable-setting applications of the dialplan), the
//     outbound cell when `to` is fixed; `to` is fixed once per call by the
//     first B-leg that is classified, by a loopback half (another account of
//     the platform: onnet), or by the platform answering the call itself.
//   - Every other account with a leg in the call takes its own decisions on
//     its own legs, with `from` onnet: its account decision on its first
//     lasting leg, its devices' callee decisions on theirs.
//   - A callee decision is taken when its leg answers (or joins a call
//     already answered), for every leg that joins, with `from` of the call.
//   - A recording starts only once its leg has media (answer or early
//     media): starting one pre-answers a ringing leg on FreeSWITCH
//     (switch_ivr_async.c), and a recording must not change the call.
//   - Nothing is ever recorded on a loopback half: loopbacks bow out.
//   - A recording whose settings announce it plays its announcement when it
//     starts, once per call and recording reason (see Announce).
package callstate

import (
	"strconv"
	"strings"

	"github.com/recpol/recpol/callstate/classify"
	"github.com/recpol/recpol/internal/shrink"
	"github.com/recpol/recpol/table"
)

// Config configures a Machine.
type Config struct {
	// Classifier says what a leg is.
	Classifier classify.Classifier
	// Table returns the table a new call is decided with; calls keep the
	// table they started with. Nil, or a nil table: calls are not recorded.
	Table func() *table.Table
	// NewID returns a new recording id (letters, digits, '.', '_', '-').
	NewID func() string
	// Continue, when set, is asked before a recording starts whether an
	// earlier run of the driver started it (same leg, scope and origin)
	// and the switch still records it: it is then continued.
	Continue func(leg string, scope Scope, origin string) (Continued, bool)
}

// Machine holds the state of every leg and call of one switch. It is not
// safe for concurrent use: its driver serializes events.
type Machine struct {
	cfg   Config
	want  map[string]bool // the variables the machine reads
	legs  map[string]*Leg
	recs  map[string]*Recording // requested or running, by id
	calls int                   // calls created, for their order
	out   []Command
}

// New returns a Machine.
func New(cfg Config) *Machine {
	want := map[string]bool{}
	for _, n := range cfg.Classifier.Reads() {
		want[n] = true
	}
	for _, n := range machineVars {
		want[n] = true
	}
	return &Machine{cfg: cfg, want: want, legs: map[string]*Leg{}, recs: map[string]*Recording{}}
}

// machineVars are the variables the machine reads besides the
// classifier's: how legs name the leg that originated them and the other
// half of their loopback (mod_loopback, switch_ivr_originate.c).
var machineVars = []string{"other_loopback_leg_uuid", "originator", "originating_leg_uuid"}

// Leg is one channel the machine follows.
type Leg struct {
	UUID      string
	Channel   string
	Direction string
	Dest      string
	CallerNum string
	// Vars are the latest values of the channel variables the machine
	// reads (the classifier's and machineVars), by lower-case name.
	Vars map[string]string

	class      classify.Class
	classified bool
	call       *Call
	isA        bool // the A-leg of the call it started
	loopback   bool // a loopback half: never recorded
	answered   bool
	media      bool // answered or early media
	bridged    bool
	hungup     bool
	// partner is the leg this one was last bridged to.
	partner *Leg
	// follow is the value the leg's recording_follow_transfer was set to.
	follow bool
	// calleeIn is the call whose callee decision this leg has had.
	calleeIn *Call
	// redial is set when the leg's destination number changed after the
	// call's facts were final (a blind transfer of the leg): the callflow
	// of the new number runs on it.
	redial bool
	recIDs []string
	dtmf   map[string]*table.Collector // by the listening device
}

// IsA reports whether the leg is the A-leg of the call it started.
func (l *Leg) IsA() bool { return l.isA }

// Class returns the leg's classification and whether it has one.
func (l *Leg) Class() (classify.Class, bool) { return l.class, l.classified }

// Call is a set of legs bridged together, followed over time.
type Call struct {
	// ID is the call's interaction id: the preset's interaction id of the
	// A-leg, else the A-leg's uuid.
	ID string
	// A is the call's first A-leg; its numbers are the call's from/to.
	A *Leg
	// Table is the table the call is decided with.
	Table *table.Table

	seq      int
	legs     []*Leg
	ignored  bool
	acct     *table.Account // the caller's account
	from     table.Network
	aFinal   bool // the A-leg's facts are final: the inbound decision is taken
	to       table.Network
	toKnown  bool
	answered bool // a leg of the call answered before any B-leg: the platform answered
	accounts map[string]*acctState
	recs     []*Recording
	masked   bool
	// announced holds the reasons (reasonKey) whose announcement the
	// call's parties have heard.
	announced map[string]bool
}

// acctState is what one account has decided in a call.
type acctState struct {
	acct     *table.Account
	decided  bool // the account decision was taken
	recorded bool
}

// Account returns the caller's account, nil until it is known.
func (c *Call) Account() *table.Account { return c.acct }

// Recordings returns the call's recordings, in the order they were decided.
func (c *Call) Recordings() []*Recording { return c.recs }

// RecState is where a recording stands.
type RecState uint8

// The states of a recording.
const (
	Waiting   RecState = iota // decided; waits for its leg's media, answer or bridge
	Requested                 // start sent
	Running                   // RECORD_START seen
	Stopped                   // RECORD_STOP seen, or never started
	Failed                    // the switch refused the start
)

// Range is a span of a recording file, in milliseconds from its start.
type Range struct{ StartMS, EndMS int64 }

// Recording is one recording the machine decided. Its fields are read-only
// for the driver.
type Recording struct {
	ID   string
	Call *Call
	// Leg is the leg recorded now; First the leg the recording started on
	// (they differ once it moved with an attended transfer).
	Leg, First *Leg
	// Account is the account that decided it (its storage and metadata).
	Account *table.Account
	// Scope is one of the Scope values: the decision that started it.
	Scope Scope
	// Endpoint is the device of an endpoint or metaflow recording.
	Endpoint           string
	Origin             string
	Direction, Network string // the cell that decided it; empty for actions
	Settings           table.Settings
	Provenance         table.Provenance
	// MediaName names the stored file and the uploaded object (a
	// callflow's or metaflow's media_name); empty for the default name.
	MediaName string
	// ReadOnly records the caller's audio only (record_caller).
	ReadOnly       bool
	FollowTransfer bool
	// Trigger is what started it.
	Trigger Trigger
	// StoppedBy says who stopped it before its leg hung up: an API
	// token, a metaflow code or a callflow; empty otherwise.
	StoppedBy string
	State     RecState
	// StartTS is RECORD_START's time (µs); the start command's event
	// time while requested.
	StartTS int64
	// AnnouncedAt is when the machine asked for the recording's consent
	// announcement (µs, the event time of its start; the driver writes it
	// as announced_at); 0 when it had none: its settings announce nothing,
	// or the call had heard the announcement of its reason already.
	AnnouncedAt int64

	waitFor   wait
	maskFrom  int64 // µs while masked, else -1
	pauseFrom int64 // µs while paused, else -1
	paused    int64 // µs paused so far
	masks     []Range
}

// Masks returns the masked spans closed so far.
func (r *Recording) Masks() []Range { return r.masks }

// MaskedFromMS returns where in the file a mask still in force began, and
// whether one is.
func (r *Recording) MaskedFromMS() (int64, bool) {
	if r.maskFrom < 0 {
		return 0, false
	}
	if r.State != Running {
		return 0, true
	}
	return r.fileMS(r.maskFrom), true
}

// Paused reports whether the recording is paused.
func (r *Recording) Paused() bool { return r.pauseFrom >= 0 }

// Owner returns the owner user of the recording's endpoint, if any.
func (r *Recording) Owner() string {
	if r.Endpoint == "" || r.Account == nil {
		return ""
	}
	if d, ok := r.Account.Devices[r.Endpoint]; ok {
		return d.Owner
	}
	return ""
}

// SameLeg reports whether other recordings of the call were started on the
// recording's leg.
func (r *Recording) SameLeg() bool {
	for _, o := range r.Call.recs {
		if o != r && o.Leg == r.Leg && o.State != Failed && o.State != Waiting && !(o.State == Stopped && o.StartTS == 0) {
			return true
		}
	}
	return false
}

// FileMS converts a time on the switch's clock (µs) to a position in the
// recording's file (ms): paused time is not in the file.
func (r *Recording) FileMS(ts int64) int64 { return r.fileMS(ts) }

func (r *Recording) fileMS(ts int64) int64 {
	paused := r.paused
	if r.pauseFrom >= 0 {
		paused += ts - r.pauseFrom
	}
	ms := (ts - r.StartTS - paused) / 1000
	if ms < 0 {
		return 0
	}
	return ms
}

// CommandKind is what a command asks of the switch.
type CommandKind uint8

// The commands.
const (
	// Start starts Rec on its leg.
	Start CommandKind = iota
	// Stop, Mask, Unmask, Pause and Resume act on Rec.
	Stop
	Mask
	Unmask
	Pause
	Resume
	// TagLeg sets the leg's recording-ids variable to Value.
	TagLeg
	// Settle: Rec's leg is gone and its RECORD_STOP never came: finish
	// it from its file.
	Settle
	// Follow sets the leg's channel variable recording_follow_transfer to
	// Value ("true" or "false"): whether the switch moves the leg's
	// recordings to the leg that replaces it in an attended transfer. It
	// is a channel variable, read for all of the leg's recordings at once
	// (mod_sofia, sofia.c): "true" only while every recording of the leg
	// follows transfers (SPEC 2.5: policy recordings stay with their leg).
	Follow
	// Moved: Rec moved with an attended transfer to the leg that replaced
	// its own (Rec.Leg is now that leg).
	Moved
	// Announce plays Rec's consent announcement to the parties of Leg (the
	// recorded leg's uuid): Value is the media to play
	// (table.AnnounceMedia of the announce setting: a path on the switch
	// or a tone_stream), Target who hears it, as uuid_broadcast's last
	// argument ("both", "aleg": the leg's own party, "bleg": the party
	// bridged to it). It comes right after Rec's Start (and the Mask of a
	// recording that starts masked), at the same event, so the file holds
	// the announcement from its start; Rec.AnnouncedAt says when. A call
	// hears the announcement of one recording reason (the deciding account,
	// scope, endpoint and origin) once: a second recording of that reason
	// on the call, or one that starts again after a stop or a transfer,
	// does not announce again; a recording continued from an earlier run
	// of the driver never does.
	Announce
	// Forget: the machine no longer follows Leg (its call ended, or it
	// hung up outside any call): the driver drops what it keeps of the
	// leg. It may come on another leg's event (the last hangup of the
	// call, or the RECORD_STOP after it).
	Forget
)

var commandNames = [...]string{"start", "stop", "mask", "unmask", "pause", "resume", "tag", "settle", "follow", "moved", "announce", "forget"}

func (k CommandKind) String() string { return commandNames[k] }

// Command is one thing for the driver to do.
type Command struct {
	Kind CommandKind
	Rec  *Recording
	// Leg and Value are TagLeg's, Follow's and Announce's; Leg is also
	// Forget's.
	Leg, Value string
	// Target is Announce's: both, aleg or bleg.
	Target string
}

// Leg returns the leg uuid, or nil.
func (m *Machine) Leg(uuid string) *Leg { return m.legs[uuid] }

// Legs returns how many legs the machine follows.
func (m *Machine) Legs() int { return len(m.legs) }

// Handle takes one event and returns the commands it causes, in order. The
// returned slice is valid until the next call.
func (m *Machine) Handle(ev *Event) []Command {
	m.out = m.out[:0]
	switch ev.Kind {
	case RecordStarted:
		if r := m.recs[ev.Rec]; r != nil && r.State == Requested {
			r.State = Running
			r.StartTS = ev.TS
			if r.maskFrom >= 0 {
				r.maskFrom = ev.TS
			}
		}
		return m.out
	case RecordStopped:
		if r := m.recs[ev.Rec]; r != nil {
			m.stopAt(r, ev.TS)
			if !r.Leg.hungup {
				m.setFollow(r.Leg)
			}
			m.reap(r.Call)
		}
		return m.out
	case StartRefused:
		if r := m.recs[ev.Rec]; r != nil && r.State == Requested {
			r.State = Failed
			delete(m.recs, r.ID)
			m.recs = shrink.Map(m.recs)
			m.reap(r.Call)
		}
		return m.out
	}
	if ev.Leg == "" {
		return m.out
	}
	l := m.legs[ev.Leg]
	if l == nil {
		if ev.Kind == Hangup || ev.Kind == HangupComplete || ev.Kind == DTMF {
			return m.out
		}
		l = m.newLeg(ev)
	}
	// A leg's class is a function of its latest variables and channel
	// name: it is worked out again only when one of them changed.
	changed := !l.classified
	if ev.Vars != nil && ev.Vars.CopyVars(l.Vars, m.want) {
		changed = true
	}
	if ev.ChannelName != "" && ev.ChannelName != l.Channel {
		l.Channel, changed = ev.ChannelName, true
	}
	if ev.Dest != "" {
		if l.Dest != "" && ev.Dest != l.Dest && l.isA && !l.loopback && l.call != nil && l.call.aFinal {
			// The leg runs the dialplan again with a new number: a
			// blind transfer (uuid_transfer or the transfer application
			// give the channel a new caller profile, switch_ivr.c
			// switch_ivr_session_transfer); KAZOO runs the callflow of
			// the number a call is transferred to.
			l.redial = true
		}
		l.Dest = ev.Dest
	}
	if ev.CallerNum != "" {
		l.CallerNum = ev.CallerNum
	}
	if changed && !l.hungup {
		l.classify(m.cfg.Classifier)
	}
	c := l.call
	switch ev.Kind {
	case Media:
		l.media = true
	case Answer:
		l.answered, l.media = true, true
		if c != nil && l == c.A && !c.hasB() {
			c.answered = true
		}
	case Execute:
		if c != nil && l == c.A && !c.hasB() && platformApps[strings.ToLower(ev.App)] {
			c.answered = true
		}
	case Bridge:
		m.bridge(ev.BridgeA, ev.BridgeB, ev.TS)
		c = l.call
	case Unbridge:
		if o := m.legs[ev.BridgeB]; o != nil && ev.BridgeA == l.UUID {
			o.bridged = false
		}
		l.bridged = false
	case DTMF:
		if c != nil && !c.ignored && c.acct != nil && len(ev.Digit) == 1 {
			m.dtmf(l, ev.Digit, ev.TS)
		}
		return m.out
	case Hangup, HangupComplete:
		l.hungup = true
		if c != nil {
			for _, r := range c.recs {
				if r.Leg == l && r.State == Waiting {
					r.State = Stopped
				}
			}
		}
		if ev.Kind == HangupComplete {
			// A recording still open (a start whose RECORD_START was
			// lost, or a recording continued from an earlier run) is
			// settled from its file: the switch sends RECORD_STOP before
			// CHANNEL_HANGUP_COMPLETE.
			if c != nil {
				for _, r := range c.recs {
					if r.Leg == l && r.State == Running && l.follow && r.FollowTransfer && l.partner != nil && !l.partner.hungup {
						// The switch moved it to the leg that replaced this
						// one (an attended transfer): it goes on there.
						r.Leg = l.partner
						m.emit(Command{Kind: Moved, Rec: r})
						m.setFollow(r.Leg)
						continue
					}
					if r.Leg == l && (r.State == Requested || r.State == Running) {
						if r.State == Requested {
							r.StartTS = ev.TS
						}
						m.stopAt(r, ev.TS)
						m.emit(Command{Kind: Settle, Rec: r})
					}
				}
			}
			if c == nil {
				delete(m.legs, l.UUID)
				m.legs = shrink.Map(m.legs)
				m.emit(Command{Kind: Forget, Leg: l.UUID})
			}
			m.reap(c)
		}
		return m.out
	}
	if c != nil && !c.ignored {
		m.progress(c, ev)
	}
	return m.out
}

// platformApps are applications that serve a call on the platform itself
// (voicemail, IVR, queue, conference, valet park): run on the A-leg
// before any B-leg, they fix the call's `to` as onnet (SPEC 2.3), as an
// answer of the A-leg does. Not park: KAZOO parks every inbound channel
// while it routes it (a call it then serves itself is answered), and not
// playback: an announcement before a bridge to the PSTN serves nothing.
var platformApps = map[string]bool{
	"voicemail": true, "conference": true, "ivr": true, "callcenter": true, "fifo": true, "valet_park": true,
}

// varApps are dialplan applications that only set variables: the A-leg's
// facts are not final while only they have run.
var varApps = map[string]bool{
	"set": true, "export": true, "unset": true, "multiset": true, "multiunset": true, "push": true,
	"unshift": true, "set_global": true, "set_profile_var": true, "set_user": true, "log": true,
	"kz_multiset": true, "kz_export": true, "kz_set": true, "kz_uuid_multiset": true, "kz_multiunset": true,
}

func (l *Leg) classify(cl classify.Classifier) {
	if cls, ok := cl.Classify(l.Vars, l.Channel); ok {
		l.class, l.classified = cls, true
	}
}

func (c *Call) hasB() bool {
	for _, l := range c.legs {
		if l != c.A {
			return true
		}
	}
	return false
}

// newLeg registers a leg: a leg that names a known leg as its originator
// joins that leg's call; the -b half of a loopback joins its -a half's
// call; an inbound leg that nothing originated starts a call.
func (m *Machine) newLeg(ev *Event) *Leg {
	l := &Leg{UUID: ev.Leg, Channel: ev.ChannelName, Direction: ev.Direction, Dest: ev.Dest, CallerNum: ev.CallerNum,
		Vars: map[string]string{}}
	m.legs[l.UUID] = l
	l.loopback = strings.HasPrefix(l.Channel, "loopback/")
	if l.loopback && ev.Vars != nil {
		// The halves name each other in their variables (Handle copies
		// every leg's variables once it is registered).
		ev.Vars.CopyVars(l.Vars, m.want)
	}
	if p := m.legs[ev.OtherLeg]; ev.OtherLeg != "" && p != nil {
		if p.call != nil {
			p.call.add(l)
		}
		return l
	}
	if l.loopback {
		if o := m.loopbackPeer(l); o != nil && o.call != nil {
			o.call.add(l)
			return l
		}
	}
	if ev.OtherLeg == "" && strings.EqualFold(ev.Direction, "inbound") && !(l.loopback && strings.HasSuffix(l.Channel, "-b")) {
		l.isA = true
		m.calls++
		c := &Call{ID: l.UUID, A: l, seq: m.calls, accounts: map[string]*acctState{}}
		if m.cfg.Table != nil {
			c.Table = m.cfg.Table()
		}
		c.ignored = c.Table == nil
		c.add(l)
	}
	return l
}

// loopbackPeer finds the other half of a loopback leg: by
// other_loopback_leg_uuid (FreeSWITCH's mod_loopback sets it on both
// halves: esl-captures/freeswitch-1.10.12/call-shapes/loopback_between_accounts_rx_raw.txt),
// else by the channel name (loopback/x-a and loopback/x-b).
func (m *Machine) loopbackPeer(l *Leg) *Leg {
	if o := m.legs[l.Vars["other_loopback_leg_uuid"]]; o != nil {
		return o
	}
	var peer string
	switch {
	case strings.HasSuffix(l.Channel, "-b"):
		peer = strings.TrimSuffix(l.Channel, "-b") + "-a"
	case strings.HasSuffix(l.Channel, "-a"):
		peer = strings.TrimSuffix(l.Channel, "-a") + "-b"
	default:
		return nil
	}
	for _, o := range m.legs {
		if o.Channel == peer && !o.hungup {
			return o
		}
	}
	return nil
}

func (c *Call) add(l *Leg) {
	l.call = c
	c.legs = append(c.legs, l)
}

// bridge marks two legs bridged at ts; legs of two calls merge the calls
// (the older absorbs the newer; when it is masked, the recordings that join
// it are masked from ts on), and a leg of no call joins the other's call.
func (m *Machine) bridge(a, b string, ts int64) {
	la, lb := m.legs[a], m.legs[b]
	if la == nil || lb == nil {
		if la != nil {
			la.bridged = true
		}
		return
	}
	la.bridged, lb.bridged = true, true
	la.partner, lb.partner = lb, la
	ca, cb := la.call, lb.call
	switch {
	case ca == cb:
	case ca == nil:
		cb.add(la)
	case cb == nil:
		ca.add(lb)
	default:
		keep, gone := ca, cb
		if cb.seq < ca.seq {
			keep, gone = cb, ca
		}
		for _, l := range gone.legs {
			keep.add(l)
		}
		keep.recs = append(keep.recs, gone.recs...)
		for _, r := range gone.recs {
			r.Call = keep
		}
		for id, st := range gone.accounts {
			if keep.accounts[id] == nil {
				keep.accounts[id] = st
			}
		}
		for k := range gone.announced {
			keep.heard(k)
		}
		gone.legs, gone.recs = nil, nil
		if keep.masked && !gone.masked {
			for _, r := range keep.recs {
				if r.Call == keep && r.maskFrom < 0 && (r.State == Requested || r.State == Running) {
					// A leg that joins a masked call is masked too.
					m.mask(r, ts)
				}
			}
		}
	}
}

// progress takes every decision whose facts are known, and starts the
// recordings whose leg is ready.
func (m *Machine) progress(c *Call, ev *Event) {
	ts := ev.TS
	a := c.A
	if c.acct == nil {
		if a == nil || !a.classified {
			return
		}
		acct, ok := c.Table.Account(a.class.Account)
		if !ok {
			c.ignored = true
			return
		}
		c.acct, c.from = acct, a.class.Network
		c.accounts[acct.ID] = &acctState{acct: acct}
	}
	if !c.aFinal && m.aFinal(c, ev) {
		// The A-leg's facts are final: the account inbound decision and
		// the callflows of its destination number.
		if a.class.Account == c.acct.ID {
			c.from = a.class.Network
		}
		if id := m.cfg.Classifier.InteractionID(a.Vars); id != "" {
			c.ID = id
		}
		c.aFinal = true
		st := c.accounts[c.acct.ID]
		if r, ok := c.acct.AccountInbound(c.from); ok {
			st.decided, st.recorded = true, true
			m.addPolicy(c, a, c.acct, r, TriggerMedia)
		}
		m.callflows(c, a)
	}
	for _, l := range c.legs {
		if l.redial && !l.hungup {
			l.redial = false
			m.callflows(c, l)
		}
	}
	if c.aFinal && !c.toKnown {
		for _, b := range c.legs {
			if b == a || b.hungup && !b.classified {
				continue
			}
			switch {
			case b.loopback:
				// A call routed to another account of the platform.
				c.to, c.toKnown = table.Onnet, true
			case b.classified:
				c.to, c.toKnown = b.class.Network, true
				if b.class.Account != c.acct.ID {
					c.to = table.Onnet
				}
			}
			if c.toKnown {
				break
			}
		}
		if !c.toKnown && c.answered {
			c.to, c.toKnown = table.Onnet, true
		}
		if c.toKnown {
			st := c.accounts[c.acct.ID]
			if !st.decided {
				st.decided = true
				if r, ok := c.acct.AccountOutbound(c.to); ok {
					st.recorded = true
					m.addPolicy(c, a, c.acct, r, TriggerMedia)
				}
			}
			if a.class.Account == c.acct.ID && a.class.Network == table.Onnet && a.class.Device != "" {
				if r, ok := c.acct.CallerDecision(a.class.Device, c.to); ok {
					m.addPolicy(c, a, c.acct, r, TriggerMedia)
				}
			}
		}
	}
	if c.aFinal {
		for _, b := range c.legs {
			if b == a || b.loopback || !b.classified || b.hungup {
				continue
			}
			acct, from := c.acct, c.from
			if b.class.Account != c.acct.ID {
				// Another account of the platform: its own decisions on
				// its own legs, the call coming from onnet.
				x, ok := c.Table.Account(b.class.Account)
				if !ok {
					continue
				}
				acct, from = x, table.Onnet
				st := c.accounts[x.ID]
				if st == nil {
					st = &acctState{acct: x}
					c.accounts[x.ID] = st
				}
				if !st.decided {
					st.decided = true
					r, ok := x.AccountInbound(from)
					if !ok {
						r, ok = x.AccountOutbound(b.class.Network)
					}
					if ok {
						st.recorded = true
						m.addPolicy(c, b, x, r, TriggerMedia)
					}
				}
			}
			if b.calleeIn == c || b.class.Device == "" || !b.answered {
				continue
			}
			if b.isA && b.call == c && b == c.A {
				continue
			}
			b.calleeIn = c
			if m.hasRunning(b, ScopeCallee) {
				continue
			}
			if r, ok := acct.CalleeDecision(b.class.Device, from); ok {
				m.addPolicy(c, b, acct, r, TriggerAnswer)
			}
		}
	}
	for _, r := range c.recs {
		if r.State != Waiting || r.Leg.hungup || r.Call != c {
			continue
		}
		if !r.Leg.media || !r.waitFor.met(r.Leg) {
			continue
		}
		if t := r.waitFor.trigger(); t != "" {
			r.Trigger = t
		} else if r.Trigger == TriggerMedia && r.Leg.answered {
			r.Trigger = TriggerAnswer
		}
		m.start(r, ts)
	}
}

// aFinal reports whether the A-leg's facts are final at ev: at anything
// but the leg's creation or a variable-setting application of its
// dialplan (variables a "set" sets show on the leg's next event), and at
// any event once a B-leg exists or the leg has media.
func (m *Machine) aFinal(c *Call, ev *Event) bool {
	if !c.A.classified {
		return false
	}
	if c.hasB() || c.A.media {
		return true
	}
	switch ev.Kind {
	case Create, Other, Ring:
		return false
	case Execute:
		return ev.Leg != c.A.UUID || !varApps[strings.ToLower(ev.App)]
	}
	return true
}

// hasRunning reports whether a recording of scope is requested or
// running on l (the recordings of l's call: a merge brings a leg's
// recordings along).
func (m *Machine) hasRunning(l *Leg, scope Scope) bool {
	for _, r := range l.call.recs {
		if r.Leg == l && r.is(scope) && (r.State == Requested || r.State == Running) {
			return true
		}
	}
	return false
}

// addPolicy adds a recording decided by a table cell.
func (m *Machine) addPolicy(c *Call, l *Leg, acct *table.Account, r table.Recording, trigger Trigger) {
	rec := &Recording{Call: c, Leg: l, Account: acct, Scope: scopeOf(r.Scope), Origin: r.Origin,
		Direction: r.Direction.String(), Network: r.Network.String(), Trigger: trigger,
		Settings: *r.Cell.Settings, Provenance: *r.Cell.Provenance}
	if r.Scope != table.ScopeAccount {
		rec.Endpoint = r.Endpoint
	}
	m.add(rec)
}

func (m *Machine) add(r *Recording) {
	r.First = r.Leg
	r.maskFrom, r.pauseFrom = -1, -1
	switch {
	case r.Settings.RecordOnBridge:
		r.waitFor = waitBridge
	case r.Settings.RecordOnAnswer:
		r.waitFor = waitAnswer
	}
	if r.is(ScopeCallee) {
		r.waitFor = waitMedia // a callee decision is taken at its answer already
		if r.Settings.RecordOnBridge && !r.Leg.bridged {
			r.waitFor = waitBridge
		}
	}
	r.Call.recs = append(r.Call.recs, r)
}

// callflows runs the actions of the callflow matching the destination
// number of l (the A-leg when the call's facts are final, or a leg
// transferred to a new number), in order. A start adds a recording of l,
// unless a callflow recording of the same origin already runs on it (a
// call transferred back to the number it came in on); a stop stops every
// callflow recording of the call: those of earlier actions of the list
// (which never start) and those already running.
func (m *Machine) callflows(c *Call, l *Leg) {
	acct := c.acct
	if l.classified && l.class.Account != acct.ID {
		x, ok := c.Table.Account(l.class.Account)
		if !ok {
			return
		}
		acct = x
	}
	cf, ok := acct.MatchCallflow(l.Dest)
	if !ok {
		return
	}
	for i := range cf.Actions {
		act := &cf.Actions[i]
		origin := act.Origin
		if origin == "" {
			label := act.Label
			if label == "" {
				label = cf.ID
			}
			origin = "callflow : " + label
		}
		switch {
		case act.Module == table.RecordCall && act.Action == table.Stop:
			for _, r := range c.recs {
				if r.is(ScopeCallflow) && r.Account == acct && (r.State == Waiting || r.State == Requested || r.State == Running) {
					r.StoppedBy = "callflow " + cf.ID
					m.stop(r)
				}
			}
		case act.Module == table.RecordCall || act.Module == table.RecordCaller:
			if m.running(c, l, ScopeCallflow, origin) {
				continue
			}
			m.add(&Recording{Call: c, Leg: l, Account: acct, Scope: ScopeCallflow, Origin: origin,
				Trigger: TriggerCallflow, Settings: *act.Settings, Provenance: *act.Provenance, MediaName: act.MediaName,
				ReadOnly: act.Module == table.RecordCaller, FollowTransfer: act.FollowTransfer})
		}
	}
}

// running reports whether a recording of scope and origin is waiting,
// requested or running on l.
func (m *Machine) running(c *Call, l *Leg, scope Scope, origin string) bool {
	for _, r := range c.recs {
		if r.Leg == l && r.is(scope) && r.Origin == origin && (r.State == Waiting || r.State == Requested || r.State == Running) {
			return true
		}
	}
	return false
}

// start starts a recording; one that starts while the call is masked
// starts masked. An adopted recording of an earlier run is continued
// instead.
func (m *Machine) start(r *Recording, ts int64) {
	if a, ok := m.takeAdopted(r); ok {
		m.continueAdopted(r, &a)
		return
	}
	r.ID = m.cfg.NewID()
	r.State = Requested
	r.StartTS = ts
	m.recs[r.ID] = r
	m.emit(Command{Kind: Start, Rec: r})
	if r.Call.masked {
		r.maskFrom = ts
		m.emit(Command{Kind: Mask, Rec: r})
	}
	m.announce(r, ts)
	m.tag(r)
	m.setFollow(r.Leg)
}

// announce emits the consent announcement of a recording that starts at
// ts, unless its settings have none or the call heard the announcement of
// its reason already.
func (m *Machine) announce(r *Recording, ts int64) {
	if r.Settings.Announce == "" {
		return
	}
	if !r.Call.heard(r.reasonKey()) {
		return
	}
	r.AnnouncedAt = ts
	to := r.Settings.AnnounceTo
	if to == "" {
		to = "both"
	}
	m.emit(Command{Kind: Announce, Rec: r, Leg: r.Leg.UUID, Value: table.AnnounceMedia(r.Settings.Announce), Target: to})
}

// heard records that the call heard the announcement of a reason; it
// reports whether it had not before.
func (c *Call) heard(key string) bool {
	if c.announced[key] {
		return false
	}
	if c.announced == nil {
		c.announced = map[string]bool{}
	}
	c.announced[key] = true
	return true
}

// reasonKey names why a recording is made, for its announcement: the
// account that decided it, its scope, endpoint and origin.
func (r *Recording) reasonKey() string {
	var id string
	if r.Account != nil {
		id = r.Account.ID
	}
	return id + "\x00" + string(r.Scope) + "\x00" + r.Endpoint + "\x00" + r.Origin
}

// setFollow sets the leg's recording_follow_transfer to whether every
// recording it carries follows transfers, when that changed: the switch
// moves all of a leg's recordings or none, and a policy recording stays
// with its leg (SPEC 2.5).
func (m *Machine) setFollow(l *Leg) {
	want, any := true, false
	if l.call != nil {
		for _, r := range l.call.recs {
			if r.Leg == l && (r.State == Requested || r.State == Running) {
				any = true
				want = want && r.FollowTransfer
			}
		}
	}
	want = want && any
	if want != l.follow {
		l.follow = want
		m.emit(Command{Kind: Follow, Leg: l.UUID, Value: strconv.FormatBool(want)})
	}
}

func (m *Machine) tag(r *Recording) {
	r.Leg.recIDs = append(r.Leg.recIDs, r.ID)
	m.emit(Command{Kind: TagLeg, Rec: r, Leg: r.Leg.UUID, Value: strings.Join(r.Leg.recIDs, ",")})
}

func (m *Machine) emit(c Command) { m.out = append(m.out, c) }

func (m *Machine) stop(r *Recording) {
	switch r.State {
	case Waiting:
		r.State = Stopped
	case Requested, Running:
		m.emit(Command{Kind: Stop, Rec: r})
	}
}

// stopAt marks a recording stopped at ts, closing a mask in force.
func (m *Machine) stopAt(r *Recording, ts int64) {
	delete(m.recs, r.ID)
	m.recs = shrink.Map(m.recs)
	if r.State == Requested {
		r.StartTS = ts
	}
	if r.maskFrom >= 0 {
		r.masks = append(r.masks, Range{StartMS: r.fileMS(r.maskFrom), EndMS: r.fileMS(ts)})
		r.maskFrom = -1
	}
	if r.pauseFrom >= 0 {
		r.paused += ts - r.pauseFrom
		r.pauseFrom = -1
	}
	r.State = Stopped
}

// StopLost marks a recording stopped at ts whose leg is gone and whose
// RECORD_STOP was lost (the driver found out by asking the switch).
func (m *Machine) StopLost(r *Recording, ts int64) {
	if m.recs[r.ID] != r {
		return
	}
	m.stopAt(r, ts)
	r.Leg.hungup = true
	m.reap(r.Call)
}

// reap forgets a call once every leg has hung up and no recording is
// still requested or running.
func (m *Machine) reap(c *Call) {
	if c == nil {
		return
	}
	for _, l := range c.legs {
		if !l.hungup {
			return
		}
	}
	for _, r := range c.recs {
		if r.State == Requested || r.State == Running {
			return
		}
	}
	for _, l := range c.legs {
		if m.legs[l.UUID] == l {
			delete(m.legs, l.UUID)
			m.emit(Command{Kind: Forget, Leg: l.UUID})
		}
	}
	m.legs = shrink.Map(m.legs)
}
