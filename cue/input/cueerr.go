package input

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"
)

// PositionOf converts a CUE position; an invalid one is the zero Position.
func PositionOf(p token.Pos) Position {
	if !p.IsValid() {
		return Position{}
	}
	return Position{File: p.Filename(), Line: p.Line(), Column: p.Column()}
}

// NormalizePath turns a CUE error path into plain labels, with list
// indices as "[i]" (CUE quotes labels that look like numbers, so an
// unquoted number is an index).
func NormalizePath(path []string) []string {
	out := make([]string, len(path))
	for i, p := range path {
		if _, err := strconv.Atoi(p); err == nil {
			out[i] = "[" + p + "]"
		} else {
			out[i] = Unquote(p)
		}
	}
	return out
}

// PathString formats a path of NormalizePath's labels as CUE does: dotted
// labels, quoted where they are not identifiers, and [i] for list
// elements (calls[0].legs[1].direction).
func PathString(path []string) string {
	var b strings.Builder
	for i, p := range path {
		if strings.HasPrefix(p, "[") {
			b.WriteString(p)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		if ast.IsValidIdent(p) && !strings.HasPrefix(p, "#") && !strings.HasPrefix(p, "_") {
			b.WriteString(p)
		} else {
			b.WriteString(strconv.Quote(p))
		}
	}
	return b.String()
}

// Unquote returns a path element without CUE's quotes.
func Unquote(s string) string {
	if u, err := strconv.Unquote(s); err == nil {
		return u
	}
	return s
}

// Message formats a CUE error's message from its format and arguments.
func Message(e cueerrors.Error) string {
	format, args := e.Msg()
	return fmt.Sprintf(format, args...)
}

// The formats of the CUE errors this package restates.
const (
	fmtNotAllowed   = "field not allowed"
	fmtIncomplete   = "incomplete value %v"
	fmtOutOfBound   = "invalid value %v (out of bound %s)"
	fmtConflict     = "conflicting values %s and %s"
	fmtMismatched   = "conflicting values %s and %s (mismatched types %s and %s)"
	fmtDisjunctions = "%d errors in empty disjunction:"
)

// Restate returns the message of one CUE error about the field named
// last in the words of recpol's diagnostics (those of `recpol vet`), and
// the code it has: CodeIncomplete for a value that is not concrete, code
// otherwise. A message it does not restate is CUE's own.
func Restate(code string, e cueerrors.Error, last string) (string, string) {
	format, args := e.Msg()
	arg := func(i int) string {
		if i < len(args) {
			return fmt.Sprint(args[i])
		}
		return ""
	}
	switch format {
	case fmtIncomplete:
		return CodeIncomplete, fmt.Sprintf("%s must be set to a value, not just %s", last, arg(0))
	case fmtOutOfBound:
		return code, fmt.Sprintf("%s is out of range: it must be %s", arg(0), arg(1))
	case fmtNotAllowed:
		return code, fmt.Sprintf("unknown field %q", last)
	}
	return code, fmt.Sprintf(format, args...)
}

// UnknownField reports whether e is CUE's error for a field a closed
// struct does not declare.
func UnknownField(e cueerrors.Error) bool {
	format, _ := e.Msg()
	return format == fmtNotAllowed
}

// Disjunction recognises the errors of an empty disjunction (a summary,
// then one "conflicting values" error per alternative, of the same type as
// the value or not) and returns the alternatives, sorted as SortValues
// does, and the rejected value.
func Disjunction(errs []cueerrors.Error) (alts []string, bad string, ok bool) {
	if len(errs) < 2 {
		return nil, "", false
	}
	summaries := 0
	var pairs [][2]string
	for _, e := range errs {
		format, args := e.Msg()
		switch {
		case format == fmtDisjunctions:
			summaries++
		case (format == fmtConflict || format == fmtMismatched) && len(args) >= 2:
			pairs = append(pairs, [2]string{fmt.Sprint(args[0]), fmt.Sprint(args[1])})
		default:
			return nil, "", false
		}
	}
	if summaries != 1 || len(pairs) == 0 {
		return nil, "", false
	}
	// The rejected value is the side every conflict shares: CUE writes it
	// second when the types agree, first or second when they do not.
	side := 1
	if len(pairs) > 1 && pairs[0][0] == pairs[1][0] && pairs[0][1] != pairs[1][1] {
		side = 0
	}
	for _, p := range pairs {
		alts = append(alts, p[1-side])
		bad = p[side]
	}
	SortValues(alts)
	return slices.Compact(alts), bad, true
}

// NotAllowed is the message of a value no alternative of a disjunction
// accepts.
func NotAllowed(bad string, alts []string) string {
	return fmt.Sprintf("%s is not allowed: want one of %s", bad, strings.Join(alts, ", "))
}

// SortValues sorts values as CUE writes them: numbers by value, strings
// alphabetically.
func SortValues(vals []string) {
	sort.Slice(vals, func(i, j int) bool {
		a, errA := strconv.Atoi(vals[i])
		b, errB := strconv.Atoi(vals[j])
		if errA == nil && errB == nil {
			return a < b
		}
		return vals[i] < vals[j]
	})
}

// DidYouMean returns " (did you mean X?)" for the candidates name is
// likely a misspelling of, or "".
func DidYouMean(name string, candidates []string) string {
	sugg := suggestNames(name, candidates)
	if len(sugg) == 0 {
		return ""
	}
	return " (did you mean " + OrList(sugg) + "?)"
}

// OrList joins names as "a", "a or b", "a, b or c".
func OrList(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
