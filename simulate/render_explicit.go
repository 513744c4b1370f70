package simulate

import (
	"fmt"
	"strings"

	"github.com/recpol/recpol/table"
)

// metaflowGroup is a set of devices of an account whose resolved metaflows
// are the same (usually every device inheriting the account's).
type metaflowGroup struct {
	Devices   []string // "device:<id>", sorted
	Metaflows *table.Metaflows
}

// metaflowGroups returns the devices of an account that have metaflows,
// grouped by identical resolved metaflows, in device order. Users are left
// out: DTMF is heard on a device's leg, and a device resolves its owner's
// metaflows already.
func metaflowGroups(a *table.Account) []metaflowGroup {
	var out []metaflowGroup
	idx := map[string]int{}
	for _, id := range a.DeviceIDs() {
		mf := a.Devices[id].Metaflows
		if mf == nil {
			continue
		}
		k := strings.Join(metaflowsLines(mf), "\n")
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, metaflowGroup{Metaflows: mf})
		}
		out[i].Devices = append(out[i].Devices, "device:"+id)
	}
	return out
}

// metaflowsTitle says how a metaflow listens.
func metaflowsTitle(mf *table.Metaflows) string {
	return fmt.Sprintf("binding_digit %s, digit_timeout %d ms, listen_on %s", mf.BindingDigit, mf.DigitTimeout, mf.ListenOn)
}

// metaflowsLines describes every code of metaflows: keys, the scope it
// comes from, the action and what it does.
func metaflowsLines(mf *table.Metaflows) []string {
	out := []string{metaflowsTitle(mf)}
	for _, c := range dtmfCodes(mf) {
		out = append(out, fmt.Sprintf("%s (from %s) %s: %s", c.Keys, c.Binding.From, describeAction(&c.Binding.Action), bindingEffect(mf, c.Binding)))
	}
	return out
}

// dtmfCode is a DTMF code of metaflows as pressed ("*72", or "*/pattern/").
type dtmfCode struct {
	Keys    string
	Pattern bool
	Binding *table.MetaflowBinding
}

// dtmfCodes lists the codes of metaflows, numbers then patterns.
func dtmfCodes(mf *table.Metaflows) []dtmfCode {
	var out []dtmfCode
	for i := range mf.Numbers {
		out = append(out, dtmfCode{Keys: mf.BindingDigit + mf.Numbers[i].Code, Binding: &mf.Numbers[i]})
	}
	for i := range mf.Patterns {
		out = append(out, dtmfCode{Keys: mf.BindingDigit + "/" + mf.Patterns[i].Code + "/", Pattern: true, Binding: &mf.Patterns[i]})
	}
	return out
}

// callflowLines describes an account's callflows: what answers, and each
// action.
func callflowLines(a *table.Account) []string {
	var out []string
	for _, cf := range a.Callflows {
		out = append(out, fmt.Sprintf("%s: %s", cf.ID, dialledList(cf)))
		for i := range cf.Actions {
			out = append(out, fmt.Sprintf("  %d. %s", i+1, describeAction(&cf.Actions[i])))
		}
		recs := callflowRecordings(cf)
		if len(recs) == 0 {
			out = append(out, "  records nothing")
		}
		for _, r := range recs {
			out = append(out, "  records the "+r.Leg+"-leg: "+strings.TrimPrefix(recordingWho(r), "callflow a-leg: "))
		}
	}
	return out
}

// explicitText writes an account's callflows and metaflow codes under its
// truth table.
func explicitText(a *table.Account) []string {
	var out []string
	if cl := callflowLines(a); len(cl) > 0 {
		out = append(out, "callflows (recordings of the caller's leg of a call to their numbers, beside the account's and the caller's)")
		for _, l := range cl {
			out = append(out, "  "+l)
		}
	}
	for _, g := range metaflowGroups(a) {
		lines := metaflowsLines(g.Metaflows)
		out = append(out, fmt.Sprintf("metaflows of %s (%s)", strings.Join(g.Devices, ", "), lines[0]))
		for _, l := range lines[1:] {
			out = append(out, "  "+l)
		}
	}
	return out
}

