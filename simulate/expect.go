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
	"cuelang.org/go/cue/token"

	"github.com/recpol/recpol/cue/input"
	"github.com/recpol/recpol/table"
)

// expectSchema is the shape of an expectations file. Each expectation is
// about calls (from and to), calls to a callflow number (number) or a DTMF
// code (dtmf); account, from, to and endpoint select with glob patterns
// (path.Match: "*" matches any id); every other field set must hold for
// each selected call, number call or device.
var expectSchema = expectSettingsSchema() + `
#Expectation: {
	// The account(s), e.g. "sales" or "*".
	account: *"*" | string

	// What it is about: a call (from and to), a call to a callflow
	// number (number, from optional), or a DTMF code (dtmf, endpoint
	// optional).
	// The caller: "offnet", "other-account", "device:<id>", "device:*", "*".
	from?: string
	// The callee: "offnet", "other-account", "device:<id>", "user:<id>", "device:*", "user:*", "*".
	to?: string
	// A number dialled, e.g. "+442071234567": the callflow matching it answers.
	number?: string
	// Keys pressed during a call, e.g. "*72".
	dtmf?: string
	// With dtmf: the device(s) whose metaflows hear it (default "device:*").
	endpoint?: string

	// Calls and calls to numbers: whether the account records the call.
	account_recording?: bool
	// The account recording's origin, e.g. "inbound from offnet to account".
	account_origin?: string
	// Whether the caller device records the call.
	caller_recording?: bool
	// Calls: whether at least one callee device records the call.
	callee_recording?: bool
	// How many recordings the call starts.
	recordings?: int & >=0
	// Calls: every recording the call starts has these settings; numbers:
	// every recording the callflow starts; dtmf: the recording the code
	// starts. Something must record.
	settings?: #Settings

	// Numbers: the callflow that answers ("" for none).
	callflow?: string
	// Numbers: how many recordings the callflow starts.
	callflow_recordings?: int & >=0
	// Numbers: the label of the callflow's recordings (their origin is
	// "callflow : <label>").
	label?: string

	// DTMF: the action the code runs ("none": no code answers).
	action?: "start" | "stop" | "mask" | "unmask" | "pause" | "resume" | "toggle" | "none"
	// DTMF: the scope the binding comes from, e.g. "account:*", "device:*".
	binding_from?: string
	// DTMF: whose key presses fire it.
	listen?: "self" | "peer" | "both"
	// DTMF: on every recorded call the device takes part in, the code acts
	// on every recording of the call (mask, unmask, pause, resume, a stop
	// with scope "call").
	every_recording?: bool
	// DTMF: on every call the device takes part in, the code starts a
	// recording of the device's leg.
	starts_recording?: bool
}
#Expectations: expect: [string]: #Expectation
`

// expectLoader reads expectations files against expectSchema.
var expectLoader = input.Loader{
	Kind:       "expectations file",
	SchemaName: "expect-schema.cue",
	Schema:     []byte(expectSchema),
	Definition: "#Expectations",
}

// ExpectSettings are the settings an expectation requires of recordings.
type ExpectSettings struct {
	// want holds the wanted values by setting name: a string, an int or
	// a bool, as the setting's kind says.
	want map[string]any
}

// expectFirst are the settings an expectation checks (and its schema
// lists) first; the others follow in the order of table.SettingList.
var expectFirst = []string{"format", "method", "url"}

// expectTypes are the types of the settings an expectation may name that
// are narrower than their kind: the enums of the policy schema
// (TestExpectTypesAreThePolicys).
var expectTypes = map[string]string{
	"format":      `"mp3" | "wav"`,
	"method":      `"put" | "post"`,
	"announce_to": `"both" | "aleg" | "bleg"`,
}

