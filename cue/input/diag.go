package input

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// Severity says whether a diagnostic rejects the input.
type Severity string

// The severities of a diagnostic.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Codes of the diagnostics every kind of input can have, stable for
// editors and CI. A kind of input adds its own (the compiler's rule
// checks, say).
const (
	CodeIO         = "io"         // a file could not be read
	CodeSyntax     = "syntax"     // CUE syntax error
	CodeSchema     = "schema"     // CUE type, range or unknown-field error
	CodeIncomplete = "incomplete" // a value is not concrete
	CodeInvalid    = "invalid"    // a value the schema allows but a later check rejects
)

// Position is a place in an input file. Line and Column start at 1; a zero
// Line means the position is unknown.
type Position struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

// String formats the position as "file:line:col", the file alone when the
// line is unknown, or "-" when nothing is known.
func (p Position) String() string {
	if p.Line == 0 {
		if p.File == "" {
			return "-"
		}
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Diagnostic is one error or warning about an input: a value, not a
// string, so that it can be sorted, filtered and encoded as JSON.
type Diagnostic struct {
	Code     string   `json:"code"`
	Severity Severity `json:"severity"`
	Position
	// Path is the CUE path of the value concerned, if any.
	Path string `json:"path,omitempty"`
	// Message starts with Path, when there is one, as CUE's own messages
	// do: "calls[0].legs[0].direction: ...".
	Message string `json:"message"`
	// Related are further positions that explain the diagnostic (the other
	// file of a conflict, the time_limit a record_min_sec exceeds).
	Related []Position `json:"related,omitempty"`
	// Accounts are the accounts of a policy one mistake was reached from,
	// when Dedup merged it from several (its Path and Message then say
	// "*").
	Accounts []string `json:"accounts,omitempty"`
}

// String formats the diagnostic as "file:line:col: message", with the
// related positions after it, and for one reached from several accounts
// how many and the first few. It is the one format of every diagnostic
// recpol prints.
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
	if n := len(d.Accounts); n > 0 {
		shown := d.Accounts[:min(n, maxAccountsShown)]
		fmt.Fprintf(&b, " (in %d accounts: %s", n, strings.Join(shown, ", "))
		if n > len(shown) {
			fmt.Fprintf(&b, " and %d more", n-len(shown))
		}
		b.WriteString(")")
	}
	return b.String()
}

// Diagnostics is a list of diagnostics. It is an error too, so that a
// loader may return it as one.
type Diagnostics []Diagnostic

// Print writes diagnostics one a line, as String formats them: the one
// printer of recpol's diagnostics.
func Print(w io.Writer, ds Diagnostics) error {
	for _, d := range ds {
		if _, err := fmt.Fprintln(w, d.String()); err != nil {
			return fmt.Errorf("printing diagnostics: %w", err)
		}
	}
	return nil
}

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
	return a.Code == b.Code && a.Severity == b.Severity && a.Position == b.Position &&
		a.Path == b.Path && a.Message == b.Message && slices.Equal(a.Related, b.Related) &&
		slices.Equal(a.Accounts, b.Accounts)
}

// Error makes Diagnostics usable as an error: one diagnostic a line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// maxAccountsShown bounds how many accounts String names for a diagnostic
// reached from many.
const maxAccountsShown = 3

// Dedup merges the diagnostics that are one mistake of a policy reached
// from many accounts (a template of a shared file applies to every
// account): the same code, severity, position and related positions, and
// a path and message that differ only in the account. The merged
// diagnostic names the account "*" in its path and message
// (accounts.*.call_recording...) and lists every account in Accounts, in
// order; String shows the count and the first few. A diagnostic of one
// account, or of no account, is returned as it is. The order is that of
// each diagnostic's first occurrence.
func (ds Diagnostics) Dedup() Diagnostics {
	out := make(Diagnostics, 0, len(ds))
	index := map[string]int{}
	for _, d := range ds {
		id, general, ok := generalize(d)
		if !ok {
			out = append(out, d)
			continue
		}
		key := fmt.Sprint(general.Code, general.Severity, general.Position, general.Path, general.Message, general.Related)
		if i, seen := index[key]; seen {
			if len(out[i].Accounts) == 0 {
				first, _, _ := generalize(out[i])
				out[i] = general
				out[i].Accounts = []string{first}
			}
			out[i].Accounts = append(out[i].Accounts, id)
			continue
		}
		index[key] = len(out)
		out = append(out, d)
	}
	return out
}

// generalize returns the account a diagnostic's path is in and the
// diagnostic with that account replaced by "*"; ok is false when the path
// is not inside one account.
func generalize(d Diagnostic) (id string, g Diagnostic, ok bool) {
	rest, found := strings.CutPrefix(d.Path, "accounts.")
	if !found || rest == "" {
		return "", d, false
	}
	label := rest
	if rest[0] == '"' {
		end := strings.Index(rest[1:], `"`)
		if end < 0 {
			return "", d, false
		}
		label = rest[:end+2]
		id = rest[1 : end+1]
	} else {
		if i := strings.IndexByte(rest, '.'); i >= 0 {
			label = rest[:i]
		}
		id = label
	}
	prefix := "accounts." + label
	g = d
	g.Path = "accounts.*" + strings.TrimPrefix(d.Path, prefix)
	g.Message = strings.ReplaceAll(d.Message, prefix, "accounts.*")
	g.Message = strings.ReplaceAll(g.Message, "account "+id+":", "account *:")
	return id, g, true
}
