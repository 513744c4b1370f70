package compiler_test

import (
	"testing"

	"github.com/recpol/recpol/compiler"
)

// TestCompileSelfReferentialStruct is a FuzzCompile finding: a struct that
// embeds itself, unified with the schema's accounts, sends CUE's evaluator
// (cuelang.org/go v0.17.1) into unbounded recursion, a fatal stack
// overflow no recover catches. The compiler now reports such a structural
// cycle from the syntax before CUE evaluates it.
func TestCompileSelfReferentialStruct(t *testing.T) {
	res := compiler.Options{}.CompileFiles([]compiler.File{{Name: "a.cue", Data: []byte("package recpol\nx: {x, x & {b: x}}\naccounts: x\n")}})
	if !res.Diagnostics.HasErrors() {
		t.Fatal("no error for a self-referential policy")
	}
	for _, d := range res.Diagnostics.Errors() {
		if d.Line == 0 {
			t.Errorf("unpositioned: %s", d)
		}
	}
}
