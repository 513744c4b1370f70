package compiler

import (
	"cuelang.org/go/cue"

	"github.com/recpol/recpol/table"
)

// The evaluated policy is decoded by looking up the fields the schema
// defines, rather than with cue.Value.Decode: Decode visits every struct
// through CUE's field ordering, which costs more than the evaluation of a
// policy's settings itself. Maps (accounts, users, devices, callflows,
// metaflow codes) are iterated; every other field is looked up by name.

// decoder decodes one evaluated policy, which may hold errors: a value
// that does not decode is left unset and its path recorded as lost.
type decoder struct {
	c        *compilation
	reported map[string]bool // paths of the errors reported so far
}

// fail records that v could not be decoded. Its error was reported by
// evaluate already, or follows from one that was (the fields of a struct
// CUE rejected), except for an incomplete value (enabled: bool): CUE
// reports those only when nothing else is wrong, so one that was not is
// reported here.
func (d *decoder) fail(v cue.Value, err error) {
	path := selectorPath(v.Path())
	d.c.lost = append(d.c.lost, path)
	if v.Validate() != nil {
		return // not merely incomplete
	}
	if d.reported == nil {
		d.reported = map[string]bool{}
		for _, dg := range d.c.diags {
			if dg.Severity == Error {
				d.reported[dg.Path] = true
			}
		}
	}
	p := cuePath(path)
	if d.reported[p] {
		return
	}
	d.reported[p] = true
	if verr := v.Validate(cue.Concrete(true)); verr != nil {
		err = verr
	}
	d.c.cueErrors(CodeSchema, err)
}

// selectorPath turns a CUE path into the labels cuePath formats, with list
// indices as "[i]".
func selectorPath(p cue.Path) []string {
	sels := p.Selectors()
	out := make([]string, len(sels))
	for i, s := range sels {
		if s.Type() == cue.IndexLabel {
			out[i] = "[" + s.String() + "]"
		} else {
			out[i] = s.Unquoted()
		}
	}
	return out
}

func lookup(v cue.Value, name string) (cue.Value, bool) {
	f := v.LookupPath(cue.MakePath(cue.Str(name)))
	return f, f.Exists()
}

func (d *decoder) boolp(v cue.Value, name string) *bool {
	f, ok := lookup(v, name)
	if !ok {
		return nil
	}
	b, err := f.Bool()
	if err != nil {
		d.fail(f, err)
		return nil
	}
	return &b
}

func (d *decoder) intp(v cue.Value, name string) *int {
	f, ok := lookup(v, name)
	if !ok {
		return nil
	}
	i, err := f.Int64()
	if err != nil {
		d.fail(f, err)
		return nil
	}
	n := int(i)
	return &n
}

func (d *decoder) strp(v cue.Value, name string) *string {
	f, ok := lookup(v, name)
	if !ok {
		return nil
	}
	s, err := f.String()
	if err != nil {
		d.fail(f, err)
		return nil
	}
	return &s
}

// strs decodes a list of strings; an element that does not decode becomes
// "" and its path is lost (see compilation.isLost), so that the others keep
// their indices.
func (d *decoder) strs(v cue.Value, name string) []string {
	f, ok := lookup(v, name)
	if !ok {
		return nil
	}
	out := []string{}
	if !d.elems(f, func(e cue.Value) {
		s, err := e.String()
		if err != nil {
			d.fail(e, err)
		}
		out = append(out, s)
	}) {
		return nil
	}
	return out
}

// elems calls f for every element of the list l. CUE does not iterate a
// list that holds an erroneous element, so such a list is walked by index:
// the other elements are still decoded, and f decodes the erroneous one
// (and fails on it). It reports false, having recorded the failure, when l
// is not a list.
func (d *decoder) elems(l cue.Value, f func(cue.Value)) bool {
	it, err := l.List()
	if err == nil {
		for it.Next() {
			f(it.Value())
		}
		return true
	}
	n := 0
	for ; ; n++ {
		e := l.LookupPath(cue.MakePath(cue.Index(n)))
		if !e.Exists() {
			break
		}
		f(e)
	}
	if n == 0 {
		d.fail(l, err)
		return false
	}
	return true
}

// each calls f for every regular field of the struct at name.
func (d *decoder) each(v cue.Value, name string, f func(label string, v cue.Value)) bool {
	m, ok := lookup(v, name)
	if !ok {
		return false
	}
	it, err := m.Fields()
	if err != nil {
		d.fail(m, err)
		return false
	}
	for it.Next() {
		f(it.Selector().Unquoted(), it.Value())
	}
	return true
}

// policy decodes an evaluated policy.
func (d *decoder) policy(v cue.Value) rawPolicy {
	var p rawPolicy
	if s, ok := lookup(v, "defaults"); ok {
		p.Defaults = d.settings(s)
	}
	d.each(v, "accounts", func(id string, a cue.Value) {
		if p.Accounts == nil {
			p.Accounts = map[string]*rawAccount{}
		}
		p.Accounts[id] = d.account(a)
	})
	return p
}

