package scenario

import (
	"crypto/sha1"
	_ "embed"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/recpol/recpol/cue/input"
)

//go:embed schema.cue
var schemaSource []byte

// Step actions, the values of Step.Do.
const (
	DoCreate   = "create"   // the leg appears: CHANNEL_CREATE
	DoSet      = "set"      // variables set on the leg (dialplan "set"): visible on later events only
	DoExecute  = "execute"  // a dialplan application runs: CHANNEL_EXECUTE
	DoRing     = "ring"     // the leg rings: CHANNEL_PROGRESS
	DoAnswer   = "answer"   // the leg is answered: CHANNEL_ANSWER
	DoBridge   = "bridge"   // Leg is bridged with Other: CHANNEL_BRIDGE on Leg
	DoDTMF     = "dtmf"     // digits arrive on the leg: one DTMF event per digit
	DoTransfer = "transfer" // the leg is transferred to a new destination number
	DoHangup   = "hangup"   // the leg hangs up, and with it every leg bridged to it

	DoMedia      = "media"       // the leg has early media: CHANNEL_PROGRESS_MEDIA
	DoUUIDBridge = "uuid_bridge" // uuid_bridge Leg Other: their third legs hang up, then they are bridged
	DoPark       = "park"        // the park application runs on the leg: CHANNEL_PARK
	DoIntercept  = "intercept"   // Leg picks up the ringing leg Other (intercept -bleg)
	DoBowout     = "bowout"      // the loopback whose -a half is Leg bows out
	DoRefer      = "refer"       // attended transfer: Leg (the transferor's first leg) REFERs with Replaces of Other (its consultation leg)
)

// Defaults applied by Normalize.
const (
	DefaultCause        = "NORMAL_CLEARING"
	DefaultDTMFSource   = "RTP"
	DefaultDTMFDuration = 2000
	DefaultContext      = "default"
)

// Scenario is a set of scripted calls. See the package documentation for
// the file format.
type Scenario struct {
	// Calls are played independently of each other, each from its StartMS.
	Calls []Call `json:"calls"`
}

// Call is one call: its legs and the steps that happen to them.
type Call struct {
	// ID names the call in errors and logs, and seeds generated leg uuids.
	ID string `json:"id"`
	// StartMS is when the call's step times begin, on the virtual clock,
	// relative to the start of the scenario.
	StartMS int64 `json:"start_ms,omitempty"`
	// Legs are the channels of the call.
	Legs []Leg `json:"legs"`
	// Steps happen in the order written; their AtMS must not decrease.
	Steps []Step `json:"steps"`
}

// Leg is one channel of a call.
type Leg struct {
	// Name identifies the leg within its call (steps refer to it).
	Name string `json:"name"`
	// UUID is the channel's Unique-ID; when empty Normalize derives one
	// deterministically from the call id and the leg name (LegUUID).
	UUID string `json:"uuid,omitempty"`
	// Direction is the Call-Direction: "inbound" (default for a leg with no
	// parent) or "outbound" (default for a leg with a parent).
	Direction string `json:"direction,omitempty"`
	// Parent names the leg that originated this one (the caller's leg of a
	// bridge). A leg with a parent carries Other-Leg-Unique-ID and
	// variable_originator naming the parent from its CHANNEL_CREATE on.
	Parent string `json:"parent,omitempty"`
	// ChannelName is the Channel-Name; default "sofia/internal/<number>"
	// with the caller id number (inbound) or destination number (outbound).
	ChannelName string `json:"channel_name,omitempty"`
	// CallerIDName and CallerIDNumber are the caller id of the leg.
	CallerIDName   string `json:"caller_id_name,omitempty"`
	CallerIDNumber string `json:"caller_id_number,omitempty"`
	// DestinationNumber is Caller-Destination-Number.
	DestinationNumber string `json:"destination_number,omitempty"`
	// Context is Caller-Context; default "default".
	Context string `json:"context,omitempty"`
	// Variables are channel variables the leg carries from its
	// CHANNEL_CREATE on (as a callee's dial-string variables do). Set
	// variables later with a "set" step.
	Variables map[string]string `json:"variables,omitempty"`
	// LoopbackOf, on the -b half of a loopback pair (mod_loopback), names
	// its -a half: the -a half is the outbound leg its caller's bridge
	// originated (loopback/<x>-a), the -b half the inbound leg that runs
	// the dialplan for <x> (loopback/<x>-b). The -b half has no parent,
	// carries a copy of the -a half's variables from its CHANNEL_CREATE
	// on, and must be created after the -a half.
	LoopbackOf string `json:"loopback_of,omitempty"`
}

