package compiler

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	recpolcue "github.com/recpol/recpol/cue"
	"github.com/recpol/recpol/table"
)

// scopeObj is one call_recording object in a resolution chain.
type scopeObj struct {
	name   string    // provenance scope: "device:d1", "user:bob", "account:acme"
	prefix string    // provenance path prefix: "call_recording" or "call_recording.endpoint"
	path   valuePath // CUE path of the object
	cr     *rawCR
}

// source says where a resolved field came from.
type source struct {
	kind  uint8 // srcScope, srcDefaults, srcBuiltin
	scope int   // index into the chain (srcScope)
	dk    string
	nk    string
}

const (
	srcScope uint8 = iota
	srcDefaults
	srcBuiltin
)

// resolver resolves cells and actions of one compilation.
type resolver struct {
	c  *compilation
	in *table.Interner // provenance
	// sets interns settings and strs provenance strings: the
	// compilation's interning, shared with other groups' resolvers.
	sets *table.Interner
	strs map[string]string
	// provs are the provenance strings of scope fields by their parts,
	// so that a cell's provenance is found without building its string.
	provs map[provKey][]string
	// provSlab is where scopeProvenances cuts its lists of numFields
	// strings from, provsChunk lists at a time.
	provSlab []string
	minSecs  map[string]bool // reported record_min_sec conflicts
	// metas are the metaflows resolved so far, by what they were
	// resolved from (see metaflows).
	metas map[metaKey]*table.Metaflows
	// scratchSettings and scratchProv are where settings builds a
	// cell's values and provenance (once on the heap, not each call).
	scratchSettings table.Settings
	scratchProv     table.Provenance
	// ownerLost is set while the cells of a device whose owner was lost
	// (see compilation.lost) are resolved: their chain lacks the owner, so
	// record_min_sec is not checked.
	ownerLost bool
}

// interning is what the resolvers of several compilations share, one at a
// time (an Interner is not safe for concurrent use): their settings and
// provenance strings. Accounts repeat them far more than they repeat whole
// provenances: the 1,000-account tree's cells hold 11,093 settings
// values but 1,903 distinct ones, and 33,263 provenance strings but
// 5,300 distinct ones, where each account's resolver alone shared only
// its own.
type interning struct {
	settings *table.Interner
	strs     map[string]string
	// provs interns each compilation's provenances on their own
	// (resolve forgets those of the one before), from one slab.
	provs *table.Interner
}

func newInterning() *interning {
	return &interning{settings: table.NewInterner(), strs: map[string]string{}, provs: table.NewInterner()}
}

func (c *compilation) resolve() {
	in := c.interning
	if in == nil {
		in = newInterning()
	}
	in.provs.ForgetProvenances()
	r := &resolver{c: c, in: in.provs, sets: in.settings, strs: in.strs, provs: map[provKey][]string{}, minSecs: map[string]bool{}}
	for _, id := range sortedKeys(c.policy.Accounts) {
		c.accounts = append(c.accounts, r.account(id, c.policy.Accounts[id]))
	}
}

func (r *resolver) intern(s string) string {
	if v, ok := r.strs[s]; ok {
		return v
	}
	r.strs[s] = s
	return s
}

