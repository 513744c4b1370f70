package simulate

import (
	"bufio"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/recpol/recpol/table"
)

// CellChange is a cell whose record decision, settings or provenance
// differ between two tables.
type CellChange struct {
	Account   string
	Scope     string // "account", "user:<id>" or "device:<id>"
	Direction table.Direction
	Network   table.Network
	Old, New  *table.Cell
}

// CallChange is a simulated call whose recordings differ between two
// tables. Old or New is nil when the call exists on one side only (its
// account, device or user was added or removed).
type CallChange struct {
	Account  string
	From, To string
	Old, New []JSONRecording
	OldCode  string // truth-table code, "" when the call does not exist
	NewCode  string
}

// DiffResult is every change between two tables, each kind of change as
// values: scopes added or removed, changed defaults, cells, callflows and
// metaflows, and the simulated calls whose recordings change (the calls of
// the truth tables and the calls to callflow numbers). What a DTMF code
// does is part of its MetaflowChange. A changed default is listed once in
// Defaults and again in every cell, action and call it changes: the
// renderings group identical changes.
type DiffResult struct {
	OldVersion, NewVersion string
	Added, Removed         []string // "account:<id>" or "account:<id> device:<id>" / "user:<id>"
	Defaults               []DefaultChange
	Cells                  []CellChange
	Callflows              []CallflowChange
	Metaflows              []MetaflowChange
	Calls                  []CallChange
	NumberCalls            []NumberCallChange
}

// Changed reports whether the two tables differ in anything that the
// diff shows.
func (d *DiffResult) Changed() bool {
	return len(d.Added)+len(d.Removed)+len(d.Defaults)+len(d.Cells)+len(d.Callflows)+
		len(d.Metaflows)+len(d.Calls)+len(d.NumberCalls) > 0
}

// Summary counts the changes by kind in one line, e.g. "1 callflow,
// 1 metaflow code, 8 calls to callflow numbers"; "" when nothing changed.
func (d *DiffResult) Summary() string {
	var parts []string
	count := func(n int, one, many string) {
		switch {
		case n == 1:
			parts = append(parts, "1 "+one)
		case n > 1:
			parts = append(parts, thousands(n)+" "+many)
		}
	}
	count(len(d.Removed), "removal", "removals")
	count(len(d.Added), "addition", "additions")
	count(len(d.Defaults), "default", "defaults")
	count(len(d.Cells), "cell", "cells")
	count(len(d.Callflows), "callflow", "callflows")
	codes, settings := 0, 0
	for _, m := range d.Metaflows {
		if m.Field == "code" {
			codes++
		} else {
			settings++
		}
	}
	count(codes, "metaflow code", "metaflow codes")
	count(settings, "metaflow setting", "metaflow settings")
	count(len(d.Calls), "call", "calls")
	count(len(d.NumberCalls), "call to a callflow number", "calls to callflow numbers")
	return strings.Join(parts, ", ")
}

// Diff compares two tables cell by cell and call by call.
func Diff(old, new *table.Table) (*DiffResult, error) {
	d := &DiffResult{OldVersion: old.Version, NewVersion: new.Version}
	d.diffDefaults(old, new)
	// Both sides list the calls between accounts when either has several
	// accounts: adding or removing an account changes the calls of the
	// others only where their outcome changes.
	between := len(old.AccountIDs()) > 1 || len(new.AccountIDs()) > 1
	oldSim, err := run(old, tableDecide, between)
	if err != nil {
		return nil, fmt.Errorf("simulating the old policy: %w", err)
	}
	newSim, err := run(new, tableDecide, between)
	if err != nil {
		return nil, fmt.Errorf("simulating the new policy: %w", err)
	}
	for _, id := range union(old.AccountIDs(), new.AccountIDs()) {
		oa, inOld := old.Account(id)
		na, inNew := new.Account(id)
		switch {
		case !inOld:
			d.Added = append(d.Added, "account:"+id)
		case !inNew:
			d.Removed = append(d.Removed, "account:"+id)
		default:
			d.diffCells(id, "account", &oa.Cells, &na.Cells)
			d.diffCallflows(id, oa, na)
			d.diffMetaflows(id, oa, na)
			d.diffNumberCalls(id, oa, na)
			for _, kind := range []table.EndpointKind{table.Device, table.User} {
				oids, nids := oa.DeviceIDs(), na.DeviceIDs()
				if kind == table.User {
					oids, nids = oa.UserIDs(), na.UserIDs()
				}
				for _, eid := range union(oids, nids) {
					oe, inO := oa.Endpoint(kind, eid)
					ne, inN := na.Endpoint(kind, eid)
					ref := kind.String() + ":" + eid
					switch {
					case !inO:
						d.Added = append(d.Added, "account:"+id+" "+ref)
					case !inN:
						d.Removed = append(d.Removed, "account:"+id+" "+ref)
					default:
						if oe.Owner != ne.Owner {
							d.Removed = append(d.Removed, fmt.Sprintf("account:%s %s owner %q", id, ref, oe.Owner))
							d.Added = append(d.Added, fmt.Sprintf("account:%s %s owner %q", id, ref, ne.Owner))
						}
						d.diffCells(id, ref, &oe.Cells, &ne.Cells)
					}
				}
			}
		}
	}
	d.diffCalls(oldSim, newSim)
	return d, nil
}

