package table

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// This file is the one place that lists the recording settings. The
// table's JSON (settings and provenance), its decoder, the simulator's
// renderings (truth tables, explain, diff, the simulation's JSON), the
// variables of the switch's record command and the provenance in a
// recording's metadata all iterate SettingList. A new setting is a field of
// Settings and of Provenance, one entry below, and its line in the schema
// and the built-in defaults (cue/policy.cue, cue/builtin.cue).

// SettingKind is the type of a setting's value.
type SettingKind uint8

// The kinds of setting.
const (
	StringSetting SettingKind = iota
	IntSetting
	BoolSetting
)

// String returns "string", "int" or "bool".
func (k SettingKind) String() string {
	switch k {
	case IntSetting:
		return "int"
	case BoolSetting:
		return "bool"
	}
	return "string"
}

// Setting describes one recording setting: its name, its type and how
// each form of the table shows it.
type Setting struct {
	// Name is the setting's key everywhere: in the policy, the table's
	// JSON, a provenance ("defaults <name>") and every rendering.
	Name string
	// Kind is the type of its value.
	Kind SettingKind
	// Default is the built-in value (string, int or bool) of a cell's
	// setting, as cue/builtin.cue says it (a test of the compiler holds
	// the two equal); nil for a setting that is unset unless a scope
	// sets it.
	Default any
	// Since is the table format version (FormatVersion) that added it.
	// Renderings list the settings of the first version by name, then
	// those added later in the order of SettingList.
	Since int
	// OmitEmpty leaves the setting (and its provenance) out of the JSON
	// forms while its value is empty.
	OmitEmpty bool
	// Requires names the setting this one qualifies: the renderings show
	// it only while that one is set (the table's JSON always has it).
	Requires string
	// Terse leaves the setting out of the one-line summary of settings
	// while its value is the zero value.
	Terse bool
	// Label names it in the one-line summary; a setting that Requires
	// another is written after that one's value ("announce x to both").
	Label string
	// Var is the channel variable of the switch's uuid_record command
	// that carries it, "" for none (see RecordVars). A bool variable is
	// set only while the setting is true.
	Var string
	// MetaKey is the key of its provenance in a recording's metadata, ""
	// when the metadata leaves it out (see MetadataProvenance).
	MetaKey string

	str  func(*Settings) *string
	num  func(*Settings) *int
	flag func(*Settings) *bool
	prov func(*Provenance) *string
}

// SettingList lists every recording setting in the order of the fields of
// Settings, which is the order in which the compiler resolves them and a
// diff lists their changes. Do not modify it.
var SettingList = []*Setting{
	{Name: "format", Kind: StringSetting, Default: "mp3", Since: 1, Label: "format", MetaKey: "format",
		str: func(s *Settings) *string { return &s.Format }, prov: func(p *Provenance) *string { return &p.Format }},
	{Name: "time_limit", Kind: IntSetting, Default: 10800, Since: 1, Label: "time_limit", MetaKey: "time_limit",
		num: func(s *Settings) *int { return &s.TimeLimit }, prov: func(p *Provenance) *string { return &p.TimeLimit }},
	{Name: "record_min_sec", Kind: IntSetting, Default: 0, Since: 1, Label: "record_min_sec", Var: "RECORD_MIN_SEC", MetaKey: "record_min_sec",
		num: func(s *Settings) *int { return &s.RecordMinSec }, prov: func(p *Provenance) *string { return &p.RecordMinSec }},
	{Name: "record_sample_rate", Kind: IntSetting, Default: 8000, Since: 1, Label: "record_sample_rate", Var: "record_sample_rate", MetaKey: "record_sample_rate",
		num: func(s *Settings) *int { return &s.RecordSampleRate }, prov: func(p *Provenance) *string { return &p.RecordSampleRate }},
	{Name: "record_on_answer", Kind: BoolSetting, Default: false, Since: 1, Label: "record_on_answer", MetaKey: "record_on_answer",
		flag: func(s *Settings) *bool { return &s.RecordOnAnswer }, prov: func(p *Provenance) *string { return &p.RecordOnAnswer }},
	{Name: "record_on_bridge", Kind: BoolSetting, Default: false, Since: 1, Label: "record_on_bridge", MetaKey: "record_on_bridge",
		flag: func(s *Settings) *bool { return &s.RecordOnBridge }, prov: func(p *Provenance) *string { return &p.RecordOnBridge }},
	{Name: "method", Kind: StringSetting, Default: "put", Since: 1, Label: "method", MetaKey: "method",
		str: func(s *Settings) *string { return &s.Method }, prov: func(p *Provenance) *string { return &p.Method }},
	{Name: "url", Kind: StringSetting, Since: 1, OmitEmpty: true, Terse: true, Label: "url", MetaKey: "url",
		str: func(s *Settings) *string { return &s.URL }, prov: func(p *Provenance) *string { return &p.URL }},
	{Name: "stereo", Kind: BoolSetting, Default: false, Since: 2, Terse: true, Label: "stereo", Var: "RECORD_STEREO",
		flag: func(s *Settings) *bool { return &s.Stereo }, prov: func(p *Provenance) *string { return &p.Stereo }},
	{Name: "announce", Kind: StringSetting, Since: 2, OmitEmpty: true, Terse: true, Label: "announce",
		str: func(s *Settings) *string { return &s.Announce }, prov: func(p *Provenance) *string { return &p.Announce }},
	{Name: "announce_to", Kind: StringSetting, Default: "both", Since: 2, Requires: "announce", Label: "to",
		str: func(s *Settings) *string { return &s.AnnounceTo }, prov: func(p *Provenance) *string { return &p.AnnounceTo }},
}

