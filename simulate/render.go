package simulate

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/recpol/recpol/table"
)

// legend explains the letters of a truth table cell.
const legend = `A = account recording (A-leg), C = caller device (A-leg), ` +
	`E = callee device (B-leg; En = n ringing devices recorded), - = nothing recorded; ` +
	`other-account = a party on another account of the platform (it decides on its own legs)`

// truthCode returns the truth-table code of a call's recordings: "A", "C" and
// "E" (or "E<n>" when n callee devices record) joined by spaces, "-" when
// the call records nothing.
func truthCode(recs []table.Recording) string {
	var acc, caller bool
	callees := 0
	for _, r := range recs {
		switch r.Scope {
		case table.ScopeAccount:
			acc = true
		case table.ScopeCaller:
			caller = true
		case table.ScopeCallee:
			callees++
		}
	}
	var parts []string
	if acc {
		parts = append(parts, "A")
	}
	if caller {
		parts = append(parts, "C")
	}
	switch {
	case callees == 1:
		parts = append(parts, "E")
	case callees > 1:
		parts = append(parts, "E"+strconv.Itoa(callees))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// grid is an account's truth table: header row, then one row per caller;
// a call the simulation leaves out (another account to another account)
// is an empty cell.
func (a *Account) grid() [][]string {
	head := make([]string, 0, len(a.Callees)+1)
	head = append(head, `from \ to`)
	col := make(map[table.Party]int, len(a.Callees))
	for i, p := range a.Callees {
		head = append(head, p.String())
		col[p] = i + 1
	}
	rows := [][]string{head}
	var from table.Party
	for i, c := range a.Calls {
		if i == 0 || c.From != from {
			from = c.From
			rows = append(rows, make([]string, len(head)))
			rows[len(rows)-1][0] = c.From.String()
		}
		rows[len(rows)-1][col[c.To]] = truthCode(c.Recordings)
	}
	return rows
}

// WriteText writes one truth table per account for a terminal.
func (r *Result) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "policy %s\n", r.PolicyVersion)
	for i := range r.Accounts {
		a := &r.Accounts[i]
		fmt.Fprintf(bw, "\naccount %s\n", a.ID)
		rows := a.grid()
		widths := make([]int, len(rows[0]))
		for _, row := range rows {
			for j, c := range row {
				widths[j] = max(widths[j], len(c))
			}
		}
		for _, row := range rows {
			var b strings.Builder
			b.WriteString("  ")
			for j, c := range row {
				if j == len(row)-1 {
					b.WriteString(c)
					break
				}
				b.WriteString(c)
				b.WriteString(strings.Repeat(" ", widths[j]-len(c)+2))
			}
			fmt.Fprintln(bw, b.String())
		}
		for _, l := range explicitText(a.Account) {
			fmt.Fprintf(bw, "  %s\n", l)
		}
	}
	fmt.Fprintf(bw, "\n%s\n", legend)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing simulation: %w", err)
	}
	return nil
}

// WriteMarkdown writes the whole simulation as Markdown: a summary line per
// account, then each account's truth table with its callflows and DTMF
// codes in a <details> block.
func (r *Result) WriteMarkdown(w io.Writer) error {
	return r.WriteMarkdownWith(w, MarkdownOptions{})
}

