package simulate

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDiff(t *testing.T) {
	const before = `package recpol

accounts: acme: {
	users: bob: {}
	devices: desk: owner: "bob"
}
accounts: gone: {}
`
	const after = `package recpol

accounts: acme: {
	users: bob: call_recording: inbound: offnet: {enabled: true, format: "wav"}
	devices: desk: owner: "bob"
	devices: soft: owner: "bob"
}
`
	tests := []struct {
		name       string
		old, new   string
		wantAdded  []string
		wantRemove []string
		wantCells  []string
		wantCalls  []string
	}{
		{
			name: "unchanged", old: before, new: before,
		},
		{
			name: "changed", old: before, new: after,
			wantAdded:  []string{"account:acme device:soft"},
			wantRemove: []string{"account:gone"},
			wantCells:  []string{"acme device:desk inbound.offnet", "acme user:bob inbound.offnet"},
			wantCalls: []string{
				"acme device:desk -> device:soft: (no such call) -> -",
				"acme device:soft -> device:desk: (no such call) -> -",
				"acme device:soft -> device:soft: (no such call) -> -",
				"acme device:soft -> user:bob: (no such call) -> -",
				"acme device:soft -> offnet: (no such call) -> -",
				"acme device:soft -> other-account: (no such call) -> -",
				"acme offnet -> device:desk: - -> E",
				"acme offnet -> device:soft: (no such call) -> E",
				"acme offnet -> user:bob: - -> E2",
				"acme other-account -> device:soft: (no such call) -> -",
				"gone offnet -> offnet: - -> (no such call)",
				"gone offnet -> other-account: - -> (no such call)",
				"gone other-account -> offnet: - -> (no such call)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Diff(compile(t, tt.old), compile(t, tt.new))
			if err != nil {
				t.Fatal(err)
			}
			var cells, calls []string
			for _, c := range d.Cells {
				cells = append(cells, c.Account+" "+c.Scope+" "+c.Direction.String()+"."+c.Network.String())
			}
			for _, c := range d.Calls {
				calls = append(calls, c.Account+" "+c.From+" -> "+c.To+": "+codeOrAbsent(c.OldCode)+" -> "+codeOrAbsent(c.NewCode))
			}
			if diff := cmp.Diff(tt.wantAdded, d.Added); diff != "" {
				t.Errorf("added (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRemove, d.Removed); diff != "" {
				t.Errorf("removed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantCells, cells); diff != "" {
				t.Errorf("cells (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantCalls, calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if d.Changed() != (tt.wantCalls != nil) {
				t.Errorf("Changed() = %t", d.Changed())
			}
			var b bytes.Buffer
			if err := d.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			if !d.Changed() && !strings.Contains(b.String(), "no changes") {
				t.Errorf("text of an empty diff:\n%s", b.String())
			}
		})
	}
}
