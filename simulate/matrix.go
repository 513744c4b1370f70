package simulate

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/table"
)

// kazoo002 is the documented recording matrix of KAZOO (seed 002),
// transcribed as data: one entry per documented cell.
//
//go:embed testdata/matrix/kazoo-002.json
var kazoo002 []byte

// Values of MatrixCell.Documented.
const (
	DocYes             = "yes"
	DocNo              = "no"
	DocYesIfInboundOff = "yes-if-inbound-unset" // yes, if the inbound account cell for the same from-network does not record
	DocUndocumented    = "undocumented"         // offnet->offnet: derived from the model, always ok
)

// callTypes are the matrix's call types, "<from>-><to>", in column order.
var callTypes = []string{"onnet->onnet", "onnet->offnet", "offnet->onnet", "offnet->offnet"}

// MatrixCell is one cell of the recording matrix: a single setting (the
// account's, or the endpoints' taking part) enabled for one direction and
// network, and whether a call of one type then starts a recording of that
// table.
type MatrixCell struct {
	Table      string `json:"table"` // account or endpoint
	Direction  string `json:"direction"`
	Network    string `json:"network"`
	Call       string `json:"call"` // one of callTypes
	Documented string `json:"documented"`
	Simulated  string `json:"simulated"` // yes or no
	OK         bool   `json:"ok"`
	// AsWritten is the documentation's own wording of the cell.
	AsWritten string `json:"-"`
}

// Check is a named statement of the documentation proved by simulating a
// policy written for it.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// MatrixReport is the outcome of reproducing the documented matrix.
type MatrixReport struct {
	FormatVersion int          `json:"format_version"`
	OK            bool         `json:"ok"`
	Cells         []MatrixCell `json:"cells"`
	Checks        []Check      `json:"checks"`
}

// matrixData is the shape of testdata/matrix/kazoo-002.json.
type matrixData struct {
	Source string `json:"source"`
	Cells  []struct {
		Table      string `json:"table"`
		Direction  string `json:"direction"`
		Network    string `json:"network"`
		Call       string `json:"call"`
		Documented string `json:"documented"`
		AsWritten  string `json:"as_written"`
	} `json:"cells"`
}

// documentedMatrix returns the documented cells of seed 002 as read from
// their data file (Simulated and OK unset).
func documentedMatrix() ([]MatrixCell, error) {
	var d matrixData
	dec := json.NewDecoder(bytes.NewReader(kazoo002))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("reading the documented matrix: %w", err)
	}
	cells := make([]MatrixCell, 0, len(d.Cells))
	for _, c := range d.Cells {
		cells = append(cells, MatrixCell{Table: c.Table, Direction: c.Direction, Network: c.Network,
			Call: c.Call, Documented: c.Documented, AsWritten: c.AsWritten})
	}
	return cells, nil
}

// matrixPolicy returns the policy of one matrix cell: account m with
// devices caller and callee, and the single setting enabled on the account
// (table account) or on both devices (table endpoint).
func matrixPolicy(tbl, dir, net string) string {
	setting := fmt.Sprintf("call_recording: %s: %s: enabled: true", dir, net)
	if tbl == "account" {
		return fmt.Sprintf("package recpol\n\naccounts: m: {\n\tcall_recording: account: %s: %s: enabled: true\n\tdevices: {caller: {}, callee: {}}\n}\n", dir, net)
	}
	return fmt.Sprintf("package recpol\n\naccounts: m: devices: {\n\tcaller: %s\n\tcallee: %s\n}\n", setting, setting)
}

// matrixCall returns the call of a call type between the devices of a
// matrix policy.
func matrixCall(callType string) (table.Call, error) {
	f, t, ok := strings.Cut(callType, "->")
	if !ok {
		return table.Call{}, fmt.Errorf("invalid call type %q", callType)
	}
	party := func(net, device string) (table.Party, error) {
		switch net {
		case "onnet":
			return table.DeviceRef(device), nil
		case "offnet":
			return table.OffnetRef(), nil
		}
		return table.Party{}, fmt.Errorf("invalid call type %q", callType)
	}
	from, err := party(f, "caller")
	if err != nil {
		return table.Call{}, err
	}
	to, err := party(t, "callee")
	if err != nil {
		return table.Call{}, err
	}
	return table.Call{From: from, To: to}, nil
}

