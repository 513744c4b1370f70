package callstate

import "github.com/recpol/recpol/table"

// Scope says which decision started a recording. A Recording keeps it as a
// string (Recording.Scope) because the driver stores it as is in a
// recording's metadata; the machine only ever writes these values.
type Scope string

// The scopes of a recording.
const (
	// ScopeAccount, ScopeCaller and ScopeCallee are the decisions of a
	// table's cells (table.Scope).
	ScopeAccount Scope = "account"
	ScopeCaller  Scope = "caller"
	ScopeCallee  Scope = "callee"
	// ScopeCallflow is a callflow action's recording.
	ScopeCallflow Scope = "callflow"
	// ScopeMetaflow is a metaflow action's recording (a DTMF code).
	ScopeMetaflow Scope = "metaflow"
	// ScopeAPI is an operator's recording (Machine.Act).
	ScopeAPI Scope = "api"
)

// scopeOf is the scope of a recording a table cell decided.
func scopeOf(s table.Scope) Scope {
	switch s {
	case table.ScopeCaller:
		return ScopeCaller
	case table.ScopeCallee:
		return ScopeCallee
	}
	return ScopeAccount
}

// is reports whether the recording is of scope s.
func (r *Recording) is(s Scope) bool { return r.Scope == s }

// Trigger says what started a recording.
type Trigger string

// The triggers of a recording.
const (
	// TriggerMedia: the leg's early media (a policy recording without
	// record_on_answer or record_on_bridge).
	TriggerMedia Trigger = "media"
	// TriggerAnswer: the leg's answer.
	TriggerAnswer Trigger = "answer"
	// TriggerBridge: the leg's bridge.
	TriggerBridge Trigger = "bridge"
	// TriggerCallflow: a callflow action.
	TriggerCallflow Trigger = "callflow"
	// TriggerDTMF: a metaflow code.
	TriggerDTMF Trigger = "dtmf"
	// TriggerAPI: an operator (Machine.Act).
	TriggerAPI Trigger = "api"
	// TriggerRestored: a recording of an earlier run of the driver,
	// adopted again (Machine.Adopt).
	TriggerRestored Trigger = "restored"
)

// wait is what a Waiting recording waits for, besides its leg's media,
// before it starts.
type wait uint8

// The waits of a recording.
const (
	waitMedia  wait = iota // nothing more: it starts with the leg's media
	waitAnswer             // the leg's answer (record_on_answer)
	waitBridge             // the leg's bridge (record_on_bridge)
)

// met reports whether a leg (with media) has what the wait is for.
func (w wait) met(l *Leg) bool {
	switch w {
	case waitAnswer:
		return l.answered
	case waitBridge:
		return l.bridged
	}
	return true
}

// trigger is what starts a recording once the wait is over; "" for
// waitMedia, whose recording keeps the trigger it was added with.
func (w wait) trigger() Trigger {
	switch w {
	case waitAnswer:
		return TriggerAnswer
	case waitBridge:
		return TriggerBridge
	}
	return ""
}
