package compiler

import (
	"github.com/recpol/recpol/table"
)

// The plain-data path builds the raw policy straight from the merged plain
// value, which plainSchema has checked, rather than through its JSON and
// encoding/json: the same policy as json.Unmarshal of the value's JSON
// followed by normalize (TestRawPolicyOfMatchesJSON holds the two to it),
// without the text in between. A value the raw policy cannot hold (a kind
// or a field the schema would have rejected) reports false, as a failed
// json.Unmarshal did, and leaves the policy to CUE.

// rawPolicyOf returns the raw policy of a checked plain value, normalized.
func rawPolicyOf(root *pnode) (rawPolicy, bool) {
	var p rawPolicy
	if root.kind != pStruct {
		return rawPolicy{}, false
	}
	for k, v := range root.fields {
		ok := true
		switch k {
		case "defaults":
			p.Defaults, ok = rawSettingsOf(v)
		case "accounts":
			ok = v.kind == pStruct
			if ok && len(v.fields) > 0 {
				p.Accounts = make(map[string]*rawAccount, len(v.fields))
				for id, a := range v.fields {
					if p.Accounts[id], ok = rawAccountOf(a); !ok {
						break
					}
				}
			}
		default:
			ok = false
		}
		if !ok {
			return rawPolicy{}, false
		}
	}
	return p, true
}

