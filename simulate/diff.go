package simulate

import (
	"bufio"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"

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

// DiffResult is every change between two tables: scopes added or removed,
// changed cells and changed calls.
type DiffResult struct {
	OldVersion, NewVersion string
	Added, Removed         []string // "account:<id>" or "account:<id> device:<id>" / "user:<id>"
	Cells                  []CellChange
	Calls                  []CallChange
}

// Changed reports whether the two tables differ in anything that the
// diff shows.
func (d *DiffResult) Changed() bool {
	return len(d.Added)+len(d.Removed)+len(d.Cells)+len(d.Calls) > 0
}

// Diff compares two tables cell by cell and call by call.
func Diff(old, new *table.Table) (*DiffResult, error) {
	d := &DiffResult{OldVersion: old.Version, NewVersion: new.Version}
	// Both sides list the calls between accounts when either has several
	// accounts: adding or removing an account changes the calls of the
	// others only where their outcome changes.
	between := len(old.AccountIDs()) > 1 || len(new.AccountIDs()) > 1
	oldSim, err := run(old, Decide, between)
	if err != nil {
		return nil, fmt.Errorf("simulating the old policy: %w", err)
	}
	newSim, err := run(new, Decide, between)
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
			if oc.Record != nc.Record || *oc.Settings != *nc.Settings || *oc.Provenance != *nc.Provenance {
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
			c.OldCode = Code(orecs)
		}
		if inNew {
			c.NewCode = Code(nrecs)
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
		out = append(out, RecordingJSON(r))
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
	}
	os, ns := reflect.ValueOf(*c.Old.Settings), reflect.ValueOf(*c.New.Settings)
	op, np := reflect.ValueOf(*c.Old.Provenance), reflect.ValueOf(*c.New.Provenance)
	names := map[string]string{"Format": "format", "TimeLimit": "time_limit", "RecordMinSec": "record_min_sec",
		"RecordSampleRate": "record_sample_rate", "RecordOnAnswer": "record_on_answer",
		"RecordOnBridge": "record_on_bridge", "Method": "method", "URL": "url", "Enabled": "enabled"}
	for i := 0; i < os.NumField(); i++ {
		f := os.Type().Field(i).Name
		if ov, nv := os.Field(i).Interface(), ns.Field(i).Interface(); ov != nv {
			out = append(out, fmt.Sprintf("%s: %v -> %v (<- %s)", names[f], ov, nv, np.FieldByName(f).String()))
		}
	}
	for i := 0; i < op.NumField(); i++ {
		f := op.Type().Field(i).Name
		if f == "Enabled" && c.Old.Record != c.New.Record {
			continue
		}
		sf := os.FieldByName(f)
		if sf.IsValid() && sf.Interface() != ns.FieldByName(f).Interface() {
			continue // reported with the value
		}
		if ov, nv := op.Field(i).String(), np.Field(i).String(); ov != nv {
			out = append(out, fmt.Sprintf("%s provenance: %s -> %s", names[f], orNone(ov), orNone(nv)))
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}

// callChangeLines lists the recordings only the old side starts ("- ")
// and those only the new side starts ("+ ").
func callChangeLines(c CallChange) []string {
	var out []string
	describe := func(r JSONRecording) string {
		who := r.Scope
		if r.Endpoint != "" {
			who += " " + r.Endpoint
		}
		s := r.Settings
		set := fmt.Sprintf("format %s, method %s, record_min_sec %d, record_on_answer %t, record_on_bridge %t, record_sample_rate %d, time_limit %d",
			s.Format, s.Method, s.RecordMinSec, s.RecordOnAnswer, s.RecordOnBridge, s.RecordSampleRate, s.TimeLimit)
		if s.URL != "" {
			set += ", url " + s.URL
		}
		return fmt.Sprintf("%s %s-leg: %s (%s)", who, r.Leg, r.Origin, set)
	}
	has := func(list []JSONRecording, r JSONRecording) bool {
		return slices.ContainsFunc(list, func(x JSONRecording) bool { return reflect.DeepEqual(x, r) })
	}
	for _, r := range c.Old {
		if !has(c.New, r) {
			out = append(out, "- "+describe(r))
		}
	}
	for _, r := range c.New {
		if !has(c.Old, r) {
			out = append(out, "+ "+describe(r))
		}
	}
	return out
}

func codeOrAbsent(code string) string {
	if code == "" {
		return "(no such call)"
	}
	return code
}

// WriteText writes the diff as a review summary for a terminal.
func (d *DiffResult) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "policy %s -> %s\n", d.OldVersion, d.NewVersion)
	if !d.Changed() {
		fmt.Fprintln(bw, "no changes")
		return flush(bw)
	}
	for _, s := range d.Removed {
		fmt.Fprintf(bw, "removed %s\n", s)
	}
	for _, s := range d.Added {
		fmt.Fprintf(bw, "added %s\n", s)
	}
	if len(d.Cells) > 0 {
		fmt.Fprintf(bw, "\ncells (%d changed)\n", len(d.Cells))
		for _, c := range d.Cells {
			fmt.Fprintf(bw, "  account %s, %s %s.%s\n", c.Account, c.Scope, c.Direction, c.Network)
			for _, l := range cellChangeLines(c) {
				fmt.Fprintf(bw, "    %s\n", l)
			}
		}
	}
	if len(d.Calls) > 0 {
		fmt.Fprintf(bw, "\ncalls (%d changed; A account, C caller, E callee)\n", len(d.Calls))
		for _, c := range d.Calls {
			fmt.Fprintf(bw, "  account %s, %s -> %s: %s -> %s\n", c.Account, c.From, c.To, codeOrAbsent(c.OldCode), codeOrAbsent(c.NewCode))
			for _, l := range callChangeLines(c) {
				fmt.Fprintf(bw, "    %s\n", l)
			}
		}
	}
	return flush(bw)
}

// WriteMarkdown writes the diff as Markdown for a pull-request comment.
func (d *DiffResult) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "## Recording policy diff\n\n`%s` → `%s`\n", d.OldVersion, d.NewVersion)
	if !d.Changed() {
		fmt.Fprintln(bw, "\nNo changes.")
		return flush(bw)
	}
	if len(d.Removed)+len(d.Added) > 0 {
		fmt.Fprintln(bw)
		for _, s := range d.Removed {
			fmt.Fprintf(bw, "- removed `%s`\n", s)
		}
		for _, s := range d.Added {
			fmt.Fprintf(bw, "- added `%s`\n", s)
		}
	}
	if len(d.Cells) > 0 {
		fmt.Fprintf(bw, "\n### Cells (%d changed)\n\n", len(d.Cells))
		for _, c := range d.Cells {
			fmt.Fprintf(bw, "- account `%s`, `%s` %s.%s\n", c.Account, c.Scope, c.Direction, c.Network)
			for _, l := range cellChangeLines(c) {
				fmt.Fprintf(bw, "  - %s\n", l)
			}
		}
	}
	if len(d.Calls) > 0 {
		fmt.Fprintf(bw, "\n### Calls (%d changed)\n\n| account | from | to | before | after |\n|---|---|---|---|---|\n", len(d.Calls))
		for _, c := range d.Calls {
			fmt.Fprintf(bw, "| %s | %s | %s | %s | %s |\n", c.Account, c.From, c.To, codeOrAbsent(c.OldCode), codeOrAbsent(c.NewCode))
		}
		fmt.Fprintf(bw, "\nA = account recording, C = caller device, E = callee device\n\n```diff\n")
		for _, c := range d.Calls {
			fmt.Fprintf(bw, "# account %s, %s -> %s\n", c.Account, c.From, c.To)
			for _, l := range callChangeLines(c) {
				fmt.Fprintln(bw, l)
			}
		}
		fmt.Fprintln(bw, "```")
	}
	return flush(bw)
}

func flush(bw *bufio.Writer) error {
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing diff: %w", err)
	}
	return nil
}
