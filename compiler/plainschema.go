package compiler

import (
	"regexp"
	"sync"

	"github.com/recpol/recpol/table"
)

// plainSchema is the embedded schema (cue/policy.cue) in Go, for the
// plain-data path: closed structs with their fields, maps with their key
// patterns, lists, and leaves with their types, ranges, enums and
// patterns. It says only whether a plain value is valid: anything it
// rejects goes through CUE, which says why. TestPlainSchema checks it
// against the embedded schema field by field, and probes every leaf and
// key with values on both sides of its constraints.
var plainSchema = sync.OnceValue(func() *snode {
	id := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	i64 := func(n int64) *int64 { return &n }
	boolean := &snode{kind: sBool}
	str := &snode{kind: sString}
	enum := func(s ...string) *snode { return &snode{kind: sString, enumS: s} }
	idStr := &snode{kind: sString, re: id}
	opt := func(n *snode) sfield { return sfield{node: n} }
	closed := func(fs map[string]sfield) *snode { return &snode{kind: sStruct, fields: fs} }

	// setting is a setting's leaf: its type's constraints, or its kind.
	setting := func(st *table.Setting) sfield {
		if n, ok := plainSettingNodes()[st.Name]; ok {
			return opt(n)
		}
		return opt(&snode{kind: plainKind[st.Kind]})
	}
	settingsFields := map[string]sfield{"enabled": opt(boolean)}
	for _, st := range table.SettingList {
		settingsFields[st.Name] = setting(st)
	}
	settings := closed(settingsFields)
	network := closed(map[string]sfield{"any": opt(settings), "onnet": opt(settings), "offnet": opt(settings)})
	cr := closed(map[string]sfield{"any": opt(network), "inbound": opt(network), "outbound": opt(network)})
	recordCallSettings := func(extra map[string]sfield) *snode {
		fs := map[string]sfield{
			"label": opt(str), "media_name": opt(str), "should_follow_transfer": opt(boolean), "origin": opt(str),
			"dtmf_leg": opt(enum("self", "peer", "both")),
		}
		for _, st := range table.SettingList {
			fs[st.Name] = setting(st)
		}
		for k, v := range extra {
			fs[k] = v
		}
		return closed(fs)
	}
	callerData := map[string]sfield{}
	for _, name := range callerSettings {
		st, _ := table.SettingNamed(name)
		callerData[name] = setting(st)
	}
	action := &snode{kind: sAction, byModule: map[string]*snode{
		"record_call":   recordCallSettings(map[string]sfield{"action": opt(enum("start", "stop"))}),
		"record_caller": closed(callerData),
	}}
	metaflowAction := &snode{kind: sAction, byModule: map[string]*snode{
		"record_call": recordCallSettings(map[string]sfield{
			"action": opt(enum("start", "stop", "mask", "unmask", "pause", "resume", "toggle")),
			"scope":  opt(enum("call")),
		}),
	}}
	metaflows := closed(map[string]sfield{
		"binding_digit": opt(enum("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#")),
		"digit_timeout": opt(&snode{kind: sInt, min: i64(500), max: i64(10000)}),
		"listen_on":     opt(enum("self", "peer", "both")),
		"numbers":       opt(&snode{kind: sMap, elem: metaflowAction}),
		"patterns":      opt(&snode{kind: sMap, elem: metaflowAction}),
	})
	strList := &snode{kind: sList, elem: str}
	callflow := closed(map[string]sfield{
		"numbers": opt(strList), "patterns": opt(strList),
		"actions": {node: &snode{kind: sList, elem: action}, required: true},
	})
	account := closed(map[string]sfield{
		"call_recording": opt(closed(map[string]sfield{"account": opt(cr), "endpoint": opt(cr)})),
		"metaflows":      opt(metaflows),
		"users":          opt(&snode{kind: sMap, key: id, elem: closed(map[string]sfield{"call_recording": opt(cr), "metaflows": opt(metaflows)})}),
		"devices": opt(&snode{kind: sMap, key: id, elem: closed(map[string]sfield{
			"owner": opt(idStr), "call_recording": opt(cr), "metaflows": opt(metaflows)})}),
		"callflows": opt(&snode{kind: sMap, key: id, elem: callflow}),
	})
	return closed(map[string]sfield{
		"defaults": opt(settings),
		"accounts": opt(&snode{kind: sMap, key: id, elem: account}),
	})
})

