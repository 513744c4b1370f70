package cue_test

import (
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"github.com/google/go-cmp/cmp"

	recpolcue "github.com/recpol/recpol/cue"
)

func TestBuiltinDefaults(t *testing.T) {
	got, err := recpolcue.BuiltinDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want := recpolcue.Defaults{
		Builtin: recpolcue.Builtin{Format: "mp3", TimeLimit: 10800, RecordSampleRate: 8000, Method: "put", AnnounceTo: "both"},
		Action:  recpolcue.ActionBuiltin{TimeLimit: 3600, ShouldFollowTransfer: true, DigitTimeout: 3000, BindingDigit: "*", ListenOn: "self"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("built-in defaults (-want +got):\n%s", diff)
	}
}

func TestSchemaCompiles(t *testing.T) {
	v := cuecontext.New().CompileBytes(recpolcue.Schema(), cue.Filename(recpolcue.SchemaFileName))
	if err := v.Validate(); err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}
}