func (d *decoder) account(v cue.Value) *rawAccount {
	a := &rawAccount{}
	if cr, ok := lookup(v, "call_recording"); ok {
		a.CallRecording = &struct {
			Account  *rawCR `json:"account"`
			Endpoint *rawCR `json:"endpoint"`
		}{d.cr(cr, "account"), d.cr(cr, "endpoint")}
	}
	a.Metaflows = d.metaflows(v)
	d.each(v, "users", func(id string, u cue.Value) {
		if a.Users == nil {
			a.Users = map[string]*rawUser{}
		}
		a.Users[id] = &rawUser{CallRecording: d.cr(u, "call_recording"), Metaflows: d.metaflows(u)}
	})
	d.each(v, "devices", func(id string, dv cue.Value) {
		if a.Devices == nil {
			a.Devices = map[string]*rawDevice{}
		}
		a.Devices[id] = &rawDevice{Owner: d.strp(dv, "owner"), CallRecording: d.cr(dv, "call_recording"), Metaflows: d.metaflows(dv)}
	})
	d.each(v, "callflows", func(id string, cf cue.Value) {
		if a.Callflows == nil {
			a.Callflows = map[string]*rawCallflow{}
		}
		c := &rawCallflow{Numbers: d.strs(cf, "numbers"), Patterns: d.strs(cf, "patterns")}
		if acts, ok := lookup(cf, "actions"); ok {
			d.elems(acts, func(e cue.Value) { c.Actions = append(c.Actions, *d.action(e)) })
		}
		if c.Actions == nil {
			c.Actions = []rawAction{}
		}
		a.Callflows[id] = c
	})
	return a
}

func (d *decoder) cr(v cue.Value, name string) *rawCR {
	c, ok := lookup(v, name)
	if !ok {
		return nil
	}
	return &rawCR{Any: d.network(c, "any"), Inbound: d.network(c, "inbound"), Outbound: d.network(c, "outbound")}
}

func (d *decoder) network(v cue.Value, name string) *rawNetwork {
	n, ok := lookup(v, name)
	if !ok {
		return nil
	}
	out := &rawNetwork{}
	if s, ok := lookup(n, "any"); ok {
		out.Any = d.settings(s)
	}
	if s, ok := lookup(n, "onnet"); ok {
		out.Onnet = d.settings(s)
	}
	if s, ok := lookup(n, "offnet"); ok {
		out.Offnet = d.settings(s)
	}
	return out
}

// field decodes field f of the object v.
func (d *decoder) field(v cue.Value, f field) value {
	name := fieldNames[f]
	switch fieldKind(f) {
	case table.IntSetting:
		return iv(d.intp(v, name))
	case table.BoolSetting:
		return bv(d.boolp(v, name))
	}
	return sv(d.strp(v, name))
}

func (d *decoder) settings(v cue.Value) *rawSettings {
	s := &rawSettings{}
	for f := fEnabled; f < numFields; f++ {
		s.vals.set(f, d.field(v, f))
	}
	return s
}

func (d *decoder) action(v cue.Value) *rawAction {
	a := &rawAction{}
	if mv, ok := lookup(v, "module"); ok {
		m, err := mv.String()
		if err != nil {
			// The data of a rejected module is not checked either: which
			// fields it may hold depends on the module.
			d.fail(mv, err)
			return a
		}
		a.Module = m
	}
	if dv, ok := lookup(v, "data"); ok {
		data := &rawActionData{
			Action:               d.strp(dv, "action"),
			Label:                d.strp(dv, "label"),
			MediaName:            d.strp(dv, "media_name"),
			ShouldFollowTransfer: d.boolp(dv, "should_follow_transfer"),
			Origin:               d.strp(dv, "origin"),
			DTMFLeg:              d.strp(dv, "dtmf_leg"),
			Scope:                d.strp(dv, "scope"),
		}
		for f := fEnabled + 1; f < numFields; f++ {
			data.vals.set(f, d.field(dv, f))
		}
		a.Data = data
	}
	return a
}

func (d *decoder) metaflows(v cue.Value) *rawMetaflows {
	m, ok := lookup(v, "metaflows")
	if !ok {
		return nil
	}
	out := &rawMetaflows{BindingDigit: d.strp(m, "binding_digit"), DigitTimeout: d.intp(m, "digit_timeout"),
		ListenOn: d.strp(m, "listen_on")}
	d.each(m, "numbers", func(code string, a cue.Value) {
		if out.Numbers == nil {
			out.Numbers = map[string]*rawAction{}
		}
		out.Numbers[code] = d.action(a)
	})
	d.each(m, "patterns", func(p string, a cue.Value) {
		if out.Patterns == nil {
			out.Patterns = map[string]*rawAction{}
		}
		out.Patterns[p] = d.action(a)
	})
	return out
}

// isLost reports whether the value at path, or a value above it, was lost
// (see compilation.lost).
func (c *compilation) isLost(path []string) bool {
	return c.mayHaveLost(path, 0, "")
}

// mayHaveLost reports whether field f of the object at obj may have been
// lost to an error: a value at or above obj was lost, a value between obj
// and its fields (depth levels below obj: 3 for a call_recording object,
// direction, network and field; 1 for action data), or field f itself
// below obj. The policy's resolution then cannot be trusted for f.
func (c *compilation) mayHaveLost(obj []string, depth int, f string) bool {
	for _, e := range c.lost {
		if hasPrefix(obj, e) {
			return true
		}
		if hasPrefix(e, obj) && (len(e) < len(obj)+depth || len(e) == len(obj)+depth && e[len(e)-1] == f) {
			return true
		}
	}
	return false
}

func hasPrefix(path, prefix []string) bool {
	if len(prefix) > len(path) {
		return false
	}
	for i := range prefix {
		if path[i] != prefix[i] {
			return false
		}
	}
	return true
}