// plainSettingNodes are the leaves of the settings whose schema constrains
// more than their kind (an enum, a range, a pattern), by name; every other
// setting's leaf is its kind. TestPlainSettingNodes fails when a setting
// the schema constrains is missing.
var plainSettingNodes = sync.OnceValue(func() map[string]*snode {
	i64 := func(n int64) *int64 { return &n }
	enum := func(s ...string) *snode { return &snode{kind: sString, enumS: s} }
	nodes := map[string]*snode{
		"format":             enum("mp3", "wav"),
		"method":             enum("put", "post"),
		"record_sample_rate": {kind: sInt, enumI: []int64{8000, 16000, 32000, 44100, 48000}},
		"time_limit":         {kind: sInt, min: i64(5), max: i64(10800)},
		"record_min_sec":     {kind: sInt, min: i64(0)},
		"url":                {kind: sString, re: regexp.MustCompile(`^https?://[^@/?#]+([/?#].*)?$`)},
		"announce_to":        enum("both", "aleg", "bleg"),
	}
	for name := range nodes {
		if _, ok := table.SettingNamed(name); !ok {
			panic("plain schema: " + name + " is no setting of the table")
		}
	}
	return nodes
})

// plainKind is the kind of a setting's leaf.
var plainKind = map[table.SettingKind]skind{
	table.StringSetting: sString, table.IntSetting: sInt, table.BoolSetting: sBool,
}

// skind is the kind of a schema node.
type skind uint8

const (
	sStruct skind = iota // a closed struct: fields
	sMap                 // a struct of any fields whose labels match key: elem
	sList                // a list of elem
	sAction              // {module, data}: data's schema depends on module
	sBool
	sInt
	sString
)

// snode is a node of plainSchema.
type snode struct {
	kind     skind
	fields   map[string]sfield
	key      *regexp.Regexp // sMap: labels must match (nil: any)
	elem     *snode
	byModule map[string]*snode // sAction: the data of each module
	min, max *int64            // sInt
	enumI    []int64
	enumS    []string
	re       *regexp.Regexp // sString
}

// sfield is a field of a closed struct.
type sfield struct {
	node     *snode
	required bool
}

// check reports whether v is valid.
func (s *snode) check(v *pnode) bool {
	switch s.kind {
	case sStruct:
		if v.kind != pStruct {
			return false
		}
		for k, f := range v.fields {
			sf, ok := s.fields[k]
			if !ok || !sf.node.check(f) {
				return false
			}
		}
		for k, sf := range s.fields {
			if _, ok := v.fields[k]; sf.required && !ok {
				return false
			}
		}
		return true
	case sMap:
		if v.kind != pStruct {
			return false
		}
		for k, f := range v.fields {
			if s.key != nil && !s.key.MatchString(k) || !s.elem.check(f) {
				return false
			}
		}
		return true
	case sList:
		if v.kind != pList {
			return false
		}
		for _, e := range v.elems {
			if !s.elem.check(e) {
				return false
			}
		}
		return true
	case sAction:
		if v.kind != pStruct {
			return false
		}
		m, ok := v.fields["module"]
		if !ok || m.kind != pString {
			return false
		}
		data, ok := s.byModule[m.s]
		if !ok {
			return false
		}
		for k, f := range v.fields {
			switch k {
			case "module":
			case "data":
				if !data.check(f) {
					return false
				}
			default:
				return false
			}
		}
		return true
	case sBool:
		return v.kind == pBool
	case sInt:
		if v.kind != pInt || s.min != nil && v.i < *s.min || s.max != nil && v.i > *s.max {
			return false
		}
		if s.enumI == nil {
			return true
		}
		for _, e := range s.enumI {
			if v.i == e {
				return true
			}
		}
		return false
	case sString:
		if v.kind != pString || s.re != nil && !s.re.MatchString(v.s) {
			return false
		}
		if s.enumS == nil {
			return true
		}
		for _, e := range s.enumS {
			if v.s == e {
				return true
			}
		}
		return false
	}
	return false
}