// matrixRunner compiles policies through the real compiler (each once) and
// decides calls with decide.
type matrixRunner struct {
	decide decideFunc
	tables map[string]*table.Table
}

func (m *matrixRunner) account(src string) (*table.Account, error) {
	t, ok := m.tables[src]
	if !ok {
		res := compiler.Options{}.CompileFiles([]compiler.File{{Name: "matrix.cue", Data: []byte(src)}})
		if res.Table == nil {
			return nil, fmt.Errorf("compiling matrix policy:\n%s\n%s", src, res.Diagnostics)
		}
		t = res.Table
		m.tables[src] = t
	}
	ids := t.AccountIDs()
	if len(ids) != 1 {
		return nil, fmt.Errorf("matrix policy has %d accounts, want 1", len(ids))
	}
	a, _ := t.Account(ids[0])
	return a, nil
}

// RunMatrix reproduces the documented matrix of seed 002 with the table's
// own decisions.
func RunMatrix() (*MatrixReport, error) { return runMatrixWith(tableDecide) }

// runMatrixWith reproduces the documented matrix deciding calls with
// decide: every documented cell (and the undocumented offnet->offnet cells)
// is simulated on a single-setting policy compiled by the compiler, and the
// named checks are run on policies written for them. An error means the
// matrix could not be run at all; mismatches are reported in the report.
func runMatrixWith(decide decideFunc) (*MatrixReport, error) {
	documented, err := documentedMatrix()
	if err != nil {
		return nil, err
	}
	m := &matrixRunner{decide: decide, tables: map[string]*table.Table{}}
	cells := slices.Clone(documented)
	for _, tbl := range []string{"account", "endpoint"} {
		for _, d := range table.Directions {
			for _, n := range table.Networks {
				cells = append(cells, MatrixCell{Table: tbl, Direction: d.String(), Network: n.String(),
					Call: "offnet->offnet", Documented: DocUndocumented, AsWritten: "(undocumented)"})
			}
		}
	}
	order := func(c MatrixCell) [4]int {
		t := 0
		if c.Table == "endpoint" {
			t = 1
		}
		d, _ := table.ParseDirection(c.Direction)
		n, _ := table.ParseNetwork(c.Network)
		return [4]int{t, slices.Index(callTypes, c.Call), int(d), int(n)}
	}
	slices.SortStableFunc(cells, func(a, b MatrixCell) int {
		oa, ob := order(a), order(b)
		return slices.Compare(oa[:], ob[:])
	})

	rep := &MatrixReport{FormatVersion: FormatVersion, OK: true}
	for _, c := range cells {
		if _, err := table.ParseDirection(c.Direction); err != nil {
			return nil, fmt.Errorf("documented matrix: %w", err)
		}
		if _, err := table.ParseNetwork(c.Network); err != nil {
			return nil, fmt.Errorf("documented matrix: %w", err)
		}
		if c.Table != "account" && c.Table != "endpoint" {
			return nil, fmt.Errorf("documented matrix: invalid table %q", c.Table)
		}
		a, err := m.account(matrixPolicy(c.Table, c.Direction, c.Network))
		if err != nil {
			return nil, err
		}
		call, err := matrixCall(c.Call)
		if err != nil {
			return nil, fmt.Errorf("documented matrix: %w", err)
		}
		recs, err := decide(a, call)
		if err != nil {
			return nil, fmt.Errorf("matrix cell %s %s.%s %s: %w", c.Table, c.Direction, c.Network, c.Call, err)
		}
		recorded := slices.ContainsFunc(recs, func(r table.Recording) bool {
			return (r.Scope == table.ScopeAccount) == (c.Table == "account")
		})
		c.Simulated = DocNo
		if recorded {
			c.Simulated = DocYes
		}
		switch c.Documented {
		case DocYes, DocYesIfInboundOff:
			c.OK = recorded
		case DocNo:
			c.OK = !recorded
		case DocUndocumented:
			c.OK = true
		default:
			return nil, fmt.Errorf("documented matrix: invalid value %q", c.Documented)
		}
		rep.OK = rep.OK && c.OK
		rep.Cells = append(rep.Cells, c)
	}
	for _, ck := range matrixChecks {
		res, err := m.check(ck)
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", ck.name, err)
		}
		rep.OK = rep.OK && res.OK
		rep.Checks = append(rep.Checks, res)
	}
	return rep, nil
}

