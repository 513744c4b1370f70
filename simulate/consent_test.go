package simulate

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/scenario"
	"github.com/recpol/recpol/table"
)

// consentTable compiles testdata/policies/consent: stereo and consent
// announcements (issue 16).
func consentTable(t *testing.T) *table.Table {
	t.Helper()
	res, err := compiler.Options{}.Compile("../testdata/policies/consent")
	if err != nil || res.Table == nil {
		t.Fatalf("consent policy: %v %v", err, res.Diagnostics)
	}
	return res.Table
}

// TestConsentScenario predicts testdata/scenarios/consent.json: each
// recording's announcement with its start, to whom its settings say, and
// none for the second *71 of the call (the same reason).
func TestConsentScenario(t *testing.T) {
	sc, err := scenario.ParseFile("../testdata/scenarios/consent.json")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := PredictScenario(consentTable(t), sc)
	if err != nil {
		t.Fatal(err)
	}
	type p struct {
		Leg, Scope, Origin string
		Start, Stop        int64
		Stereo             bool
		Announced          *Announcement
	}
	var got []p
	for _, r := range ps {
		got = append(got, p{r.Leg, r.Scope, r.Origin, r.StartMS, r.StopMS, r.Settings.Stereo, r.Announced})
	}
	const prompt = "/usr/share/freeswitch/sounds/en/us/callie/ivr/8000/ivr-recording_started.wav"
	const tones = "tone_stream://%(250,50,800);%(250,0,1000)"
	want := []p{
		{"b", "callee", "inbound from offnet to endpoint", 2000, 20000, true, &Announcement{AtMS: 2000, Announce: prompt, Media: prompt,
			To: "bleg", Provenance: "user:agent call_recording.inbound.offnet.announce"}},
		{"a", "account", "inbound from offnet to account", 2000, 20000, false, &Announcement{AtMS: 2000, Announce: "tone",
			Media: table.ToneStream, To: "both", Provenance: "account:acme call_recording.account.inbound.offnet.announce"}},
		{"b", "metaflow", "agent asked", 4000, 9000, false, &Announcement{AtMS: 4000, Announce: tones, Media: tones,
			To: "both", Provenance: "account:acme metaflows.numbers.71.data.announce"}},
		{"b", "metaflow", "agent asked", 12000, 20000, false, nil},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("predictions (-want +got):\n%s", diff)
	}
	var b bytes.Buffer
	if err := WritePredictionJSON(&b, "v", ps); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"announced": {`, `"media": "tone_stream://%(500,0,1000)"`, `"stereo": true`, `"announce_to": "bleg"`} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("prediction JSON lacks %s", s)
		}
	}
}

// TestConsentGolden writes the consent policy's simulation and its
// explanations: stereo and the announcements with their provenance.
func TestConsentGolden(t *testing.T) {
	tb := consentTable(t)
	r, err := Run(tb)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "consent.txt", b.Bytes())
	acme, _ := tb.Account("acme")
	for _, tc := range []struct {
		name string
		run  func(w *bytes.Buffer) error
	}{
		{"call", func(w *bytes.Buffer) error {
			return Explain(w, acme, table.Call{From: table.OffnetRef(), To: table.UserRef("agent")})
		}},
		{"lobby", func(w *bytes.Buffer) error {
			return Explain(w, acme, table.Call{From: table.OffnetRef(), To: table.DeviceRef("lobby")})
		}},
		{"number", func(w *bytes.Buffer) error { return ExplainNumber(w, acme, table.OffnetRef(), "2000") }},
		{"dtmf", func(w *bytes.Buffer) error { return ExplainDTMF(w, acme, nil, "d2", "*71") }},
	} {
		b.Reset()
		if err := tc.run(&b); err != nil {
			t.Fatal(err)
		}
		golden(t, "explain-consent-"+tc.name+".txt", b.Bytes())
	}
}

// TestConsentExpect checks expectations on stereo, announce and
// announce_to: each holds or fails as the policy says.
func TestConsentExpect(t *testing.T) {
	r, err := Run(consentTable(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, src string
		ok        bool
		detail    string
	}{
		{"the agent's phone records in stereo, announced to the customer",
			`{account: "acme", from: "offnet", to: "device:d2", settings: {stereo: true, announce_to: "bleg"}}`, false,
			"account recording has stereo false, want true"},
		{"the lobby phone announces nothing",
			`{account: "acme", from: "device:*", to: "device:lobby", recordings: 0}`, true, ""},
		{"the support line announces to the caller only",
			`{account: "acme", number: "2000", from: "offnet", callflow: "support", callflow_recordings: 1, settings: {announce: "tone", announce_to: "aleg", stereo: false}}`, true, ""},
		{"nothing the lobby records is announced",
			`{account: "acme", from: "offnet", to: "device:lobby", settings: announce: ""}`, false,
			`account recording has announce "tone", want ""`},
		{"*71 starts an announced recording, in mono: a metaflow's settings come from its data and defaults",
			`{account: "acme", dtmf: "*71", endpoint: "device:d2", starts_recording: true, settings: {stereo: false, announce: "tone_stream://%(250,50,800);%(250,0,1000)", announce_to: "both"}}`, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exps, err := ParseExpectations("expect.cue", []byte("expect: x: "+tc.src))
			if err != nil {
				t.Fatal(err)
			}
			rep := r.Check("expect.cue", exps)
			got := rep.Expectations[0]
			if got.OK != tc.ok || !strings.Contains(got.Detail, tc.detail) {
				t.Errorf("ok %v, detail %q; want ok %v, a detail containing %q", got.OK, got.Detail, tc.ok, tc.detail)
			}
		})
	}
}

// TestDiffStereoAnnounce checks that diff names changes of stereo,
// announce and announce_to with their cause, and takes a change of
// announce_to alone, where nothing is announced, for no change.
func TestDiffStereoAnnounce(t *testing.T) {
	b, err := os.ReadFile("../testdata/policies/consent/policy.cue")
	if err != nil {
		t.Fatal(err)
	}
	base := string(b)
	tests := []struct {
		name     string
		old, new string
		want     []string
		changed  bool
	}{
		{"stereo off for the endpoints", `call_recording: endpoint: any: any: stereo: true`, `call_recording: endpoint: any: any: stereo: false`,
			[]string{"stereo: true -> false (<- account:acme call_recording.endpoint.any.any.stereo)"}, true},
		{"another announcement", `{enabled: true, announce: "tone"}`, `{enabled: true, announce: "/srv/consent.wav"}`,
			[]string{"announce: tone -> /srv/consent.wav (<- account:acme call_recording.account.inbound.offnet.announce)"}, true},
		{"announced to the agent instead", `announce_to: "bleg"`, `announce_to: "aleg"`,
			[]string{"announce_to: bleg -> aleg (<- user:agent call_recording.inbound.offnet.announce_to)"}, true},
		{"announce_to where nothing is announced", `devices: d1: {}`, `devices: d1: call_recording: any: any: announce_to: "aleg"`,
			nil, false},
	}
	old := compile(t, base)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(base, tc.old) {
				t.Fatalf("the policy has no %q", tc.old)
			}
			d, err := Diff(old, compile(t, strings.Replace(base, tc.old, tc.new, 1)))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := d.WriteText(&out); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("the diff lacks %q:\n%s", w, out.String())
				}
			}
			if strings.Contains(out.String(), "announce_to: both") || strings.Contains(out.String(), "announce_to:  ->") {
				t.Errorf("the diff names an announce_to that nothing plays:\n%s", out.String())
			}
			if d.Changed() != tc.changed {
				t.Errorf("Changed() = %v, want %v:\n%s", d.Changed(), tc.changed, out.String())
			}
		})
	}
}
