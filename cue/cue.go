// Package cue holds the recpol policy language: the CUE schema of a policy,
// the built-in defaults and the runtime config schema, embedded in the
// binary. It is the one source of truth the compiler and the CLI read.
//
// Import it as recpolcue wherever cuelang.org/go/cue is imported too.
package cue

import (
	_ "embed"
	"fmt"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
)

// PackageName is the CUE package every policy file belongs to.
const PackageName = "recpol"

// SchemaFileName is the name under which the schema is added to a policy
// directory when it is compiled. A file of that name in the directory is
// replaced by the embedded schema, so the output of `recpol schema` may be
// kept beside the policy files for editors and `cue vet`.
const SchemaFileName = "recpol_schema.cue"

//go:embed policy.cue
var policySchema []byte

//go:embed builtin.cue
var builtinSource []byte

//go:embed runtime.cue
var runtimeSchema []byte

// RuntimeSchema returns the schema of the runtime config: a CUE file whose
// #Runtime definition a config file must satisfy.
func RuntimeSchema() []byte { return append([]byte(nil), runtimeSchema...) }

// Schema returns the policy schema: one CUE file of package recpol.
func Schema() []byte { return append([]byte(nil), policySchema...) }

// Builtin holds the built-in defaults of a recording's settings.
type Builtin struct {
	Enabled          bool   `json:"enabled"`
	Format           string `json:"format"`
	TimeLimit        int    `json:"time_limit"`
	RecordMinSec     int    `json:"record_min_sec"`
	RecordSampleRate int    `json:"record_sample_rate"`
	RecordOnAnswer   bool   `json:"record_on_answer"`
	RecordOnBridge   bool   `json:"record_on_bridge"`
	Method           string `json:"method"`
	Stereo           bool   `json:"stereo"`
	AnnounceTo       string `json:"announce_to"`
}

// ActionBuiltin holds the built-in defaults that differ for recordings
// started by callflow and metaflow actions, and the metaflow defaults.
type ActionBuiltin struct {
	TimeLimit            int    `json:"time_limit"`
	ShouldFollowTransfer bool   `json:"should_follow_transfer"`
	DigitTimeout         int    `json:"digit_timeout"`
	BindingDigit         string `json:"binding_digit"`
	ListenOn             string `json:"listen_on"`
}

// Defaults are the built-in defaults, decoded from builtin.cue.
type Defaults struct {
	Builtin Builtin       `json:"builtin"`
	Action  ActionBuiltin `json:"action"`
}

var loadDefaults = sync.OnceValues(func() (Defaults, error) {
	var d Defaults
	v := cuecontext.New().CompileBytes(builtinSource, cue.Filename("builtin.cue"))
	if err := v.Err(); err != nil {
		return d, fmt.Errorf("built-in defaults: %w", err)
	}
	if err := v.Decode(&d); err != nil {
		return d, fmt.Errorf("built-in defaults: %w", err)
	}
	return d, nil
})

// BuiltinDefaults returns the built-in defaults. An error means the
// embedded file is broken, which the tests of this package rule out.
func BuiltinDefaults() (Defaults, error) { return loadDefaults() }
