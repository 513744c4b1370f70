package compiler

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDiagnosticsDedup(t *testing.T) {
	pos := Position{File: "shared.cue", Line: 9, Column: 76}
	schema := func(account, label string) Diagnostic {
		p := "accounts." + label + ".call_recording.endpoint.inbound.any.record_sample_rate"
		return Diagnostic{Code: CodeSchema, Severity: Error, Position: pos, Path: p,
			Message: p + ": 12345 is not allowed: want one of 8000, 16000, 32000, 44100, 48000"}
	}
	merged := Diagnostic{Code: CodeSchema, Severity: Error, Position: pos,
		Path:     "accounts.*.call_recording.endpoint.inbound.any.record_sample_rate",
		Message:  "accounts.*.call_recording.endpoint.inbound.any.record_sample_rate: 12345 is not allowed: want one of 8000, 16000, 32000, 44100, 48000",
		Accounts: []string{"acct-00000", "acct-00001", "sales", "pci"}}
	other := Diagnostic{Code: CodeOwner, Severity: Error, Position: Position{File: "sales.cue", Line: 3, Column: 2},
		Path: "accounts.sales.devices.desk.owner", Message: `account sales: device desk: owner "nobody" is not a user`}
	tests := []struct {
		name string
		in   Diagnostics
		want Diagnostics
	}{
		{name: "none"},
		{name: "one account", in: Diagnostics{schema("sales", "sales"), other}, want: Diagnostics{schema("sales", "sales"), other}},
		{
			name: "one position from many accounts",
			in: Diagnostics{schema("acct-00000", `"acct-00000"`), other, schema("acct-00001", `"acct-00001"`),
				schema("sales", "sales"), schema("pci", "pci")},
			want: Diagnostics{merged, other},
		},
		{
			name: "same message at another position stays apart",
			in: Diagnostics{schema("sales", "sales"),
				func() Diagnostic { d := schema("pci", "pci"); d.Line = 10; return d }()},
			want: Diagnostics{schema("sales", "sales"), func() Diagnostic { d := schema("pci", "pci"); d.Line = 10; return d }()},
		},
		{
			name: "lint message naming the account",
			in: Diagnostics{
				{Code: CodeNoEffect, Severity: Warning, Position: pos, Path: "accounts.a", Message: "account a: user:u1 owns no device"},
				{Code: CodeNoEffect, Severity: Warning, Position: pos, Path: "accounts.b", Message: "account b: user:u1 owns no device"},
			},
			want: Diagnostics{{Code: CodeNoEffect, Severity: Warning, Position: pos, Path: "accounts.*",
				Message: "account *: user:u1 owns no device", Accounts: []string{"a", "b"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.in.Dedup(), cmp.Comparer(func(a, b Diagnostics) bool {
				return len(a) == 0 && len(b) == 0 || cmp.Equal([]Diagnostic(a), []Diagnostic(b))
			})); diff != "" {
				t.Errorf("Dedup (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDiagnosticStringAccounts(t *testing.T) {
	d := Diagnostic{Severity: Error, Position: Position{File: "shared.cue", Line: 9, Column: 76}, Message: "accounts.*.x: bad"}
	tests := []struct {
		accounts []string
		want     string
	}{
		{nil, "shared.cue:9:76: accounts.*.x: bad"},
		{[]string{"a", "b"}, "shared.cue:9:76: accounts.*.x: bad (in 2 accounts: a, b)"},
		{[]string{"a", "b", "c", "d", "e"}, "shared.cue:9:76: accounts.*.x: bad (in 5 accounts: a, b, c and 2 more)"},
	}
	for _, tt := range tests {
		d.Accounts = tt.accounts
		if diff := cmp.Diff(tt.want, d.String()); diff != "" {
			t.Errorf("String (-want +got):\n%s", diff)
		}
	}
}