func (d *DiffResult) diffCells(account, scope string, o, n *table.Cells) {
	for _, dir := range table.Directions {
		for _, net := range table.Networks {
			oc, nc := o.Get(dir, net), n.Get(dir, net)
			if oc.Record != nc.Record || oc.Provenance.Enabled != nc.Provenance.Enabled ||
				!settingsSame(oc.Settings, oc.Provenance, nc.Settings, nc.Provenance) {
				d.Cells = append(d.Cells, CellChange{Account: account, Scope: scope, Direction: dir, Network: net, Old: oc, New: nc})
			}
		}
	}
}

type callKey struct{ account, from, to string }

func (d *DiffResult) diffCalls(o, n *Result) {
	index := func(r *Result) (map[callKey][]table.Recording, []callKey) {
		m := map[callKey][]table.Recording{}
		var keys []callKey
		for _, a := range r.Accounts {
			for _, c := range a.Calls {
				k := callKey{a.ID, c.From.String(), c.To.String()}
				m[k] = c.Recordings
				keys = append(keys, k)
			}
		}
		return m, keys
	}
	om, okeys := index(o)
	nm, nkeys := index(n)
	// Keep simulation order: the new side's calls, then calls that only
	// existed before, each group in its own order.
	keys := slices.Clone(nkeys)
	for _, k := range okeys {
		if _, ok := nm[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].account < keys[j].account })
	for _, k := range keys {
		orecs, inOld := om[k]
		nrecs, inNew := nm[k]
		ojs, njs := recordingsJSON(orecs, inOld), recordingsJSON(nrecs, inNew)
		if inOld && inNew && reflect.DeepEqual(ojs, njs) {
			continue
		}
		c := CallChange{Account: k.account, From: k.from, To: k.to, Old: ojs, New: njs}
		if inOld {
			c.OldCode = truthCode(orecs)
		}
		if inNew {
			c.NewCode = truthCode(nrecs)
		}
		d.Calls = append(d.Calls, c)
	}
}

func recordingsJSON(recs []table.Recording, present bool) []JSONRecording {
	if !present {
		return nil
	}
	out := make([]JSONRecording, 0, len(recs))
	for _, r := range recs {
		out = append(out, recordingJSON(r))
	}
	return out
}

func union(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	sort.Strings(out)
	return slices.Compact(out)
}

// cellChangeLines describes what changed in a cell: its decision, each
// setting and each provenance.
func cellChangeLines(c CellChange) []string {
	var out []string
	if c.Old.Record != c.New.Record {
		out = append(out, fmt.Sprintf("records: %t -> %t (enabled <- %s)", c.Old.Record, c.New.Record, c.New.Provenance.Enabled))
	} else if c.Old.Provenance.Enabled != c.New.Provenance.Enabled {
		out = append(out, fmt.Sprintf("enabled provenance: %s -> %s", orNone(c.Old.Provenance.Enabled), orNone(c.New.Provenance.Enabled)))
	}
	return append(out, settingsChangeLines(fieldsOf(c.Old.Settings, c.Old.Provenance), fieldsOf(c.New.Settings, c.New.Provenance))...)
}

func orNone(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}

// callChangeLines lists the recordings only the old side starts ("- "),
// those whose settings changed ("~ ") and those only the new side starts
// ("+ ").
func callChangeLines(c CallChange) []string { return recordingChangeLines(c.Old, c.New) }

