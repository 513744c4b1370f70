package simulate

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/recpol/recpol/scenario"
	"github.com/recpol/recpol/table"
)

// Predicted is a recording the simulator predicts for a scenario call:
// which leg, why, with which settings, and when it starts and stops on the
// scenario's clock. The runtime, run against the fake switch on the same
// scenario, must produce exactly these recordings.
type Predicted struct {
	Call     string `json:"call"`
	Leg      string `json:"leg"` // the scenario leg's name
	LegUUID  string `json:"leg_uuid"`
	Scope    string `json:"scope"` // account, caller, callee, callflow, metaflow
	Endpoint string `json:"endpoint,omitempty"`
	Origin   string `json:"origin"`
	// Trigger is what started it: create (the leg's facts became known),
	// answer, bridge, callflow or dtmf.
	Trigger    string            `json:"trigger"`
	Settings   *table.Settings   `json:"-"`
	Provenance *table.Provenance `json:"-"`
	StartMS    int64             `json:"start_ms"`
	StopMS     int64             `json:"stop_ms"`
	DurationMS int64             `json:"duration_ms"`
	Masked     []Span            `json:"masked"`
	// Kept is false for a recording shorter than its record_min_sec (or
	// empty): the switch deletes it.
	Kept bool `json:"kept"`
}

// Span is a part of a recording file, in milliseconds from its start.
type Span struct {
	StartMS int64 `json:"start_ms"`
	EndMS   int64 `json:"end_ms"`
}

// PredictScenario plays a scenario against a table with the runtime's
// timing rules, for the recpol classification preset (recpol_account,
// recpol_device, recpol_network on every leg):
//
//   - a leg is classified from the latest variables its events carried (a
//     variable set by the dialplan shows on the leg's next event, not on
//     the CHANNEL_EXECUTE of the set itself); the A-leg is the leg with no
//     parent and direction inbound;
//   - the account inbound decision and the callflow of the A-leg's
//     destination number are taken when the A-leg is classified; the
//     account outbound and caller decisions when the first B-leg is (its
//     network is the call's "to"); a callee decision when its leg answers;
//   - a recording with record_on_answer / record_on_bridge waits for its
//     leg's answer / bridge (a bridge marks both legs);
//   - metaflows act on DTMF: mask, unmask, pause and resume on every
//     running recording of the call, start, stop and toggle on the
//     pressing endpoint's leg; a recording that starts while the call is
//     masked starts masked;
//   - a transfer stops the leg's recordings that do not follow transfers
//     (those started by policy); a hangup stops its legs' recordings; the
//     time limit stops a recording.
func PredictScenario(t *table.Table, sc *scenario.Scenario) ([]Predicted, error) {
	cp := sc.Clone()
	cp.Normalize()
	var out []Predicted
	for i := range cp.Calls {
		p := &predictor{t: t, c: &cp.Calls[i], legs: map[string]*pLeg{}}
		if err := p.run(); err != nil {
			return nil, fmt.Errorf("call %s: %w", cp.Calls[i].ID, err)
		}
		out = append(out, p.result()...)
	}
	return out, nil
}

