package table_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/internal/tabletest"
	"github.com/recpol/recpol/table"
)

// TestTableJSONHasEverySetting checks that the table's JSON writes every
// setting and its provenance, and reads them back.
func TestTableJSONHasEverySetting(t *testing.T) {
	s, p := tabletest.EverySetting()
	tb, err := table.New([]*table.Account{tabletest.Account("a", s, p)}, "test defaults")
	if err != nil {
		t.Fatal(err)
	}
	b, err := tb.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range table.SettingList {
		for _, want := range []string{fmt.Sprintf("%q:", st.Name), fmt.Sprintf("%q", "prov-"+st.Name)} {
			if !strings.Contains(string(b), want) {
				t.Errorf("the table's JSON has no %s", want)
			}
		}
	}
	back, err := table.DecodeBytes(b, "test defaults")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := back.LookupAccount("a", table.Inbound, table.Onnet)
	if diff := cmp.Diff(s, c.Settings); diff != "" {
		t.Errorf("settings changed through the JSON (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(p, c.Provenance); diff != "" {
		t.Errorf("provenance changed through the JSON (-want +got):\n%s", diff)
	}
}

// TestSettingsHaveOneName checks that the settings' names are unique and
// name neither the enabled provenance nor a setting a Requires is missing.
func TestSettingsHaveOneName(t *testing.T) {
	seen := map[string]bool{table.EnabledName: true}
	for _, st := range table.SettingList {
		if seen[st.Name] {
			t.Errorf("setting %s listed twice", st.Name)
		}
		seen[st.Name] = true
		if got, ok := table.SettingNamed(st.Name); !ok || got != st {
			t.Errorf("SettingNamed(%s) = %v, %v", st.Name, got, ok)
		}
	}
	for _, st := range table.SettingList {
		if st.Requires != "" && !seen[st.Requires] {
			t.Errorf("setting %s requires unknown setting %s", st.Name, st.Requires)
		}
	}
	if len(table.ShownSettings()) != len(table.SettingList) {
		t.Errorf("ShownSettings has %d settings, SettingList %d", len(table.ShownSettings()), len(table.SettingList))
	}
}

// TestSummaryHasEverySetting checks that the one-line summary shows every
// setting whose value is set.
func TestSummaryHasEverySetting(t *testing.T) {
	s, _ := tabletest.EverySetting()
	got := table.Summary(s)
	for _, st := range table.SettingList {
		if want := st.Label + " " + st.Text(s); !strings.Contains(got, want) {
			t.Errorf("summary %q has no %q", got, want)
		}
	}
}

// TestRecordVars checks the uuid_record variables: every setting with a
// Var, in the command's order and form.
func TestRecordVars(t *testing.T) {
	base := table.Settings{RecordMinSec: 3, RecordSampleRate: 16000}
	stereo := base
	stereo.Stereo = true
	tests := []struct {
		name     string
		s        table.Settings
		readOnly bool
		want     string
	}{
		{"mono", base, false, "{RECORD_MIN_SEC=3,record_sample_rate=16000}"},
		{"stereo", stereo, false, "{RECORD_MIN_SEC=3,record_sample_rate=16000,RECORD_STEREO=true}"},
		{"caller only", base, true, "{RECORD_MIN_SEC=3,record_sample_rate=16000,RECORD_READ_ONLY=true}"},
		{"caller only drops stereo", stereo, true, "{RECORD_MIN_SEC=3,record_sample_rate=16000,RECORD_READ_ONLY=true}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := table.RecordVarsText(&tc.s, tc.readOnly); got != tc.want {
				t.Errorf("RecordVarsText = %s, want %s", got, tc.want)
			}
		})
	}
	s, _ := tabletest.EverySetting()
	vars := map[string]string{}
	for _, v := range table.RecordVars(s, false) {
		vars[v.Name] = v.Value
	}
	for _, st := range table.SettingList {
		if st.Var != "" && vars[st.Var] != st.Text(s) {
			t.Errorf("RecordVars: %s = %q, want %q", st.Var, vars[st.Var], st.Text(s))
		}
	}
}

// TestMetadataProvenance checks the provenance of a recording's metadata:
// every setting with a MetaKey, and back.
func TestMetadataProvenance(t *testing.T) {
	_, p := tabletest.EverySetting()
	m := table.MetadataProvenance(p)
	want := map[string]string{table.EnabledName: p.Enabled}
	for _, st := range table.SettingList {
		if st.MetaKey != "" {
			want[st.MetaKey] = st.Provenance(p)
		}
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("MetadataProvenance (-want +got):\n%s", diff)
	}
	back := table.ProvenanceFromMetadata(m)
	for _, st := range table.SettingList {
		if st.MetaKey == "" {
			st.SetProvenance(p, "")
		}
	}
	if diff := cmp.Diff(*p, back); diff != "" {
		t.Errorf("ProvenanceFromMetadata (-want +got):\n%s", diff)
	}
	// An unset url is left out, an unset enabled too.
	if got := table.MetadataProvenance(&table.Provenance{Format: "builtin format"}); got["url"] != "" || got[table.EnabledName] != "" || len(got) != 7 {
		t.Errorf("MetadataProvenance of a bare provenance = %v", got)
	}
}

// TestSetKind: SetKind sets each setting to the value of its kind, as Set
// does with that value, and leaves the other settings as they were.
func TestSetKind(t *testing.T) {
	for _, st := range table.SettingList {
		t.Run(st.Name, func(t *testing.T) {
			var want, got table.Settings
			var v any
			switch st.Kind {
			case table.IntSetting:
				v = 4242
			case table.BoolSetting:
				v = true
			default:
				v = "x"
			}
			if err := st.Set(&want, v); err != nil {
				t.Fatal(err)
			}
			st.SetKind(&got, 4242, true, "x")
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-Set +SetKind):\n%s", diff)
			}
		})
	}
}

// TestValueKind: ValueKind returns each setting's value as Value does, in
// the result of its kind, the others zero, for every setting of a
// Settings that sets them all and of the zero Settings.
func TestValueKind(t *testing.T) {
	every, _ := tabletest.EverySetting()
	type kinded struct {
		I int
		B bool
		S string
	}
	for _, tc := range []struct {
		name string
		s    table.Settings
	}{
		{"every", *every},
		{"zero", table.Settings{}},
	} {
		for _, st := range table.SettingList {
			t.Run(tc.name+"/"+st.Name, func(t *testing.T) {
				var want kinded
				switch v := st.Value(&tc.s).(type) {
				case int:
					want.I = v
				case bool:
					want.B = v
				case string:
					want.S = v
				default:
					t.Fatalf("Value = %v (%T)", v, v)
				}
				var got kinded
				got.I, got.B, got.S = st.ValueKind(&tc.s)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("(-Value +ValueKind):\n%s", diff)
				}
			})
		}
	}
}
