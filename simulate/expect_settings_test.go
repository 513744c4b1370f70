package simulate

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"

	recpolcue "github.com/recpol/recpol/cue"
	"github.com/recpol/recpol/internal/tabletest"
	"github.com/recpol/recpol/table"
)

// TestExpectEverySetting sets every setting of table.SettingList in a
// policy and checks that an expectations file can assert it: the value
// the policy sets holds, another one fails and says why.
func TestExpectEverySetting(t *testing.T) {
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
			set := fmt.Sprintf("%s: %s", st.Name, lit)
			if st.Requires != "" {
				// Recordings show it only while the setting it
				// qualifies is set.
				req, _ := table.SettingNamed(st.Requires)
				rv, err := tabletest.Value(schema, req)
				if err != nil {
					t.Fatal(err)
				}
				rlit, err := json.Marshal(rv)
				if err != nil {
					t.Fatal(err)
				}
				set += fmt.Sprintf(", %s: %s", req.Name, rlit)
			}
			r, err := Run(compile(t, fmt.Sprintf(`package recpol

accounts: a: {
	call_recording: account: inbound: offnet: {enabled: true, %s}
	devices: d: {}
}
`, set)))
			if err != nil {
				t.Fatal(err)
			}
			other := st.Default
			if other == nil {
				other = map[table.SettingKind]any{table.IntSetting: 0, table.BoolSetting: false, table.StringSetting: ""}[st.Kind]
			}
			otherLit, err := json.Marshal(other)
			if err != nil {
				t.Fatal(err)
			}
			src := fmt.Sprintf(`expect: {
	holds: {account: "a", from: "offnet", to: "device:d", settings: %[1]s: %[2]s}
	fails: {account: "a", from: "offnet", to: "device:d", settings: %[1]s: %[3]s}
}`, st.Name, lit, otherLit)
			exps, err := ParseExpectations("expect.cue", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			rep := r.Check("expect.cue", exps)
			if len(rep.Expectations) != 2 {
				t.Fatalf("%d results, want 2", len(rep.Expectations))
			}
			if h := rep.Expectations[0]; !h.OK || h.Calls != 1 {
				t.Errorf("the set value: ok %v, %d calls (%s), want it to hold for 1 call", h.OK, h.Calls, h.Detail)
			}
			want := fmt.Sprintf("account recording has %s %s, want %s", st.Name, fmtKind(st.Kind, v), fmtKind(st.Kind, other))
			if f := rep.Expectations[1]; f.OK || !strings.Contains(f.Detail, want) {
				t.Errorf("another value: ok %v, %q, want it to fail with %q", f.OK, f.Detail, want)
			}
		})
	}
}

func fmtKind(k table.SettingKind, v any) string {
	if k == table.StringSetting {
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprint(v)
}

// TestExpectTypesAreThePolicys checks that a setting's type in the
// expectations' schema is its kind or, in expectTypes, its type in the
// policy schema.
func TestExpectTypesAreThePolicys(t *testing.T) {
	ctx := cuecontext.New()
	policy := ctx.CompileBytes(recpolcue.Schema())
	expect := ctx.CompileString(expectSchema)
	if err := expect.Err(); err != nil {
		t.Fatal(err)
	}
	for _, st := range table.SettingList {
		got := expect.LookupPath(cue.MakePath(cue.Def("#Settings"), cue.Str(st.Name).Optional()))
		if !got.Exists() {
			t.Errorf("setting %s is not in the expectations' #Settings", st.Name)
			continue
		}
		want := st.Kind.String()
		if _, ok := expectTypes[st.Name]; ok {
			want = fmt.Sprint(tabletest.SchemaSetting(policy, st.Name))
		}
		if fmt.Sprint(got) != want {
			t.Errorf("setting %s: the expectations' type is %v, want %v", st.Name, got, want)
		}
	}
}
