package compiler

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSuggest(t *testing.T) {
	settings := sortedKeys(plainSchema().fields["defaults"].node.fields)
	for _, tc := range []struct {
		name       string
		candidates []string
		want       []string
	}{
		{"enabeld", settings, []string{"enabled"}},
		{"Enabled", settings, []string{"enabled"}},
		{"time_limt", settings, []string{"time_limit"}},
		{"sample_rate", settings, []string{"record_sample_rate"}}, // a part of the name
		{"min_sec", settings, []string{"record_min_sec"}},
		{"colour", settings, nil},
		{"enabled", settings, nil}, // never itself
		{"ana", []string{"anna", "ben"}, []string{"anna"}},
		{"zed", []string{"anna", "ben"}, nil}, // two edits is too many for three letters
		{"bob", []string{"rob", "bo", "bobby"}, []string{"bo", "rob"}},
	} {
		if diff := cmp.Diff(tc.want, Suggest(tc.name, tc.candidates)); diff != "" {
			t.Errorf("Suggest(%q) (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestSuggestions checks the "did you mean" of every kind of unknown name,
// through CUE and the plain-data path alike.
func TestSuggestions(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []string // messages
	}{
		{
			name: "a misspelt setting",
			src:  `accounts: sales: call_recording: endpoint: any: any: enabeld: true`,
			want: []string{`accounts.sales.call_recording.endpoint.any.any.enabeld: unknown field "enabeld" (did you mean enabled?)`},
		},
		{
			name: "a direction in Wazo's words, reported once",
			src:  `accounts: sales: users: anna: call_recording: incoming: any: enabled: true`,
			want: []string{`accounts.sales.users.anna.call_recording.incoming: unknown field "incoming" (did you mean inbound?)`},
		},
		{
			name: "a network in Wazo's words",
			src:  `accounts: sales: devices: d: call_recording: any: external: enabled: true`,
			want: []string{`accounts.sales.devices.d.call_recording.any.external: unknown field "external" (did you mean offnet?)`},
		},
		{
			name: "a synonym that does not exist where it is written is not suggested",
			src:  `accounts: sales: call_recording: endpoint: any: any: incoming: true`,
			want: []string{`accounts.sales.call_recording.endpoint.any.any.incoming: unknown field "incoming"`},
		},
		{
			name: "a Wazo switch",
			src:  `accounts: sales: users: anna: call_recording: any: any: call_record_outgoing_internal_enabled: true`,
			want: []string{`accounts.sales.users.anna.call_recording.any.any.call_record_outgoing_internal_enabled: unknown field "call_record_outgoing_internal_enabled": ` +
				`Wazo's call_record_outgoing_internal_enabled is the endpoint cell call_recording: outbound: onnet: enabled ` +
				`(a user's or device's, or the account's call_recording: endpoint for all of them; see "Wazo's four switches" in README.md)`},
		},
		{
			name: "a Wazo switch on the user itself",
			src:  `accounts: sales: users: anna: call_record_incoming_external_enabled: true`,
			want: []string{`accounts.sales.users.anna.call_record_incoming_external_enabled: unknown field "call_record_incoming_external_enabled": ` +
				`Wazo's call_record_incoming_external_enabled is the endpoint cell call_recording: inbound: offnet: enabled ` +
				`(a user's or device's, or the account's call_recording: endpoint for all of them; see "Wazo's four switches" in README.md)`},
		},
		{
			name: "a field of an endpoint",
			src:  `accounts: sales: users: anna: call_recordng: any: any: enabled: true`,
			want: []string{`accounts.sales.users.anna.call_recordng: unknown field "call_recordng" (did you mean call_recording?)`},
		},
		{
			name: "a field of an account",
			src:  `accounts: sales: user: anna: {}`,
			want: []string{`accounts.sales.user: unknown field "user" (did you mean users?)`},
		},
		{
			name: "a field of record_call data, beside another error",
			src: `accounts: sales: callflows: c: {numbers: ["1"], actions: [{module: "record_call", data: {lable: "x"}}]}
accounts: sales: devices: d: call_recording: any: any: {time_limit: 1, fromat: "wav"}`,
			want: []string{
				`accounts.sales.callflows.c.actions[0].data.lable: unknown field "lable" (did you mean label?)`,
				`accounts.sales.devices.d.call_recording.any.any.time_limit: 1 is out of range: it must be >=5`,
				`accounts.sales.devices.d.call_recording.any.any.fromat: unknown field "fromat" (did you mean format?)`,
			},
		},
		{
			name: "a top-level field",
			src:  `acounts: sales: {}`,
			want: []string{`acounts: unknown top-level field "acounts": a policy has only defaults and accounts (did you mean accounts?)`},
		},
		{
			name: "owners",
			src: `accounts: sales: {
	users: {anna: {}, ben: {}}
	devices: {d1: owner: "ana", d2: owner: "d1", d3: owner: "zed"}
}
accounts: pci: devices: d: owner: "anna"`,
			want: []string{
				`accounts.sales.devices.d1.owner: owner "ana" is not a user of account sales (did you mean anna?)`,
				`accounts.sales.devices.d2.owner: owner "d1" is not a user of account sales (d1 is a device of the account: an owner is a user)`,
				`accounts.sales.devices.d3.owner: owner "zed" is not a user of account sales`,
				`accounts.pci.devices.d.owner: owner "anna" is not a user of account pci: the account has no users`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := []File{{Name: "p.cue", Data: []byte("package recpol\n\n" + tc.src + "\n")}}
			plain, viaCUE := compileBoth(files)
			sameResults(t, plain, viaCUE)
			if diff := cmp.Diff(tc.want, messages(viaCUE.Diagnostics)); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
		})
	}
}

func messages(ds Diagnostics) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Message)
	}
	return out
}

