package simulate

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/recpol/recpol/table"
)

// field is one resolved setting with where it came from.
type field struct {
	name, value, prov string
}

// fieldsOf lists the settings of a cell or an action in the order of
// table.SettingList (url and announce only when set on either side are
// compared: unset they are ""; a setting that is not shown, announce_to
// when nothing is announced, is "", so that a default that cannot be
// heard is no change).
func fieldsOf(s *table.Settings, p *table.Provenance) []field {
	out := make([]field, 0, len(table.SettingList))
	for _, st := range table.SettingList {
		if !st.Shown(s) {
			out = append(out, field{st.Name, "", ""})
			continue
		}
		out = append(out, field{st.Name, st.Text(s), st.Provenance(p)})
	}
	return out
}

// jsonFieldsOf lists the settings of a simulated recording like fieldsOf.
func jsonFieldsOf(r JSONRecording) []field {
	return fieldsOf(r.Settings.table(), r.Provenance.table())
}

// settingsChangeLines says which settings changed ("time_limit: 1800 -> 900
// (<- provenance)") and, for a setting whose value stayed, where it now
// comes from.
func settingsChangeLines(o, n []field) []string {
	var out []string
	for i := range o {
		switch {
		case o[i].value != n[i].value:
			out = append(out, fmt.Sprintf("%s: %s -> %s (<- %s)", o[i].name, orNone(o[i].value), orNone(n[i].value), orNone(n[i].prov)))
		case o[i].prov != n[i].prov:
			out = append(out, fmt.Sprintf("%s provenance: %s -> %s", o[i].name, orNone(o[i].prov), orNone(n[i].prov)))
		}
	}
	return out
}

// DefaultChange is a platform default (the policy's defaults) whose value
// changed, as the compiled tables show it: a default that no cell or
// action uses leaves no trace in a table.
type DefaultChange struct {
	Field    string // format, time_limit, ...
	Old, New string // "" when unset (the built-in value applies)
}

// defaultsOf collects the defaults a table uses: the value of every
// setting whose provenance is "defaults <field>".
func defaultsOf(t *table.Table) map[string]string {
	out := map[string]string{}
	add := func(s *table.Settings, p *table.Provenance) {
		for _, f := range fieldsOf(s, p) {
			if f.prov == "defaults "+f.name {
				out[f.name] = f.value
			}
		}
	}
	cells := func(c *table.Cells) {
		for _, d := range table.Directions {
			for _, n := range table.Networks {
				add(c.Get(d, n).Settings, c.Get(d, n).Provenance)
			}
		}
	}
	for _, id := range t.AccountIDs() {
		a, _ := t.Account(id)
		cells(&a.Cells)
		for _, eps := range []map[string]*table.Endpoint{a.Users, a.Devices} {
			for _, e := range eps {
				cells(&e.Cells)
				if mf := e.Metaflows; mf != nil {
					for _, bs := range [][]table.MetaflowBinding{mf.Numbers, mf.Patterns} {
						for _, b := range bs {
							add(b.Action.Settings, b.Action.Provenance)
						}
					}
				}
			}
		}
		for _, cf := range a.Callflows {
			for _, act := range cf.Actions {
				add(act.Settings, act.Provenance)
			}
		}
	}
	return out
}

func (d *DiffResult) diffDefaults(old, new *table.Table) {
	o, n := defaultsOf(old), defaultsOf(new)
	names := make([]string, 0, len(o)+len(n))
	for k := range o {
		names = append(names, k)
	}
	for k := range n {
		names = append(names, k)
	}
	for _, f := range fieldsOf(&table.Settings{}, &table.Provenance{}) {
		if slices.Contains(names, f.name) && o[f.name] != n[f.name] {
			d.Defaults = append(d.Defaults, DefaultChange{Field: f.name, Old: o[f.name], New: n[f.name]})
		}
	}
}

