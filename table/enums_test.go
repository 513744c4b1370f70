package table_test

import (
	"strings"
	"testing"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/table"
)

// TestEnumsValid checks what each enum of an action accepts.
func TestEnumsValid(t *testing.T) {
	tests := []struct {
		name  string
		valid bool
		want  bool
	}{
		{"record_call", table.RecordCall.Valid(), true},
		{"record_caller", table.RecordCaller.Valid(), true},
		{"module typo", table.Module("record_cal").Valid(), false},
		{"start", table.Start.Valid(), true},
		{"toggle", table.Toggle.Valid(), true},
		{"verb typo", table.Verb("strat").Valid(), false},
		{"own stop", table.StopOwn.Valid(), true},
		{"call stop", table.StopCall.Valid(), true},
		{"stop scope typo", table.StopScope("cal").Valid(), false},
		{"self", table.DTMFSelf.Valid(), true},
		{"both", table.DTMFBoth.Valid(), true},
		{"unset dtmf source", table.DTMFSource("").Valid(), false},
	}
	for _, tc := range tests {
		if tc.valid != tc.want {
			t.Errorf("%s: Valid = %t, want %t", tc.name, tc.valid, tc.want)
		}
	}
}

// TestDecodeRejectsUnknownEnums checks that a table naming an unknown
// module, action, dtmf_leg, scope or listen_on is refused before its
// version is checked.
func TestDecodeRejectsUnknownEnums(t *testing.T) {
	b, err := compile(t, `accounts: a: {
	users: u: {}
	devices: d: owner: "u"
	callflows: cf: {numbers: ["100"], actions: [{module: "record_call"}]}
	metaflows: numbers: "1": {module: "record_call", data: {action: "stop", dtmf_leg: "peer", scope: "call"}}
}`).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	good := string(b)
	tests := []struct{ name, old, new, want string }{
		{"module", `"module":"record_call"`, `"module":"record_cal"`, `unknown module "record_cal"`},
		{"action", `"action":"start"`, `"action":"strat"`, `unknown action "strat"`},
		{"dtmf_leg", `"dtmf_leg":"peer"`, `"dtmf_leg":"per"`, `unknown dtmf_leg "per"`},
		{"scope", `"scope":"call"`, `"scope":"cal"`, `unknown scope "cal"`},
		{"listen_on", `"listen_on":"self"`, `"listen_on":"slef"`, `unknown listen_on "slef"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("the table has no %s", tc.old)
			}
			_, err := table.DecodeBytes([]byte(strings.Replace(good, tc.old, tc.new, 1)), compiler.DefaultsDigest())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