func codeOrAbsent(code string) string {
	if code == "" {
		return "(no such call)"
	}
	return code
}

// section is one kind of change of a diff: a heading and its entries,
// each a title and its lines (a group of changes that read alike), and the
// unit its entries count. Both renderings are written from sections.
type section struct {
	heading string
	entries []entry
	unit    string
}

type entry struct {
	title string
	lines []string
	size  int // how many of the section's unit the entry stands for
}

func groupEntries(gs []group) []entry {
	out := make([]entry, 0, len(gs))
	for _, g := range gs {
		out = append(out, entry{title: g.title(), lines: g.lines, size: g.size()})
	}
	return out
}

// sections returns the diff's changes, kind by kind, in reading order,
// identical changes grouped, largest group first.
func (d *DiffResult) sections() []section {
	var out []section
	if len(d.Defaults) > 0 {
		s := section{heading: fmt.Sprintf("defaults (%d changed)", len(d.Defaults)), unit: "defaults"}
		for _, c := range d.Defaults {
			s.entries = append(s.entries, entry{title: fmt.Sprintf("%s: %s -> %s", c.Field, orBuiltin(c.Old), orBuiltin(c.New)), size: 1})
		}
		out = append(out, s)
	}
	var recording, silent []CellChange
	for _, c := range d.Cells {
		if c.Old.Record || c.New.Record {
			recording = append(recording, c)
		} else {
			silent = append(silent, c)
		}
	}
	cells := func(heading string, cs []CellChange) {
		if len(cs) == 0 {
			return
		}
		gs := collapse("cells", len(cs), func(i int) (member, []string) {
			c := cs[i]
			return member{c.Account, fmt.Sprintf("%s %s.%s", c.Scope, c.Direction, c.Network), 1}, cellChangeLines(c)
		})
		out = append(out, section{heading: fmt.Sprintf(heading, thousands(len(cs))), entries: groupEntries(gs), unit: "cells"})
	}
	cells("cells that record (%s changed)", recording)
	cells("no recording affected: cells that record nothing on either side (%s changed)", silent)
	if len(d.Callflows) > 0 {
		gs := collapse("callflows", len(d.Callflows), func(i int) (member, []string) {
			c := d.Callflows[i]
			name := "callflow " + c.ID
			switch {
			case c.Old == nil:
				name += " added"
			case c.New == nil:
				name += " removed"
			default:
				name += " (" + dialledList(c.New) + ")"
			}
			return member{c.Account, name, 1}, callflowChangeLines(c)
		})
		out = append(out, section{heading: fmt.Sprintf("callflows (%s changed)", thousands(len(d.Callflows))), entries: groupEntries(gs), unit: "callflows"})
	}
	if len(d.Metaflows) > 0 {
		gs := collapse("endpoints", len(d.Metaflows), func(i int) (member, []string) {
			c := &d.Metaflows[i]
			return member{c.Account, "metaflows of " + c.endpointsPhrase(), len(c.Endpoints)}, metaflowLines(c)
		})
		out = append(out, section{heading: fmt.Sprintf("metaflows (%s changed)", thousands(len(d.Metaflows))), entries: groupEntries(gs), unit: "endpoints"})
	}
	if len(d.Calls) > 0 {
		gs := collapse("calls", len(d.Calls), func(i int) (member, []string) {
			c := d.Calls[i]
			return member{c.Account, fmt.Sprintf("%s -> %s: %s -> %s", c.From, c.To, codeOrAbsent(c.OldCode), codeOrAbsent(c.NewCode)), 1}, callChangeLines(c)
		})
		out = append(out, section{heading: fmt.Sprintf("calls (%s changed; A account, C caller, E callee)", thousands(len(d.Calls))), entries: groupEntries(gs), unit: "calls"})
	}
	if len(d.NumberCalls) > 0 {
		ngs := groupNumberCalls(d.NumberCalls)
		gs := collapse("calls", len(ngs), func(i int) (member, []string) {
			g := &ngs[i]
			return member{g.account, g.title(), len(g.pairs)}, g.lines
		})
		out = append(out, section{heading: fmt.Sprintf("calls to callflow numbers (%s changed)", thousands(len(d.NumberCalls))), entries: groupEntries(gs), unit: "calls"})
	}
	return out
}

func orBuiltin(s string) string {
	if s == "" {
		return "(unset: built-in)"
	}
	return s
}

