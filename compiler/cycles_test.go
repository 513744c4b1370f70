package compiler_test

import (
	"strings"
	"testing"

	"github.com/recpol/recpol/compiler"
)

// TestSelfReferences: a struct that refers to itself is a structural cycle
// reported with its position (some forms would otherwise crash CUE's
// evaluator); a selection into a struct is not.
func TestSelfReferences(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"self-embedding struct", "x: {x, x & {b: x}}\naccounts: x\n", "a.cue:3:5: structural cycle: x refers to the struct it is part of"},
		{"field refers to its struct", "accounts: acme: devices: d: {owner: \"u\", me: d}\n", "structural cycle: d refers"},
		{"selection is fine", "t: {a: 1, b: t.a}\naccounts: acme: {}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := compiler.Options{}.CompileFiles([]compiler.File{{Name: "a.cue", Data: []byte("package recpol\n\n" + tc.src)}})
			got := res.Diagnostics.Errors().Error()
			if tc.want == "" {
				if strings.Contains(got, "structural cycle: ") && strings.Contains(got, "refers to the struct") {
					t.Errorf("a selection was taken for a cycle: %s", got)
				}
				return
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("diagnostics %q, want %q", got, tc.want)
			}
		})
	}
}