// expectedCall is a call of a check's policy and the recordings it must
// start, each as "account <origin>", "caller <device>" or "callee <device>".
type expectedCall struct {
	from, to string
	want     []string
}

type matrixCheck struct {
	name, statement, policy string
	calls                   []expectedCall
}

// matrixChecks prove the documentation's statements of condition and
// precedence on policies written for them.
var matrixChecks = []matrixCheck{
	{
		name:      "condition-inbound-onnet",
		statement: `account outbound cells record an onnet caller's call only if inbound -> onnet isn't configured: with inbound.onnet enabled the account records once, from the inbound cell; with inbound.onnet present but disabled it falls through to outbound`,
		policy: `package recpol

accounts: {
	set: {
		call_recording: account: {inbound: onnet: enabled: true, outbound: {onnet: enabled: true, offnet: enabled: true}}
		devices: {caller: {}, callee: {}}
	}
	disabled: {
		call_recording: account: {inbound: onnet: enabled: false, outbound: {onnet: enabled: true, offnet: enabled: true}}
		devices: {caller: {}, callee: {}}
	}
}
`,
		calls: []expectedCall{
			{"set device:caller", "device:callee", []string{"account inbound from onnet to account"}},
			{"set device:caller", "offnet", []string{"account inbound from onnet to account"}},
			{"disabled device:caller", "device:callee", []string{"account outbound to onnet from account"}},
			{"disabled device:caller", "offnet", []string{"account outbound to offnet from account"}},
		},
	},
	{
		name:      "condition-inbound-offnet",
		statement: `the account outbound -> onnet cell records a call from offnet only if inbound -> offnet isn't configured: with inbound.offnet enabled the account records once, from the inbound cell; with it present but disabled it falls through to outbound`,
		policy: `package recpol

accounts: {
	set: {
		call_recording: account: {inbound: offnet: enabled: true, outbound: onnet: enabled: true}
		devices: {caller: {}, callee: {}}
	}
	disabled: {
		call_recording: account: {inbound: offnet: enabled: false, outbound: onnet: enabled: true}
		devices: {caller: {}, callee: {}}
	}
}
`,
		calls: []expectedCall{
			{"set offnet", "device:callee", []string{"account inbound from offnet to account"}},
			{"disabled offnet", "device:callee", []string{"account outbound to onnet from account"}},
		},
	},
	{
		name:      "device-over-user",
		statement: `a device that explicitly disabled recording is not recorded although its owner enabled it (device any.any.enabled: false beats the user's inbound/outbound offnet and any.onnet)`,
		policy: `package recpol

accounts: a: {
	users: u: call_recording: {inbound: offnet: enabled: true, outbound: offnet: enabled: true, any: onnet: enabled: true}
	devices: {
		d: {owner: "u", call_recording: any: any: enabled: false}
		peer: {}
	}
}
`,
		calls: []expectedCall{
			{"a device:d", "offnet", nil},
			{"a device:d", "device:peer", nil},
			{"a offnet", "device:d", nil},
			{"a offnet", "user:u", nil},
			{"a device:peer", "device:d", nil},
		},
	},
	{
		name:      "device-undefined-uses-user",
		statement: `a device whose settings are left undefined is recorded by its owner's settings`,
		policy: `package recpol

accounts: a: {
	users: u: call_recording: {inbound: offnet: enabled: true, outbound: offnet: enabled: true, any: onnet: enabled: true}
	devices: {
		d: owner: "u"
		peer: {}
	}
}
`,
		calls: []expectedCall{
			{"a device:d", "offnet", []string{"caller d"}},
			{"a device:d", "device:peer", []string{"caller d"}},
			{"a offnet", "device:d", []string{"callee d"}},
			{"a offnet", "user:u", []string{"callee d"}},
			{"a device:peer", "device:d", []string{"callee d"}},
		},
	},
	{
		name:      "account-independent-of-endpoint",
		statement: `the account's settings are considered independently of the endpoint's: a user who disabled recording in an account that records is still recorded by the account, and an endpoint records in an account that does not`,
		policy: `package recpol

accounts: {
	records: {
		call_recording: account: any: any: enabled: true
		users: u: call_recording: any: any: enabled: false
		devices: {d: owner: "u", peer: {}}
	}
	silent: {
		call_recording: account: any: any: enabled: false
		users: u: call_recording: any: any: enabled: true
		devices: {d: owner: "u", peer: {}}
	}
}
`,
		calls: []expectedCall{
			{"records device:d", "offnet", []string{"account inbound from onnet to account"}},
			{"records offnet", "user:u", []string{"account inbound from offnet to account"}},
			{"records device:peer", "device:d", []string{"account inbound from onnet to account"}},
			{"silent device:d", "offnet", []string{"caller d"}},
			{"silent offnet", "user:u", []string{"callee d"}},
		},
	},
}

