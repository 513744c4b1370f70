package simulate

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"

	"github.com/recpol/recpol/table"
)

// expectSchema is the shape of an expectations file. account, from and to
// select calls of the simulation with glob patterns (path.Match: "*"
// matches any id); every other field set must hold for each selected call.
const expectSchema = `
#Expectation: {
	// The account(s), e.g. "sales" or "*".
	account: *"*" | string
	// The caller: "offnet", "other-account", "device:<id>", "device:*", "*".
	from: string
	// The callee: "offnet", "other-account", "device:<id>", "user:<id>", "device:*", "user:*", "*".
	to: string
	// Whether the account records the call.
	account_recording?: bool
	// The account recording's origin, e.g. "inbound from offnet to account".
	account_origin?: string
	// Whether the caller device records the call.
	caller_recording?: bool
	// Whether at least one callee device records the call.
	callee_recording?: bool
	// How many recordings the call starts.
	recordings?: int & >=0
}
expect: [string]: #Expectation
`

// Expectation is one assertion about the calls of a simulation, read from
// an expectations file.
type Expectation struct {
	Name             string  `json:"-"`
	Account          string  `json:"account"`
	From             string  `json:"from"`
	To               string  `json:"to"`
	AccountRecording *bool   `json:"account_recording,omitempty"`
	AccountOrigin    *string `json:"account_origin,omitempty"`
	CallerRecording  *bool   `json:"caller_recording,omitempty"`
	CalleeRecording  *bool   `json:"callee_recording,omitempty"`
	Recordings       *int    `json:"recordings,omitempty"`
}

// ParseExpectations reads an expectations file (CUE, with or without a
// package clause):
//
//	expect: "offnet calls to sales are recorded by the account": {
//		account: "sales"
//		from:    "offnet"
//		to:      "device:*"
//		account_recording: true
//	}
//
// Expectations keep the order of the file.
func ParseExpectations(name string, data []byte) ([]Expectation, error) {
	ctx := cuecontext.New()
	schema := ctx.CompileString(expectSchema, cue.Filename("expect-schema.cue"))
	if err := schema.Err(); err != nil {
		return nil, fmt.Errorf("expectations schema: %w", err)
	}
	v := ctx.CompileBytes(data, cue.Filename(name))
	if err := v.Err(); err != nil {
		return nil, expectErr(name, err)
	}
	iter, err := v.Fields()
	if err != nil {
		return nil, expectErr(name, err)
	}
	for iter.Next() {
		if sel := iter.Selector().String(); sel != "expect" {
			return nil, fmt.Errorf("%s: unknown top-level field %s (an expectations file has only expect)", name, sel)
		}
	}
	v = schema.Unify(v)
	if err := v.Validate(cue.Concrete(true)); err != nil {
		return nil, expectErr(name, err)
	}
	fields, err := v.LookupPath(cue.ParsePath("expect")).Fields()
	if err != nil {
		return nil, fmt.Errorf("%s: no expectations: %w", name, err)
	}
	var out []Expectation
	for fields.Next() {
		b, err := fields.Value().MarshalJSON()
		if err != nil {
			return nil, expectErr(name, err)
		}
		var e Expectation
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("%s: expect %s: %w", name, fields.Selector(), err)
		}
		e.Name = fields.Selector().Unquoted()
		for _, p := range []string{e.Account, e.From, e.To} {
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("%s: expect %q: pattern %q: %w", name, e.Name, p, err)
			}
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no expectations", name)
	}
	return out, nil
}

func expectErr(name string, err error) error {
	var msgs []string
	for _, e := range cueerrors.Errors(err) {
		msgs = append(msgs, strings.TrimSpace(cueerrors.Details(e, nil)))
	}
	if len(msgs) == 0 {
		msgs = []string{err.Error()}
	}
	return fmt.Errorf("reading expectations %s:\n%s", name, strings.Join(msgs, "\n"))
}

// ExpectResult is the outcome of one expectation.
type ExpectResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Calls  int    `json:"calls"` // how many calls it selected
	Detail string `json:"detail"`
}

// ExpectReport is the outcome of every expectation of a file.
type ExpectReport struct {
	FormatVersion int            `json:"format_version"`
	PolicyVersion string         `json:"policy_version"`
	File          string         `json:"file"`
	OK            bool           `json:"ok"`
	Expectations  []ExpectResult `json:"expectations"`
}

// maxListed bounds how many failing calls an expectation lists.
const maxListed = 5

