package simulate

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// effectKind says how a change affects one recording of simulated calls.
type effectKind int

// The kinds of effect, in the order a review lists them.
const (
	Started         effectKind = iota // the recording starts now and did not before
	Stopped                           // the recording no longer starts
	SettingsChanged                   // the recording starts on both sides, with other settings
)

// effectCall is a simulated call an Effect applies to: a call of the truth
// tables (To is a party) or a call to a callflow number (To is the number
// or /pattern/ dialled).
type effectCall struct {
	Account, From, To string
}

// Effect is one change to the recordings of simulated calls, with every
// call it applies to. A Started or Stopped effect is one recording of one
// account (who records which leg, and what enabled it); a SettingsChanged
// effect is one change of settings, on recordings of any account.
type effect struct {
	Kind effectKind
	// Account is the account of a Started or Stopped effect, "" for a
	// SettingsChanged one (its calls name their accounts).
	Account string
	// What is the recording and what enabled it ("callee device:d0 b-leg:
	// inbound from onnet to endpoint", "device:d0
	// call_recording.inbound.onnet.enabled"), or the settings' changes
	// ("record_sample_rate: 8000 -> 16000 (<- defaults
	// record_sample_rate)").
	What, Cause string
	Calls       []effectCall
	Recordings  int
}

// behaviour is what a diff changes in the simulated calls, the headline of
// a review: the effects of each kind, largest first, and how many distinct
// calls each kind touches.
type behaviour struct {
	Started, Stopped, Settings                []effect
	StartedCalls, StoppedCalls, SettingsCalls int
}

// behaviour groups the changed calls and calls to callflow numbers of the
// diff by their effect on each recording.
func (d *DiffResult) behaviour() *behaviour {
	b := &behaviour{}
	lists := [3]*[]effect{&b.Started, &b.Stopped, &b.Settings}
	counts := [3]*int{&b.StartedCalls, &b.StoppedCalls, &b.SettingsCalls}
	index := [3]map[string]int{{}, {}, {}}
	add := func(kind effectKind, account, what, cause string, call effectCall, touched *[3]bool) {
		key := account + "\x00" + what + "\x00" + cause
		i, ok := index[kind][key]
		if !ok {
			i = len(*lists[kind])
			index[kind][key] = i
			*lists[kind] = append(*lists[kind], effect{Kind: kind, Account: account, What: what, Cause: cause})
		}
		e := &(*lists[kind])[i]
		e.Recordings++
		if n := len(e.Calls); n == 0 || e.Calls[n-1] != call {
			e.Calls = append(e.Calls, call)
		}
		if !touched[kind] {
			touched[kind] = true
			*counts[kind]++
		}
	}
	visit := func(call effectCall, old, new []JSONRecording) {
		var touched [3]bool
		for _, r := range old {
			n, ok := findRecording(new, r)
			switch {
			case !ok:
				add(Stopped, call.Account, recordingWho(r), r.Provenance.Enabled, call, &touched)
			case !reflect.DeepEqual(n, r):
				// Only values count: a setting that now comes from
				// elsewhere with the same value changes no recording.
				var changes []string
				for i, o := range jsonFieldsOf(r) {
					if nf := jsonFieldsOf(n)[i]; o.value != nf.value {
						changes = append(changes, fmt.Sprintf("%s: %s -> %s (<- %s)", o.name, orNone(o.value), orNone(nf.value), orNone(nf.prov)))
					}
				}
				if len(changes) > 0 {
					add(SettingsChanged, "", strings.Join(changes, "; "), "", call, &touched)
				}
			}
		}
		for _, r := range new {
			if _, ok := findRecording(old, r); !ok {
				add(Started, call.Account, recordingWho(r), r.Provenance.Enabled, call, &touched)
			}
		}
	}
	for _, c := range d.Calls {
		visit(effectCall{c.Account, c.From, c.To}, c.Old, c.New)
	}
	for _, c := range d.NumberCalls {
		visit(effectCall{c.Account, c.From, c.Dialled}, c.Old, c.New)
	}
	for _, l := range lists {
		sort.SliceStable(*l, func(i, j int) bool { return len((*l)[i].Calls) > len((*l)[j].Calls) })
	}
	return b
}

