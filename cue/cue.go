// Package cue holds the recpol policy language: the CUE schema of a policy,
// the built-in defaults and the runtime config schema, embedded in the
// binary. It is the one source of truth the compiler and the CLI read.
//
// Import it as recpolcue wherever cuelang.org/go/cue is imported too.
package cue

import (
	_ "embed"
	"encoding/json"
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

// Builtin holds the built-in defaults of a recording's settings, enabled
// and one per setting that has one, in the order of builtin.cue. Its JSON
// is an object in that order.
type Builtin []BuiltinValue

// BuiltinValue is the built-in default of one setting (or of enabled).
type BuiltinValue struct {
	Name string
	// Value is a string, an int or a bool.
	Value any
}

// Lookup returns the built-in default of a setting.
func (b Builtin) Lookup(name string) (any, bool) {
	for _, v := range b {
		if v.Name == name {
			return v.Value, true
		}
	}
	return nil, false
}

// MarshalJSON writes the defaults as an object in their order.
func (b Builtin) MarshalJSON() ([]byte, error) {
	out := []byte{'{'}
	for i, v := range b {
		if i > 0 {
			out = append(out, ',')
		}
		k, err := json.Marshal(v.Name)
		if err != nil {
			return nil, err
		}
		x, err := json.Marshal(v.Value)
		if err != nil {
			return nil, err
		}
		out = append(append(append(out, k...), ':'), x...)
	}
	return append(out, '}'), nil
}

// decodeBuiltin decodes the builtin struct of builtin.cue in its order.
func decodeBuiltin(v cue.Value) (Builtin, error) {
	it, err := v.Fields()
	if err != nil {
		return nil, err
	}
	var b Builtin
	for it.Next() {
		f := it.Value()
		var x any
		switch f.Kind() {
		case cue.BoolKind:
			x, err = f.Bool()
		case cue.IntKind:
			var i int64
			i, err = f.Int64()
			x = int(i)
		case cue.StringKind:
			x, err = f.String()
		default:
			err = fmt.Errorf("%s: not a string, an int or a bool", f.Path())
		}
		if err != nil {
			return nil, err
		}
		b = append(b, BuiltinValue{Name: it.Selector().Unquoted(), Value: x})
	}
	return b, nil
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
	b, err := decodeBuiltin(v.LookupPath(cue.ParsePath("builtin")))
	if err != nil {
		return d, fmt.Errorf("built-in defaults: %w", err)
	}
	d.Builtin = b
	if err := v.LookupPath(cue.ParsePath("action")).Decode(&d.Action); err != nil {
		return d, fmt.Errorf("built-in defaults: %w", err)
	}
	return d, nil
})

// BuiltinDefaults returns the built-in defaults. An error means the
// embedded file is broken, which the tests of this package rule out.
func BuiltinDefaults() (Defaults, error) { return loadDefaults() }
