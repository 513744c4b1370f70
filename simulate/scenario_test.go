package simulate

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/scenario"
)

// TestPredictScenario predicts the bundled basic scenario (a call from d1
// to d2 with late caller variables, *72 and *73 on the caller's leg) under
// policies that exercise each trigger.
func TestPredictScenario(t *testing.T) {
	sc, err := scenario.ParseFile("../testdata/scenarios/basic.json")
	if err != nil {
		t.Fatal(err)
	}
	type p struct {
		Leg, Scope, Trigger string
		Start, Stop, Dur    int64
		Masked              []Span
		Kept                bool
	}
	tests := []struct {
		name, policy string
		want         []p
	}{
		{"nothing recorded", `accounts: acme: devices: {d1: {}, d2: {}}`, nil},
		{
			"account inbound once the A-leg has media (a start never pre-answers), callee at answer, masked by the callee's metaflow listening to both",
			`accounts: acme: {
				call_recording: account: inbound: onnet: enabled: true
				users: u2: {call_recording: inbound: onnet: enabled: true, metaflows: {listen_on: "both", numbers: {
					"72": {module: "record_call", data: action: "mask"}, "73": {module: "record_call", data: action: "unmask"}}}}
				devices: {d1: {}, d2: owner: "u2"}
			}`,
			[]p{
				{"b1", "callee", "answer", 3000, 60000, 57000, []Span{{17000, 32000}}, true},
				{"a", "account", "answer", 3000, 60000, 57000, []Span{{17000, 32000}}, true},
			},
		},
		{
			"caller on the first B-leg, record_on_bridge waits, listen_on self ignores the caller's digits",
			`accounts: acme: {
				devices: d1: call_recording: outbound: onnet: {enabled: true, record_on_bridge: true}
				devices: d2: metaflows: numbers: "72": {module: "record_call", data: action: "mask"}
			}`,
			[]p{{"a", "caller", "bridge", 3010, 60000, 56990, []Span{}, true}},
		},
		{
			"time limit and record_min_sec",
			`accounts: acme: {
				call_recording: account: outbound: any: {enabled: true, time_limit: 5}
				devices: d2: call_recording: inbound: any: {enabled: true, record_min_sec: 58}
				devices: d1: {}
			}`,
			[]p{
				{"b1", "callee", "answer", 3000, 60000, 57000, []Span{}, false},
				{"a", "account", "answer", 3000, 8000, 5000, []Span{}, true},
			},
		},
		{
			"metaflow start records the pressing leg; unknown codes do nothing",
			`accounts: acme: {
				devices: d1: metaflows: numbers: "72": {module: "record_call", data: {action: "start", format: "wav"}}
				devices: d2: {}
			}`,
			[]p{{"a", "metaflow", "dtmf", 20000, 60000, 40000, []Span{}, true}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PredictScenario(compile(t, "package recpol\n"+tc.policy), sc)
			if err != nil {
				t.Fatal(err)
			}
			var gs []p
			for _, r := range got {
				gs = append(gs, p{r.Leg, r.Scope, r.Trigger, r.StartMS, r.StopMS, r.DurationMS, r.Masked, r.Kept})
			}
			if diff := cmp.Diff(tc.want, gs); diff != "" {
				t.Errorf("predictions (-want +got):\n%s", diff)
			}
		})
	}
}