// findRecording finds the recording of list that is the same one as r.
func findRecording(list []JSONRecording, r JSONRecording) (JSONRecording, bool) {
	id := recordingID(r)
	for _, x := range list {
		if recordingID(x) == id {
			return x, true
		}
	}
	return JSONRecording{}, false
}

// maxEffects bounds how many effects of one kind the summary lists, and
// maxNamed how many calls, accounts or members a line names.
const (
	maxEffects = 10
	maxNamed   = 8
)

// summaryLines renders the behaviour summary: one bullet per kind of
// effect, each effect under it. md says whether to quote for Markdown.
func (b *behaviour) summaryLines(md bool) []string {
	code := func(s string) string {
		if md {
			return "`" + strings.ReplaceAll(s, "`", "'") + "`"
		}
		return s
	}
	bold := func(s string) string {
		if md {
			return "**" + s + ":**"
		}
		return s + ":"
	}
	var out []string
	kinds := []struct {
		name    string
		effects []effect
		calls   int
	}{
		{"Newly recorded", b.Started, b.StartedCalls},
		{"No longer recorded", b.Stopped, b.StoppedCalls},
		{"Settings changed on recorded calls", b.Settings, b.SettingsCalls},
	}
	for k, kind := range kinds {
		head := "- " + bold(kind.name) + " "
		if kind.calls == 0 {
			head += "no call"
			if effectKind(k) == Stopped && b.StartedCalls == 0 {
				head += " (no call changes whether, or by whom, it is recorded)"
			}
			out = append(out, head)
			continue
		}
		recs, accounts := 0, map[string]bool{}
		for _, e := range kind.effects {
			recs += e.Recordings
			for _, c := range e.Calls {
				accounts[c.Account] = true
			}
		}
		out = append(out, head+fmt.Sprintf("%s (%s) in %s", count(kind.calls, "call"), count(recs, "recording"), count(len(accounts), "account")))
		for i, e := range kind.effects {
			if i == maxEffects {
				rest := 0
				for _, x := range kind.effects[i:] {
					rest += len(x.Calls)
				}
				out = append(out, fmt.Sprintf("  - and %d more changes of %s: see the calls below", len(kind.effects)-i, count(rest, "call")))
				break
			}
			if e.Kind == SettingsChanged {
				out = append(out, fmt.Sprintf("  - %s: %s in %s, %s", code(e.What), count(e.Recordings, "recording"),
					count(len(e.Calls), "call"), accountsPhrase(e.Calls)))
				continue
			}
			line := fmt.Sprintf("  - account %s, %s: %s", e.Account, count(len(e.Calls), "call"), code(e.What))
			if e.Cause != "" {
				verb := "enabled by"
				if e.Kind == Stopped {
					verb = "was enabled by"
				}
				line += ", " + verb + " " + code(e.Cause)
			}
			out = append(out, line, "    - "+callsPhrase(e.Calls))
		}
	}
	return out
}

// summaryLines is the behaviour summary of the diff with, when DTMF codes
// changed, a line saying so (they change what a key press does during a
// call, not which calls start recordings).
func (d *DiffResult) summaryLines(md bool) []string {
	out := d.behaviour().summaryLines(md)
	if len(d.Metaflows) == 0 {
		return out
	}
	endpoints := 0
	for _, m := range d.Metaflows {
		endpoints += len(m.Endpoints)
	}
	head := "In-call DTMF codes:"
	if md {
		head = "**" + head + "**"
	}
	return append(out, fmt.Sprintf("- %s %s on %s: see the metaflows below", head,
		count(len(d.Metaflows), "change"), count(endpoints, "endpoint")))
}