func (r *resolver) account(id string, a *rawAccount) *table.Account {
	out := &table.Account{ID: id, Users: make(map[string]*table.Endpoint, len(a.Users)),
		Devices: make(map[string]*table.Endpoint, len(a.Devices))}
	// The account's endpoints in one allocation: they live and die with
	// the account, and one block each, among the compile's garbage of
	// the same size, left the heap fragmented.
	endpoints := make([]table.Endpoint, len(a.Users)+len(a.Devices))
	at := func(rest ...string) valuePath { return pathOf(id, rest...) }
	acctName := "account:" + id
	var acctCR, endpointCR *rawCR
	if a.CallRecording != nil {
		acctCR, endpointCR = a.CallRecording.Account, a.CallRecording.Endpoint
	}
	acctScope := scopeObj{acctName, "call_recording.account", at("call_recording", "account"), acctCR}
	endpointScope := scopeObj{acctName, "call_recording.endpoint", at("call_recording", "endpoint"), endpointCR}
	r.cells(&out.Cells, []scopeObj{acctScope})

	acctMeta := metaScope{acctName, at("metaflows"), a.Metaflows}
	for _, uid := range sortedKeys(a.Users) {
		u := a.Users[uid]
		userName := "user:" + uid
		e := &endpoints[0]
		endpoints = endpoints[1:]
		e.Kind, e.ID = table.User, uid
		r.cells(&e.Cells, []scopeObj{
			{userName, "call_recording", at("users", uid, "call_recording"), u.CallRecording},
			endpointScope,
		})
		e.Metaflows = r.metaflows([]metaScope{{userName, at("users", uid, "metaflows"), u.Metaflows}, acctMeta})
		out.Users[uid] = e
	}
	for _, did := range sortedKeys(a.Devices) {
		d := a.Devices[did]
		devName := "device:" + did
		e := &endpoints[0]
		endpoints = endpoints[1:]
		e.Kind, e.ID = table.Device, did
		// At most three scopes each: device, owner, account.
		chain := append(make([]scopeObj, 0, 3), scopeObj{devName, "call_recording", at("devices", did, "call_recording"), d.CallRecording})
		metaChain := append(make([]metaScope, 0, 3), metaScope{devName, at("devices", did, "metaflows"), d.Metaflows})
		if d.Owner != nil {
			e.Owner = *d.Owner
			if u := a.Users[e.Owner]; u != nil {
				chain = append(chain, scopeObj{"user:" + e.Owner, "call_recording", at("users", e.Owner, "call_recording"), u.CallRecording})
				metaChain = append(metaChain, metaScope{"user:" + e.Owner, at("users", e.Owner, "metaflows"), u.Metaflows})
			}
		}
		chain = append(chain, endpointScope)
		r.ownerLost = len(r.c.lost) > 0 && r.c.isLost(at("devices", did, "owner").path())
		r.cells(&e.Cells, chain)
		r.ownerLost = false
		e.Metaflows = r.metaflows(append(metaChain, acctMeta))
		out.Devices[did] = e
	}
	for _, cid := range sortedKeys(a.Callflows) {
		cf := a.Callflows[cid]
		tcf := &table.Callflow{ID: cid, Numbers: nonNil(cf.Numbers), Patterns: nonNil(cf.Patterns)}
		for i := range cf.Actions {
			p := at("callflows", cid, "actions", "["+strconv.Itoa(i)+"]").path()
			prov := fmt.Sprintf("%s callflows.%s.actions.%d", acctName, cid, i)
			tcf.Actions = append(tcf.Actions, r.action(&cf.Actions[i], table.Start, prov, p))
		}
		out.Callflows = append(out.Callflows, tcf)
	}
	return out
}

// valuePath is the CUE path of a value of an account: "accounts", the
// account's id, then up to four labels. The resolver keeps such a path
// for each of its scopes but needs it only for a diagnostic or where a
// value was lost: path makes it then.
type valuePath struct {
	account string
	rest    [4]string
	n       int
}

// pathOf returns the path of the value at rest in account.
func pathOf(account string, rest ...string) valuePath {
	p := valuePath{account: account, n: len(rest)}
	if copy(p.rest[:], rest) < len(rest) {
		panic("compiler: a value path of more than four labels in an account")
	}
	return p
}