// WritePredictionJSON writes predictions as {"format_version": 1,
// "policy_version", "recordings": [...]} with each recording's settings and
// provenance in the table's JSON form.
func WritePredictionJSON(w io.Writer, version string, ps []Predicted) error {
	type rec struct {
		Predicted
		Settings   JSONSettings   `json:"settings"`
		Provenance JSONProvenance `json:"provenance"`
	}
	out := struct {
		FormatVersion int    `json:"format_version"`
		PolicyVersion string `json:"policy_version"`
		Recordings    []rec  `json:"recordings"`
	}{FormatVersion: 1, PolicyVersion: version, Recordings: []rec{}}
	for _, p := range ps {
		jr := RecordingJSON(table.Recording{Cell: &table.Cell{Settings: p.Settings, Provenance: p.Provenance}})
		out.Recordings = append(out.Recordings, rec{Predicted: p, Settings: jr.Settings, Provenance: jr.Provenance})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

type pLeg struct {
	def               *scenario.Leg
	vars              map[string]string
	pending           map[string]string // set, not yet on an event
	up, hungup        bool
	answered, bridged bool
	classified        bool
	account, device   string
	network           table.Network
	calleeDone        bool
	collector         table.Collector
}

type pRec struct {
	Predicted
	leg            *pLeg
	waitFor        string
	state          int // 0 waiting, 1 running, 2 stopped
	limitAt        int64
	followTransfer bool
	maskFrom       int64
	pauseFrom      int64
	paused         int64
	masks          []Span
}

type predictor struct {
	t                 *table.Table
	c                 *scenario.Call
	legs              map[string]*pLeg
	a                 *pLeg
	acct              *table.Account
	ignored           bool
	from, to          table.Network
	inbound, outbound bool
	recorded          bool
	masked            bool
	recs              []*pRec
	end               int64
}

func (p *predictor) run() error {
	for i := range p.c.Legs {
		l := &p.c.Legs[i]
		p.legs[l.Name] = &pLeg{def: l, vars: map[string]string{}, pending: map[string]string{}}
	}
	for _, st := range p.c.Steps {
		now := p.c.StartMS + st.AtMS
		p.expire(now)
		l := p.legs[st.Leg]
		if l == nil {
			return fmt.Errorf("step %s: no leg %q", st, st.Leg)
		}
		if st.Do != scenario.DoCreate && (!l.up || l.hungup) {
			continue
		}
		// Variables a set step sets reach the event socket only on the
		// leg's next event that carries variables (as on FreeSWITCH, the
		// CHANNEL_EXECUTE of "set" fires before it runs).
		switch st.Do {
		case scenario.DoSet, scenario.DoExecute, scenario.DoAnswer, scenario.DoBridge, scenario.DoTransfer, scenario.DoHangup:
			for k, v := range l.pending {
				l.vars[k] = v
			}
			clear(l.pending)
		}
		switch st.Do {
		case scenario.DoCreate:
			l.up = true
			for k, v := range l.def.Variables {
				l.vars[k] = v
			}
			if l.def.Parent == "" && l.def.Direction == "inbound" && p.a == nil {
				p.a = l
			}
		case scenario.DoSet:
			for _, k := range scenario.SortedKeys(st.Variables) {
				l.pending[k] = st.Variables[k]
			}
		case scenario.DoAnswer:
			l.answered = true
		case scenario.DoBridge:
			l.bridged = true
			if o := p.legs[st.Other]; o != nil {
				o.bridged = true
			}
		case scenario.DoDTMF:
			if p.acct != nil && !p.ignored {
				for _, d := range st.Digits {
					p.dtmf(l, string(d), now)
				}
			}
		case scenario.DoTransfer:
			for _, r := range p.recs {
				if r.leg == l && !r.followTransfer {
					p.stop(r, now)
				}
			}
		case scenario.DoHangup:
			up := func(n string) bool { x := p.legs[n]; return x.up && !x.hungup }
			bridged := func(n string) []string { return p.bridgedWith(n) }
			for _, n := range scenario.HangupSet(p.c, st.Leg, up, bridged) {
				h := p.legs[n]
				h.hungup = true
				for _, r := range p.recs {
					if r.leg == h {
						p.stop(r, now)
					}
				}
			}
			continue
		}
		p.progress(now, st.Do)
	}
	return nil
}

// bridgedWith lists the legs bridged to leg n: the scenario's bridge steps
// up to now, both ways.
func (p *predictor) bridgedWith(n string) []string {
	var out []string
	for _, st := range p.c.Steps {
		if st.Do != scenario.DoBridge {
			continue
		}
		if st.Leg == n && p.legs[st.Other].bridged {
			out = append(out, st.Other)
		}
		if st.Other == n && p.legs[st.Leg].bridged {
			out = append(out, st.Leg)
		}
	}
	return out
}

func (p *predictor) classify(l *pLeg) bool {
	if l.classified {
		return true
	}
	acct := l.vars["recpol_account"]
	switch {
	case acct == "":
		return false
	case l.vars["recpol_network"] == "onnet":
		l.network = table.Onnet
	case l.vars["recpol_network"] == "offnet":
		l.network = table.Offnet
	default:
		return false
	}
	l.account, l.device, l.classified = acct, l.vars["recpol_device"], true
	return true
}

func (p *predictor) progress(now int64, do string) {
	a := p.a
	if a == nil || p.ignored || !a.up {
		return
	}
	if p.acct == nil {
		if !p.classify(a) {
			return
		}
		acct, ok := p.t.Account(a.account)
		if !ok {
			p.ignored = true
			return
		}
		p.acct, p.from = acct, a.network
	}
	if !p.inbound {
		p.inbound = true
		if r, ok := p.acct.AccountInbound(p.from); ok {
			p.recorded = true
			p.addCell(a, r, "create")
		}
		p.callflows()
	}
	var bs []*pLeg
	for i := range p.c.Legs {
		if l := p.legs[p.c.Legs[i].Name]; l != a && l.up && l.def.Parent != "" {
			bs = append(bs, l)
			p.classify(l)
		}
	}
	if !p.outbound {
		for _, b := range bs {
			if b.classified {
				p.to, p.outbound = b.network, true
				break
			}
		}
		if p.outbound {
			if !p.recorded {
				if r, ok := p.acct.AccountOutbound(p.to); ok {
					p.recorded = true
					p.addCell(a, r, "create")
				}
			}
			if a.network == table.Onnet && a.device != "" {
				if r, ok := p.acct.CallerDecision(a.device, p.to); ok {
					p.addCell(a, r, "create")
				}
			}
		}
	}
	for _, b := range bs {
		if b.calleeDone || !b.classified || b.device == "" || b.account != p.acct.ID || !b.answered || b.hungup {
			continue
		}
		b.calleeDone = true
		if r, ok := p.acct.CalleeDecision(b.device, p.from); ok {
			p.addCell(b, r, "answer")
		}
	}
	for _, r := range p.recs {
		if r.state != 0 || r.leg.hungup {
			continue
		}
		if (r.waitFor == "answer" && !r.leg.answered) || (r.waitFor == "bridge" && !r.leg.bridged) {
			continue
		}
		if r.waitFor != "" {
			r.Trigger = r.waitFor
		}
		p.start(r, now)
	}
}

func (p *predictor) addCell(l *pLeg, r table.Recording, trigger string) {
	rec := &pRec{leg: l, Predicted: Predicted{Scope: r.Scope.String(), Origin: r.Origin, Trigger: trigger,
		Settings: r.Cell.Settings, Provenance: r.Cell.Provenance}}
	if r.Scope != table.ScopeAccount {
		rec.Endpoint = "device:" + r.Endpoint
	}
	p.add(rec)
}

func (p *predictor) add(r *pRec) {
	r.Call, r.Leg, r.LegUUID = p.c.ID, r.leg.def.Name, r.leg.def.UUID
	r.maskFrom, r.pauseFrom = -1, -1
	switch {
	case r.Settings.RecordOnBridge:
		r.waitFor = "bridge"
	case r.Settings.RecordOnAnswer:
		r.waitFor = "answer"
	}
	if r.Scope == "callee" {
		r.waitFor = ""
		if r.Settings.RecordOnBridge && !r.leg.bridged {
			r.waitFor = "bridge"
		}
	}
	p.recs = append(p.recs, r)
}

func (p *predictor) callflows() {
	cf, ok := p.acct.MatchCallflow(p.a.def.DestinationNumber)
	if !ok {
		return
	}
	for i := range cf.Actions {
		act := &cf.Actions[i]
		label := act.Label
		if label == "" {
			label = cf.ID
		}
		if act.Module == "record_call" && act.Action == "stop" {
			continue // stops what the same callflow would start: nothing yet
		}
		p.add(&pRec{leg: p.a, followTransfer: act.FollowTransfer, Predicted: Predicted{Scope: "callflow",
			Origin: "callflow : " + label, Trigger: "callflow", Settings: act.Settings, Provenance: act.Provenance}})
	}
}

func (p *predictor) start(r *pRec, now int64) {
	r.state = 1
	r.StartMS = now
	r.limitAt = now + int64(r.Settings.TimeLimit)*1000
	if p.masked {
		r.maskFrom = now
	}
}

// fileMS is a time's position in the recording's file.
func (r *pRec) fileMS(now int64) int64 {
	paused := r.paused
	if r.pauseFrom >= 0 {
		paused += now - r.pauseFrom
	}
	return now - r.StartMS - paused
}

func (p *predictor) stop(r *pRec, now int64) {
	switch r.state {
	case 0:
		r.state = 2
		r.StartMS, r.StopMS = -1, -1
	case 1:
		if r.limitAt < now {
			now = r.limitAt
		}
		if r.maskFrom >= 0 {
			r.masks = append(r.masks, Span{r.fileMS(r.maskFrom), r.fileMS(now)})
			r.maskFrom = -1
		}
		if r.pauseFrom >= 0 {
			r.paused += now - r.pauseFrom
			r.pauseFrom = -1
		}
		r.state = 2
		r.StopMS = now
		r.DurationMS = now - r.StartMS - r.paused
		r.Kept = r.DurationMS > 0 && r.DurationMS >= int64(r.Settings.RecordMinSec)*1000
	}
}

// expire stops the recordings whose time limit has passed before now.
func (p *predictor) expire(now int64) {
	for _, r := range p.recs {
		if r.state == 1 && r.limitAt <= now {
			p.stop(r, r.limitAt)
		}
	}
}

func (p *predictor) result() []Predicted {
	var out []Predicted
	for _, r := range p.recs {
		if r.state == 0 || r.StartMS < 0 {
			continue
		}
		if r.state == 1 { // never hung up: still running at the end
			r.StopMS = -1
		}
		r.Masked = r.masks
		if r.Masked == nil {
			r.Masked = []Span{}
		}
		out = append(out, r.Predicted)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartMS < out[j].StartMS })
	return out
}

func (p *predictor) metaflowsOf(l *pLeg) *table.Metaflows {
	if !l.classified || l.device == "" || l.account != p.acct.ID {
		return nil
	}
	d, ok := p.acct.Devices[l.device]
	if !ok {
		return nil
	}
	return d.Metaflows
}

func (p *predictor) dtmf(pressed *pLeg, digit string, now int64) {
	for i := range p.c.Legs {
		l := p.legs[p.c.Legs[i].Name]
		if !l.up || l.hungup {
			continue
		}
		m := p.metaflowsOf(l)
		if m == nil {
			continue
		}
		own := l == pressed
		if (m.ListenOn == "self" && !own) || (m.ListenOn == "peer" && own) {
			continue
		}
		if b, ok := l.collector.Feed(m, digit, now); ok {
			p.metaflow(l, m, b, now)
		}
	}
}

func (p *predictor) metaflow(l *pLeg, m *table.Metaflows, b *table.MetaflowBinding, now int64) {
	own := func() []*pRec {
		var out []*pRec
		for _, r := range p.recs {
			if r.leg == l && r.Scope == "metaflow" && r.state == 1 {
				out = append(out, r)
			}
		}
		return out
	}
	start := func() {
		r := &pRec{leg: l, followTransfer: b.Action.FollowTransfer, Predicted: Predicted{Scope: "metaflow",
			Endpoint: "device:" + l.device, Origin: "metaflow : " + m.BindingDigit + b.Code, Trigger: "dtmf",
			Settings: b.Action.Settings, Provenance: b.Action.Provenance}}
		p.add(r)
		r.waitFor = ""
		p.start(r, now)
	}
	switch b.Action.Action {
	case "start":
		if len(own()) == 0 {
			start()
		}
	case "stop":
		for _, r := range own() {
			p.stop(r, now)
		}
	case "toggle":
		rs := own()
		if len(rs) == 0 {
			start()
		}
		for _, r := range rs {
			if r.pauseFrom >= 0 {
				p.resume(r, now)
			} else {
				p.pause(r, now)
			}
		}
	case "mask", "unmask", "pause", "resume":
		switch b.Action.Action {
		case "mask":
			p.masked = true
		case "unmask":
			p.masked = false
		}
		for _, r := range p.recs {
			if r.state != 1 {
				continue
			}
			switch b.Action.Action {
			case "mask":
				if r.maskFrom < 0 {
					r.maskFrom = now
				}
			case "unmask":
				if r.maskFrom >= 0 {
					r.masks = append(r.masks, Span{r.fileMS(r.maskFrom), r.fileMS(now)})
					r.maskFrom = -1
				}
			case "pause":
				p.pause(r, now)
			case "resume":
				p.resume(r, now)
			}
		}
	}
}

func (p *predictor) pause(r *pRec, now int64) {
	if r.pauseFrom >= 0 {
		return
	}
	if r.maskFrom >= 0 {
		r.masks = append(r.masks, Span{r.fileMS(r.maskFrom), r.fileMS(now)})
		r.maskFrom = now
	}
	r.pauseFrom = now
}

func (p *predictor) resume(r *pRec, now int64) {
	if r.pauseFrom < 0 {
		return
	}
	r.paused += now - r.pauseFrom
	r.pauseFrom = -1
	if r.maskFrom >= 0 {
		r.maskFrom = now
	}
}
