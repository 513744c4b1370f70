package compiler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/recpol/recpol/table"
)

// The policy as decoded from the evaluated CUE value. Pointer fields are nil
// when the policy leaves them unset: unset must stay distinguishable from
// set, or device > user precedence breaks.

type rawPolicy struct {
	Defaults *rawSettings           `json:"defaults"`
	Accounts map[string]*rawAccount `json:"accounts"`
}

type rawAccount struct {
	CallRecording *struct {
		Account  *rawCR `json:"account"`
		Endpoint *rawCR `json:"endpoint"`
	} `json:"call_recording"`
	Metaflows *rawMetaflows           `json:"metaflows"`
	Users     map[string]*rawUser     `json:"users"`
	Devices   map[string]*rawDevice   `json:"devices"`
	Callflows map[string]*rawCallflow `json:"callflows"`
}

type rawUser struct {
	CallRecording *rawCR        `json:"call_recording"`
	Metaflows     *rawMetaflows `json:"metaflows"`
}

type rawDevice struct {
	Owner         *string       `json:"owner"`
	CallRecording *rawCR        `json:"call_recording"`
	Metaflows     *rawMetaflows `json:"metaflows"`
}

// rawCR is a call_recording object: direction -> network -> settings.
type rawCR struct {
	Any      *rawNetwork `json:"any"`
	Inbound  *rawNetwork `json:"inbound"`
	Outbound *rawNetwork `json:"outbound"`
}

type rawNetwork struct {
	Any    *rawSettings `json:"any"`
	Onnet  *rawSettings `json:"onnet"`
	Offnet *rawSettings `json:"offnet"`
}

// rawSettings are the settings of one cell: enabled and every setting of
// table.SettingList, by field (see settingVals).
type rawSettings struct {
	vals settingVals
}

type rawCallflow struct {
	Numbers  []string    `json:"numbers"`
	Patterns []string    `json:"patterns"`
	Actions  []rawAction `json:"actions"`
}

type rawAction struct {
	Module string         `json:"module"`
	Data   *rawActionData `json:"data"`
}

// rawActionData is the data of an action: the settings of table.SettingList
// it sets (by field; enabled is never set) and the action's own fields.
type rawActionData struct {
	vals                 settingVals
	Action               *string `json:"action"`
	Label                *string `json:"label"`
	MediaName            *string `json:"media_name"`
	ShouldFollowTransfer *bool   `json:"should_follow_transfer"`
	Origin               *string `json:"origin"`
	DTMFLeg              *string `json:"dtmf_leg"`
	Scope                *string `json:"scope"`
}

type rawMetaflows struct {
	BindingDigit *string               `json:"binding_digit"`
	DigitTimeout *int                  `json:"digit_timeout"`
	ListenOn     *string               `json:"listen_on"`
	Numbers      map[string]*rawAction `json:"numbers"`
	Patterns     map[string]*rawAction `json:"patterns"`
}

// field names what a cell resolves: fEnabled, then the settings of
// table.SettingList in its order (field i+1 is SettingList[i]), which is
// the resolution order of a cell.
type field uint8

// fEnabled is whether a cell records; it is no setting of the table.
const fEnabled field = 0

// maxFields bounds the number of fields, so that a cell's values fit in
// arrays on the stack.
const maxFields = 32

// numFields is the number of fields: enabled and every setting.
var numFields = func() field {
	n := len(table.SettingList) + 1
	if n > maxFields {
		panic("compiler: more settings than maxFields")
	}
	return field(n)
}()

// The fields the compiler checks or resolves by rules of their own.
var (
	fTimeLimit    = fieldNamed("time_limit")     // an action's built-in default; record_min_sec must be below it
	fRecordMinSec = fieldNamed("record_min_sec") // must be below time_limit
	fURL          = fieldNamed("url")            // checked by vet
	fAnnounce     = fieldNamed("announce")       // checked by vet
)

// fieldNamed returns the field of a setting.
func fieldNamed(name string) field {
	for i, st := range table.SettingList {
		if st.Name == name {
			return field(i + 1)
		}
	}
	panic("compiler: " + name + " is no setting of the table")
}

// fieldNames names the fields: "enabled", then the settings' names.
var fieldNames = func() []string {
	out := []string{table.EnabledName}
	for _, st := range table.SettingList {
		out = append(out, st.Name)
	}
	return out
}()

// settingOf is the table's description of every field but fEnabled.
var settingOf = func() []*table.Setting {
	return append([]*table.Setting{nil}, table.SettingList...)
}()

// callerSettings are the settings the data of a record_caller action may
// set (#RecordCallerData in the schema; TestPlainSchema holds the plain
// schema, which takes them from here, to it).
var callerSettings = []string{"format", "method", "time_limit", "url"}

// callerField says which fields record_caller takes.
var callerField = func() []bool {
	out := make([]bool, numFields)
	for _, name := range callerSettings {
		out[fieldNamed(name)] = true
	}
	return out
}()

// value is a set or unset setting.
type value struct {
	set bool
	b   bool
	i   int
	s   string
}

func bv(p *bool) value {
	if p == nil {
		return value{}
	}
	return value{set: true, b: *p}
}

