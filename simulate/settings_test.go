package simulate

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/recpol/recpol/internal/tabletest"
	"github.com/recpol/recpol/table"
)

// TestRenderersSeeEverySetting checks that every rendering of a
// recording's settings names every setting of table.SettingList with its
// value and its provenance: the simulation's JSON, the truth tables'
// summary, explain and diff.
func TestRenderersSeeEverySetting(t *testing.T) {
	s, p := tabletest.EverySetting()
	rec := table.Recording{Scope: table.ScopeAccount, Leg: table.LegA, Direction: table.Inbound, Network: table.Offnet,
		Origin: "inbound from offnet to account", Cell: &table.Cell{Record: true, Settings: s, Provenance: p}}

	b, err := json.Marshal(recordingJSON(rec))
	if err != nil {
		t.Fatal(err)
	}
	var explain strings.Builder
	explainCell(&explain, "account", rec, true)
	renderings := map[string]string{
		"json":    string(b),
		"summary": describe([]table.Recording{rec}),
		"explain": explain.String(),
	}
	for _, st := range table.SettingList {
		want := map[string][]string{
			"json":    {fmt.Sprintf("%q:", st.Name), fmt.Sprintf("%q", "prov-"+st.Name)},
			"summary": {st.Label + " " + st.Text(s)},
			"explain": {st.Name, st.Text(s), "prov-" + st.Name},
		}
		for r, subs := range want {
			for _, sub := range subs {
				if !strings.Contains(renderings[r], sub) {
					t.Errorf("%s: setting %s: no %q in\n%s", r, st.Name, sub, renderings[r])
				}
			}
		}

		// diff: a change of the setting alone is a change line naming it.
		changed := *s
		switch st.Kind {
		case table.IntSetting:
			err = st.Set(&changed, st.Value(s).(int)+1)
		case table.BoolSetting:
			err = st.Set(&changed, false)
		default:
			err = st.Set(&changed, st.Text(s)+"-changed")
		}
		if err != nil {
			t.Fatal(err)
		}
		lines := settingsChangeLines(fieldsOf(s, p), fieldsOf(&changed, p))
		if len(lines) != 1 || !strings.HasPrefix(lines[0], st.Name+": ") {
			t.Errorf("diff: a change of %s alone reads %q", st.Name, lines)
		}
	}
}
