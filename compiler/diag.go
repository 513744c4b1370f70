package compiler

import (
	"fmt"
	"sort"
	"strings"
)

// Severity says whether a diagnostic rejects the policy.
type Severity string

// The severities of a diagnostic.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Codes of the diagnostics, stable for editors and CI.
const (
	CodeIO             = "io"               // a file could not be read
	CodeSyntax         = "syntax"           // CUE syntax error
	CodePackage        = "package"          // missing or wrong package clause
	CodeSchema         = "schema"           // CUE type, range or unknown-field error
	CodeIncomplete     = "incomplete"       // a value is not concrete
	CodeMinSec         = "min-sec"          // record_min_sec >= time_limit
	CodeOwner          = "owner"            // a device owner names a missing user
	CodeNumber         = "callflow-number"  // a number claimed twice or malformed
	CodePattern        = "callflow-pattern" // two callflows tie on a pattern
	CodeRegex          = "regex"            // an invalid regular expression
	CodeMediaName      = "media-name"       // an unsafe media_name
	CodeLabel          = "label"            // an unsafe label
	CodeURL            = "url"              // a URL that is not plain http(s)
	CodeMetaflowNumber = "metaflow-number"  // a metaflow number that is not digits
	CodeDefaults       = "defaults-enabled" // warning: enabled set in defaults
	CodeScope          = "action-scope"     // a metaflow scope on an action other than stop
	CodeNoEffect       = "no-effect"        // warning: a setting that cannot apply where it is
)

// Position is a place in a policy file. Line and Column start at 1; a zero
// Line means the position is unknown.
type Position struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

func (p Position) String() string {
	if p.Line == 0 {
		if p.File == "" {
			return "-"
		}
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Diagnostic is one error or warning about a policy: a value, not a string,
// so that it can be sorted, filtered and encoded as JSON.
type Diagnostic struct {
	Code     string   `json:"code"`
	Severity Severity `json:"severity"`
	Position
	// Path is the CUE path of the value concerned, if any.
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	// Related are further positions that explain the diagnostic (the other
	// file of a conflict, the time_limit a record_min_sec exceeds).
	Related []Position `json:"related,omitempty"`
}

// String formats the diagnostic as "file:line:col: message", with the
// related positions after it.
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.Position.String())
	b.WriteString(": ")
	if d.Severity == Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(d.Message)
	for _, r := range d.Related {
		b.WriteString(" (see ")
		b.WriteString(r.String())
		b.WriteString(")")
	}
	return b.String()
}

// Diagnostics is a list of diagnostics.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Errors returns the diagnostics that are errors.
func (ds Diagnostics) Errors() Diagnostics { return ds.filter(Error) }

// Warnings returns the diagnostics that are warnings.
func (ds Diagnostics) Warnings() Diagnostics { return ds.filter(Warning) }

func (ds Diagnostics) filter(s Severity) Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == s {
			out = append(out, d)
		}
	}
	return out
}

// Sort orders diagnostics by file, line, column, then code and message, and
// drops exact duplicates.
func (ds *Diagnostics) Sort() {
	s := *ds
	sort.SliceStable(s, func(i, j int) bool {
		a, b := s[i], s[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		return a.Message < b.Message
	})
	out := s[:0]
	for i, d := range s {
		if i > 0 && sameDiag(d, s[i-1]) {
			continue
		}
		out = append(out, d)
	}
	*ds = out
}

func sameDiag(a, b Diagnostic) bool {
	if a.Code != b.Code || a.Severity != b.Severity || a.Position != b.Position ||
		a.Path != b.Path || a.Message != b.Message || len(a.Related) != len(b.Related) {
		return false
	}
	for i := range a.Related {
		if a.Related[i] != b.Related[i] {
			return false
		}
	}
	return true
}

// Error makes Diagnostics usable as an error: one diagnostic a line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}
