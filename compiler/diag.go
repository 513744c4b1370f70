package compiler

import "github.com/recpol/recpol/cue/input"

// Severity says whether a diagnostic rejects the policy (input.Severity).
type Severity = input.Severity

// The severities of a diagnostic.
const (
	Error   = input.Error
	Warning = input.Warning
)

// Codes of the diagnostics, stable for editors and CI. Those every CUE
// input can have are package input's.
const (
	CodeIO             = input.CodeIO         // a file could not be read
	CodeSyntax         = input.CodeSyntax     // CUE syntax error
	CodePackage        = "package"            // missing or wrong package clause
	CodeSchema         = input.CodeSchema     // CUE type, range or unknown-field error
	CodeIncomplete     = input.CodeIncomplete // a value is not concrete
	CodeMinSec         = "min-sec"            // record_min_sec >= time_limit
	CodeOwner          = "owner"              // a device owner names a missing user
	CodeNumber         = "callflow-number"    // a number claimed twice or malformed
	CodePattern        = "callflow-pattern"   // two callflows tie on a pattern
	CodeRegex          = "regex"              // an invalid regular expression
	CodeMediaName      = "media-name"         // an unsafe media_name
	CodeAnnounce       = "announce"           // an unsafe or malformed announce
	CodeLabel          = "label"              // an unsafe label
	CodeURL            = "url"                // a URL that is not plain http(s)
	CodeMetaflowNumber = "metaflow-number"    // a metaflow number that is not digits
	CodeDefaults       = "defaults-enabled"   // warning: enabled set in defaults
	CodeScope          = "action-scope"       // a metaflow scope on an action other than stop
	CodeNoEffect       = "no-effect"          // warning: a setting that cannot apply where it is
)

// Position is a place in a policy file (input.Position). Line and Column
// start at 1; a zero Line means the position is unknown.
type Position = input.Position

// Diagnostic is one error or warning about a policy (input.Diagnostic,
// the one diagnostic of every CUE input): a value, not a string, so that
// it can be sorted, filtered and encoded as JSON. String formats it as
// "file:line:col: message".
type Diagnostic = input.Diagnostic

// Diagnostics is a list of diagnostics (input.Diagnostics): HasErrors,
// Errors, Warnings, Sort, Dedup, and Error to use it as an error.
type Diagnostics = input.Diagnostics