// WriteText writes the diff as a review summary for a terminal: a line
// counting the changes by kind, what changes for calls (newly recorded, no
// longer recorded, settings changed), then each kind of change, identical
// changes grouped, each as what changed, for whom, before -> after.
func (d *DiffResult) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "policy %s -> %s\n", d.OldVersion, d.NewVersion)
	if !d.Changed() {
		fmt.Fprintln(bw, "no changes")
		return flush(bw)
	}
	fmt.Fprintf(bw, "changed: %s\n", d.Summary())
	for _, s := range d.Removed {
		fmt.Fprintf(bw, "removed %s\n", s)
	}
	for _, s := range d.Added {
		fmt.Fprintf(bw, "added %s\n", s)
	}
	fmt.Fprintf(bw, "\nwhat changes for calls\n")
	for _, l := range d.summaryLines(false) {
		fmt.Fprintf(bw, "  %s\n", strings.Replace(l, "- ", "", 1))
	}
	for _, s := range d.sections() {
		fmt.Fprintf(bw, "\n%s\n", s.heading)
		for _, e := range s.entries {
			fmt.Fprintf(bw, "  %s\n", e.title)
			for _, l := range e.lines {
				fmt.Fprintf(bw, "    %s\n", l)
			}
		}
	}
	return flush(bw)
}

// MarkdownOptions bound a Markdown report to what a pull-request comment
// holds.
type MarkdownOptions struct {
	// MaxChars is the most characters the report may have (0: no limit).
	// Past it the report keeps its header and summary and, section by
	// section, the largest groups that fit, and says what it left out.
	MaxChars int
	// FullReport says where the whole report is, for the note of a report
	// cut to MaxChars (e.g. "review-full.md, the job's artifact").
	FullReport string
}

// WriteMarkdown writes the whole diff as Markdown: what WriteText writes,
// for a pull-request comment or a CI artifact.
func (d *DiffResult) WriteMarkdown(w io.Writer) error {
	return d.WriteMarkdownWith(w, MarkdownOptions{})
}

// diffKept says what a diff cut to a budget keeps.
const diffKept = "the largest groups of each section"

// WriteMarkdownWith writes the diff as Markdown within o.MaxChars.
func (d *DiffResult) WriteMarkdownWith(w io.Writer, o MarkdownOptions) error {
	var head strings.Builder
	fmt.Fprintf(&head, "## Recording policy diff\n\n`%s` → `%s`\n", d.OldVersion, d.NewVersion)
	if !d.Changed() {
		fmt.Fprintln(&head, "\nNo changes.")
		return writeBudget(w, head.String(), nil, o, diffKept, "group")
	}
	fmt.Fprintf(&head, "\n**Changed:** %s\n", d.Summary())
	if len(d.Removed)+len(d.Added) > 0 {
		fmt.Fprintln(&head)
		for _, s := range d.Removed {
			fmt.Fprintf(&head, "- removed `%s`\n", s)
		}
		for _, s := range d.Added {
			fmt.Fprintf(&head, "- added `%s`\n", s)
		}
	}
	fmt.Fprintf(&head, "\n### What changes for calls\n\n")
	for _, l := range d.summaryLines(true) {
		fmt.Fprintln(&head, l)
	}
	var parts []mdSection
	for _, s := range d.sections() {
		heading := s.heading
		if h, _, cut := strings.Cut(heading, ";"); cut {
			heading = h + ")"
		}
		p := mdSection{heading: fmt.Sprintf("\n### %s%s\n\n", strings.ToUpper(heading[:1]), heading[1:]), unit: s.unit}
		for _, e := range s.entries {
			var b strings.Builder
			fmt.Fprintf(&b, "- %s\n", mdEscape(e.title))
			for _, l := range e.lines {
				fmt.Fprintf(&b, "  - `%s`\n", strings.ReplaceAll(l, "`", "'"))
			}
			p.items = append(p.items, mdItem{text: b.String(), size: e.size})
		}
		parts = append(parts, p)
	}
	return writeBudget(w, head.String(), parts, o, diffKept, "group")
}

// mdEscape keeps a title's * and | from turning into Markdown.
func mdEscape(s string) string {
	return strings.NewReplacer("*", `\*`, "|", `\|`, "_", `\_`).Replace(s)
}

func flush(bw *bufio.Writer) error {
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing diff: %w", err)
	}
	return nil
}
