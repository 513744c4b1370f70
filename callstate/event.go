package callstate

// EventKind is what happened to a leg.
type EventKind uint8

// The events the machine takes. The runtime maps the switch's events onto
// them; the simulator maps a scenario's effects onto them.
const (
	// Create: a leg appeared (CHANNEL_CREATE).
	Create EventKind = iota
	// Execute: an application runs on the leg (CHANNEL_EXECUTE).
	Execute
	// Ring: the leg rings (CHANNEL_PROGRESS).
	Ring
	// Media: the leg has early media (CHANNEL_PROGRESS_MEDIA).
	Media
	// Answer: the leg is answered (CHANNEL_ANSWER).
	Answer
	// Bridge: BridgeA and BridgeB are bridged (CHANNEL_BRIDGE).
	Bridge
	// Unbridge: the bridge of BridgeA and BridgeB ended (CHANNEL_UNBRIDGE).
	Unbridge
	// Park: the leg is parked (CHANNEL_PARK).
	Park
	// DTMF: one digit arrived on the leg.
	DTMF
	// Hangup: the leg hangs up (CHANNEL_HANGUP); its recordings stop
	// with it.
	Hangup
	// HangupComplete: the leg is gone (CHANNEL_HANGUP_COMPLETE); a
	// recording of it whose RECORD_STOP never came is settled.
	HangupComplete
	// Other: any other channel event; it only carries facts (variables).
	Other
	// RecordStarted: the switch started recording Rec (RECORD_START).
	RecordStarted
	// RecordStopped: the switch stopped recording Rec (RECORD_STOP).
	RecordStopped
	// StartRefused: the switch refused to start Rec; no RECORD_START or
	// RECORD_STOP will follow.
	StartRefused
)

var eventNames = [...]string{"create", "execute", "ring", "media", "answer", "bridge", "unbridge", "park", "dtmf",
	"hangup", "hangup_complete", "other", "record_started", "record_stopped", "start_refused"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "unknown"
}

// Vars gives the channel variables an event carries.
type Vars interface {
	// CopyVars copies the variables named in want (lower-case names) into
	// dst, keyed by lower-case name, and reports whether any value
	// changed. The machine keeps only the variables it reads: copying
	// every variable of every event would be most of its cost.
	CopyVars(dst map[string]string, want map[string]bool) bool
}

// VarMap is a Vars of variables already keyed by lower-case name.
type VarMap map[string]string

// CopyVars copies the variables of m named in want into dst and reports
// whether any value changed.
func (m VarMap) CopyVars(dst map[string]string, want map[string]bool) bool {
	changed := false
	for k, v := range m {
		if !want[k] {
			continue
		}
		if old, ok := dst[k]; !ok || old != v {
			dst[k] = v
			changed = true
		}
	}
	return changed
}

// Event is one thing that happened on the switch.
type Event struct {
	Kind EventKind
	// TS is the event's time on the switch's clock, in microseconds.
	TS int64
	// Leg is the channel's Unique-ID.
	Leg string
	// Vars are the channel variables the event carries; nil when it
	// carries none (DTMF).
	Vars Vars
	// ChannelName, Direction (Call-Direction), Dest
	// (Caller-Destination-Number) and CallerNum
	// (Caller-Caller-ID-Number) are the leg's headers; empty when the
	// event did not carry them.
	ChannelName, Direction, Dest, CallerNum string
	// OtherLeg is Other-Leg-Unique-ID (or variable_originator) on a leg's
	// first event: the leg that originated it.
	OtherLeg string
	// App and AppData are the application of Execute.
	App, AppData string
	// BridgeA and BridgeB are the legs of Bridge and Unbridge.
	BridgeA, BridgeB string
	// Digit is the digit of DTMF.
	Digit string
	// Rec is the recording id of RecordStarted, RecordStopped and
	// StartRefused.
	Rec string
}
