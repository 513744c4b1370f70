// Package scenario describes scripted calls on a virtual clock: the legs of
// each call with their channel variables, and the steps that happen to
// them (create, set, execute, ring, media, answer, bridge, dtmf, transfer,
// hangup, uuid_bridge, park, intercept, bowout). Call.Effects expands the
// steps into primitive effects (effects.go); the fake switch renders them
// as events and the simulator follows them, so both read one expansion of
// every call shape. The fake FreeSWITCH (fakeswitch) plays scenarios as
// event-socket events; the simulator reads the same files to predict the
// recordings a policy makes. The package is pure data: no networking, no
// clock.
//
// # File format
//
// A scenario is a CUE or JSON file (JSON is CUE, one parser reads both),
// checked against a closed schema (schema.cue): an unknown field, a wrong
// type or an unknown action is an error with its file:line:column. Times
// are integers in milliseconds of virtual time.
//
//	{"calls": [{
//	   "id": "c1",              // unique; seeds generated uuids
//	   "start_ms": 0,           // when the call starts, from the scenario start
//	   "legs": [
//	     {"name": "a",          // steps refer to legs by name
//	      "uuid": "...",        // optional; default LegUUID(call id, name)
//	      "direction": "inbound",   // default: inbound, outbound when parent is set
//	      "caller_id_name": "Alice", "caller_id_number": "1001",
//	      "destination_number": "1002",
//	      "channel_name": "sofia/internal/1001",  // optional
//	      "context": "default",                    // optional
//	      "variables": {"k": "v"}},   // on the leg from its CHANNEL_CREATE on
//	     {"name": "b1", "parent": "a",  // originated by a: Other-Leg-Unique-ID
//	      "variables": {"recpol_account": "acme"}},
//	     {"name": "lb", "loopback_of": "la"}],  // -b half of the loopback whose -a half is la
//	   "steps": [                        // in time order
//	     {"at_ms": 0,     "do": "create",   "leg": "a"},
//	     {"at_ms": 10,    "do": "set",      "leg": "a", "variables": {"recpol_device": "d1"}},
//	     {"at_ms": 20,    "do": "execute",  "leg": "a", "application": "bridge", "data": "user/1002"},
//	     {"at_ms": 30,    "do": "create",   "leg": "b1"},
//	     {"at_ms": 40,    "do": "ring",     "leg": "b1"},
//	     {"at_ms": 1000,  "do": "answer",   "leg": "b1"},
//	     {"at_ms": 1000,  "do": "answer",   "leg": "a"},
//	     {"at_ms": 1010,  "do": "bridge",   "leg": "a", "other": "b1"},
//	     {"at_ms": 5000,  "do": "dtmf",     "leg": "a", "digits": "*72", "source": "RTP"},
//	     {"at_ms": 9000,  "do": "transfer", "leg": "b1", "destination_number": "2000"},
//	     {"at_ms": 60000, "do": "hangup",   "leg": "a", "cause": "NORMAL_CLEARING"}]}]}
//
// Step times are relative to the call's start_ms; steps at the same time
// happen in the order written.
//
// # What each step means
//
//   - create: the leg appears (CHANNEL_CREATE). It carries the leg's
//     variables; a leg with a parent also carries Other-Leg-Unique-ID and
//     variable_originator naming the parent. A parent must be created first.
//   - set: variables set by the dialplan after creation. As on a real
//     FreeSWITCH they show up only on events after the step (one
//     CHANNEL_EXECUTE of "set" per variable, in name order), never on the
//     leg's CHANNEL_CREATE.
//   - execute: a dialplan application starts (CHANNEL_EXECUTE with
//     Application and Application-Data).
//   - ring: the leg rings (CHANNEL_PROGRESS).
//   - media: the leg has early media (CHANNEL_PROGRESS_MEDIA), before it
//     is answered.
//   - answer: CHANNEL_ANSWER.
//   - bridge: leg and other are bridged; CHANNEL_BRIDGE fires on leg only
//     (the caller's side) with Bridge-A-Unique-ID = leg, Bridge-B-Unique-ID
//     = other.
//   - dtmf: one DTMF event per digit on that leg, with DTMF-Digit,
//     DTMF-Duration (duration, FreeSWITCH's unit, default 2000) and
//     DTMF-Source (source, default RTP), and no channel variables.
//   - transfer: the leg is transferred to destination_number and runs the
//     dialplan again; the channel and its recordings carry on. via is
//     "application" (default: the transfer application runs on the leg,
//     CHANNEL_EXECUTE transfer) or "api" (uuid_transfer, as for a SIP
//     REFER: no CHANNEL_EXECUTE). A leg bridged to it hangs up first, with
//     what it originated, then the bridge ends (CHANNEL_UNBRIDGE). Later
//     set/execute/create steps play the new dialplan run.
//   - hangup: the leg hangs up with cause (default NORMAL_CLEARING), and
//     with it every leg bridged to it, the other half of a loopback, and
//     every leg they originated that is still up (HangupSet gives the
//     order; a follower never answered nor bridged gets
//     ORIGINATOR_CANCEL). Each leg fires CHANNEL_HANGUP, CHANNEL_UNBRIDGE
//     for a bridge it made, one RECORD_STOP per running recording,
//     CHANNEL_HANGUP_COMPLETE.
//   - uuid_bridge: leg and other (both answered) are bridged as the
//     uuid_bridge api does (an attended transfer, a parked call picked
//     up): a third leg bridged to either hangs up and its bridge ends,
//     then CHANNEL_EXECUTE uuid_bridge on both and CHANNEL_BRIDGE on leg.
//   - park: the park application runs on the leg (CHANNEL_EXECUTE park,
//     CHANNEL_PARK); the leg must not be bridged.
//   - intercept: leg (up, not bridged) picks up other, a ringing leg that
//     another leg (its parent, the caller) originated: leg and the caller
//     are answered if they were not, other hangs up with PICKED_OFF (the
//     caller's other ringing legs are cancelled), and leg and the caller
//     are uuid_bridged.
//   - bowout: the loopback pair whose -a half is leg bows out: both halves
//     (answered, each bridged to an outer leg) hang up with
//     NORMAL_CLEARING and the two outer legs are uuid_bridged.
//   - refer: an attended transfer by a SIP REFER with Replaces, as
//     mod_sofia does it: leg is the transferor's leg of the first call and
//     other its leg of the consultation, each bridged to one party; the
//     recordings of each move to its party when the leg's
//     recording_follow_transfer variable is true (EffReplace), then the two
//     parties are uuid_bridged (leg and other hang up).
//
// A leg hung up by a transfer, uuid_bridge, intercept, bowout or refer is gone
// like any hung-up leg: a later step on it is an error. Call.Effects
// lists the exact effects of each step.
//
// Steps on a leg before its create or after its hangup are errors. Legs
// still up after the last step stay up.
//
// Variable names are letters, digits, '_', '.', '-'; numbers, names and
// uuids may not contain spaces or control characters, so nothing in a
// scenario can break an event-socket command line.
package scenario