// TestValueErrorsNameTheValues checks that a value the schema or another
// value rejects is named as written, with what is allowed: a template's
// value and an account's that contradict it are both named, and the
// template is told how to become a default.
func TestValueErrorsNameTheValues(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		want  []string // String() of each diagnostic
	}{
		{
			name:  "a template's sample rate the schema rejects",
			files: []string{`accounts: [_]: call_recording: endpoint: any: any: record_sample_rate: 8001` + "\naccounts: sales: {}"},
			want: []string{`p0.cue:3:72: accounts.sales.call_recording.endpoint.any.any.record_sample_rate: ` +
				`8001 is not allowed: want one of 8000, 16000, 32000, 44100, 48000`},
		},
		{
			name: "a template's sample rate an account contradicts",
			files: []string{
				`accounts: [_]: call_recording: endpoint: any: any: record_sample_rate: 8000`,
				`accounts: sales: call_recording: endpoint: any: any: record_sample_rate: 32000`,
			},
			want: []string{`p0.cue:3:72: accounts.sales.call_recording.endpoint.any.any.record_sample_rate: ` +
				`conflicting values 8000 and 32000: the template at p0.cue:3:72 gives every account 8000, which no account can change; ` +
				`to make it a default that an account may override, write *8000 | int (see p1.cue:3:74)`},
		},
		{
			name: "README's template without a default",
			files: []string{
				`accounts: [_]: call_recording: endpoint: any: any: record_min_sec: 2`,
				`accounts: sales: call_recording: endpoint: any: any: record_min_sec: 10`,
			},
			want: []string{`p0.cue:3:68: accounts.sales.call_recording.endpoint.any.any.record_min_sec: ` +
				`conflicting values 2 and 10: the template at p0.cue:3:68 gives every account 2, which no account can change; ` +
				`to make it a default that an account may override, write *2 | int (see p1.cue:3:70)`},
		},
		{
			name:  "README's template with a default",
			files: []string{`accounts: [_]: call_recording: endpoint: any: any: record_min_sec: *2 | int` + "\naccounts: sales: call_recording: endpoint: any: any: record_min_sec: 10"},
		},
		{
			name: "two files that disagree",
			files: []string{
				`accounts: acme: call_recording: endpoint: any: offnet: format: "wav"`,
				`accounts: acme: call_recording: endpoint: any: offnet: format: "mp3"`,
			},
			want: []string{`p0.cue:3:64: accounts.acme.call_recording.endpoint.any.offnet.format: conflicting values "wav" and "mp3" (see p1.cue:3:64)`},
		},
		{
			name:  "a string enum of action data",
			files: []string{`accounts: a: callflows: c: {numbers: ["1"], actions: [{module: "record_call", data: format: "ogg"}]}`},
			want:  []string{`p0.cue:3:93: accounts.a.callflows.c.actions[0].data.format: "ogg" is not allowed: want one of "mp3", "wav"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var files []File
			for i, src := range tc.files {
				files = append(files, File{Name: "p" + string(rune('0'+i)) + ".cue", Data: []byte("package recpol\n\n" + src + "\n")})
			}
			plain, viaCUE := compileBoth(files)
			sameResults(t, plain, viaCUE)
			var got []string
			for _, d := range viaCUE.Diagnostics {
				got = append(got, d.String())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if len(tc.want) == 0 && viaCUE.Table == nil {
				t.Errorf("no table")
			}
			for _, w := range tc.want {
				if strings.Contains(w, "8000 is not allowed") {
					t.Errorf("a value the schema allows is named as rejected: %s", w)
				}
			}
		})
	}
}
