package compiler

import (
	"encoding/json"
	"fmt"
	"sort"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"github.com/google/go-cmp/cmp"

	recpolcue "github.com/recpol/recpol/cue"
	"github.com/recpol/recpol/internal/tabletest"
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
	s, p := tabletest.EverySetting()
	a := tabletest.Account("a", s, p)
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

// TestEverySettingCompiles sets every setting of table.SettingList in a
// scope, in the policy's defaults and in a callflow action's data, and
// compiles the policy through CUE and through the plain-data path: the
// cells and the action have the value, its provenance names where it was
// set, and both paths give the same table.
func TestEverySettingCompiles(t *testing.T) {
	schema := cuecontext.New().CompileBytes(recpolcue.Schema())
	if err := schema.Err(); err != nil {
		t.Fatal(err)
	}
	for _, st := range table.SettingList {
		t.Run(st.Name, func(t *testing.T) {
			v, err := tabletest.Value(schema, st)
			if err != nil {
				t.Fatal(err)
			}
			lit, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			src := fmt.Sprintf(`package recpol

defaults: %[1]s: %[2]s
accounts: a: {
	call_recording: account: inbound: offnet: {enabled: true, %[1]s: %[2]s}
	devices: d: {}
	callflows: c: {numbers: ["100"], actions: [{module: "record_call", data: {%[1]s: %[2]s}}]}
}
`, st.Name, lit)
			files := []File{{Name: "a.cue", Data: []byte(src)}}
			before := plainCompiled.Load()
			plain, viaCUE := compileBoth(files)
			if plainCompiled.Load() == before {
				t.Error("the plain-data path was not taken")
			}
			sameResults(t, plain, viaCUE)
			for _, res := range []*Result{viaCUE, plain} {
				if res.Table == nil {
					t.Fatalf("no table: %v", res.Diagnostics)
				}
				a, ok := res.Table.Account("a")
				if !ok {
					t.Fatal("no account a")
				}
				check := func(what string, s *table.Settings, p *table.Provenance, prov string) {
					t.Helper()
					if got := st.Value(s); got != v {
						t.Errorf("%s: %s is %v, want %v", what, st.Name, got, v)
					}
					if got := st.Provenance(p); got != prov {
						t.Errorf("%s: %s comes from %q, want %q", what, st.Name, got, prov)
					}
				}
				c := a.Cells.Get(table.Inbound, table.Offnet)
				check("account cell", c.Settings, c.Provenance, "account:a call_recording.account.inbound.offnet."+st.Name)
				c = a.Cells.Get(table.Outbound, table.Onnet)
				check("other account cell", c.Settings, c.Provenance, "defaults "+st.Name)
				c = a.Devices["d"].Cells.Get(table.Inbound, table.Offnet)
				check("device cell", c.Settings, c.Provenance, "defaults "+st.Name)
				act := a.Callflows[0].Actions[0]
				check("callflow action", act.Settings, act.Provenance, "account:a callflows.c.actions.0.data."+st.Name)
			}
		})
	}
}

// TestPlainSettingNodes checks that the plain schema knows the type of
// every setting: its kind is the schema's, and a setting the schema
// constrains beyond its kind (an enum, a range, a pattern) has its leaf in
// plainSettingNodes (whose constraints TestPlainSchema probes).
func TestPlainSettingNodes(t *testing.T) {
	ctx := cuecontext.New()
	schema := ctx.CompileBytes(recpolcue.Schema())
	if err := schema.Err(); err != nil {
		t.Fatal(err)
	}
	kinds := map[table.SettingKind]cue.Kind{table.StringSetting: cue.StringKind, table.IntSetting: cue.IntKind, table.BoolSetting: cue.BoolKind}
	for _, st := range table.SettingList {
		field := tabletest.SchemaSetting(schema, st.Name)
		if !field.Exists() {
			t.Errorf("setting %s is not in the schema's #Settings", st.Name)
			continue
		}
		if got := field.IncompleteKind(); got != kinds[st.Kind] {
			t.Errorf("setting %s: the schema's kind is %v, the table's %v", st.Name, got, st.Kind)
		}
		bare := ctx.CompileString(st.Kind.String())
		// The kinds being equal, the field is constrained when it does
		// not take every value of its kind.
		constrained := field.Subsume(bare) != nil
		if _, ok := plainSettingNodes()[st.Name]; constrained && !ok {
			t.Errorf("setting %s: the schema constrains it beyond %s, but plainSettingNodes has no leaf for it", st.Name, st.Kind)
		}
	}
}

// TestCallerSettings checks that callerSettings are the settings of the
// schema's #RecordCallerData.
func TestCallerSettings(t *testing.T) {
	schema := cuecontext.New().CompileBytes(recpolcue.Schema())
	it, err := schema.LookupPath(cue.ParsePath("#RecordCallerData")).Fields(cue.Optional(true))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for it.Next() {
		name := it.Selector().Unquoted()
		if _, ok := table.SettingNamed(name); ok {
			got = append(got, name)
		}
	}
	want := append([]string(nil), callerSettings...)
	sort.Strings(got)
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record_caller's settings (-callerSettings +schema):\n%s", diff)
	}
}