// recordingID is what makes a recording the same one on both sides of a
// diff: who records which leg, and why.
func recordingID(r JSONRecording) string {
	return fmt.Sprintf("%s|%s|%s|%s|%t", r.Scope, r.Endpoint, r.Leg, r.Origin, r.CallerOnly)
}

// CallflowChange is a callflow added, removed or changed: its numbers,
// patterns or actions (with their resolved settings, label, media_name,
// origin and should_follow_transfer).
type CallflowChange struct {
	Account  string
	ID       string
	Old, New *table.Callflow // nil when added / removed
}

func actionFields(a *table.Action) []field {
	return []field{
		{"module", string(a.Module), ""},
		{"action", string(a.Action), ""},
		{"label", a.Label, ""},
		{"media_name", a.MediaName, ""},
		{"origin", a.Origin, ""},
		{"should_follow_transfer", strconv.FormatBool(a.FollowTransfer), ""},
		{"dtmf_leg", string(a.DTMFLeg), ""},
		{"scope", string(a.Scope), ""},
	}
}

// actionSame reports whether two actions are the same; withSettings says
// whether their settings count (a mask's settings never apply).
func actionSame(o, n *table.Action, withSettings bool) bool {
	if !slices.Equal(actionFields(o), actionFields(n)) {
		return false
	}
	return !withSettings || settingsSame(o.Settings, o.Provenance, n.Settings, n.Provenance)
}

// settingsSame reports whether two settings and their provenance are the
// same as the diff shows them (an announce_to that nothing plays is no
// difference).
func settingsSame(os *table.Settings, op *table.Provenance, ns *table.Settings, np *table.Provenance) bool {
	return slices.Equal(fieldsOf(os, op), fieldsOf(ns, np))
}

// usesSettings reports whether an action records with its settings.
func usesSettings(a *table.Action) bool {
	return a.Action == table.Start || a.Action == table.Toggle || a.Module == table.RecordCaller
}

// describeAction says what an action is: "record_call start, label "Card
// payments" (format wav, ...)", settings only for one that records.
func describeAction(a *table.Action) string {
	var b strings.Builder
	b.WriteString(string(a.Module) + " " + string(a.Action))
	for _, f := range actionFields(a)[2:] {
		switch {
		case f.name == "should_follow_transfer":
			if f.value == "false" && usesSettings(a) {
				b.WriteString(", should_follow_transfer false")
			}
		case f.value != "":
			fmt.Fprintf(&b, ", %s %q", f.name, f.value)
		}
	}
	if usesSettings(a) {
		b.WriteString(" (" + settingsString(a.Settings) + ")")
	}
	return b.String()
}

// actionChangeLines lists what changed between two actions.
func actionChangeLines(o, n *table.Action) []string {
	var out []string
	if o.Module != n.Module || o.Action != n.Action {
		out = append(out, fmt.Sprintf("%s %s -> %s %s", o.Module, o.Action, n.Module, n.Action))
	}
	of, nf := actionFields(o), actionFields(n)
	for i := 2; i < len(of); i++ {
		if of[i].value != nf[i].value {
			out = append(out, fmt.Sprintf("%s: %s -> %s", of[i].name, orNone(of[i].value), orNone(nf[i].value)))
		}
	}
	if usesSettings(o) || usesSettings(n) {
		out = append(out, settingsChangeLines(fieldsOf(o.Settings, o.Provenance), fieldsOf(n.Settings, n.Provenance))...)
	}
	return out
}