func rawAccountOf(n *pnode) (*rawAccount, bool) {
	if n.kind != pStruct {
		return nil, false
	}
	a := &rawAccount{}
	for k, v := range n.fields {
		ok := v.kind == pStruct
		if !ok {
			return nil, false
		}
		switch k {
		case "call_recording":
			a.CallRecording = &struct {
				Account  *rawCR `json:"account"`
				Endpoint *rawCR `json:"endpoint"`
			}{}
			for dk, dv := range v.fields {
				switch dk {
				case "account":
					a.CallRecording.Account, ok = rawCROf(dv)
				case "endpoint":
					a.CallRecording.Endpoint, ok = rawCROf(dv)
				default:
					ok = false
				}
				if !ok {
					return nil, false
				}
			}
		case "metaflows":
			a.Metaflows, ok = rawMetaflowsOf(v)
		case "users":
			if len(v.fields) > 0 {
				a.Users = make(map[string]*rawUser, len(v.fields))
			}
			for id, uv := range v.fields {
				var u *rawUser
				if u, ok = rawUserOf(uv); !ok {
					break
				}
				a.Users[id] = u
			}
		case "devices":
			if len(v.fields) > 0 {
				a.Devices = make(map[string]*rawDevice, len(v.fields))
			}
			for id, dv := range v.fields {
				var d *rawDevice
				if d, ok = rawDeviceOf(dv); !ok {
					break
				}
				a.Devices[id] = d
			}
		case "callflows":
			if len(v.fields) > 0 {
				a.Callflows = make(map[string]*rawCallflow, len(v.fields))
			}
			for id, cv := range v.fields {
				var cf *rawCallflow
				if cf, ok = rawCallflowOf(cv); !ok {
					break
				}
				a.Callflows[id] = cf
			}
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
	}
	return a, true
}

func rawUserOf(n *pnode) (*rawUser, bool) {
	if n.kind != pStruct {
		return nil, false
	}
	u := &rawUser{}
	for k, v := range n.fields {
		ok := true
		switch k {
		case "call_recording":
			u.CallRecording, ok = rawCROf(v)
		case "metaflows":
			u.Metaflows, ok = rawMetaflowsOf(v)
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
	}
	return u, true
}

func rawDeviceOf(n *pnode) (*rawDevice, bool) {
	if n.kind != pStruct {
		return nil, false
	}
	d := &rawDevice{}
	for k, v := range n.fields {
		ok := true
		switch k {
		case "owner":
			d.Owner, ok = strOf(v)
		case "call_recording":
			d.CallRecording, ok = rawCROf(v)
		case "metaflows":
			d.Metaflows, ok = rawMetaflowsOf(v)
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
	}
	return d, true
}

func rawCROf(n *pnode) (*rawCR, bool) {
	if n.kind != pStruct {
		return nil, false
	}
	cr := &rawCR{}
	for k, v := range n.fields {
		var nw *rawNetwork
		ok := v.kind == pStruct
		if ok {
			nw, ok = rawNetworkOf(v)
		}
		switch {
		case !ok:
		case k == "any":
			cr.Any = nw
		case k == "inbound":
			cr.Inbound = nw
		case k == "outbound":
			cr.Outbound = nw
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
	}
	return cr, true
}

func rawNetworkOf(n *pnode) (*rawNetwork, bool) {
	nw := &rawNetwork{}
	for k, v := range n.fields {
		s, ok := rawSettingsOf(v)
		switch {
		case !ok:
		case k == "any":
			nw.Any = s
		case k == "onnet":
			nw.Onnet = s
		case k == "offnet":
			nw.Offnet = s
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
	}
	return nw, true
}

// rawSettingsOf returns a cell's settings: enabled and the table's
// settings, each of its kind.
func rawSettingsOf(n *pnode) (*rawSettings, bool) {
	if n.kind != pStruct {
		return nil, false
	}
	s := &rawSettings{}
	for k, v := range n.fields {
		f, ok := fieldByName[k]
		if !ok || !s.vals.setPlain(f, v) {
			return nil, false
		}
	}
	return s, true
}

// setPlain sets field f to the plain scalar v, which must be of the
// field's kind.
func (vals *settingVals) setPlain(f field, v *pnode) bool {
	x := value{set: true}
	switch fieldKind(f) {
	case table.IntSetting:
		if v.kind != pInt {
			return false
		}
		x.i = int(v.i)
	case table.BoolSetting:
		if v.kind != pBool {
			return false
		}
		x.b = v.b
	default:
		if v.kind != pString {
			return false
		}
		x.s = v.s
	}
	vals.set(f, x)
	return true
}

func rawCallflowOf(n *pnode) (*rawCallflow, bool) {
	if n.kind != pStruct {
		return nil, false
	}
	cf := &rawCallflow{}
	for k, v := range n.fields {
		ok := true
		switch k {
		case "numbers":
			cf.Numbers, ok = strsOf(v)
		case "patterns":
			cf.Patterns, ok = strsOf(v)
		case "actions":
			if ok = v.kind == pList; ok {
				cf.Actions = make([]rawAction, len(v.elems))
				for i, e := range v.elems {
					var a *rawAction
					if a, ok = rawActionOf(e); !ok {
						break
					}
					cf.Actions[i] = *a
				}
			}
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
	}
	if cf.Actions == nil {
		cf.Actions = []rawAction{}
	}
	return cf, true
}

func rawActionOf(n *pnode) (*rawAction, bool) {
	if n.kind != pStruct {
		return nil, false
	}
	a := &rawAction{}
	for k, v := range n.fields {
		ok := true
		switch k {
		case "module":
			if ok = v.kind == pString; ok {
				a.Module = v.s
			}
		case "data":
			a.Data, ok = rawActionDataOf(v)
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
	}
	return a, true
}

func rawActionDataOf(n *pnode) (*rawActionData, bool) {
	if n.kind != pStruct {
		return nil, false
	}
	d := &rawActionData{}
	for k, v := range n.fields {
		if f, ok := fieldByName[k]; ok && f != fEnabled {
			if !d.vals.setPlain(f, v) {
				return nil, false
			}
			continue
		}
		ok := true
		switch k {
		case "action":
			d.Action, ok = strOf(v)
		case "label":
			d.Label, ok = strOf(v)
		case "media_name":
			d.MediaName, ok = strOf(v)
		case "should_follow_transfer":
			d.ShouldFollowTransfer, ok = boolOf(v)
		case "origin":
			d.Origin, ok = strOf(v)
		case "dtmf_leg":
			d.DTMFLeg, ok = strOf(v)
		case "scope":
			d.Scope, ok = strOf(v)
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
	}
	return d, true
}

func rawMetaflowsOf(n *pnode) (*rawMetaflows, bool) {
	if n.kind != pStruct {
		return nil, false
	}
	m := &rawMetaflows{}
	for k, v := range n.fields {
		ok := true
		switch k {
		case "binding_digit":
			m.BindingDigit, ok = strOf(v)
		case "digit_timeout":
			if ok = v.kind == pInt; ok {
				i := int(v.i)
				m.DigitTimeout = &i
			}
		case "listen_on":
			m.ListenOn, ok = strOf(v)
		case "numbers":
			m.Numbers, ok = rawActionsOf(v)
		case "patterns":
			m.Patterns, ok = rawActionsOf(v)
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
	}
	return m, true
}

// rawActionsOf returns a map of actions, nil while it is empty.
func rawActionsOf(n *pnode) (map[string]*rawAction, bool) {
	if n.kind != pStruct {
		return nil, false
	}
	if len(n.fields) == 0 {
		return nil, true
	}
	out := make(map[string]*rawAction, len(n.fields))
	for k, v := range n.fields {
		a, ok := rawActionOf(v)
		if !ok {
			return nil, false
		}
		out[k] = a
	}
	return out, true
}

func strOf(n *pnode) (*string, bool) {
	if n.kind != pString {
		return nil, false
	}
	s := n.s
	return &s, true
}

func boolOf(n *pnode) (*bool, bool) {
	if n.kind != pBool {
		return nil, false
	}
	b := n.b
	return &b, true
}

// strsOf returns a list of strings, empty but not nil when the list is.
func strsOf(n *pnode) ([]string, bool) {
	if n.kind != pList {
		return nil, false
	}
	out := make([]string, len(n.elems))
	for i, e := range n.elems {
		if e.kind != pString {
			return nil, false
		}
		out[i] = e.s
	}
	return out, true
}