// expectSettings are the settings in the order an expectation checks them.
var expectSettings = func() []*table.Setting {
	var out []*table.Setting
	for _, name := range expectFirst {
		st, ok := table.SettingNamed(name)
		if !ok {
			panic("simulate: " + name + " is no setting of the table")
		}
		out = append(out, st)
	}
	for _, st := range table.SettingList {
		if !slices.Contains(expectFirst, st.Name) {
			out = append(out, st)
		}
	}
	for name := range expectTypes {
		if _, ok := table.SettingNamed(name); !ok {
			panic("simulate: " + name + " is no setting of the table")
		}
	}
	return out
}()

// expectSettingsSchema returns the #Settings of the expectations' schema:
// every setting, optional, of its type.
func expectSettingsSchema() string {
	var b strings.Builder
	b.WriteString("\n// Settings a recording must have (only those given are checked);\n")
	b.WriteString("// announce \"\" asserts that the recording is not announced.\n#Settings: {\n")
	for _, st := range expectSettings {
		typ, ok := expectTypes[st.Name]
		if !ok {
			typ = st.Kind.String()
		}
		fmt.Fprintf(&b, "\t%s?: %s\n", st.Name, typ)
	}
	b.WriteString("}\n")
	return b.String()
}

// UnmarshalJSON decodes the settings object of an expectation.
func (s *ExpectSettings) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	s.want = make(map[string]any, len(m))
	for k, raw := range m {
		st, ok := table.SettingNamed(k)
		if !ok {
			return fmt.Errorf("json: unknown field %q", k)
		}
		if string(raw) == "null" {
			continue
		}
		var v any
		var err error
		switch st.Kind {
		case table.IntSetting:
			var x int
			err = json.Unmarshal(raw, &x)
			v = x
		case table.BoolSetting:
			var x bool
			err = json.Unmarshal(raw, &x)
			v = x
		default:
			var x string
			err = json.Unmarshal(raw, &x)
			v = x
		}
		if err != nil {
			return fmt.Errorf("settings: %s: %w", k, err)
		}
		s.want[k] = v
	}
	return nil
}

// MarshalJSON writes the wanted settings as an object.
func (s *ExpectSettings) MarshalJSON() ([]byte, error) { return json.Marshal(s.want) }

// Expectation is one assertion about the calls of a simulation, the calls
// to a callflow number or a DTMF code, read from an expectations file.
type Expectation struct {
	Name string `json:"-"`
	// Pos is where the expectation is in its file.
	Pos              ExpectPos       `json:"-"`
	Account          string          `json:"account"`
	From             string          `json:"from,omitempty"`
	To               string          `json:"to,omitempty"`
	Number           string          `json:"number,omitempty"`
	DTMF             string          `json:"dtmf,omitempty"`
	Endpoint         string          `json:"endpoint,omitempty"`
	AccountRecording *bool           `json:"account_recording,omitempty"`
	AccountOrigin    *string         `json:"account_origin,omitempty"`
	CallerRecording  *bool           `json:"caller_recording,omitempty"`
	CalleeRecording  *bool           `json:"callee_recording,omitempty"`
	Recordings       *int            `json:"recordings,omitempty"`
	Settings         *ExpectSettings `json:"settings,omitempty"`
	Callflow         *string         `json:"callflow,omitempty"`
	CallflowRecs     *int            `json:"callflow_recordings,omitempty"`
	Label            *string         `json:"label,omitempty"`
	Action           *string         `json:"action,omitempty"`
	BindingFrom      *string         `json:"binding_from,omitempty"`
	Listen           *string         `json:"listen,omitempty"`
	EveryRecording   *bool           `json:"every_recording,omitempty"`
	StartsRecording  *bool           `json:"starts_recording,omitempty"`
}

