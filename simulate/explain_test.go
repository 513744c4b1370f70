package simulate

import (
	"bytes"
	"strings"
	"testing"

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
