package simulate

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/table"
)

func TestExplain(t *testing.T) {
	const policy = `package recpol

accounts: acme: {
	call_recording: account: {inbound: offnet: enabled: false, outbound: onnet: {enabled: true, format: "wav"}}
	users: bob: call_recording: inbound: any: enabled: true
	devices: {
		desk: owner: "bob"
		soft: {owner: "bob", call_recording: any: any: enabled: false}
		lobby: call_recording: outbound: onnet: enabled: true
	}
}
`
	a, _ := compile(t, policy).Account("acme")
	tests := []struct {
		from, to string
		want     []string
	}{
		{"offnet", "user:bob", []string{
			"account:acme cell inbound.offnet: does not record",
			"enabled            false  <- account:acme call_recording.account.inbound.offnet.enabled",
			`account:acme cell outbound.onnet: records the a-leg, origin "outbound to onnet from account"`,
			"format             wav    <- account:acme call_recording.account.outbound.onnet.format",
			"the caller is offnet: no caller recording",
			"user:bob rings device:desk, device:soft",
			"device:desk cell inbound.offnet: records the b-leg",
			"enabled            true   <- user:bob call_recording.inbound.any.enabled",
			"device:soft cell inbound.offnet: does not record",
			"enabled            false  <- device:soft call_recording.any.any.enabled",
			"result: 2 recording(s)",
		}},
		{"device:lobby", "device:lobby", []string{
			"account:acme cell inbound.onnet: does not record",
			"enabled            false  <- builtin enabled",
			"device:lobby cell outbound.onnet: records the a-leg",
			"a device calling itself rings nothing",
			"result: 2 recording(s)",
		}},
		{"device:desk", "user:bob", []string{
			"user:bob rings device:soft",
		}},
		{"device:desk", "offnet", []string{
			"the callee is offnet: no device rings",
			"result: 0 recording(s)",
			"nothing recorded",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.from+"->"+tt.to, func(t *testing.T) {
			f, _ := table.ParseParty(tt.from)
			to, _ := table.ParseParty(tt.to)
			var b bytes.Buffer
			if err := Explain(&b, a, table.Call{From: f, To: to}); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("missing %q in\n%s", w, b.String())
				}
			}
		})
	}
	var b bytes.Buffer
	if err := Explain(&b, a, table.Call{From: table.DeviceRef("ghost"), To: table.OffnetRef()}); err == nil {
		t.Error("explaining a call from a missing device succeeded")
	}
}

// TestExplainExplicit explains calls to callflow numbers and DTMF codes of
// the bundled example against goldens (testdata/golden/explain-*.txt).
func TestExplainExplicit(t *testing.T) {
	tb := compileFiles(t, examplePolicy(t))
	pci, _ := tb.Account("pci-callcentre")
	call := func(from, to string) *table.Call {
		f, err := table.ParseParty(from)
		if err != nil {
			t.Fatal(err)
		}
		tp, err := table.ParseParty(to)
		if err != nil {
			t.Fatal(err)
		}
		return &table.Call{From: f, To: tp}
	}
	tests := []struct {
		name string
		run  func(w *bytes.Buffer) error
	}{
		{"number-exact", func(w *bytes.Buffer) error { return ExplainNumber(w, pci, table.OffnetRef(), "+442071234567") }},
		{"number-pattern", func(w *bytes.Buffer) error { return ExplainNumber(w, pci, table.DeviceRef("bob-phone"), "*97123") }},
		{"number-none", func(w *bytes.Buffer) error { return ExplainNumber(w, pci, table.OffnetRef(), "555") }},
		{"dtmf-mask", func(w *bytes.Buffer) error { return ExplainDTMF(w, pci, call("offnet", "user:supervisor"), "", "*72") }},
		{"dtmf-start", func(w *bytes.Buffer) error { return ExplainDTMF(w, pci, nil, "bob-phone", "*71") }},
		{"dtmf-none", func(w *bytes.Buffer) error { return ExplainDTMF(w, pci, call("device:bob-phone", "offnet"), "", "*9") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.run(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, "explain-"+tt.name+".txt", b.Bytes())
		})
	}
}

// TestExplainExplicitLosers checks that explain names why a callflow
// loses: to an exact number, or to a longer pattern match.
func TestExplainExplicitLosers(t *testing.T) {
	tb := compile(t, `package recpol
accounts: a: callflows: {
	short: {patterns: ["^2"], actions: [{module: "record_call", data: action: "start"}]}
	long: {patterns: ["^20[0-9]"], actions: [{module: "record_call", data: action: "start"}]}
	exact: {numbers: ["2001"], actions: [{module: "record_call", data: action: "stop"}]}
}`)
	a, _ := tb.Account("a")
	tests := []struct {
		number string
		want   []string
	}{
		{"2001", []string{
			`   exact (2001): exact number 2001: ANSWERS`,
			`   long (/^20[0-9]/): pattern /^20[0-9]/ matches "200" (3 characters): loses to the exact number of exact`,
			`   short (/^2/): pattern /^2/ matches "2" (1 characters): loses to the exact number of exact`,
		}},
		{"2002", []string{
			`   exact (2001): no number or pattern matches`,
			`   long (/^20[0-9]/): pattern /^20[0-9]/ matches "200" (3 characters): ANSWERS`,
			`   short (/^2/): pattern /^2/ matches "2" (1 characters): loses to the longer match of long (3 characters)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.number, func(t *testing.T) {
			var b bytes.Buffer
			if err := ExplainNumber(&b, a, table.OffnetRef(), tt.number); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range strings.Split(b.String(), "\n") {
				if strings.HasPrefix(l, "   ") && strings.Contains(l, "): ") && !strings.HasPrefix(l, "    ") {
					got = append(got, l)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("candidates (-want +got):\n%s", diff)
			}
		})
	}
}
