package simulate

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestExpectationsExplicit checks the assertions on settings, callflow
// numbers and DTMF codes against the bundled example.
func TestExpectationsExplicit(t *testing.T) {
	r, err := Run(compileFiles(t, examplePolicy(t)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		src  string
		want ExpectResult
	}{
		{"number holds", `{account: "pci-callcentre", number: "+442071234567", from: "offnet", callflow: "payments", label: "Card payments",
			account_recording: true, recordings: 2, settings: {format: "wav", time_limit: 1800, record_sample_rate: 16000}}`,
			ExpectResult{OK: true, Calls: 1, Detail: "holds for 1 calls"}},
		{"number from every caller", `{account: "pci-callcentre", number: "7000", callflow_recordings: 1}`,
			ExpectResult{OK: true, Calls: 4, Detail: "holds for 4 calls"}},
		{"number by pattern", `{account: "pci-callcentre", number: "*97123", from: "device:bob-phone", callflow: "voicemail", settings: time_limit: 300}`,
			ExpectResult{OK: true, Calls: 1, Detail: "holds for 1 calls"}},
		{"number settings fail", `{account: "pci-callcentre", number: "+442071234567", from: "offnet", settings: {time_limit: 900, url: "https://x.example.com"}}`,
			ExpectResult{Calls: 1, Detail: `1 of 1 calls fail: account pci-callcentre, offnet -> +442071234567 (callflow payments): ` +
				`callflow recording has url "", want "https://x.example.com", time_limit 1800, want 900`}},
		{"no callflow", `{account: "pci-callcentre", number: "12345", from: "offnet", callflow: "", recordings: 1}`,
			ExpectResult{OK: true, Calls: 1, Detail: "holds for 1 calls"}},
		{"mask acts on every recording", `{account: "pci-callcentre", dtmf: "*72", action: "mask", binding_from: "account:*", listen: "self", every_recording: true}`,
			ExpectResult{OK: true, Calls: 3, Detail: "holds for 3 devices"}},
		{"stop does not", `{account: "pci-callcentre", endpoint: "device:bob-phone", dtmf: "*74", every_recording: true}`,
			ExpectResult{Calls: 1, Detail: "1 of 1 devices fail: account pci-callcentre, device:bob-phone *74: " +
				"in device:bob-phone -> device:sup-phone it acts on 0 of 1 recordings (every_recording want true)"}},
		{"start records", `{account: "pci-callcentre", dtmf: "*71", starts_recording: true, settings: {format: "wav", time_limit: 3600}}`,
			ExpectResult{OK: true, Calls: 3, Detail: "holds for 3 devices"}},
		{"no metaflows", `{account: "sales", dtmf: "*72", action: "none"}`,
			ExpectResult{OK: true, Calls: 4, Detail: "holds for 4 devices"}},
		{"call settings", `{account: "pci-callcentre", from: "offnet", to: "user:*", settings: {format: "mp3", url: "https://recordings.example.com/pci"}}`,
			ExpectResult{Calls: 3, Detail: "1 of 3 calls fail: account pci-callcentre, offnet -> user:supervisor records A E: " +
				`callee device:sup-phone recording has format "wav", want "mp3", url "", want "https://recordings.example.com/pci"`}},
		{"typo in a device", `{account: "pci-callcentre", endpoint: "device:bob-phnoe", dtmf: "*72", action: "mask"}`,
			ExpectResult{Detail: `selects no device (account "pci-callcentre", endpoint "device:bob-phnoe")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exps, err := ParseExpectations("expect.cue", []byte("expect: x: "+tt.src))
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Name = "x"
			tt.want.ExpectPos = ExpectPos{"expect.cue", 1, 9}
			if diff := cmp.Diff([]ExpectResult{tt.want}, r.Check("expect.cue", exps).Expectations); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExpectationsRejected(t *testing.T) {
	tests := []struct{ name, src, wantErr string }{
		{"two kinds", `{from: "offnet", to: "*", number: "7000"}`, "give exactly one of to"},
		{"nothing selected", `{account: "a"}`, "give exactly one of to"},
		{"assertion of another kind", `{dtmf: "*72", callee_recording: true}`, "callee_recording is about calls (from/to), not DTMF codes"},
		{"call without from", `{to: "*"}`, "needs from and to"},
		{"unknown setting", `{number: "7000", settings: {fromat: "wav"}}`, "fromat"},
		{"unknown action", `{dtmf: "*72", action: "hide"}`, "action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseExpectations("expect.cue", []byte("expect: x: "+tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