func iv(p *int) value {
	if p == nil {
		return value{}
	}
	return value{set: true, i: *p}
}

func sv(p *string) value {
	if p == nil {
		return value{}
	}
	return value{set: true, s: *p}
}

func (s *rawSettings) get(f field) value {
	if s == nil {
		return value{}
	}
	return s.vals.get(f)
}

// get returns the settings an action's data sets; record_caller takes only
// callerSettings.
func (d *rawActionData) get(f field, callerOnly bool) value {
	if d == nil || f == fEnabled || callerOnly && !callerField[f] {
		return value{}
	}
	return d.vals.get(f)
}

func (cr *rawCR) dir(key string) *rawNetwork {
	if cr == nil {
		return nil
	}
	switch key {
	case "any":
		return cr.Any
	case "inbound":
		return cr.Inbound
	case "outbound":
		return cr.Outbound
	}
	return nil
}

func (n *rawNetwork) net(key string) *rawSettings {
	if n == nil {
		return nil
	}
	switch key {
	case "any":
		return n.Any
	case "onnet":
		return n.Onnet
	case "offnet":
		return n.Offnet
	}
	return nil
}

// settingVals are the values of the fields an object sets, by field: nil
// while it sets none.
type settingVals []value

func (v settingVals) get(f field) value {
	if int(f) < len(v) {
		return v[f]
	}
	return value{}
}

// str returns the string field f, nil while it is unset.
func (v settingVals) str(f field) *string {
	if x := v.get(f); x.set {
		return &x.s
	}
	return nil
}

// str returns the string field f, nil while it is unset.
func (s *rawSettings) str(f field) *string { return s.vals.str(f) }

// set sets field f to x, unless x is unset.
func (v *settingVals) set(f field, x value) {
	if !x.set {
		return
	}
	if *v == nil {
		*v = make(settingVals, numFields)
	}
	(*v)[f] = x
}

// fieldKind is the type of a field's value.
func fieldKind(f field) table.SettingKind {
	if f == fEnabled {
		return table.BoolSetting
	}
	return settingOf[f].Kind
}

// fieldByName indexes fieldNames.
var fieldByName = func() map[string]field {
	m := make(map[string]field, len(fieldNames))
	for f, name := range fieldNames {
		m[name] = field(f)
	}
	return m
}()

// The JSON of the raw policy (the plain-data path decodes it, the cache
// keeps it) has a member per field, by name, null while it is unset.

// appendJSON appends the members of the fields from f on.
func (v settingVals) appendJSON(b []byte, f field) []byte {
	for ; f < numFields; f++ {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(strconv.AppendQuote(b, fieldNames[f]), ':')
		x := v.get(f)
		switch {
		case !x.set:
			b = append(b, "null"...)
		case fieldKind(f) == table.IntSetting:
			b = strconv.AppendInt(b, int64(x.i), 10)
		case fieldKind(f) == table.BoolSetting:
			b = strconv.AppendBool(b, x.b)
		default:
			s, err := json.Marshal(x.s)
			if err != nil {
				panic(err) // a string always marshals
			}
			b = append(b, s...)
		}
	}
	return b
}

// decodeJSON decodes the member of field f.
func (v *settingVals) decodeJSON(f field, raw json.RawMessage) error {
	if string(raw) == "null" {
		return nil
	}
	var x value
	var err error
	switch fieldKind(f) {
	case table.IntSetting:
		err = json.Unmarshal(raw, &x.i)
	case table.BoolSetting:
		err = json.Unmarshal(raw, &x.b)
	default:
		err = json.Unmarshal(raw, &x.s)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", fieldNames[f], err)
	}
	x.set = true
	v.set(f, x)
	return nil
}

func (s *rawSettings) MarshalJSON() ([]byte, error) {
	return append(s.vals.appendJSON([]byte{'{'}, fEnabled), '}'), nil
}

func (s *rawSettings) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*s = rawSettings{}
	for k, raw := range m {
		f, ok := fieldByName[k]
		if !ok {
			return fmt.Errorf("settings: unknown field %q", k)
		}
		if err := s.vals.decodeJSON(f, raw); err != nil {
			return err
		}
	}
	return nil
}

// actionDataFields is rawActionData without its methods: its own fields
// in encoding/json's way.
type actionDataFields rawActionData

func (d *rawActionData) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal((*actionDataFields)(d))
	if err != nil {
		return nil, err
	}
	return append(d.vals.appendJSON(b[:len(b)-1], fEnabled+1), '}'), nil
}

func (d *rawActionData) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	var vals settingVals
	own := make(map[string]json.RawMessage, len(m))
	for k, raw := range m {
		if f, ok := fieldByName[k]; ok && f != fEnabled {
			if err := vals.decodeJSON(f, raw); err != nil {
				return err
			}
			continue
		}
		own[k] = raw
	}
	ob, err := json.Marshal(own)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(ob))
	dec.DisallowUnknownFields()
	var a actionDataFields
	if err := dec.Decode(&a); err != nil {
		return err
	}
	*d = rawActionData(a)
	d.vals = vals
	return nil
}