// WriteMarkdownWith writes the simulation as Markdown within o.MaxChars,
// for a pull-request comment: the summary table of every account is always
// written; past the limit, the accounts' tables that do not fit are left
// out, and the report says so and where the whole one is.
func (r *Result) WriteMarkdownWith(w io.Writer, o MarkdownOptions) error {
	var head strings.Builder
	fmt.Fprintf(&head, "## Recording simulation\n\nPolicy `%s`\n\n", r.PolicyVersion)
	fmt.Fprintf(&head, "| account | users | devices | calls | recorded | A | C | E | callflows | devices with DTMF codes |\n|---|---|---|---|---|---|---|---|---|---|\n")
	sec := mdSection{heading: "\n### Truth tables\n\n" + legend + "\n\n", unit: "accounts"}
	for i := range r.Accounts {
		a := &r.Accounts[i]
		sum := a.summary()
		fmt.Fprintf(&head, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d |\n", a.ID, len(a.Account.Users), len(a.Account.Devices),
			len(a.Calls), sum.recorded, sum.account, sum.caller, sum.callee, len(a.Account.Callflows), sum.dtmf)
		var b strings.Builder
		fmt.Fprintf(&b, "<details><summary>account <code>%s</code>: %d of %d calls recorded</summary>\n\n", a.ID, sum.recorded, len(a.Calls))
		rows := a.grid()
		for k, row := range rows {
			fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
			if k == 0 {
				fmt.Fprintf(&b, "|%s\n", strings.Repeat("---|", len(row)))
			}
		}
		if lines := explicitText(a.Account); len(lines) > 0 {
			fmt.Fprintln(&b)
			for _, l := range lines {
				indent := len(l) - len(strings.TrimLeft(l, " "))
				fmt.Fprintf(&b, "%s- `%s`\n", strings.Repeat(" ", indent), strings.TrimLeft(l, " "))
			}
		}
		b.WriteString("\n</details>\n")
		sec.items = append(sec.items, mdItem{text: b.String(), size: 1})
	}
	fmt.Fprintf(&head, "\nrecorded = calls that start a recording; A, C, E = calls with an account, caller or callee recording\n")
	return writeBudget(w, head.String(), []mdSection{sec}, o, "the tables of the first accounts (--account picks others)", "table")
}

// accountSummary counts an account's calls: those that record anything,
// and those with an account, caller or callee recording; and its devices
// with DTMF codes.
type accountSummary struct {
	recorded, account, caller, callee int
	dtmf                              int // devices with metaflows
}

func (a *Account) summary() accountSummary {
	var s accountSummary
	for _, d := range a.Account.Devices {
		s.dtmf += b2i(d.Metaflows != nil)
	}
	for _, c := range a.Calls {
		if len(c.Recordings) > 0 {
			s.recorded++
		}
		var acc, caller, callee bool
		for _, r := range c.Recordings {
			acc = acc || r.Scope == table.ScopeAccount
			caller = caller || r.Scope == table.ScopeCaller
			callee = callee || r.Scope == table.ScopeCallee
		}
		s.account += b2i(acc)
		s.caller += b2i(caller)
		s.callee += b2i(callee)
	}
	return s
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// describe says in words what a call records, one recording per line,
// e.g. "account a-leg: inbound from offnet to account (format mp3, ...)".
func describe(recs []table.Recording) string {
	if len(recs) == 0 {
		return "nothing recorded\n"
	}
	var b strings.Builder
	for _, r := range recs {
		who := r.Scope.String()
		if r.Endpoint != "" {
			who += " device:" + r.Endpoint
		}
		fmt.Fprintf(&b, "%s %s-leg: %s", who, r.Leg, r.Origin)
		if r.Cell != nil && r.Cell.Settings != nil {
			b.WriteString(" (")
			b.WriteString(settingsString(r.Cell.Settings))
			b.WriteString(")")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// settingsString renders settings as "format mp3, method put, ...", url
// only when set, stereo only when true, announce (with announce_to) only
// when set: table.Summary.
func settingsString(s *table.Settings) string { return table.Summary(s) }

type (
	junitSuites struct {
		XMLName xml.Name     `xml:"testsuites"`
		Name    string       `xml:"name,attr"`
		Tests   int          `xml:"tests,attr"`
		Fails   int          `xml:"failures,attr"`
		Suites  []junitSuite `xml:"testsuite"`
	}
	junitSuite struct {
		Name  string      `xml:"name,attr"`
		Tests int         `xml:"tests,attr"`
		Fails int         `xml:"failures,attr"`
		Cases []junitCase `xml:"testcase"`
	}
	junitCase struct {
		Name      string        `xml:"name,attr"`
		Classname string        `xml:"classname,attr"`
		File      string        `xml:"file,attr,omitempty"`
		Line      int           `xml:"line,attr,omitempty"`
		Failure   *junitFailure `xml:"failure,omitempty"`
		SystemOut *junitText    `xml:"system-out,omitempty"`
	}
	junitText struct {
		Text string `xml:",cdata"`
	}
	junitFailure struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	}
)

func writeJUnit(w io.Writer, out junitSuites) error {
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("writing JUnit report: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("writing JUnit report: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("writing JUnit report: %w", err)
	}
	return nil
}