// path returns the path, a new slice.
func (p valuePath) path() []string {
	return append([]string{"accounts", p.account}, p.rest[:p.n]...)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// keyOrder is the order in which the keys of one scope object are tried
// for cell (d, n): d.n > any.n > d.any > any.any.
func keyOrder(d, n string) [4][2]string {
	return [4][2]string{{d, n}, {"any", n}, {d, "any"}, {"any", "any"}}
}

// cells resolves the four cells of a scope chain (most specific first).
func (r *resolver) cells(dst *table.Cells, chain []scopeObj) {
	for _, d := range table.Directions {
		for _, n := range table.Networks {
			*dst.Get(d, n) = r.cell(chain, d.String(), n.String())
		}
	}
}

// cell resolves one cell field by field, scope-major: every key of a scope
// is tried before any key of the next scope; then defaults, then the
// built-in defaults.
func (r *resolver) cell(chain []scopeObj, d, n string) table.Cell {
	keys := keyOrder(d, n)
	var valBuf [maxFields]value
	var srcBuf [maxFields]source
	var provBuf [maxFields]string
	vals, srcs, prov := valBuf[:numFields], srcBuf[:numFields], provBuf[:numFields]
	// The settings objects of the chain's scopes and the cell's keys, in
	// the order they are tried, found once for all the fields.
	var candBuf [3 * len(keys)]candidate
	cands := candBuf[:0]
	for si := range chain {
		if cr := chain[si].cr; cr != nil {
			for _, k := range keys {
				if st := cr.dir(k[0]).net(k[1]); st != nil {
					cands = append(cands, candidate{st, source{kind: srcScope, scope: si, dk: k[0], nk: k[1]}})
				}
			}
		}
	}
	for f := field(0); f < numFields; f++ {
		vals[f], srcs[f] = r.lookup(cands, f)
	}
	// The fields a scope and key set are looked up together: most of a
	// cell's fields come from a few.
	var last source
	var lastProvs []string
	for f := field(0); f < numFields; f++ {
		src := srcs[f]
		if src.kind != srcScope {
			prov[f] = r.provenance(chain, src, f, "")
			continue
		}
		if lastProvs == nil || src.scope != last.scope || src.dk != last.dk || src.nk != last.nk {
			last, lastProvs = src, r.scopeProvenances(chain, src)
		}
		prov[f] = r.scopeProvenance(lastProvs, chain, src, f)
	}
	s, p := r.settings(vals, prov, false)
	if !r.cellUnsure(chain, srcs) {
		r.checkMinSec(vals, prov, func(f field) []string { return r.scopePath(chain, srcs[f], f) })
	}
	return table.Cell{Record: vals[fEnabled].b, Settings: r.sets.Settings(s), Provenance: r.in.Provenance(p)}
}

// candidate is a settings object a cell's fields are looked up in, and
// where it is.
type candidate struct {
	s   *rawSettings
	src source
}

// lookup returns field f of the first candidate that sets it, else of
// the defaults, else the built-in default, and where it came from.
func (r *resolver) lookup(cands []candidate, f field) (value, source) {
	for i := range cands {
		if v := cands[i].s.get(f); v.set {
			return v, cands[i].src
		}
	}
	if v := r.c.policy.Defaults.get(f); v.set {
		return v, source{kind: srcDefaults}
	}
	return r.builtin(f, false), source{kind: srcBuiltin}
}

// builtin returns a built-in default, unset for a setting that has none
// (no url: keep locally; no announce: none); actions have their own time
// limit.
func (r *resolver) builtin(f field, action bool) value {
	if action && f == fTimeLimit {
		return value{set: true, i: r.c.defaults.Action.TimeLimit}
	}
	return builtinValues()[f]
}

// builtinValues are the built-in defaults by field (cue/builtin.cue).
var builtinValues = sync.OnceValue(func() []value {
	d, err := recpolcue.BuiltinDefaults()
	if err != nil {
		panic(err) // the embedded defaults are tested
	}
	out := make([]value, numFields)
	for _, b := range d.Builtin {
		f, ok := fieldByName[b.Name]
		if !ok {
			panic("compiler: built-in default " + b.Name + " is no setting of the table")
		}
		x := value{set: true}
		switch v := b.Value.(type) {
		case int:
			x.i, ok = v, fieldKind(f) == table.IntSetting
		case bool:
			x.b, ok = v, fieldKind(f) == table.BoolSetting
		case string:
			x.s, ok = v, fieldKind(f) == table.StringSetting
		}
		if !ok {
			panic(fmt.Sprintf("compiler: built-in default %s: %v is not a %s", b.Name, b.Value, fieldKind(f)))
		}
		out[f] = x
	}
	return out
})

// provKey is what a scope field's provenance string is made of, but the
// field.
type provKey struct {
	name, prefix, dk, nk string
}

// fixedProvenance are the provenance strings of the defaults and the
// built-in defaults, by field.
var fixedProvenance = sync.OnceValue(func() (p struct{ defaults, builtin []string }) {
	for f := field(0); f < numFields; f++ {
		p.defaults = append(p.defaults, "defaults "+fieldNames[f])
		p.builtin = append(p.builtin, "builtin "+fieldNames[f])
	}
	return p
})

func (r *resolver) provenance(chain []scopeObj, src source, f field, actionPrefix string) string {
	switch src.kind {
	case srcScope:
		if actionPrefix != "" {
			return r.intern(actionPrefix + ".data." + fieldNames[f])
		}
		return r.scopeProvenance(r.scopeProvenances(chain, src), chain, src, f)
	case srcDefaults:
		return fixedProvenance().defaults[f]
	}
	if !builtinValues()[f].set {
		return "" // no built-in default
	}
	if actionPrefix != "" && f == fTimeLimit {
		return "builtin action.time_limit"
	}
	return fixedProvenance().builtin[f]
}

// scopeProvenances returns the provenance strings of the fields of the
// scope and keys of src (of kind srcScope), as far as they were made.
func (r *resolver) scopeProvenances(chain []scopeObj, src source) []string {
	s := chain[src.scope]
	k := provKey{s.name, s.prefix, src.dk, src.nk}
	ps, ok := r.provs[k]
	if !ok {
		n := int(numFields)
		if len(r.provSlab) < n {
			r.provSlab = make([]string, provsChunk*n)
		}
		ps, r.provSlab = r.provSlab[:n:n], r.provSlab[n:]
		r.provs[k] = ps
	}
	return ps
}

// provsChunk is how many lists of provenance strings scopeProvenances
// allocates at a time: a few dozen scopes and keys an account.
const provsChunk = 16

// scopeProvenance returns the provenance string of field f of the scope
// and keys of src, made once into ps (scopeProvenances).
func (r *resolver) scopeProvenance(ps []string, chain []scopeObj, src source, f field) string {
	if v := ps[f]; v != "" {
		return v
	}
	s := chain[src.scope]
	v := r.intern(s.name + " " + s.prefix + "." + src.dk + "." + src.nk + "." + fieldNames[f])
	ps[f] = v
	return v
}

// cellUnsure reports whether a cell's record_min_sec or time_limit may
// differ from what the policy means because a value was lost to an error:
// a lost value in a scope tried before the winning one (or in defaults,
// when defaults or the built-in values won) might have won instead.
func (r *resolver) cellUnsure(chain []scopeObj, srcs []source) bool {
	if len(r.c.lost) == 0 {
		return false
	}
	if r.ownerLost {
		return true
	}
	for _, f := range []field{fTimeLimit, fRecordMinSec} {
		src := srcs[f]
		last := len(chain) - 1
		if src.kind == srcScope {
			last = src.scope
		} else if r.c.mayHaveLost([]string{"defaults"}, 1, fieldNames[f]) {
			return true
		}
		for _, s := range chain[:last+1] {
			if r.c.mayHaveLost(s.path.path(), 3, fieldNames[f]) {
				return true
			}
		}
	}
	return false
}

// actionUnsure is cellUnsure for an action at path.
func (r *resolver) actionUnsure(path []string, srcs []source) bool {
	if len(r.c.lost) == 0 {
		return false
	}
	for _, f := range []field{fTimeLimit, fRecordMinSec} {
		if r.c.mayHaveLost(path, 2, fieldNames[f]) {
			return true // the action, its module, its data or the field
		}
		if srcs[f].kind != srcScope && r.c.mayHaveLost([]string{"defaults"}, 1, fieldNames[f]) {
			return true
		}
	}
	return false
}

// scopePath is the CUE path of a resolved field, for positions.
func (r *resolver) scopePath(chain []scopeObj, src source, f field) []string {
	switch src.kind {
	case srcScope:
		s := chain[src.scope]
		return append(s.path.path(), src.dk, src.nk, fieldNames[f])
	case srcDefaults:
		return []string{"defaults", fieldNames[f]}
	}
	return nil
}

func (r *resolver) settings(vals []value, prov []string, action bool) (table.Settings, table.Provenance) {
	s, p := &r.scratchSettings, &r.scratchProv
	*s, *p = table.Settings{}, table.Provenance{}
	for f := fEnabled + 1; f < numFields; f++ {
		st := settingOf[f]
		st.SetKind(s, vals[f].i, vals[f].b, vals[f].s)
		st.SetProvenance(p, prov[f])
	}
	if !action {
		p.Enabled = prov[fEnabled]
	}
	return *s, *p
}

// checkMinSec reports a resolved record_min_sec that is not below the
// resolved time_limit, at the winning record_min_sec with the time_limit
// as a second position; each pair of sources is reported once.
func (r *resolver) checkMinSec(vals []value, prov []string, path func(field) []string) {
	minSec, limit := vals[fRecordMinSec].i, vals[fTimeLimit].i
	if minSec < limit {
		return
	}
	mp, lp := path(fRecordMinSec), path(fTimeLimit)
	key := strings.Join(mp, "\x00") + "\x01" + strings.Join(lp, "\x00")
	if r.minSecs[key] {
		return
	}
	r.minSecs[key] = true
	d := Diagnostic{Code: CodeMinSec, Severity: Error, Path: cuePath(mp),
		Message: fmt.Sprintf("record_min_sec %d must be less than time_limit %d, or every recording is discarded", minSec, limit)}
	if mp != nil {
		d.Position = r.c.posOf(mp...)
	}
	d.Message += fmt.Sprintf(" (time_limit from %s)", prov[fTimeLimit])
	if lp != nil {
		d.Related = []Position{r.c.posOf(lp...)}
	}
	r.c.add(d)
}

// action resolves a callflow or metaflow action: the action's data, then
// defaults, then the built-in defaults for actions.
func (r *resolver) action(a *rawAction, defaultAction table.Verb, prov string, path []string) table.Action {
	callerOnly := table.Module(a.Module) == table.RecordCaller
	var valBuf [maxFields]value
	var srcBuf [maxFields]source
	var provBuf [maxFields]string
	vals, srcs, provs := valBuf[:numFields], srcBuf[:numFields], provBuf[:numFields]
	for f := fEnabled + 1; f < numFields; f++ {
		if v := a.Data.get(f, callerOnly); v.set {
			vals[f], srcs[f] = v, source{kind: srcScope}
		} else if v := r.c.policy.Defaults.get(f); v.set {
			vals[f], srcs[f] = v, source{kind: srcDefaults}
		} else {
			vals[f], srcs[f] = r.builtin(f, true), source{kind: srcBuiltin}
		}
		provs[f] = r.provenance(nil, srcs[f], f, prov)
	}
	s, p := r.settings(vals, provs, true)
	if !r.actionUnsure(path, srcs) {
		r.checkMinSec(vals, provs, func(f field) []string {
			switch srcs[f].kind {
			case srcScope:
				return append(append([]string(nil), path...), "data", fieldNames[f])
			case srcDefaults:
				return []string{"defaults", fieldNames[f]}
			}
			return nil
		})
	}
	out := table.Action{Module: table.Module(a.Module), Action: defaultAction, FollowTransfer: r.c.defaults.Action.ShouldFollowTransfer,
		Settings: r.sets.Settings(s), Provenance: r.in.Provenance(p)}
	if d := a.Data; d != nil {
		if d.Action != nil && !callerOnly {
			out.Action = table.Verb(*d.Action)
		}
		if d.Label != nil {
			out.Label = *d.Label
		}
		if d.MediaName != nil {
			out.MediaName = *d.MediaName
		}
		if d.ShouldFollowTransfer != nil {
			out.FollowTransfer = *d.ShouldFollowTransfer
		}
		if d.Origin != nil {
			out.Origin = *d.Origin
		}
		if d.DTMFLeg != nil {
			out.DTMFLeg = table.DTMFSource(*d.DTMFLeg)
		}
		if d.Scope != nil {
			out.Scope = table.StopScope(*d.Scope)
		}
	}
	return out
}

// metaScope is one metaflows object in a resolution chain.
type metaScope struct {
	name string
	path valuePath
	m    *rawMetaflows
}

// metaKey identifies what an endpoint's metaflows are resolved from: the
// scopes of its chain that define metaflows, in order. Within one policy
// a scope's name says its path too.
type metaKey [3]struct {
	name string
	m    *rawMetaflows
}

// metaflows resolves an endpoint's metaflows field by field, device >
// owner > account; numbers and patterns merge by code, the most specific
// scope winning. It returns nil when no scope defines metaflows.
//
// Endpoints whose chains define the same metaflows share one resolved
// value, as cells share their settings: most devices and users of an
// account define none of their own and have the account's.
func (r *resolver) metaflows(chain []metaScope) *table.Metaflows {
	var key metaKey
	n := 0
	for _, s := range chain {
		if s.m == nil {
			continue
		}
		if n < len(key) {
			key[n].name, key[n].m = s.name, s.m
		}
		n++
	}
	if n == 0 {
		return nil
	}
	if n > len(key) {
		return r.resolveMetaflows(chain)
	}
	if m, ok := r.metas[key]; ok {
		return m
	}
	m := r.resolveMetaflows(chain)
	if r.metas == nil {
		r.metas = map[metaKey]*table.Metaflows{}
	}
	r.metas[key] = m
	return m
}

// resolveMetaflows is metaflows without sharing.
func (r *resolver) resolveMetaflows(chain []metaScope) *table.Metaflows {
	ab := r.c.defaults.Action
	out := &table.Metaflows{BindingDigit: ab.BindingDigit, DigitTimeout: ab.DigitTimeout, ListenOn: table.DTMFSource(ab.ListenOn)}
	setDigit, setTimeout, setListen := false, false, false
	seenNum, seenPat := map[string]bool{}, map[string]bool{}
	for _, s := range chain {
		m := s.m
		if m == nil {
			continue
		}
		if m.BindingDigit != nil && !setDigit {
			out.BindingDigit, setDigit = *m.BindingDigit, true
		}
		if m.DigitTimeout != nil && !setTimeout {
			out.DigitTimeout, setTimeout = *m.DigitTimeout, true
		}
		if m.ListenOn != nil && !setListen {
			out.ListenOn, setListen = table.DTMFSource(*m.ListenOn), true
		}
		for _, code := range sortedKeys(m.Numbers) {
			if seenNum[code] {
				continue
			}
			seenNum[code] = true
			p := append(s.path.path(), "numbers", code)
			act := r.action(m.Numbers[code], table.Start, s.name+" metaflows.numbers."+code, p)
			out.Numbers = append(out.Numbers, table.MetaflowBinding{Code: code, Action: act, From: s.name})
		}
		for _, pat := range sortedKeys(m.Patterns) {
			if seenPat[pat] {
				continue
			}
			seenPat[pat] = true
			p := append(s.path.path(), "patterns", pat)
			act := r.action(m.Patterns[pat], table.Start, s.name+" metaflows.patterns."+pat, p)
			out.Patterns = append(out.Patterns, table.MetaflowBinding{Code: pat, Action: act, From: s.name})
		}
	}
	sort.Slice(out.Numbers, func(i, j int) bool { return out.Numbers[i].Code < out.Numbers[j].Code })
	sort.Slice(out.Patterns, func(i, j int) bool { return out.Patterns[i].Code < out.Patterns[j].Code })
	return out
}