// JSONCallflow is a callflow in the simulation's JSON: what answers,
// its actions and the recordings a call to it starts on the A-leg.
type JSONCallflow struct {
	ID         string          `json:"id"`
	Numbers    []string        `json:"numbers"`
	Patterns   []string        `json:"patterns"`
	Actions    []JSONAction    `json:"actions"`
	Recordings []JSONRecording `json:"recordings"`
}

// JSONAction is a resolved callflow or metaflow action.
type JSONAction struct {
	Module               table.Module     `json:"module"`
	Action               table.Verb       `json:"action"`
	Label                string           `json:"label,omitempty"`
	MediaName            string           `json:"media_name,omitempty"`
	Origin               string           `json:"origin,omitempty"`
	ShouldFollowTransfer bool             `json:"should_follow_transfer"`
	DTMFLeg              table.DTMFSource `json:"dtmf_leg,omitempty"`
	Scope                table.StopScope  `json:"scope,omitempty"`
	Settings             JSONSettings     `json:"settings"`
	Provenance           JSONProvenance   `json:"provenance"`
}

// JSONMetaflows is a group of devices with the same metaflows.
type JSONMetaflows struct {
	Devices      []string         `json:"devices"`
	BindingDigit string           `json:"binding_digit"`
	DigitTimeout int              `json:"digit_timeout"`
	ListenOn     table.DTMFSource `json:"listen_on"`
	Codes        []JSONCode       `json:"codes"`
}

// JSONCode is one DTMF code: the keys, the scope its binding comes from,
// whose DTMF fires it, the action and what it does in words.
type JSONCode struct {
	Keys    string           `json:"keys"`
	Pattern bool             `json:"pattern,omitempty"`
	From    string           `json:"from"`
	Listen  table.DTMFSource `json:"listen"`
	Action  JSONAction       `json:"action"`
	Does    string           `json:"does"`
}

func actionJSON(a *table.Action) JSONAction {
	r := recordingJSON(table.Recording{Cell: &table.Cell{Settings: a.Settings, Provenance: a.Provenance}})
	return JSONAction{Module: a.Module, Action: a.Action, Label: a.Label, MediaName: a.MediaName, Origin: a.Origin,
		ShouldFollowTransfer: a.FollowTransfer, DTMFLeg: a.DTMFLeg, Scope: a.Scope, Settings: r.Settings, Provenance: r.Provenance}
}

func explicitJSON(a *table.Account) ([]JSONCallflow, []JSONMetaflows) {
	var cfs []JSONCallflow
	for _, cf := range a.Callflows {
		j := JSONCallflow{ID: cf.ID, Numbers: append([]string{}, cf.Numbers...), Patterns: append([]string{}, cf.Patterns...),
			Actions: []JSONAction{}, Recordings: callflowRecordings(cf)}
		for i := range cf.Actions {
			j.Actions = append(j.Actions, actionJSON(&cf.Actions[i]))
		}
		cfs = append(cfs, j)
	}
	var mfs []JSONMetaflows
	for _, g := range metaflowGroups(a) {
		mf := g.Metaflows
		j := JSONMetaflows{Devices: g.Devices, BindingDigit: mf.BindingDigit, DigitTimeout: mf.DigitTimeout, ListenOn: mf.ListenOn, Codes: []JSONCode{}}
		for _, c := range dtmfCodes(mf) {
			j.Codes = append(j.Codes, JSONCode{Keys: c.Keys, Pattern: c.Pattern, From: c.Binding.From, Listen: listenOn(mf, c.Binding),
				Action: actionJSON(&c.Binding.Action), Does: actionEffect(&c.Binding.Action)})
		}
		mfs = append(mfs, j)
	}
	return cfs, mfs
}