// Step is one thing that happens to a leg at a time on the virtual clock.
type Step struct {
	// AtMS is the time of the step in milliseconds from the call's StartMS.
	AtMS int64 `json:"at_ms"`
	// Do is the action, one of the Do* constants.
	Do string `json:"do"`
	// Leg names the leg the step happens to.
	Leg string `json:"leg"`
	// Other names the other leg of a "bridge" or "uuid_bridge", the
	// ringing leg an "intercept" picks up.
	Other string `json:"other,omitempty"`
	// Variables are the variables a "set" step sets.
	Variables map[string]string `json:"variables,omitempty"`
	// Application and Data are the application of an "execute" step.
	Application string `json:"application,omitempty"`
	Data        string `json:"data,omitempty"`
	// Digits are the DTMF digits of a "dtmf" step (0-9, *, #, A-D).
	Digits string `json:"digits,omitempty"`
	// Source is DTMF-Source: RTP (default, RFC 2833), ENDPOINT (SIP INFO),
	// INBAND_AUDIO, APP or UNKNOWN.
	Source string `json:"source,omitempty"`
	// Duration is DTMF-Duration in FreeSWITCH's unit (samples at 8 kHz);
	// default 2000.
	Duration int `json:"duration,omitempty"`
	// DestinationNumber is the new destination of a "transfer" step.
	DestinationNumber string `json:"destination_number,omitempty"`
	// Via is how a "transfer" step transfers: ViaApplication (default,
	// the transfer application runs on the leg) or ViaAPI (uuid_transfer,
	// e.g. a SIP REFER: no CHANNEL_EXECUTE).
	Via string `json:"via,omitempty"`
	// Cause is the Hangup-Cause of a "hangup" step; default NORMAL_CLEARING.
	Cause string `json:"cause,omitempty"`
}

// Errors is the list of every error found in a scenario, each a
// diagnostic positioned in its file as `recpol vet` positions a policy's.
type Errors = input.Diagnostics

// maxScenarioBytes bounds the size of a scenario file: a larger one is
// refused, never read whole.
const maxScenarioBytes = 16 << 20

// loader reads scenario files against schema.cue.
var loader = input.Loader{
	Kind:       "scenario",
	SchemaName: "scenario/schema.cue",
	Schema:     schemaSource,
	Definition: "#Scenario",
	MaxBytes:   maxScenarioBytes,
}

// ParseFile reads a scenario from a .json or .cue file.
func ParseFile(path string) (*Scenario, error) {
	in, err := loader.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(in)
}

// Parse parses, checks and normalizes a scenario. JSON is valid CUE, so one
// parser reads both; name is the file name used in error positions. The
// error, when not nil, is an Errors listing every problem with its
// position.
func Parse(name string, data []byte) (*Scenario, error) {
	in, err := loader.Load(name, data)
	if err != nil {
		return nil, err
	}
	return parse(in)
}

// parse decodes, checks and normalizes a loaded scenario.
func parse(in *input.Input) (*Scenario, error) {
	var sc Scenario
	if err := in.Decode(&sc); err != nil {
		return nil, err
	}
	if errs := sc.check(in.At); len(errs) > 0 {
		return nil, errs
	}
	sc.Normalize()
	return &sc, nil
}

// Validate checks a scenario built in Go (Parse already does). Errors name
// the offending field by its path, e.g. calls[0].steps[2].leg.
func (sc *Scenario) Validate() error {
	if errs := sc.check(func(string) input.Position { return input.Position{} }); len(errs) > 0 {
		return errs
	}
	return nil
}

var (
	uuidRe   = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z-]{0,127}$`)
	digitsRe = regexp.MustCompile(`^[0-9*#A-Da-d]+$`)
	// tokenRe is what may reach an event-socket command line: no space, no
	// control character.
	tokenRe = regexp.MustCompile(`^[^\s\x00-\x1f\x7f]*$`)
	varRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
)

