package compiler

import (
	"fmt"

	"cuelang.org/go/cue"
)

// The evaluated policy is decoded by looking up the fields the schema
// defines, rather than with cue.Value.Decode: Decode visits every struct
// through CUE's field ordering, which costs more than the evaluation of a
// policy's settings itself. Maps (accounts, users, devices, callflows,
// metaflow codes) are iterated; every other field is looked up by name.

// decoder decodes one evaluated policy; err keeps the first error.
type decoder struct{ err error }

func (d *decoder) fail(v cue.Value, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: %w", v.Path(), err)
	}
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

func (d *decoder) strs(v cue.Value, name string) []string {
	f, ok := lookup(v, name)
	if !ok {
		return nil
	}
	it, err := f.List()
	if err != nil {
		d.fail(f, err)
		return nil
	}
	out := []string{}
	for it.Next() {
		s, err := it.Value().String()
		if err != nil {
			d.fail(it.Value(), err)
			return nil
		}
		out = append(out, s)
	}
	return out
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

// decodePolicy decodes an evaluated, validated policy.
func decodePolicy(v cue.Value) (rawPolicy, error) {
	var d decoder
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
	return p, d.err
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
			it, err := acts.List()
			if err != nil {
				d.fail(acts, err)
			}
			for err == nil && it.Next() {
				c.Actions = append(c.Actions, *d.action(it.Value()))
			}
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

func (d *decoder) settings(v cue.Value) *rawSettings {
	return &rawSettings{
		Enabled:          d.boolp(v, "enabled"),
		Format:           d.strp(v, "format"),
		TimeLimit:        d.intp(v, "time_limit"),
		RecordMinSec:     d.intp(v, "record_min_sec"),
		RecordSampleRate: d.intp(v, "record_sample_rate"),
		RecordOnAnswer:   d.boolp(v, "record_on_answer"),
		RecordOnBridge:   d.boolp(v, "record_on_bridge"),
		Method:           d.strp(v, "method"),
		URL:              d.strp(v, "url"),
	}
}

func (d *decoder) action(v cue.Value) *rawAction {
	a := &rawAction{}
	if m := d.strp(v, "module"); m != nil {
		a.Module = *m
	}
	if dv, ok := lookup(v, "data"); ok {
		a.Data = &rawActionData{
			Action:               d.strp(dv, "action"),
			Format:               d.strp(dv, "format"),
			Label:                d.strp(dv, "label"),
			MediaName:            d.strp(dv, "media_name"),
			Method:               d.strp(dv, "method"),
			RecordMinSec:         d.intp(dv, "record_min_sec"),
			RecordOnAnswer:       d.boolp(dv, "record_on_answer"),
			RecordOnBridge:       d.boolp(dv, "record_on_bridge"),
			RecordSampleRate:     d.intp(dv, "record_sample_rate"),
			TimeLimit:            d.intp(dv, "time_limit"),
			URL:                  d.strp(dv, "url"),
			ShouldFollowTransfer: d.boolp(dv, "should_follow_transfer"),
			Origin:               d.strp(dv, "origin"),
			DTMFLeg:              d.strp(dv, "dtmf_leg"),
			Scope:                d.strp(dv, "scope"),
		}
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
