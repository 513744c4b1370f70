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
		{
			"account and callflow record the caller's leg",
			`accounts: a: {
				call_recording: account: inbound: offnet: enabled: true
				callflows: pay: {numbers: ["100"], actions: [{module: "record_call", data: {action: "start", label: "Pay", time_limit: 900}}]}
			}`,
			[]Finding{{FindingDouble, "a", "calls from offnet to 100 record the caller's leg twice: by the account " +
				"(inbound from offnet to account, set by account:a call_recording.account.inbound.offnet.enabled) and by callflow pay (callflow : Pay)",
				"account:a callflows.pay.actions.0.data.time_limit"}},
		},
		{
			"a callflow without settings of its own points at the account",
			`accounts: a: {
				call_recording: account: inbound: offnet: enabled: true
				callflows: pay: {patterns: ["^1"], actions: [{module: "record_call", data: action: "start"}]}
			}`,
			[]Finding{{FindingDouble, "a", "calls from offnet to /^1/ record the caller's leg twice: by the account " +
				"(inbound from offnet to account, set by account:a call_recording.account.inbound.offnet.enabled) and by callflow pay (callflow : pay)",
				"account:a call_recording.account.inbound.offnet.enabled"}},
		},
		{
			"caller device and callflow",
			`accounts: a: {
				devices: d: call_recording: outbound: onnet: enabled: true
				callflows: vm: {numbers: ["*97"], actions: [{module: "record_call", data: action: "start"}]}
			}`,
			[]Finding{{FindingDouble, "a", "calls from device:d to *97 record the caller's leg twice: by the caller device " +
				"(outbound to onnet from endpoint, set by device:d call_recording.outbound.onnet.enabled) and by callflow vm (callflow : vm)",
				"device:d call_recording.outbound.onnet.enabled"}},
		},
		{
			"record_caller, a start then a stop: no double",
			`accounts: a: {
				call_recording: account: inbound: offnet: enabled: true
				callflows: vm: {numbers: ["1"], actions: [{module: "record_caller", data: format: "wav"}]}
				callflows: x: {numbers: ["2"], actions: [{module: "record_call", data: action: "start"}, {module: "record_call", data: action: "stop"}]}
			}`,
			nil,
		},
		{
			"metaflow start on a recorded leg",
			`accounts: a: {
				users: u: call_recording: inbound: offnet: enabled: true
				devices: d: owner: "u"
				metaflows: numbers: {
					"1": {module: "record_call", data: action: "start"}
					"3": {module: "record_call", data: action: "toggle"}
				}
			}`,
			[]Finding{{FindingDouble, "a", "*1 (record_call start, from account:a) on device:d starts a second recording of a leg " +
				"that the callee device:d recording already records (set by user:u call_recording.inbound.offnet.enabled)",
				"user:u call_recording.inbound.offnet.enabled"}},
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