// check validates sc; pos maps a field path to a position.
func (sc *Scenario) check(pos func(string) input.Position) Errors {
	var errs Errors
	add := func(path, format string, args ...any) {
		errs = append(errs, input.Diagnostic{Code: input.CodeInvalid, Severity: input.Error, Position: pos(path),
			Path: path, Message: path + ": " + fmt.Sprintf(format, args...)})
	}
	if len(sc.Calls) == 0 {
		add("calls", "a scenario needs at least one call")
	}
	callIDs := map[string]bool{}
	uuids := map[string]string{}
	for ci := range sc.Calls {
		c := &sc.Calls[ci]
		cp := fmt.Sprintf("calls[%d]", ci)
		if c.ID == "" {
			add(cp+".id", "missing call id")
		} else if callIDs[c.ID] {
			add(cp+".id", "duplicate call id %q", c.ID)
		}
		callIDs[c.ID] = true
		if c.StartMS < 0 {
			add(cp+".start_ms", "negative start")
		}
		legs := map[string]*Leg{}
		for li := range c.Legs {
			l := &c.Legs[li]
			lp := fmt.Sprintf("%s.legs[%d]", cp, li)
			switch {
			case l.Name == "":
				add(lp+".name", "missing leg name")
			case legs[l.Name] != nil:
				add(lp+".name", "duplicate leg name %q", l.Name)
			}
			legs[l.Name] = l
			if l.Direction != "" && l.Direction != "inbound" && l.Direction != "outbound" {
				add(lp+".direction", "direction must be inbound or outbound, not %q", l.Direction)
			}
			u := l.UUID
			if u == "" {
				u = LegUUID(c.ID, l.Name)
			} else if !uuidRe.MatchString(u) {
				add(lp+".uuid", "uuid %q must be letters, digits and dashes", u)
			}
			if prev, dup := uuids[u]; dup {
				add(lp+".uuid", "uuid %s already used by %s", u, prev)
			}
			uuids[u] = c.ID + "/" + l.Name
			for _, f := range []struct{ name, v string }{{"channel_name", l.ChannelName}, {"caller_id_number", l.CallerIDNumber}, {"destination_number", l.DestinationNumber}, {"context", l.Context}} {
				if !tokenRe.MatchString(f.v) {
					add(lp+"."+f.name, "%q contains a space or a control character", f.v)
				}
			}
			checkVars(lp+".variables", l.Variables, add)
		}
		for li, l := range c.Legs {
			if l.Parent == "" {
				continue
			}
			if l.Parent == l.Name {
				add(fmt.Sprintf("%s.legs[%d].parent", cp, li), "a leg cannot be its own parent")
			} else if legs[l.Parent] == nil {
				add(fmt.Sprintf("%s.legs[%d].parent", cp, li), "unknown leg %q", l.Parent)
			}
		}
		halves := map[string]string{} // -a half: its -b half
		for li, l := range c.Legs {
			if l.LoopbackOf == "" {
				continue
			}
			lp := fmt.Sprintf("%s.legs[%d].loopback_of", cp, li)
			a := legs[l.LoopbackOf]
			switch {
			case l.LoopbackOf == l.Name:
				add(lp, "a leg cannot be its own loopback half")
			case a == nil:
				add(lp, "unknown leg %q", l.LoopbackOf)
			case a.LoopbackOf != "":
				add(lp, "leg %q is itself a -b half", l.LoopbackOf)
			case halves[l.LoopbackOf] != "":
				add(lp, "leg %q already has the -b half %q", l.LoopbackOf, halves[l.LoopbackOf])
			case l.Parent != "":
				add(lp, "the -b half of a loopback is inbound: it has no parent (its -a half is)")
			}
			halves[l.LoopbackOf] = l.Name
		}
		var sp string
		x := newExpander(c, func(field, format string, args ...any) { add(sp+"."+field, format, args...) })
		var last int64
		for si := range c.Steps {
			s := &c.Steps[si]
			sp = fmt.Sprintf("%s.steps[%d]", cp, si)
			if s.AtMS < last {
				add(sp+".at_ms", "at_ms %d is before the previous step's %d: steps must be in time order", s.AtMS, last)
			}
			if s.AtMS > last {
				last = s.AtMS
			}
			if s.Do == DoSet {
				checkVars(sp+".variables", s.Variables, add)
			}
			x.step(si)
		}
	}
	return errs
}

func checkVars(path string, vars map[string]string, add func(path, format string, args ...any)) {
	for _, k := range keys(vars) {
		if !varRe.MatchString(k) {
			add(path, "variable name %q must be letters, digits, '_', '.' or '-'", k)
		}
		if strings.ContainsAny(vars[k], "\r\n") {
			add(path+"."+k, "value contains a newline")
		}
	}
}