// Check runs expectations against a simulation. An expectation that
// selects no call fails, so that a misspelt id does not pass silently.
func (r *Result) Check(file string, exps []Expectation) *ExpectReport {
	rep := &ExpectReport{FormatVersion: FormatVersion, PolicyVersion: r.PolicyVersion, File: file, OK: true}
	for _, e := range exps {
		res := ExpectResult{Name: e.Name}
		var failures []string
		for _, a := range r.Accounts {
			if ok, _ := path.Match(e.Account, a.ID); !ok {
				continue
			}
			for _, c := range a.Calls {
				if ok, _ := path.Match(e.From, c.From.String()); !ok {
					continue
				}
				if ok, _ := path.Match(e.To, c.To.String()); !ok {
					continue
				}
				res.Calls++
				if why := e.violation(c.Recordings); why != "" {
					failures = append(failures, fmt.Sprintf("account %s, %s -> %s records %s: %s",
						a.ID, c.From, c.To, Code(c.Recordings), why))
				}
			}
		}
		switch {
		case res.Calls == 0:
			res.Detail = fmt.Sprintf("selects no call (account %q, from %q, to %q)", e.Account, e.From, e.To)
		case len(failures) > 0:
			res.Detail = fmt.Sprintf("%d of %d calls fail: ", len(failures), res.Calls)
			if len(failures) > maxListed {
				failures = append(failures[:maxListed], "...")
			}
			res.Detail += strings.Join(failures, "; ")
		default:
			res.OK = true
			res.Detail = fmt.Sprintf("holds for %d calls", res.Calls)
		}
		rep.OK = rep.OK && res.OK
		rep.Expectations = append(rep.Expectations, res)
	}
	return rep
}

// violation says why a call's recordings break an expectation, or "".
func (e *Expectation) violation(recs []table.Recording) string {
	has := func(s table.Scope) bool {
		return slices.ContainsFunc(recs, func(r table.Recording) bool { return r.Scope == s })
	}
	var why []string
	want := func(name string, want *bool, got bool) {
		if want != nil && *want != got {
			why = append(why, fmt.Sprintf("%s is %t, want %t", name, got, *want))
		}
	}
	want("account_recording", e.AccountRecording, has(table.ScopeAccount))
	want("caller_recording", e.CallerRecording, has(table.ScopeCaller))
	want("callee_recording", e.CalleeRecording, has(table.ScopeCallee))
	if e.AccountOrigin != nil {
		origin := ""
		for _, r := range recs {
			if r.Scope == table.ScopeAccount {
				origin = r.Origin
			}
		}
		if origin != *e.AccountOrigin {
			why = append(why, fmt.Sprintf("account_origin is %q, want %q", origin, *e.AccountOrigin))
		}
	}
	if e.Recordings != nil && *e.Recordings != len(recs) {
		why = append(why, fmt.Sprintf("recordings is %d, want %d", len(recs), *e.Recordings))
	}
	return strings.Join(why, ", ")
}

// WriteText writes one line per expectation and a verdict.
func (rep *ExpectReport) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "expectations %s against policy %s\n", rep.File, rep.PolicyVersion)
	failed := 0
	for _, e := range rep.Expectations {
		v := "ok  "
		if !e.OK {
			v = "FAIL"
			failed++
		}
		fmt.Fprintf(bw, "  %s %s: %s\n", v, e.Name, e.Detail)
	}
	verdict := "ok"
	if !rep.OK {
		verdict = "FAIL"
	}
	fmt.Fprintf(bw, "%s: %d expectations, %d failed\n", verdict, len(rep.Expectations), failed)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing expectations: %w", err)
	}
	return nil
}

// WriteMarkdown writes the expectations as a Markdown checklist.
func (rep *ExpectReport) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "## Recording expectations\n\n`%s` against policy `%s`\n\n", rep.File, rep.PolicyVersion)
	for _, e := range rep.Expectations {
		x := "x"
		if !e.OK {
			x = " "
		}
		fmt.Fprintf(bw, "- [%s] **%s**: %s\n", x, e.Name, e.Detail)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing expectations: %w", err)
	}
	return nil
}

// WriteJSON writes the expectations report as indented JSON.
func (rep *ExpectReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("writing expectations JSON: %w", err)
	}
	return nil
}

// WriteJUnit writes the expectations as a JUnit report: one testsuite
// named after the file, one testcase per expectation, failing with its
// detail when it does not hold.
func (rep *ExpectReport) WriteJUnit(w io.Writer) error {
	s := junitSuite{Name: "expect:" + rep.File, Tests: len(rep.Expectations)}
	for _, e := range rep.Expectations {
		c := junitCase{Name: e.Name, Classname: "expect:" + rep.File}
		if e.OK {
			c.SystemOut = &junitText{e.Detail + "\n"}
		} else {
			c.Failure = &junitFailure{Message: "expectation does not hold", Text: e.Detail}
			s.Fails++
		}
		s.Cases = append(s.Cases, c)
	}
	return writeJUnit(w, junitSuites{Name: "recpol simulate --expect " + rep.File,
		Tests: s.Tests, Fails: s.Fails, Suites: []junitSuite{s}})
}
