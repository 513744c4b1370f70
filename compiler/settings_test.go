package compiler

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	recpolcue "github.com/recpol/recpol/cue"
	"github.com/recpol/recpol/table"
)

// TestFieldsAreTheSettings checks that the compiler resolves exactly the
// settings of table.SettingList, in its order, with the kinds the table
// gives them.
func TestFieldsAreTheSettings(t *testing.T) {
	var fields, settings []string
	for f := fEnabled + 1; f < numFields; f++ {
		fields = append(fields, fieldNames[f])
	}
	for _, st := range table.SettingList {
		settings = append(settings, st.Name)
	}
	if diff := cmp.Diff(settings, fields); diff != "" {
		t.Errorf("compiler fields and table settings differ (-table +compiler):\n%s", diff)
	}
}

// TestSettingDefaultsAreTheBuiltins checks that the Default of every
// setting of the table is the built-in default of cue/builtin.cue, and
// that builtin.cue has no default the table does not know.
func TestSettingDefaultsAreTheBuiltins(t *testing.T) {
	d, err := recpolcue.BuiltinDefaults()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(d.Builtin)
	if err != nil {
		t.Fatal(err)
	}
	var builtin map[string]any
	if err := json.Unmarshal(b, &builtin); err != nil {
		t.Fatal(err)
	}
	delete(builtin, table.EnabledName)
	want := map[string]any{}
	for _, st := range table.SettingList {
		if st.Default == nil {
			continue
		}
		v := st.Default
		if i, ok := v.(int); ok {
			v = float64(i) // as JSON decodes it
		}
		want[st.Name] = v
	}
	if diff := cmp.Diff(want, builtin); diff != "" {
		t.Errorf("table defaults and builtin.cue differ (-table +builtin.cue):\n%s", diff)
	}
}

// TestTableCodecHasEverySetting checks that the cache's encoding of a
// table keeps every setting and its provenance.
func TestTableCodecHasEverySetting(t *testing.T) {
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
			t.Fatal(err)
		}
		st.SetProvenance(p, "prov-"+st.Name)
	}
	a := &table.Account{ID: "a"}
	for _, d := range table.Directions {
		for _, n := range table.Networks {
			*a.Cells.Get(d, n) = table.Cell{Record: true, Settings: s, Provenance: p}
		}
	}
	tb, err := table.New([]*table.Account{a}, DefaultsDigest())
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeAccounts(encodeAccounts(tb))
	if err != nil {
		t.Fatal(err)
	}
	c := back[0].Cells.Get(table.Outbound, table.Offnet)
	if diff := cmp.Diff(s, c.Settings); diff != "" {
		t.Errorf("settings changed through the codec (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(p, c.Provenance); diff != "" {
		t.Errorf("provenance changed through the codec (-want +got):\n%s", diff)
	}
}