// recordingKey names a recording for a check: "account <origin>",
// "caller <device>" or "callee <device>".
func recordingKey(r table.Recording) string {
	if r.Scope == table.ScopeAccount {
		return "account " + r.Origin
	}
	return r.Scope.String() + " " + r.Endpoint
}

func (m *matrixRunner) check(ck matrixCheck) (Check, error) {
	res := compiler.Options{}.CompileFiles([]compiler.File{{Name: ck.name + ".cue", Data: []byte(ck.policy)}})
	if res.Table == nil {
		return Check{}, fmt.Errorf("compiling its policy: %s", res.Diagnostics)
	}
	var failures []string
	for _, ec := range ck.calls {
		acc, from, _ := strings.Cut(ec.from, " ")
		a, ok := res.Table.Account(acc)
		if !ok {
			return Check{}, fmt.Errorf("its policy has no account %q", acc)
		}
		f, err := table.ParseParty(from)
		if err != nil {
			return Check{}, err
		}
		t, err := table.ParseParty(ec.to)
		if err != nil {
			return Check{}, err
		}
		recs, err := m.decide(a, table.Call{From: f, To: t})
		if err != nil {
			return Check{}, fmt.Errorf("account %s: %s -> %s: %w", acc, from, ec.to, err)
		}
		got := make([]string, 0, len(recs))
		for _, r := range recs {
			got = append(got, recordingKey(r))
		}
		if !slices.Equal(got, ec.want) && !(len(got) == 0 && len(ec.want) == 0) {
			failures = append(failures, fmt.Sprintf("account %s: %s -> %s records %s, want %s",
				acc, from, ec.to, listOrNothing(got), listOrNothing(ec.want)))
		}
	}
	if len(failures) > 0 {
		return Check{Name: ck.name, OK: false, Detail: strings.Join(failures, "; ")}, nil
	}
	return Check{Name: ck.name, OK: true, Detail: ck.statement}, nil
}

func listOrNothing(ss []string) string {
	if len(ss) == 0 {
		return "nothing"
	}
	return "[" + strings.Join(ss, ", ") + "]"
}

// WriteJSON writes the matrix report as indented JSON.
func (r *MatrixReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing matrix JSON: %w", err)
	}
	return nil
}

// matrixLegend explains the marks of the matrix tables.
const matrixLegend = `yes/no = simulated; * = documented "yes (if inbound -> <from> isn't configured)", ` +
	`proved by condition-inbound-<from>; ~ = undocumented (offnet->offnet), derived from the model; ` +
	`MISMATCH = the simulation disagrees with the documentation`