// HangupSet returns the legs that hang up when leg does, in the order their
// hangups happen: leg itself, the legs bridged to it and the other half of
// a loopback pair (transitively), then the legs they originated that are
// still up (cancelled originates). up says whether a leg is up; bridged
// lists a leg's bridge partners. Call.Effects uses it, so the fake switch
// and the simulator agree.
func HangupSet(c *Call, leg string, up func(string) bool, bridged func(string) []string) []string {
	seen := map[string]bool{leg: true}
	out := []string{leg}
	// link adds, after the legs listed, those linked to out[from:]
	// (bridged, or the other half of a loopback), transitively.
	link := func(from int) {
		for i := from; i < len(out); i++ {
			linked := bridged(out[i])
			for _, l := range c.Legs {
				if l.LoopbackOf != "" && l.LoopbackOf == out[i] {
					linked = append(linked, l.Name)
				}
				if l.Name == out[i] && l.LoopbackOf != "" {
					linked = append(linked, l.LoopbackOf)
				}
			}
			for _, o := range linked {
				if !seen[o] && up(o) {
					seen[o] = true
					out = append(out, o)
				}
			}
		}
	}
	link(0)
	for i := 0; i < len(out); i++ {
		for _, l := range c.Legs {
			if l.Parent == out[i] && !seen[l.Name] && up(l.Name) {
				seen[l.Name] = true
				out = append(out, l.Name)
				link(len(out) - 1)
			}
		}
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// SortedKeys returns the names of vars in the order the fake switch puts
// them on the wire (sorted; a CUE or JSON object has no order).
func SortedKeys(vars map[string]string) []string { return keys(vars) }

// Normalize fills in defaults: leg uuids, directions, channel names
// (loopback/<x>-a and loopback/<x>-b for a loopback pair, x the -a half's
// destination number, as mod_loopback names them), contexts, DTMF sources
// and durations, hangup causes, transfer modes. Parse calls it.
func (sc *Scenario) Normalize() {
	for ci := range sc.Calls {
		c := &sc.Calls[ci]
		for li := range c.Legs {
			b := &c.Legs[li]
			if b.LoopbackOf == "" {
				continue
			}
			a := c.Leg(b.LoopbackOf)
			if a == nil {
				continue
			}
			x := a.DestinationNumber
			if x == "" {
				x = b.DestinationNumber
			}
			if x == "" {
				x = a.Name
			}
			if a.ChannelName == "" {
				a.ChannelName = "loopback/" + x + "-a"
			}
			if b.ChannelName == "" {
				b.ChannelName = "loopback/" + x + "-b"
			}
		}
		for li := range c.Legs {
			l := &c.Legs[li]
			if l.UUID == "" {
				l.UUID = LegUUID(c.ID, l.Name)
			}
			if l.Direction == "" {
				l.Direction = "inbound"
				if l.Parent != "" {
					l.Direction = "outbound"
				}
			}
			if l.Context == "" {
				l.Context = DefaultContext
			}
			if l.ChannelName == "" {
				n := l.CallerIDNumber
				if l.Direction == "outbound" {
					n = l.DestinationNumber
				}
				if n == "" {
					n = l.Name
				}
				l.ChannelName = "sofia/internal/" + n
			}
		}
		for si := range c.Steps {
			s := &c.Steps[si]
			switch s.Do {
			case DoDTMF:
				if s.Source == "" {
					s.Source = DefaultDTMFSource
				}
				if s.Duration == 0 {
					s.Duration = DefaultDTMFDuration
				}
			case DoHangup:
				if s.Cause == "" {
					s.Cause = DefaultCause
				}
			case DoTransfer:
				if s.Via == "" {
					s.Via = ViaApplication
				}
			}
		}
	}
}

// Leg returns the leg named name, or nil.
func (c *Call) Leg(name string) *Leg {
	for i := range c.Legs {
		if c.Legs[i].Name == name {
			return &c.Legs[i]
		}
	}
	return nil
}

// EndMS is the time of the call's last step, relative to the scenario
// start.
func (c *Call) EndMS() int64 {
	if len(c.Steps) == 0 {
		return c.StartMS
	}
	return c.StartMS + c.Steps[len(c.Steps)-1].AtMS
}

// LegUUID is the uuid a leg without one gets: a version-5-style uuid derived
// from the call id and the leg name, the same on every run.
func LegUUID(callID, leg string) string {
	h := sha1.Sum([]byte("recpol-scenario\x00" + callID + "\x00" + leg))
	h[6] = (h[6] & 0x0f) | 0x50
	h[8] = (h[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// String renders a step for logs.
func (s Step) String() string {
	var b strings.Builder
	b.WriteString(strconv.FormatInt(s.AtMS, 10) + "ms " + s.Do + " " + s.Leg)
	if s.Other != "" {
		b.WriteString(" " + s.Other)
	}
	if s.Digits != "" {
		b.WriteString(" " + s.Digits)
	}
	return b.String()
}

// Clone returns a deep copy of the call.
func (c Call) Clone() Call {
	out := c
	out.Legs = make([]Leg, len(c.Legs))
	for i, l := range c.Legs {
		l.Variables = cloneVars(l.Variables)
		out.Legs[i] = l
	}
	out.Steps = make([]Step, len(c.Steps))
	for i, s := range c.Steps {
		s.Variables = cloneVars(s.Variables)
		out.Steps[i] = s
	}
	return out
}

// Clone returns a deep copy of the scenario.
func (sc *Scenario) Clone() *Scenario {
	out := &Scenario{Calls: make([]Call, len(sc.Calls))}
	for i, c := range sc.Calls {
		out.Calls[i] = c.Clone()
	}
	return out
}

func cloneVars(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
