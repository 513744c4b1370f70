package scenario

// EffectKind is one primitive thing that happens to the legs of a call as a
// switch shows it. A step of a scenario ("transfer", "uuid_bridge",
// "bowout", ...) expands into one or more effects (Call.Effects); the fake
// switch renders each effect as the events FreeSWITCH sends for it, and the
// simulator feeds the same effects to the call state machine, so the two
// read one expansion of every call shape.
type EffectKind uint8

// The primitive effects.
const (
	// EffCreate: Leg appears (CHANNEL_CREATE) with its definition's
	// variables; the -b half of a loopback carries a copy of its -a
	// half's variables as well.
	EffCreate EffectKind = iota
	// EffSet: Vars are set on Leg (the CHANNEL_EXECUTE of "set" fires
	// before they apply): they are visible from the leg's next event on.
	EffSet
	// EffExecute: application App with Data runs on Leg (CHANNEL_EXECUTE).
	EffExecute
	// EffRing: Leg rings (CHANNEL_PROGRESS).
	EffRing
	// EffMedia: Leg has early media (CHANNEL_PROGRESS_MEDIA).
	EffMedia
	// EffAnswer: Leg is answered (CHANNEL_ANSWER).
	EffAnswer
	// EffBridge: Leg and Other are bridged (CHANNEL_BRIDGE on Leg with
	// Bridge-A-Unique-ID = Leg, Bridge-B-Unique-ID = Other).
	EffBridge
	// EffUnbridge: the bridge of Leg and Other ends (CHANNEL_UNBRIDGE on
	// Leg).
	EffUnbridge
	// EffPark: Leg is parked (CHANNEL_PARK).
	EffPark
	// EffDTMF: one DTMF Digit arrives on Leg (Source, Duration).
	EffDTMF
	// EffTransfer: Leg's destination becomes Dest and the dialplan runs
	// again on it; App is "transfer" when the transfer application ran
	// (CHANNEL_EXECUTE transfer first), empty for uuid_transfer, which
	// sends no CHANNEL_EXECUTE.
	EffTransfer
	// EffHangup: Leg hangs up with Cause (CHANNEL_HANGUP); Vars, when
	// set, are variables the leg gets as it hangs up (a loopback bow-out's
	// loopback_hangup_cause and loopback_bowout_other_uuid). The leg is
	// gone from here on: its recordings end now.
	EffHangup
	// EffHangupComplete: Leg's hangup completes (one RECORD_STOP per
	// running recording, then CHANNEL_HANGUP_COMPLETE). It follows the
	// leg's EffHangup, at the same time, maybe after other legs' effects
	// (FreeSWITCH's order in the captures: the UNBRIDGE of a bridge the
	// leg made comes between its HANGUP and its HANGUP_COMPLETE, and a
	// loopback bow-out interleaves both halves). A consumer that only
	// follows which legs are up can ignore it.
	EffHangupComplete
	// EffReplace: Leg is replaced by Other in an attended transfer (a SIP
	// REFER with Replaces): when Leg's channel variable
	// recording_follow_transfer is true, its running recordings move to
	// Other and go on there (mod_sofia's attended transfer calls
	// switch_core_media_bug_transfer_recordings: src/mod/endpoints/
	// mod_sofia/sofia.c, signalwire/freeswitch). No event shows it.
	EffReplace
)

var effectNames = [...]string{"create", "set", "execute", "ring", "media", "answer", "bridge", "unbridge", "park", "dtmf", "transfer", "hangup", "hangup_complete", "replace"}

// String is the kind's name, e.g. "hangup_complete".
func (k EffectKind) String() string {
	if int(k) < len(effectNames) {
		return effectNames[k]
	}
	return "unknown"
}

// Effect is one primitive effect at one time.
type Effect struct {
	// AtMS is the time from the start of the scenario (the call's StartMS
	// plus the step's AtMS).
	AtMS int64
	// Step is the index of the step that caused the effect.
	Step int
	// Kind is what happens.
	Kind EffectKind
	// Leg is the name of the leg the effect happens to.
	Leg string
	// Other is the other leg of a bridge or unbridge (Bridge-B-Unique-ID).
	Other string
	// Vars are the variables of EffSet (and of an EffHangup, see there).
	Vars map[string]string
	// App and Data are the application of EffExecute and EffTransfer
	// (EffTransfer: App "transfer" and Data the destination when the
	// transfer application ran, both empty for uuid_transfer).
	App, Data string
	// Digit is the DTMF-Digit of EffDTMF.
	Digit string
	// Source is the DTMF-Source of EffDTMF.
	Source string
	// Duration is the DTMF-Duration of EffDTMF.
	Duration int
	// Dest is the new destination number of EffTransfer.
	Dest string
	// Cause is the Hangup-Cause of EffHangup.
	Cause string
}