func cellMark(c MatrixCell) string {
	switch {
	case !c.OK:
		return fmt.Sprintf("%s MISMATCH (documented %s)", c.Simulated, c.Documented)
	case c.Documented == DocYesIfInboundOff:
		return c.Simulated + "*"
	case c.Documented == DocUndocumented:
		return c.Simulated + "~"
	}
	return c.Simulated
}

// grids returns the account and endpoint tables: a header row, then one
// row per setting (direction.network), one column per call type.
func (r *MatrixReport) grids() map[string][][]string {
	out := map[string][][]string{}
	for _, tbl := range []string{"account", "endpoint"} {
		rows := [][]string{append([]string{tbl + " setting"}, callTypes...)}
		for _, d := range table.Directions {
			for _, n := range table.Networks {
				row := []string{d.String() + " " + n.String()}
				for _, ct := range callTypes {
					mark := "?"
					for _, c := range r.Cells {
						if c.Table == tbl && c.Direction == d.String() && c.Network == n.String() && c.Call == ct {
							mark = cellMark(c)
						}
					}
					row = append(row, mark)
				}
				rows = append(rows, row)
			}
		}
		out[tbl] = rows
	}
	return out
}

func (r *MatrixReport) summary() string {
	bad := 0
	for _, c := range r.Cells {
		if !c.OK {
			bad++
		}
	}
	badChecks := 0
	for _, c := range r.Checks {
		if !c.OK {
			badChecks++
		}
	}
	verdict := "ok"
	if !r.OK {
		verdict = "FAIL"
	}
	return fmt.Sprintf("%s: %d cells (%d mismatched), %d checks (%d failed)", verdict, len(r.Cells), bad, len(r.Checks), badChecks)
}

// WriteText writes the matrix as two tables (account, endpoint) and the
// named checks, for a terminal.
func (r *MatrixReport) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "KAZOO recording matrix (seed 002): one setting at a time, simulated through the compiler")
	g := r.grids()
	for _, tbl := range []string{"account", "endpoint"} {
		rows := g[tbl]
		widths := make([]int, len(rows[0]))
		for _, row := range rows {
			for j, c := range row {
				widths[j] = max(widths[j], len(c))
			}
		}
		fmt.Fprintln(bw)
		for _, row := range rows {
			var b strings.Builder
			b.WriteString("  ")
			for j, c := range row {
				b.WriteString(c)
				if j < len(row)-1 {
					b.WriteString(strings.Repeat(" ", widths[j]-len(c)+2))
				}
			}
			fmt.Fprintln(bw, b.String())
		}
	}
	fmt.Fprintf(bw, "\n%s\n\nchecks\n", matrixLegend)
	for _, c := range r.Checks {
		v := "ok  "
		if !c.OK {
			v = "FAIL"
		}
		fmt.Fprintf(bw, "  %s %s: %s\n", v, c.Name, c.Detail)
	}
	fmt.Fprintf(bw, "\n%s\n", r.summary())
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing matrix: %w", err)
	}
	return nil
}

// WriteMarkdown writes the matrix as Markdown tables and a checklist.
func (r *MatrixReport) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "## KAZOO recording matrix (seed 002)")
	g := r.grids()
	for _, tbl := range []string{"account", "endpoint"} {
		fmt.Fprintln(bw)
		for k, row := range g[tbl] {
			fmt.Fprintf(bw, "| %s |\n", strings.Join(row, " | "))
			if k == 0 {
				fmt.Fprintf(bw, "|%s\n", strings.Repeat("---|", len(row)))
			}
		}
	}
	fmt.Fprintf(bw, "\n%s\n\n", matrixLegend)
	for _, c := range r.Checks {
		x := "x"
		if !c.OK {
			x = " "
		}
		fmt.Fprintf(bw, "- [%s] `%s`: %s\n", x, c.Name, c.Detail)
	}
	fmt.Fprintf(bw, "\n**%s**\n", r.summary())
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing matrix: %w", err)
	}
	return nil
}
