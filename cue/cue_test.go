package cue_test

import (
	"encoding/json"
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
		Builtin: recpolcue.Builtin{{Name: "enabled", Value: false}, {Name: "format", Value: "mp3"}, {Name: "time_limit", Value: 10800}, {Name: "record_min_sec", Value: 0},
			{Name: "record_sample_rate", Value: 8000}, {Name: "record_on_answer", Value: false}, {Name: "record_on_bridge", Value: false}, {Name: "method", Value: "put"},
			{Name: "stereo", Value: false}, {Name: "announce_to", Value: "both"}},
		Action: recpolcue.ActionBuiltin{TimeLimit: 3600, ShouldFollowTransfer: true, DigitTimeout: 3000, BindingDigit: "*", ListenOn: "self"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("built-in defaults (-want +got):\n%s", diff)
	}
}

// TestBuiltinDefaultsJSON holds the JSON of the defaults, which every
// table's version hashes, to its bytes: the builtin object in the order of
// builtin.cue.
func TestBuiltinDefaultsJSON(t *testing.T) {
	d, err := recpolcue.BuiltinDefaults()
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"builtin":{"enabled":false,"format":"mp3","time_limit":10800,"record_min_sec":0,"record_sample_rate":8000,` +
		`"record_on_answer":false,"record_on_bridge":false,"method":"put","stereo":false,"announce_to":"both"},` +
		`"action":{"time_limit":3600,"should_follow_transfer":true,"digit_timeout":3000,"binding_digit":"*","listen_on":"self"}}`
	if string(got) != want {
		t.Errorf("defaults' JSON\n got %s\nwant %s", got, want)
	}
}

func TestSchemaCompiles(t *testing.T) {
	v := cuecontext.New().CompileBytes(recpolcue.Schema(), cue.Filename(recpolcue.SchemaFileName))
	if err := v.Validate(); err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}
}
