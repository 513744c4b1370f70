package compiler_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/compiler"
)

// TestEveryErrorInOneRun checks that the checks after evaluation see the
// parts of a policy that evaluated, and only those: a value CUE rejected
// is neither checked again nor replaced by a fallback in the
// record_min_sec check.
func TestEveryErrorInOneRun(t *testing.T) {
	type diag struct {
		Code string
		Line int
		Path string
	}
	for _, tc := range []struct {
		name string
		src  string
		want []diag
	}{
		{
			name: "schema, rule and min-sec errors together",
			src: `accounts: acme: {
	call_recording: endpoint: any: any: {record_min_sec: 600, time_limit: 300}
	devices: d1: owner: "nobody"
	devices: d2: colour: "red"
}`,
			want: []diag{
				{compiler.CodeMinSec, 2, "accounts.acme.call_recording.endpoint.any.any.record_min_sec"},
				{compiler.CodeOwner, 3, "accounts.acme.devices.d1.owner"},
				{compiler.CodeSchema, 4, "accounts.acme.devices.d2.colour"},
			},
		},
		{
			// Without the rejected time_limit the device would inherit
			// the endpoint's 50, below its record_min_sec.
			name: "a rejected time_limit is not replaced by a fallback",
			src: `accounts: acme: {
	call_recording: endpoint: any: any: time_limit: 50
	devices: d1: call_recording: any: any: {time_limit: 4, record_min_sec: 100}
}`,
			want: []diag{
				{compiler.CodeSchema, 3, "accounts.acme.devices.d1.call_recording.any.any.time_limit"},
			},
		},
		{
			name: "a rejected time_limit in defaults",
			src: `defaults: time_limit: 1
accounts: acme: devices: d1: call_recording: any: any: record_min_sec: 20000`,
			want: []diag{
				{compiler.CodeSchema, 1, "defaults.time_limit"},
			},
		},
		{
			name: "a rejected callflow time_limit is not replaced by the built-in one",
			src: `accounts: acme: callflows: c: {
	numbers: ["1"]
	actions: [{module: "record_call", data: {time_limit: 20000, record_min_sec: 4000}}]
}`,
			want: []diag{
				{compiler.CodeSchema, 3, "accounts.acme.callflows.c.actions[0].data.time_limit"},
			},
		},
		{
			// The owner's time_limit would have applied.
			name: "a rejected owner leaves the device's min-sec unchecked",
			src: `accounts: acme: {
	call_recording: endpoint: any: any: time_limit: 50
	users: u: call_recording: any: any: time_limit: 500
	devices: d1: {owner: 5, call_recording: any: any: record_min_sec: 100}
}`,
			want: []diag{
				{compiler.CodeSchema, 4, "accounts.acme.devices.d1.owner"},
			},
		},
		{
			name: "a rejected user is still a user its devices may name",
			src: `accounts: acme: {
	users: u: 5
	devices: d1: owner: "u"
}`,
			want: []diag{
				{compiler.CodeSchema, 2, "accounts.acme.users.u"},
			},
		},
		{
			name: "a rejected list element keeps the others' indices",
			src: `accounts: acme: callflows: c: {
	numbers: [5, "1 2"]
	patterns: ["(", 7]
	actions: []
}`,
			want: []diag{
				{compiler.CodeSchema, 2, "accounts.acme.callflows.c.numbers[0]"},
				{compiler.CodeNumber, 2, "accounts.acme.callflows.c.numbers[1]"},
				{compiler.CodeRegex, 3, "accounts.acme.callflows.c.patterns[0]"},
				{compiler.CodeSchema, 3, "accounts.acme.callflows.c.patterns[1]"},
			},
		},
		{
			name: "the data of a rejected module is not checked",
			src: `accounts: acme: callflows: c: {
	numbers: ["1"]
	actions: [{module: "record", data: {label: "a{b", media_name: "x/y"}}]
}`,
			want: []diag{
				{compiler.CodeSchema, 3, "accounts.acme.callflows.c.actions[0].module"},
			},
		},
		{
			name: "an incomplete value beside a schema error",
			src: `accounts: acme: devices: d1: {
	colour: "red"
	call_recording: any: any: enabled: bool
}`,
			want: []diag{
				{compiler.CodeSchema, 2, "accounts.acme.devices.d1.colour"},
				{compiler.CodeIncomplete, 3, "accounts.acme.devices.d1.call_recording.any.any.enabled"},
			},
		},
		{
			name: "an unknown field does not stop the min-sec check of its scope",
			src: `accounts: acme: devices: d1: call_recording: any: any: {
	colour: "red"
	time_limit: 10, record_min_sec: 10
}`,
			want: []diag{
				{compiler.CodeSchema, 2, "accounts.acme.devices.d1.call_recording.any.any.colour"},
				{compiler.CodeMinSec, 3, "accounts.acme.devices.d1.call_recording.any.any.record_min_sec"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := []compiler.File{{Name: "p.cue", Data: []byte("package recpol\n\n" + tc.src + "\n")}}
			for _, o := range []compiler.Options{{}, {Whole: true}} {
				res := o.CompileFiles(files)
				if res.Table != nil {
					t.Errorf("%+v: a table was built for an invalid policy", o)
				}
				var got []diag
				for _, d := range res.Diagnostics {
					got = append(got, diag{d.Code, d.Line - 2, d.Path})
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("%+v: diagnostics (-want +got):\n%s\n%s", o, diff, res.Diagnostics)
				}
			}
		})
	}
}

// TestPartitionedEveryKindEqualsWhole: account groups evaluated apart
// report the errors of every kind that one whole evaluation reports.
func TestPartitionedEveryKindEqualsWhole(t *testing.T) {
	files := []compiler.File{
		{Name: "shared.cue", Data: []byte("package recpol\n\ndefaults: {format: \"ogg\", enabled: true}\n")},
		{Name: "a.cue", Data: []byte("package recpol\n\naccounts: a: devices: d: {owner: \"x\", call_recording: any: any: time_limit: 3}\n")},
		{Name: "b.cue", Data: []byte("package recpol\n\naccounts: b: call_recording: account: any: any: {time_limit: 10, record_min_sec: 10}\n")},
		{Name: "c.cue", Data: []byte("package recpol\n\naccounts: c: devices: d: colour: \"red\"\n")},
	}
	want := compiler.Options{Whole: true}.CompileFiles(files)
	if len(want.Diagnostics) < 5 {
		t.Fatalf("the whole evaluation reports too little:\n%s", want.Diagnostics)
	}
	for _, o := range []compiler.Options{{Parallel: 1}, {Parallel: 3}, {CacheDir: t.TempDir()}} {
		got := o.CompileFiles(files)
		if diff := cmp.Diff(want.Diagnostics, got.Diagnostics); diff != "" {
			t.Errorf("%+v: diagnostics (-whole +partitioned):\n%s", o, diff)
		}
	}
}