// EnabledName is the key of a cell's own decision in a provenance: the
// provenance of whether it records, beside those of its settings.
const EnabledName = "enabled"

// settingsByName indexes SettingList.
var settingsByName = func() map[string]*Setting {
	m := make(map[string]*Setting, len(SettingList))
	for _, st := range SettingList {
		m[st.Name] = st
	}
	return m
}()

// SettingNamed returns the setting of a name.
func SettingNamed(name string) (*Setting, bool) {
	st, ok := settingsByName[name]
	return st, ok
}

// shownSettings is SettingList in the order of the renderings; see
// Setting.Since.
var shownSettings = func() []*Setting {
	out := append([]*Setting(nil), SettingList...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Since != b.Since {
			return a.Since < b.Since
		}
		return a.Since == 1 && a.Name < b.Name
	})
	return out
}()

// ShownSettings returns the settings in the order in which the renderings
// list them (see Setting.Since). Do not modify the slice.
func ShownSettings() []*Setting { return shownSettings }

// sortedSettings is SettingList sorted by name, the order of the table's
// canonical JSON.
var sortedSettings = func() []*Setting {
	out := append([]*Setting(nil), SettingList...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}()

// Value returns the setting's value in s: a string, an int or a bool.
func (st *Setting) Value(s *Settings) any {
	switch st.Kind {
	case IntSetting:
		return *st.num(s)
	case BoolSetting:
		return *st.flag(s)
	}
	return *st.str(s)
}

// ValueKind returns the setting's value in s as the one of i, b and str
// its kind uses, the others zero: Value without the conversion to any,
// the counterpart of SetKind.
func (st *Setting) ValueKind(s *Settings) (i int, b bool, str string) {
	switch st.Kind {
	case IntSetting:
		return *st.num(s), false, ""
	case BoolSetting:
		return 0, *st.flag(s), ""
	}
	return 0, false, *st.str(s)
}

// Text returns the setting's value in s as text: the string itself, a
// decimal number, true or false.
func (st *Setting) Text(s *Settings) string {
	switch st.Kind {
	case IntSetting:
		return strconv.Itoa(*st.num(s))
	case BoolSetting:
		return strconv.FormatBool(*st.flag(s))
	}
	return *st.str(s)
}

// IsZero reports whether the setting's value in s is its type's zero
// value ("", 0, false).
func (st *Setting) IsZero(s *Settings) bool {
	switch st.Kind {
	case IntSetting:
		return *st.num(s) == 0
	case BoolSetting:
		return !*st.flag(s)
	}
	return *st.str(s) == ""
}

// Set sets the setting's value in s; v must be of the setting's kind.
func (st *Setting) Set(s *Settings, v any) error {
	ok := false
	switch st.Kind {
	case IntSetting:
		var i int
		if i, ok = v.(int); ok {
			*st.num(s) = i
		}
	case BoolSetting:
		var b bool
		if b, ok = v.(bool); ok {
			*st.flag(s) = b
		}
	default:
		var str string
		if str, ok = v.(string); ok {
			*st.str(s) = str
		}
	}
	if !ok {
		return fmt.Errorf("setting %s: %v (%T) is not a %s", st.Name, v, v, st.Kind)
	}
	return nil
}

// SetKind sets the setting's value in s to the one of i, b and str its
// Kind names, the others unused: Set without boxing the value in an
// interface, for a caller that sets many.
func (st *Setting) SetKind(s *Settings, i int, b bool, str string) {
	switch st.Kind {
	case IntSetting:
		*st.num(s) = i
	case BoolSetting:
		*st.flag(s) = b
	default:
		*st.str(s) = str
	}
}

// Clear sets the setting's value in s to its type's zero value.
func (st *Setting) Clear(s *Settings) {
	switch st.Kind {
	case IntSetting:
		*st.num(s) = 0
	case BoolSetting:
		*st.flag(s) = false
	default:
		*st.str(s) = ""
	}
}

// Optional reports whether the renderings that leave unset values out
// (the simulation's JSON) leave this one out while it is empty: it
// OmitEmpty or Requires another.
func (st *Setting) Optional() bool { return st.OmitEmpty || st.Requires != "" }

// Provenance returns where the setting's value came from.
func (st *Setting) Provenance(p *Provenance) string { return *st.prov(p) }

// SetProvenance sets where the setting's value came from.
func (st *Setting) SetProvenance(p *Provenance, from string) { *st.prov(p) = from }

// Shown reports whether the renderings show the setting for s: a
// setting that Requires another only while that one is set.
func (st *Setting) Shown(s *Settings) bool {
	if st.Requires == "" {
		return true
	}
	return !settingsByName[st.Requires].IsZero(s)
}

// Summary renders settings on one line in the order of ShownSettings, as
// the truth tables and explain write them: "format mp3, method put, ...",
// a Terse setting only when it is not zero, a setting that Requires
// another after that one's value ("announce tone to both").
func Summary(s *Settings) string {
	var b strings.Builder
	for _, st := range shownSettings {
		if (st.Terse && st.IsZero(s)) || !st.Shown(s) {
			continue
		}
		switch {
		case st.Requires != "":
			b.WriteString(" ")
		case b.Len() > 0:
			b.WriteString(", ")
		}
		b.WriteString(st.Label + " " + st.Text(s))
	}
	return b.String()
}

// Var is one channel variable of the switch's uuid_record command.
type Var struct {
	Name, Value string
}

// String returns "name=value".
func (v Var) String() string { return v.Name + "=" + v.Value }

// ReadOnlyVar is the variable of a recording of the caller's audio only
// (record_caller); it replaces RECORD_STEREO, which needs both parties.
var ReadOnlyVar = Var{Name: "RECORD_READ_ONLY", Value: "true"}

// RecordVars returns the channel variables of a recording's uuid_record
// command in order: every setting that has a Var, a bool one only while
// true; readOnly (record_caller) adds ReadOnlyVar and drops the variables
// of two-party settings (stereo).
func RecordVars(s *Settings, readOnly bool) []Var {
	out := make([]Var, 0, 4)
	for _, st := range SettingList {
		if st.Var == "" {
			continue
		}
		if st.Kind == BoolSetting {
			if readOnly || !*st.flag(s) {
				continue
			}
		}
		out = append(out, Var{Name: st.Var, Value: st.Text(s)})
	}
	if readOnly {
		out = append(out, ReadOnlyVar)
	}
	return out
}

// RecordVarsText is RecordVars as the command writes them:
// "{RECORD_MIN_SEC=0,record_sample_rate=8000,RECORD_STEREO=true}".
func RecordVarsText(s *Settings, readOnly bool) string {
	vars := RecordVars(s, readOnly)
	parts := make([]string, len(vars))
	for i, v := range vars {
		parts[i] = v.String()
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// MetadataProvenance returns a provenance as a recording's metadata holds
// it: by MetaKey, the settings without one left out, enabled and every
// empty entry too.
func MetadataProvenance(p *Provenance) map[string]string {
	m := make(map[string]string, len(SettingList)+1)
	if p.Enabled != "" {
		m[EnabledName] = p.Enabled
	}
	for _, st := range SettingList {
		if st.MetaKey == "" {
			continue
		}
		if v := st.Provenance(p); v != "" || !st.OmitEmpty {
			m[st.MetaKey] = v
		}
	}
	return m
}

// ProvenanceFromMetadata is the inverse of MetadataProvenance.
func ProvenanceFromMetadata(m map[string]string) Provenance {
	p := Provenance{Enabled: m[EnabledName]}
	for _, st := range SettingList {
		if st.MetaKey != "" {
			st.SetProvenance(&p, m[st.MetaKey])
		}
	}
	return p
}

// decodeSettingsJSON decodes the settings object of the table's JSON:
// every setting must be there but those that OmitEmpty, and no other key.
func decodeSettingsJSON(raw map[string]json.RawMessage) (Settings, error) {
	var s Settings
	if raw == nil {
		return s, fmt.Errorf("settings are missing or incomplete")
	}
	for k := range raw {
		if _, ok := settingsByName[k]; !ok {
			return s, fmt.Errorf("settings: unknown field %q", k)
		}
	}
	for _, st := range SettingList {
		v, ok := raw[st.Name]
		if !ok || string(v) == "null" {
			if st.OmitEmpty {
				continue
			}
			return s, fmt.Errorf("settings are missing or incomplete")
		}
		var err error
		switch st.Kind {
		case IntSetting:
			err = json.Unmarshal(v, st.num(&s))
		case BoolSetting:
			err = json.Unmarshal(v, st.flag(&s))
		default:
			err = json.Unmarshal(v, st.str(&s))
		}
		if err != nil {
			return s, fmt.Errorf("settings: %s: %w", st.Name, err)
		}
	}
	return s, nil
}

// decodeProvenanceJSON decodes the provenance object of the table's JSON.
func decodeProvenanceJSON(raw map[string]string) (Provenance, error) {
	p := Provenance{Enabled: raw[EnabledName]}
	for k := range raw {
		if _, ok := settingsByName[k]; !ok && k != EnabledName {
			return p, fmt.Errorf("provenance: unknown field %q", k)
		}
	}
	for _, st := range SettingList {
		st.SetProvenance(&p, raw[st.Name])
	}
	return p, nil
}
