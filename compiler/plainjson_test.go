package compiler

import (
	"encoding/json"
	"strconv"
)

// The raw policy of a plain value as the plain-data path once decoded it,
// through the value's JSON and encoding/json: TestRawPolicyOfMatchesJSON
// holds rawPolicyOf to it.

// plainPolicyJSON is rawPolicyOf through JSON: json.Unmarshal of the
// value's JSON, then normalize.
func plainPolicyJSON(root *pnode) (rawPolicy, bool) {
	var p rawPolicy
	if err := json.Unmarshal(root.appendJSON(nil), &p); err != nil {
		return rawPolicy{}, false
	}
	p.normalize()
	return p, true
}

// appendJSON appends the value as JSON to b: what encoding/json makes
// of it, without building it as maps of interfaces first (a plain
// string is valid UTF-8, see plainString).
func (n *pnode) appendJSON(b []byte) []byte {
	switch n.kind {
	case pStruct:
		b = append(b, '{')
		first := true
		for k, v := range n.fields {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = v.appendJSON(b)
		}
		return append(b, '}')
	case pList:
		b = append(b, '[')
		for i, v := range n.elems {
			if i > 0 {
				b = append(b, ',')
			}
			b = v.appendJSON(b)
		}
		return append(b, ']')
	case pBool:
		return strconv.AppendBool(b, n.b)
	case pInt:
		return strconv.AppendInt(b, n.i, 10)
	}
	return appendJSONString(b, n.s)
}

// appendJSONString appends s, valid UTF-8, as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// normalize leaves unset what the CUE decoder leaves unset: the maps of an
// empty struct (decoder.each adds none) and a callflow's missing actions.
func (p *rawPolicy) normalize() {
	if len(p.Accounts) == 0 {
		p.Accounts = nil
	}
	for _, a := range p.Accounts {
		if len(a.Users) == 0 {
			a.Users = nil
		}
		if len(a.Devices) == 0 {
			a.Devices = nil
		}
		if len(a.Callflows) == 0 {
			a.Callflows = nil
		}
		a.Metaflows.normalize()
		for _, u := range a.Users {
			u.Metaflows.normalize()
		}
		for _, d := range a.Devices {
			d.Metaflows.normalize()
		}
		for _, cf := range a.Callflows {
			if cf.Actions == nil {
				cf.Actions = []rawAction{}
			}
		}
	}
}

func (m *rawMetaflows) normalize() {
	if m == nil {
		return
	}
	if len(m.Numbers) == 0 {
		m.Numbers = nil
	}
	if len(m.Patterns) == 0 {
		m.Patterns = nil
	}
}