// ExpectPos is a place in an expectations file; Line and Column start
// at 1, a zero Line is unknown.
type ExpectPos struct {
	File   string `json:"file"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

func (p ExpectPos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

func posOf(name string, p token.Pos) ExpectPos {
	if !p.IsValid() {
		return ExpectPos{File: name}
	}
	file := p.Filename()
	if file == "" {
		file = name
	}
	return ExpectPos{File: file, Line: p.Line(), Column: p.Column()}
}

// ExpectErrors are the errors of an expectations file: diagnostics, one
// a line as "file:line:col: path: message", as `recpol vet` prints.
type ExpectErrors = input.Diagnostics

// kind says what an expectation is about: "call", "number" or "dtmf".
func (e *Expectation) kind() string {
	switch {
	case e.Number != "":
		return "number"
	case e.DTMF != "":
		return "dtmf"
	}
	return "call"
}

// asserts reports whether an expectation says anything that must hold.
func (e *Expectation) asserts() bool {
	for _, set := range []bool{
		e.AccountRecording != nil, e.AccountOrigin != nil, e.CallerRecording != nil, e.CalleeRecording != nil,
		e.Recordings != nil, e.Settings != nil, e.Callflow != nil, e.CallflowRecs != nil, e.Label != nil,
		e.Action != nil, e.BindingFrom != nil, e.Listen != nil, e.EveryRecording != nil, e.StartsRecording != nil,
	} {
		if set {
			return true
		}
	}
	return false
}

// validate checks that an expectation names one thing to select and only
// asserts what applies to it.
func (e *Expectation) validate() error {
	set := 0
	for _, s := range []string{e.To, e.Number, e.DTMF} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("give exactly one of to (with from: calls), number (calls to a callflow number) or dtmf (a DTMF code)")
	}
	k := e.kind()
	type field struct {
		name  string
		set   bool
		kinds string
	}
	fields := []field{
		{"from", e.From != "", "call number"},
		{"endpoint", e.Endpoint != "", "dtmf"},
		{"account_recording", e.AccountRecording != nil, "call number"},
		{"account_origin", e.AccountOrigin != nil, "call number"},
		{"caller_recording", e.CallerRecording != nil, "call number"},
		{"callee_recording", e.CalleeRecording != nil, "call"},
		{"recordings", e.Recordings != nil, "call number"},
		{"callflow", e.Callflow != nil, "number"},
		{"callflow_recordings", e.CallflowRecs != nil, "number"},
		{"label", e.Label != nil, "number"},
		{"action", e.Action != nil, "dtmf"},
		{"binding_from", e.BindingFrom != nil, "dtmf"},
		{"listen", e.Listen != nil, "dtmf"},
		{"every_recording", e.EveryRecording != nil, "dtmf"},
		{"starts_recording", e.StartsRecording != nil, "dtmf"},
	}
	words := map[string]string{"call": "calls (from/to)", "number": "calls to a number", "dtmf": "DTMF codes"}
	for _, f := range fields {
		if f.set && !strings.Contains(f.kinds, k) {
			var about []string
			for _, x := range strings.Fields(f.kinds) {
				about = append(about, words[x])
			}
			return fmt.Errorf("%s is about %s, not %s", f.name, strings.Join(about, " and "), words[k])
		}
	}
	if k == "call" && e.From == "" {
		return fmt.Errorf("a call expectation needs from and to")
	}
	if !e.asserts() {
		return fmt.Errorf("asserts nothing: it selects %s but says nothing that must hold of them (give e.g. %s)",
			words[k], map[string]string{"call": "recordings or account_recording", "number": "callflow or callflow_recordings", "dtmf": "action"}[k])
	}
	if k == "number" && e.From == "" {
		e.From = "*"
	}
	if k == "dtmf" && e.Endpoint == "" {
		e.Endpoint = "device:*"
	}
	for _, p := range []string{e.Account, e.From, e.To, e.Endpoint} {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("pattern %q: %w", p, err)
		}
	}
	return nil
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
	in, err := expectLoader.Load(name, data)
	if err != nil {
		return nil, err
	}
	var errs ExpectErrors
	fields, err := in.Value.LookupPath(cue.ParsePath("expect")).Fields()
	if err != nil {
		return nil, in.Errors(input.CodeSchema, err)
	}
	var out []Expectation
	for fields.Next() {
		// The file's own value knows where the expectation is; the
		// unified one may point into the schema.
		at := in.Raw.LookupPath(cue.MakePath(cue.Str("expect"), fields.Selector())).Pos()
		e := Expectation{Name: fields.Selector().Unquoted(), Pos: posOf(name, at)}
		fail := func(msg string) {
			path := "expect." + fields.Selector().String()
			errs = append(errs, input.Diagnostic{Code: input.CodeInvalid, Severity: input.Error,
				Position: input.Position(e.Pos), Path: path, Message: path + ": " + msg})
		}
		b, err := fields.Value().MarshalJSON()
		if err != nil {
			return nil, in.Errors(input.CodeSchema, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			fail(err.Error())
			continue
		}
		if err := e.validate(); err != nil {
			fail(err.Error())
			continue
		}
		out = append(out, e)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if len(out) == 0 {
		return nil, ExpectErrors{{Code: input.CodeInvalid, Severity: input.Error, Position: input.Position{File: name},
			Message: "no expectations (want expect: \"name\": {...})"}}
	}
	return out, nil
}

// ExpectResult is the outcome of one expectation.
type ExpectResult struct {
	Name string `json:"name"`
	// ExpectPos is where the expectation is in its file ("file",
	// "line", "column" in JSON).
	ExpectPos
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
// selects nothing fails, so that a misspelt id does not pass silently.
func (r *Result) Check(file string, exps []Expectation) *ExpectReport {
	rep := &ExpectReport{FormatVersion: FormatVersion, PolicyVersion: r.PolicyVersion, File: file, OK: true}
	for _, e := range exps {
		res := ExpectResult{Name: e.Name, ExpectPos: e.Pos}
		var failures []string
		unit, sel := "calls", fmt.Sprintf("selects no call (account %q, from %q, to %q)", e.Account, e.From, e.To)
		switch e.kind() {
		case "number":
			res.Calls, failures = r.checkNumber(&e)
			sel = fmt.Sprintf("selects no call (account %q, from %q, number %q)", e.Account, e.From, e.Number)
		case "dtmf":
			res.Calls, failures = r.checkDTMF(&e)
			unit, sel = "devices", fmt.Sprintf("selects no device (account %q, endpoint %q)", e.Account, e.Endpoint)
		default:
			res.Calls, failures = r.checkCalls(&e)
		}
		switch {
		case res.Calls == 0:
			res.Detail = sel
		case len(failures) > 0:
			res.Detail = fmt.Sprintf("%d of %d %s fail: ", len(failures), res.Calls, unit)
			if len(failures) > maxListed {
				failures = append(failures[:maxListed], "...")
			}
			res.Detail += strings.Join(failures, "; ")
		default:
			res.OK = true
			res.Detail = fmt.Sprintf("holds for %d %s", res.Calls, unit)
		}
		rep.OK = rep.OK && res.OK
		rep.Expectations = append(rep.Expectations, res)
	}
	return rep
}

// accounts returns the simulated accounts an expectation selects.
func (r *Result) accounts(e *Expectation) []*Account {
	var out []*Account
	for i := range r.Accounts {
		if ok, _ := path.Match(e.Account, r.Accounts[i].ID); ok {
			out = append(out, &r.Accounts[i])
		}
	}
	return out
}

func (r *Result) checkCalls(e *Expectation) (int, []string) {
	n := 0
	var failures []string
	for _, a := range r.accounts(e) {
		for _, c := range a.Calls {
			if ok, _ := path.Match(e.From, c.From.String()); !ok {
				continue
			}
			if ok, _ := path.Match(e.To, c.To.String()); !ok {
				continue
			}
			n++
			recs := make([]JSONRecording, 0, len(c.Recordings))
			for _, rec := range c.Recordings {
				recs = append(recs, recordingJSON(rec))
			}
			if why := e.violation(recs); why != "" {
				failures = append(failures, fmt.Sprintf("account %s, %s -> %s records %s: %s",
					a.ID, c.From, c.To, truthCode(c.Recordings), why))
			}
		}
	}
	return n, failures
}

func (r *Result) checkNumber(e *Expectation) (int, []string) {
	n := 0
	var failures []string
	for _, a := range r.accounts(e) {
		cf, _ := a.Account.MatchCallflow(e.Number)
		for _, from := range callersOf(a.Account, false) {
			if ok, _ := path.Match(e.From, from.String()); !ok {
				continue
			}
			n++
			nc := numberCallOf(a.Account, from, dialledNumber{Number: e.Number}, cf)
			var why []string
			if v := e.violation(nc.Recordings); v != "" {
				why = append(why, v)
			}
			var flows []JSONRecording
			for _, rec := range nc.Recordings {
				if rec.Scope == scopeCallflow {
					flows = append(flows, rec)
				}
			}
			if e.Callflow != nil && *e.Callflow != nc.Callflow {
				why = append(why, fmt.Sprintf("callflow is %q, want %q", nc.Callflow, *e.Callflow))
			}
			if e.CallflowRecs != nil && *e.CallflowRecs != len(flows) {
				why = append(why, fmt.Sprintf("callflow_recordings is %d, want %d", len(flows), *e.CallflowRecs))
			}
			if e.Label != nil {
				if len(flows) == 0 {
					why = append(why, "label: the callflow records nothing")
				}
				for _, f := range flows {
					if got := strings.TrimPrefix(f.Origin, "callflow : "); got != *e.Label {
						why = append(why, fmt.Sprintf("label is %q, want %q", got, *e.Label))
					}
				}
			}
			if e.Settings != nil {
				why = append(why, settingsViolations(e.Settings, flows)...)
			}
			if len(why) > 0 {
				failures = append(failures, fmt.Sprintf("account %s, %s -> %s (callflow %s): %s",
					a.ID, from, e.Number, orNoCallflow(nc.Callflow), strings.Join(why, ", ")))
			}
		}
	}
	return n, failures
}

func (r *Result) checkDTMF(e *Expectation) (int, []string) {
	n := 0
	var failures []string
	for _, a := range r.accounts(e) {
		for _, id := range a.Account.DeviceIDs() {
			if ok, _ := path.Match(e.Endpoint, "device:"+id); !ok {
				continue
			}
			n++
			mf := a.Account.Devices[id].Metaflows
			b, ok := matchKeys(mf, e.DTMF)
			var why []string
			action, from, listen := "none", "", ""
			if ok {
				action, from, listen = string(b.Action.Action), b.From, string(listenOn(mf, b))
			}
			if e.Action != nil && *e.Action != action {
				why = append(why, fmt.Sprintf("action is %s, want %s", action, *e.Action))
			}
			if e.BindingFrom != nil {
				if ok, _ := path.Match(*e.BindingFrom, from); !ok {
					why = append(why, fmt.Sprintf("binding_from is %q, want %q", from, *e.BindingFrom))
				}
			}
			if e.Listen != nil && *e.Listen != listen {
				why = append(why, fmt.Sprintf("listen is %q, want %q", listen, *e.Listen))
			}
			if e.Settings != nil {
				if !ok || !usesSettings(&b.Action) {
					why = append(why, "settings: the code starts no recording")
				} else {
					why = append(why, settingsViolations(e.Settings, []JSONRecording{actionRecording(scopeMetaflow, "", table.LegA, "", &b.Action)})...)
				}
			}
			if e.EveryRecording != nil || e.StartsRecording != nil {
				why = append(why, a.dtmfCallViolations(e, id)...)
			}
			if len(why) > 0 {
				failures = append(failures, fmt.Sprintf("account %s, device:%s %s: %s", a.ID, id, e.DTMF, strings.Join(why, ", ")))
			}
		}
	}
	return n, failures
}

// dtmfCallViolations presses an expectation's keys in every call of the
// account that the device takes part in (as the caller or ringing) and
// says where every_recording or starts_recording does not hold (the first
// call that breaks each).
func (a *Account) dtmfCallViolations(e *Expectation, device string) []string {
	var why []string
	var everyBroken, startsBroken bool
	for _, c := range a.Calls {
		call := table.Call{From: c.From, To: c.To}
		takesPart := c.From == table.DeviceRef(device)
		for _, id := range a.Account.Ringing(call) {
			takesPart = takesPart || id == device
		}
		if !takesPart {
			continue
		}
		o, err := pressDTMF(a.Account, call, device, e.DTMF)
		if err != nil {
			return append(why, err.Error())
		}
		total := len(o.Affected) + len(o.Untouched)
		if e.EveryRecording != nil && !everyBroken && total > 0 && (len(o.Affected) == total) != *e.EveryRecording {
			everyBroken = true
			why = append(why, fmt.Sprintf("in %s -> %s it acts on %d of %d recordings (every_recording want %t)",
				c.From, c.To, len(o.Affected), total, *e.EveryRecording))
		}
		if e.StartsRecording != nil && !startsBroken && (o.Started != nil) != *e.StartsRecording {
			startsBroken = true
			why = append(why, fmt.Sprintf("in %s -> %s starts_recording is %t, want %t", c.From, c.To, o.Started != nil, *e.StartsRecording))
		}
	}
	return why
}

// settingsViolations says which recordings lack the wanted settings; no
// recording at all is a violation too.
func settingsViolations(want *ExpectSettings, recs []JSONRecording) []string {
	if len(recs) == 0 {
		return []string{"settings: nothing is recorded"}
	}
	var why []string
	for _, r := range recs {
		s := r.Settings.table()
		var bad []string
		for _, st := range expectSettings {
			w, ok := want.want[st.Name]
			if !ok {
				continue
			}
			if got := st.Value(s); got != w {
				switch st.Kind {
				case table.IntSetting:
					bad = append(bad, fmt.Sprintf("%s %d, want %d", st.Name, got, w))
				case table.BoolSetting:
					bad = append(bad, fmt.Sprintf("%s %t, want %t", st.Name, got, w))
				default:
					bad = append(bad, fmt.Sprintf("%s %q, want %q", st.Name, got, w))
				}
			}
		}
		if len(bad) > 0 {
			who := r.Scope
			if r.Endpoint != "" {
				who += " " + r.Endpoint
			}
			why = append(why, who+" recording has "+strings.Join(bad, ", "))
		}
	}
	return why
}

// violation says why the recordings of a call (or a call to a number)
// break an expectation, or "".
func (e *Expectation) violation(recs []JSONRecording) string {
	has := func(s string) bool {
		return slices.ContainsFunc(recs, func(r JSONRecording) bool { return r.Scope == s })
	}
	var why []string
	want := func(name string, want *bool, got bool) {
		if want != nil && *want != got {
			why = append(why, fmt.Sprintf("%s is %t, want %t", name, got, *want))
		}
	}
	want("account_recording", e.AccountRecording, has("account"))
	want("caller_recording", e.CallerRecording, has("caller"))
	want("callee_recording", e.CalleeRecording, has("callee"))
	if e.AccountOrigin != nil {
		origin := ""
		for _, r := range recs {
			if r.Scope == "account" {
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
	if e.Settings != nil && e.kind() == "call" {
		why = append(why, settingsViolations(e.Settings, recs)...)
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
		fmt.Fprintf(bw, "  %s %s: %s: %s\n", v, e.ExpectPos, e.Name, e.Detail)
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
		fmt.Fprintf(bw, "- [%s] **%s** (`%s`): %s\n", x, e.Name, e.ExpectPos, e.Detail)
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
		c := junitCase{Name: e.Name, Classname: "expect:" + rep.File, File: e.File, Line: e.Line}
		if e.OK {
			c.SystemOut = &junitText{e.Detail + "\n"}
		} else {
			c.Failure = &junitFailure{Message: "expectation does not hold", Text: e.ExpectPos.String() + ": " + e.Detail}
			s.Fails++
		}
		s.Cases = append(s.Cases, c)
	}
	return writeJUnit(w, junitSuites{Name: "recpol simulate --expect " + rep.File,
		Tests: s.Tests, Fails: s.Fails, Suites: []junitSuite{s}})
}
