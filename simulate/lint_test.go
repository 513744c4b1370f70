package simulate

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLint(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		want   []Finding
	}{
		{"clean", `accounts: a: {users: u: call_recording: inbound: offnet: enabled: true, devices: d: owner: "u"}`, nil},
		{
			"account and caller record the A-leg",
			`accounts: a: {
				call_recording: account: inbound: onnet: enabled: true
				devices: {d1: call_recording: outbound: onnet: enabled: true, d2: {}}
			}`,
			[]Finding{{FindingDouble, "a", "calls placed by device:d1 record the caller's leg twice: by the account " +
				"(inbound from onnet to account, set by account:a call_recording.account.inbound.onnet.enabled) " +
				"and by the caller device (set by device:d1 call_recording.outbound.onnet.enabled)", "device:d1 call_recording.outbound.onnet.enabled"}},
		},
		{
			"outbound hidden by inbound",
			`accounts: a: {
				call_recording: account: {inbound: any: enabled: true, outbound: offnet: enabled: true}
				devices: d: {}
			}`,
			[]Finding{{FindingUnreachable, "a", "the account cell outbound.offnet records " +
				"(set by account:a call_recording.account.outbound.offnet.enabled) but no call of the account " +
				"reaches it: the inbound cells record every call first", "account:a call_recording.account.outbound.offnet.enabled"}},
		},
		{
			"user without devices",
			`accounts: a: {users: u: call_recording: any: any: enabled: true, devices: d: {}}`,
			[]Finding{{FindingUnreachable, "a", "user:u records inbound.onnet calls (set by user:u call_recording.any.any.enabled) " +
				"but owns no device: calls ring devices, so no call records through it", "user:u call_recording.any.any.enabled"}},
		},
		{
			"the only device never receives an onnet call",
			`accounts: a: devices: d: call_recording: inbound: onnet: enabled: true`,
			[]Finding{{FindingUnreachable, "a", "device:d cell inbound.onnet records " +
				"(set by device:d call_recording.inbound.onnet.enabled) but no call of the account reaches it", "device:d call_recording.inbound.onnet.enabled"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Lint(compile(t, "package recpol\n"+tc.policy))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}