// callsPhrase names calls of one account compactly: "a, b, c -> d" when
// they share their callee, else "a -> b, c -> d"; at most maxNamed.
func callsPhrase(calls []effectCall) string {
	sameTo := true
	for _, c := range calls {
		sameTo = sameTo && c.To == calls[0].To
	}
	var names []string
	for i, c := range calls {
		if i == maxNamed {
			names[len(names)-1] += fmt.Sprintf(" and %d more", len(calls)-i)
			break
		}
		if sameTo {
			names = append(names, c.From)
		} else {
			names = append(names, c.From+" -> "+c.To)
		}
	}
	if sameTo {
		return strings.Join(names, ", ") + " -> " + calls[0].To
	}
	return strings.Join(names, ", ")
}

// accountsPhrase says which accounts calls are in, with how many calls
// each: "account a" or "3 accounts (a 4, b 2, c 1)", at most maxNamed.
func accountsPhrase(calls []effectCall) string {
	var order []string
	n := map[string]int{}
	for _, c := range calls {
		if n[c.Account] == 0 {
			order = append(order, c.Account)
		}
		n[c.Account]++
	}
	return countedPhrase(order, n)
}

// countedPhrase names keys with their counts: "account a" for one, else
// "3 accounts (a 4, b 2, c 1)", at most maxNamed named.
func countedPhrase(order []string, n map[string]int) string {
	if len(order) == 1 {
		return "account " + order[0]
	}
	var parts []string
	for i, a := range order {
		if i == maxNamed {
			parts = append(parts, fmt.Sprintf("and %d more", len(order)-i))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %s", a, thousands(n[a])))
	}
	return fmt.Sprintf("%s (%s)", count(len(order), "account"), strings.Join(parts, ", "))
}

// count says "1 call", "7,414 calls".
func count(n int, one string) string {
	if n == 1 {
		return "1 " + one
	}
	return thousands(n) + " " + one + "s"
}

// thousands writes n with a comma every three digits.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// member is one thing a change applies to: a cell, a callflow, the
// endpoints of a metaflow change, a call; size is how many of unit it
// counts for.
type member struct {
	account, name string
	size          int
}

// group is changes that read alike: the lines saying what changed, and
// every member they apply to.
type group struct {
	lines   []string
	members []member
	unit    string
}

func (g *group) size() int {
	n := 0
	for _, m := range g.members {
		n += m.size
	}
	return n
}

// title says whom a group's change applies to: the member itself, "account
// a, 3 cells: x, y, z", or "7,414 cells in 300 accounts (a 31, ...)".
func (g *group) title() string {
	if len(g.members) == 1 {
		return fmt.Sprintf("account %s, %s", g.members[0].account, g.members[0].name)
	}
	var order []string
	n := map[string]int{}
	for _, m := range g.members {
		if n[m.account] == 0 {
			order = append(order, m.account)
		}
		n[m.account] += m.size
	}
	total := count(g.size(), strings.TrimSuffix(g.unit, "s"))
	if len(order) > 1 {
		return total + " in " + countedPhrase(order, n)
	}
	var names []string
	for i, m := range g.members {
		if i == maxNamed {
			names = append(names, fmt.Sprintf("and %d more", len(g.members)-i))
			break
		}
		names = append(names, m.name)
	}
	return fmt.Sprintf("account %s, %s: %s", order[0], total, strings.Join(names, "; "))
}

// collapse groups members whose change reads the same, largest group
// first (ties keep their order).
func collapse(unit string, n int, at func(i int) (member, []string)) []group {
	var out []group
	index := map[string]int{}
	for i := range n {
		m, lines := at(i)
		key := strings.Join(lines, "\n")
		j, ok := index[key]
		if !ok {
			j = len(out)
			index[key] = j
			out = append(out, group{lines: lines, unit: unit})
		}
		out[j].members = append(out[j].members, m)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].size() > out[j].size() })
	return out
}
