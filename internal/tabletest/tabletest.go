// Package tabletest gives the tests of every package that renders a
// table's settings (the table's JSON, the compiler's codec, the
// simulator's reports, the expectations) the same input: settings in which each setting of
// table.SettingList has a value of its own, so that a setting added to the
// list and missed by a renderer fails them.
package tabletest

import (
	"fmt"

	"cuelang.org/go/cue"

	"github.com/recpol/recpol/table"
)

// EverySetting returns settings in which every setting of
// table.SettingList has a value that no other has (an int 1000+i, true,
// or "v-<name>"), and a provenance naming each ("prov-<name>").
func EverySetting() (*table.Settings, *table.Provenance) {
	s, p := &table.Settings{}, &table.Provenance{Enabled: "prov-enabled"}
	for i, st := range table.SettingList {
		var v any
		switch st.Kind {
		case table.IntSetting:
			v = 1000 + i
		case table.BoolSetting:
			v = true
		default:
			v = "v-" + st.Name
		}
		if err := st.Set(s, v); err != nil {
			panic("tabletest: " + err.Error()) // a kind Set does not take: the list is wrong
		}
		st.SetProvenance(p, "prov-"+st.Name)
	}
	return s, p
}

// Account returns an account with the given ID whose cells all record
// with the settings s and provenance p.
func Account(id string, s *table.Settings, p *table.Provenance) *table.Account {
	a := &table.Account{ID: id}
	for _, d := range table.Directions {
		for _, n := range table.Networks {
			*a.Cells.Get(d, n) = table.Cell{Record: true, Settings: s, Provenance: p}
		}
	}
	return a
}

// SchemaSetting returns the type the policy schema gives a setting: its
// field of #Settings.
func SchemaSetting(schema cue.Value, name string) cue.Value {
	return schema.LookupPath(cue.MakePath(cue.Def("#Settings"), cue.Str(name).Optional()))
}

// Value returns a value of st other than its default that the policy
// schema accepts and vet takes: the first of a few candidates of its kind.
func Value(schema cue.Value, st *table.Setting) (any, error) {
	var candidates []any
	switch st.Kind {
	case table.IntSetting:
		candidates = []any{1, 5, 30, 16000}
	case table.BoolSetting:
		candidates = []any{true, false}
	default:
		candidates = []any{"tone", "wav", "post", "bleg", "https://recordings.example.com/in"}
	}
	field := SchemaSetting(schema, st.Name)
	if !field.Exists() {
		return nil, fmt.Errorf("setting %s is not in the schema's #Settings", st.Name)
	}
	for _, v := range candidates {
		if v == st.Default || (st.Default == nil && v == any("")) {
			continue
		}
		if field.Unify(schema.Context().Encode(v)).Validate(cue.Concrete(true)) == nil {
			return v, nil
		}
	}
	return nil, fmt.Errorf("setting %s: the schema takes none of the test values %v: add one", st.Name, candidates)
}
