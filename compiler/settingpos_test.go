package compiler_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/table"
)

// settingFiles is a policy of two account files and a shared file, so
// that it is evaluated in account groups and cached.
var settingFiles = []compiler.File{
	{Name: "shared.cue", Data: []byte(`package recpol

defaults: format: "wav"

accounts: [_]: users: [_]: call_recording: any: any: enabled: true

#Desk: call_recording: outbound: any: enabled: true
`)},
	{Name: "a.cue", Data: []byte(`package recpol

accounts: a: {
	call_recording: {
		account: inbound: offnet: enabled: true
		endpoint: any: any: time_limit:    600
	}
	users: u: {}
	devices: d1: {
		owner: "u"
		call_recording: outbound: any: enabled: true
		metaflows: numbers: "72": {module: "record_call", data: format: "wav"}
		metaflows: patterns: "^9(.*)$": {module: "record_call", data: {action: "start", time_limit: 60}}
	}
	devices: d2: #Desk
	callflows: "main.line": {
		numbers: ["100"]
		actions: [{module: "record_call", data: {action: "stop"}}, {module: "record_call", data: format: "mp3"}]
	}
}
`)},
	{Name: "b.cue", Data: []byte(`package recpol

accounts: b: devices: d1: call_recording: any: any: enabled: true
`)},
}

func TestSettingPosition(t *testing.T) {
	type lookup struct{ account, setting string }
	type want struct {
		Pos compiler.Position
		OK  bool
	}
	// at is the position of the first occurrence of text on a line.
	at := func(file string, line int, text string) want {
		for _, f := range settingFiles {
			if f.Name != file {
				continue
			}
			l := strings.Split(string(f.Data), "\n")[line-1]
			if i := strings.Index(l, text); i >= 0 {
				return want{compiler.Position{File: file, Line: line, Column: i + 1}, true}
			}
		}
		t.Fatalf("%s:%d holds no %q", file, line, text)
		return want{}
	}
	cases := []struct {
		in   lookup
		want want
	}{
		{lookup{"a", "device:d1 call_recording.outbound.any.enabled"}, at("a.cue", 11, "true")},
		{lookup{"b", "device:d1 call_recording.any.any.enabled"}, at("b.cue", 3, "true")},
		{lookup{"a", "account:a call_recording.account.inbound.offnet.enabled"}, at("a.cue", 5, "true")},
		{lookup{"a", "account:a call_recording.endpoint.any.any.time_limit"}, at("a.cue", 6, "600")},
		{lookup{"a", "defaults format"}, at("shared.cue", 3, `"wav"`)},
		// A template for every user of every account.
		{lookup{"a", "user:u call_recording.any.any.enabled"}, at("shared.cue", 5, "true")},
		// A definition the device refers to.
		{lookup{"a", "device:d2 call_recording.outbound.any.enabled"}, at("shared.cue", 7, "true")},
		// Callflow actions: a setting, and the action itself; the id holds a dot.
		{lookup{"a", "account:a callflows.main.line.actions.1.data.format"}, at("a.cue", 18, `"mp3"`)},
		{lookup{"a", "account:a callflows.main.line.actions.0"}, at("a.cue", 18, "{module")},
		// Metaflows, a code that is a pattern with dots.
		{lookup{"a", "device:d1 metaflows.numbers.72.data.format"}, at("a.cue", 12, `"wav"`)},
		{lookup{"a", "device:d1 metaflows.patterns.^9(.*)$.data.time_limit"}, at("a.cue", 13, "60}")},
		// A setting its scope does not write: the scope's declaration.
		{lookup{"a", "device:d1 call_recording.inbound.any.format"}, at("a.cue", 11, "call_recording")},
		// Nothing in the files.
		{lookup{"a", "builtin time_limit"}, want{}},
		{lookup{"a", "builtin action.time_limit"}, want{}},
		{lookup{"a", "device:nope call_recording.any.any.enabled"}, want{}},
		{lookup{"", "device:d1 call_recording.any.any.enabled"}, want{}},
		{lookup{"a", ""}, want{}},
		{lookup{"a", "account:a"}, want{}},
		{lookup{"a", "defaults "}, want{}},
		{lookup{"a", "defaults url.x"}, want{}},
		{lookup{"a", "user: call_recording.any.any.enabled"}, want{}},
		{lookup{"a", "group:g call_recording.any.any.enabled"}, want{}},
		{lookup{"a", "account:a callflows..actions.x.data.format"}, want{}},
		{lookup{"a", "device:d1 metaflows.patterns."}, want{}},
		{lookup{"a", "device:d1 metaflows.numbers..data.format"}, want{}},
	}
	opts := map[string]compiler.Options{
		"whole":      {Whole: true},
		"groups":     {},
		"cold cache": {CacheDir: t.TempDir()},
	}
	opts["warm cache"] = opts["cold cache"]
	for _, name := range []string{"whole", "groups", "cold cache", "warm cache"} {
		res := opts[name].CompileFiles(settingFiles)
		if res.Table == nil {
			t.Fatalf("%s: %v", name, res.Diagnostics)
		}
		for _, tc := range cases {
			var got want
			got.Pos, got.OK = res.SettingPosition(tc.in.account, tc.in.setting)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s: SettingPosition(%q, %q) (-want +got):\n%s", name, tc.in.account, tc.in.setting, diff)
			}
		}
	}
}

// TestSettingPositionOfProvenance checks that every provenance the table
// of a policy holds, for cells and actions alike, is found in the files
// unless it is built in.
func TestSettingPositionOfProvenance(t *testing.T) {
	res := compiler.Options{}.CompileFiles(settingFiles)
	if res.Table == nil {
		t.Fatal(res.Diagnostics)
	}
	n := 0
	for _, id := range res.Table.AccountIDs() {
		a, _ := res.Table.Account(id)
		var provs []string
		for _, e := range a.Devices {
			for _, d := range table.Directions {
				for _, n := range table.Networks {
					c := e.Cells.Get(d, n)
					provs = append(provs, c.Provenance.Enabled, c.Provenance.Format, c.Provenance.TimeLimit)
				}
			}
			if e.Metaflows != nil {
				for _, b := range append(e.Metaflows.Numbers, e.Metaflows.Patterns...) {
					provs = append(provs, b.Action.Provenance.Format, b.Action.Provenance.TimeLimit)
				}
			}
		}
		for _, cf := range a.Callflows {
			for _, act := range cf.Actions {
				provs = append(provs, act.Provenance.Format, act.Provenance.TimeLimit)
			}
		}
		for _, p := range provs {
			_, ok := res.SettingPosition(id, p)
			builtin := p == "" || len(p) > 8 && p[:8] == "builtin "
			if ok == builtin {
				t.Errorf("SettingPosition(%q, %q): ok = %v", id, p, ok)
			}
			n++
		}
	}
	if n < 20 {
		t.Errorf("only %d provenances checked", n)
	}
}