func (d *DiffResult) diffCallflows(account string, oa, na *table.Account) {
	byID := func(a *table.Account) map[string]*table.Callflow {
		m := map[string]*table.Callflow{}
		for _, cf := range a.Callflows {
			m[cf.ID] = cf
		}
		return m
	}
	om, nm := byID(oa), byID(na)
	ids := union(slices.Collect(mapKeys(om)), slices.Collect(mapKeys(nm)))
	for _, id := range ids {
		o, n := om[id], nm[id]
		if o != nil && n != nil {
			if slices.Equal(o.Numbers, n.Numbers) && slices.Equal(o.Patterns, n.Patterns) && len(o.Actions) == len(n.Actions) {
				same := true
				for i := range o.Actions {
					same = same && actionSame(&o.Actions[i], &n.Actions[i], true)
				}
				if same {
					continue
				}
			}
		}
		d.Callflows = append(d.Callflows, CallflowChange{Account: account, ID: id, Old: o, New: n})
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// callflowChangeLines lists what changed in a callflow: numbers and
// patterns that appear ("+ ") or disappear ("- "), and each action.
func callflowChangeLines(c CallflowChange) []string {
	var out []string
	if c.Old == nil || c.New == nil {
		cf, sign := c.New, "+ "
		if cf == nil {
			cf, sign = c.Old, "- "
		}
		out = append(out, sign+"answers "+dialledList(cf))
		for i := range cf.Actions {
			out = append(out, fmt.Sprintf("%saction %d: %s", sign, i+1, describeAction(&cf.Actions[i])))
		}
		return out
	}
	list := func(kind string, o, n []string, show func(string) string) {
		for _, x := range o {
			if !slices.Contains(n, x) {
				out = append(out, "- "+kind+" "+show(x))
			}
		}
		for _, x := range n {
			if !slices.Contains(o, x) {
				out = append(out, "+ "+kind+" "+show(x))
			}
		}
	}
	list("number", c.Old.Numbers, c.New.Numbers, func(s string) string { return s })
	list("pattern", c.Old.Patterns, c.New.Patterns, func(s string) string { return "/" + s + "/" })
	for i := range max(len(c.Old.Actions), len(c.New.Actions)) {
		switch {
		case i >= len(c.Old.Actions):
			out = append(out, fmt.Sprintf("+ action %d: %s", i+1, describeAction(&c.New.Actions[i])))
		case i >= len(c.New.Actions):
			out = append(out, fmt.Sprintf("- action %d: %s", i+1, describeAction(&c.Old.Actions[i])))
		default:
			o, n := &c.Old.Actions[i], &c.New.Actions[i]
			for _, l := range actionChangeLines(o, n) {
				out = append(out, fmt.Sprintf("action %d (%s %s): %s", i+1, n.Module, n.Action, l))
			}
		}
	}
	return out
}

func dialledList(cf *table.Callflow) string {
	var parts []string
	for _, d := range callflowDialled(cf) {
		parts = append(parts, d.String())
	}
	if len(parts) == 0 {
		return "no number"
	}
	return strings.Join(parts, ", ")
}

// MetaflowChange is one change of the resolved metaflows of one or more
// endpoints of an account (the same change on every endpoint listed): a
// metaflow setting (Field binding_digit, digit_timeout or listen_on, with
// Old and New), or a code added, removed or changed (Field "code", with
// OldBinding and NewBinding, nil on the side that lacks it, and what each
// does in words).
type MetaflowChange struct {
	Account string
	// Endpoints are the endpoints with this change ("device:<id>",
	// "user:<id>"), sorted; Of is how many endpoints the account has.
	Endpoints []string
	Of        int
	Field     string
	Old, New  string
	// Keys is the code as pressed: the binding digit and the code ("*73"),
	// or the binding digit and /pattern/.
	Keys                   string
	OldBinding, NewBinding *table.MetaflowBinding
	OldEffect, NewEffect   string
}

// metaflowLines describes a metaflow change without its endpoints.
func metaflowLines(c *MetaflowChange) []string {
	if c.Field != "code" {
		return []string{fmt.Sprintf("%s: %s -> %s", c.Field, orNone(c.Old), orNone(c.New))}
	}
	switch {
	case c.OldBinding == nil:
		return []string{fmt.Sprintf("+ %s (from %s): %s: %s", c.Keys, c.NewBinding.From, describeAction(&c.NewBinding.Action), c.NewEffect)}
	case c.NewBinding == nil:
		return []string{fmt.Sprintf("- %s (from %s): %s: %s", c.Keys, c.OldBinding.From, describeAction(&c.OldBinding.Action), c.OldEffect)}
	}
	var out []string
	for _, l := range actionChangeLines(&c.OldBinding.Action, &c.NewBinding.Action) {
		out = append(out, c.Keys+" "+l)
	}
	if c.OldBinding.From != c.NewBinding.From {
		out = append(out, fmt.Sprintf("%s from: %s -> %s", c.Keys, c.OldBinding.From, c.NewBinding.From))
	}
	if oe, ne := actionEffect(&c.OldBinding.Action), actionEffect(&c.NewBinding.Action); oe != ne {
		out = append(out, fmt.Sprintf("%s does: %s -> %s", c.Keys, oe, ne))
	}
	if ol, nl := c.OldEffect[strings.LastIndex(c.OldEffect, "; fired by ")+2:], c.NewEffect[strings.LastIndex(c.NewEffect, "; fired by ")+2:]; ol != nl {
		out = append(out, fmt.Sprintf("%s %s -> %s", c.Keys, ol, strings.TrimPrefix(nl, "fired by ")))
	}
	return out
}

func (d *DiffResult) diffMetaflows(account string, oa, na *table.Account) {
	type key struct{ text string }
	groups := map[string]*MetaflowChange{}
	var order []string
	of := len(na.Users) + len(na.Devices)
	add := func(ref string, c MetaflowChange) {
		c.Account, c.Of = account, of
		k := strings.Join(metaflowLines(&c), "\n")
		if g := groups[k]; g != nil {
			g.Endpoints = append(g.Endpoints, ref)
			return
		}
		c.Endpoints = []string{ref}
		groups[k] = &c
		order = append(order, k)
	}
	for _, kind := range []table.EndpointKind{table.Device, table.User} {
		ids := na.DeviceIDs()
		if kind == table.User {
			ids = na.UserIDs()
		}
		for _, id := range ids {
			oe, ok := oa.Endpoint(kind, id)
			if !ok {
				continue // the endpoint is new: listed as added
			}
			ne, _ := na.Endpoint(kind, id)
			d.diffEndpointMetaflows(ne.Ref(), oe.Metaflows, ne.Metaflows, add)
		}
	}
	for _, k := range order {
		d.Metaflows = append(d.Metaflows, *groups[k])
	}
}

func (d *DiffResult) diffEndpointMetaflows(ref string, o, n *table.Metaflows, add func(string, MetaflowChange)) {
	empty := &table.Metaflows{}
	if o == nil && n == nil {
		return
	}
	if o != nil && n != nil {
		for _, f := range [][3]string{
			{"binding_digit", o.BindingDigit, n.BindingDigit},
			{"digit_timeout", strconv.Itoa(o.DigitTimeout), strconv.Itoa(n.DigitTimeout)},
			{"listen_on", string(o.ListenOn), string(n.ListenOn)},
		} {
			if f[1] != f[2] {
				add(ref, MetaflowChange{Field: f[0], Old: f[1], New: f[2]})
			}
		}
	}
	om, nm := o, n
	if om == nil {
		om = empty
	}
	if nm == nil {
		nm = empty
	}
	digit := nm.BindingDigit
	if n == nil {
		digit = om.BindingDigit
	}
	for _, pattern := range []bool{false, true} {
		ob, nb := om.Numbers, nm.Numbers
		if pattern {
			ob, nb = om.Patterns, nm.Patterns
		}
		find := func(bs []table.MetaflowBinding, code string) *table.MetaflowBinding {
			for i := range bs {
				if bs[i].Code == code {
					return &bs[i]
				}
			}
			return nil
		}
		var codes []string
		for _, b := range ob {
			codes = append(codes, b.Code)
		}
		for _, b := range nb {
			codes = append(codes, b.Code)
		}
		sort.Strings(codes)
		for _, code := range slices.Compact(codes) {
			x, y := find(ob, code), find(nb, code)
			keys := digit + code
			if pattern {
				keys = digit + "/" + code + "/"
			}
			c := MetaflowChange{Field: "code", Keys: keys, OldBinding: x, NewBinding: y}
			if x != nil {
				c.OldEffect = bindingEffect(om, x)
			}
			if y != nil {
				c.NewEffect = bindingEffect(nm, y)
			}
			if x != nil && y != nil {
				withSettings := usesSettings(&x.Action) || usesSettings(&y.Action)
				if x.From == y.From && c.OldEffect == c.NewEffect && actionSame(&x.Action, &y.Action, withSettings) {
					continue
				}
			}
			add(ref, c)
		}
	}
}

// endpointsPhrase says which endpoints a metaflow change applies to.
func (c *MetaflowChange) endpointsPhrase() string {
	if len(c.Endpoints) == c.Of && c.Of > 1 {
		return fmt.Sprintf("every endpoint (%d)", c.Of)
	}
	if len(c.Endpoints) <= 4 {
		return strings.Join(c.Endpoints, ", ")
	}
	return fmt.Sprintf("%s, ... (%d endpoints)", strings.Join(c.Endpoints[:3], ", "), len(c.Endpoints))
}

// NumberCallChange is a call to a callflow number (see numberCall) whose
// recordings differ. Old or New is nil when the call does not exist on
// that side (its caller device was added or removed).
type NumberCallChange struct {
	Account                  string
	From                     string
	Dialled                  string
	OldCallflow, NewCallflow string // "" when no callflow answers
	Old, New                 []JSONRecording
}

func (d *DiffResult) diffNumberCalls(account string, oa, na *table.Account) {
	var dialled []dialledNumber
	for _, a := range []*table.Account{na, oa} {
		for _, cf := range a.Callflows {
			for _, x := range callflowDialled(cf) {
				if !slices.Contains(dialled, x) {
					dialled = append(dialled, x)
				}
			}
		}
	}
	sort.SliceStable(dialled, func(i, j int) bool {
		if dialled[i].Pattern != dialled[j].Pattern {
			return !dialled[i].Pattern
		}
		return dialled[i].Number < dialled[j].Number
	})
	side := func(a *table.Account, from table.Party, x dialledNumber) (numberCall, bool) {
		if from.Kind == table.DeviceParty && a.Devices[from.ID] == nil {
			return numberCall{}, false
		}
		var cf *table.Callflow
		if x.Pattern {
			for _, c := range a.Callflows {
				if slices.Contains(c.Patterns, x.Number) {
					cf = c
				}
			}
		} else if c, ok := a.MatchCallflow(x.Number); ok {
			cf = c
		}
		return numberCallOf(a, from, x, cf), true
	}
	var callers []string
	for _, a := range []*table.Account{oa, na} {
		for _, p := range callersOf(a, false) {
			callers = append(callers, p.String())
		}
	}
	sort.Strings(callers)
	callers = slices.Compact(callers)
	// offnet last, as in the truth tables.
	if i := slices.Index(callers, "offnet"); i >= 0 {
		callers = append(slices.Delete(callers, i, i+1), "offnet")
	}
	for _, x := range dialled {
		for _, f := range callers {
			from, _ := table.ParseParty(f)
			o, inOld := side(oa, from, x)
			n, inNew := side(na, from, x)
			if inOld && inNew && o.Callflow == n.Callflow && reflect.DeepEqual(o.Recordings, n.Recordings) {
				continue
			}
			c := NumberCallChange{Account: account, From: f, Dialled: x.String()}
			if inOld {
				c.OldCallflow, c.Old = o.Callflow, o.Recordings
			}
			if inNew {
				c.NewCallflow, c.New = n.Callflow, n.Recordings
			}
			d.NumberCalls = append(d.NumberCalls, c)
		}
	}
}

// numberCallLines lists what changed in a call to a callflow number.
func numberCallLines(c NumberCallChange) []string {
	var out []string
	switch {
	case c.Old == nil:
		out = append(out, "(a new caller)")
	case c.New == nil:
		out = append(out, "(the caller is gone)")
	case c.OldCallflow != c.NewCallflow:
		out = append(out, fmt.Sprintf("answered by callflow %s -> %s", orNoCallflow(c.OldCallflow), orNoCallflow(c.NewCallflow)))
	}
	return append(out, recordingChangeLines(c.Old, c.New)...)
}

// recordingChangeLines lists the recordings only the old side starts
// ("- "), those whose settings changed ("~ ", with each setting) and those
// only the new side starts ("+ ").
func recordingChangeLines(old, new []JSONRecording) []string {
	var out []string
	byID := func(list []JSONRecording, r JSONRecording) (JSONRecording, bool) {
		for _, x := range list {
			if recordingID(x) == recordingID(r) {
				return x, true
			}
		}
		return JSONRecording{}, false
	}
	for _, r := range old {
		n, ok := byID(new, r)
		switch {
		case !ok:
			out = append(out, "- "+describeJSON(r))
		case !reflect.DeepEqual(n, r):
			changes := settingsChangeLines(jsonFieldsOf(r), jsonFieldsOf(n))
			if r.Provenance.Enabled != n.Provenance.Enabled {
				changes = append(changes, fmt.Sprintf("enabled provenance: %s -> %s", orNone(r.Provenance.Enabled), orNone(n.Provenance.Enabled)))
			}
			out = append(out, "~ "+recordingWho(r)+": "+strings.Join(changes, "; "))
		}
	}
	for _, r := range new {
		if _, ok := byID(old, r); !ok {
			out = append(out, "+ "+describeJSON(r))
		}
	}
	return out
}

func recordingWho(r JSONRecording) string {
	who := r.Scope
	if r.Endpoint != "" {
		who += " " + r.Endpoint
	}
	what := r.Origin
	if r.CallerOnly {
		what += ", the caller's audio only"
	}
	return fmt.Sprintf("%s %s-leg: %s", who, r.Leg, what)
}

func describeJSON(r JSONRecording) string {
	return fmt.Sprintf("%s (%s)", recordingWho(r), settingsString(r.Settings.table()))
}

// numberGroup is the number calls of one account with the same change.
type numberGroup struct {
	account        string
	callers, dials []string
	pairs          [][2]string
	lines          []string
}

// groupNumberCalls groups the changed calls to callflow numbers that
// change alike, so a callflow change reads as one entry.
func groupNumberCalls(cs []NumberCallChange) []numberGroup {
	var out []numberGroup
	idx := map[string]int{}
	for _, c := range cs {
		lines := numberCallLines(c)
		k := c.Account + "\n" + strings.Join(lines, "\n")
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, numberGroup{account: c.Account, lines: lines})
		}
		g := &out[i]
		if !slices.Contains(g.callers, c.From) {
			g.callers = append(g.callers, c.From)
		}
		if !slices.Contains(g.dials, c.Dialled) {
			g.dials = append(g.dials, c.Dialled)
		}
		g.pairs = append(g.pairs, [2]string{c.From, c.Dialled})
	}
	return out
}

// title says which calls a group holds: "from A, B to N, M" when it holds
// every such pair, else the pairs.
func (g *numberGroup) title() string {
	if len(g.pairs) == len(g.callers)*len(g.dials) {
		return fmt.Sprintf("from %s to %s", strings.Join(g.callers, ", "), strings.Join(g.dials, ", "))
	}
	var parts []string
	for _, p := range g.pairs {
		parts = append(parts, p[0]+" -> "+p[1])
	}
	return strings.Join(parts, "; ")
}

func orNoCallflow(id string) string {
	if id == "" {
		return "(none)"
	}
	return id
}
