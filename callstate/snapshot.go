package callstate

import "sort"

// CallView is a read-only view of a live call: its legs and its
// recordings that are requested or running.
type CallView struct {
	// ID is the call's interaction id.
	ID string `json:"interaction_id"`
	// Account is the caller's account id, "" until it is known.
	Account string `json:"account,omitempty"`
	// Legs are the call's legs, oldest first.
	Legs []LegView `json:"legs"`
	// Recordings are the call's recordings the switch was asked to
	// start and that have not stopped.
	Recordings []RecordingView `json:"recordings"`
}

// LegView is one leg of a CallView.
type LegView struct {
	UUID      string `json:"uuid"`
	Channel   string `json:"channel,omitempty"`
	Direction string `json:"direction,omitempty"`
	Dest      string `json:"destination,omitempty"`
	CallerNum string `json:"caller_id_number,omitempty"`
	// Account and Device are the leg's classification, when it has one.
	Account string `json:"account,omitempty"`
	Device  string `json:"device,omitempty"`
	HungUp  bool   `json:"hung_up,omitempty"`
}

// RecordingView is one recording of a CallView.
type RecordingView struct {
	ID       string `json:"recording_id"`
	Leg      string `json:"leg"`
	Scope    Scope  `json:"scope"`
	Origin   string `json:"origin"`
	Endpoint string `json:"endpoint,omitempty"`
	// State is "requested" (start sent) or "running" (RECORD_START seen).
	State string `json:"state"`
	// Masked reports whether the recording is masked now.
	Masked bool `json:"masked"`
}

// Calls returns a view of the calls in progress (at least one leg up),
// in the order they were created. The views share nothing with the
// machine.
func (m *Machine) Calls() []CallView {
	seen := map[*Call]bool{}
	var calls []*Call
	for _, l := range m.legs {
		c := l.call
		if c == nil || seen[c] || c.ignored {
			continue
		}
		seen[c] = true
		calls = append(calls, c)
	}
	sort.Slice(calls, func(i, j int) bool { return calls[i].seq < calls[j].seq })
	var out []CallView
	for _, c := range calls {
		up := false
		v := CallView{ID: c.ID, Legs: []LegView{}, Recordings: []RecordingView{}}
		if c.acct != nil {
			v.Account = c.acct.ID
		}
		for _, l := range c.legs {
			up = up || !l.hungup
			lv := LegView{UUID: l.UUID, Channel: l.Channel, Direction: l.Direction, Dest: l.Dest,
				CallerNum: l.CallerNum, HungUp: l.hungup}
			if l.classified {
				lv.Account, lv.Device = l.class.Account, l.class.Device
			}
			v.Legs = append(v.Legs, lv)
		}
		if !up {
			continue
		}
		for _, r := range c.recs {
			var st string
			switch r.State {
			case Requested:
				st = "requested"
			case Running:
				st = "running"
			default:
				continue
			}
			v.Recordings = append(v.Recordings, RecordingView{ID: r.ID, Leg: r.Leg.UUID, Scope: r.Scope, Origin: r.Origin,
				Endpoint: r.Endpoint, State: st, Masked: r.maskFrom >= 0})
		}
		out = append(out, v)
	}
	return out
}
