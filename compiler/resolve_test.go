package compiler_test

import (
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/table"
)

// compileSource compiles one in-memory policy file and fails the test on
// any error.
func compileSource(t *testing.T, src string) *table.Table {
	t.Helper()
	res := compiler.Options{}.CompileFiles([]compiler.File{{Name: "policy.cue", Data: []byte("package recpol\n\n" + src)}})
	if res.Table == nil {
		t.Fatalf("policy does not compile:\n%v", res.Diagnostics)
	}
	return res.Table
}

// cellRef names one cell of a table.
type cellRef struct {
	account  string
	endpoint string // "" for the account cell, else "device:x" or "user:x"
	dir      table.Direction
	net      table.Network
}

func (r cellRef) get(t *testing.T, tb *table.Table) *table.Cell {
	t.Helper()
	if r.endpoint == "" {
		c, ok := tb.LookupAccount(r.account, r.dir, r.net)
		if !ok {
			t.Fatalf("no account %s", r.account)
		}
		return c
	}
	p, err := table.ParseParty(r.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	kind := table.User
	if p.Kind == table.DeviceParty {
		kind = table.Device
	}
	c, ok := tb.Lookup(r.account, kind, p.ID, r.dir, r.net)
	if !ok {
		t.Fatalf("no cell %+v", r)
	}
	return c
}

// TestPrecedence covers every precedence rule of SPEC 2.2: within a scope
// d.n > any.n > d.any > any.any; device > owner user > account endpoint >
// defaults > builtin; the account cell account > defaults > builtin; unset
// enabled is not recorded. Each case asserts the resolved value and where
// it came from.
func TestPrecedence(t *testing.T) {
	in, out := table.Inbound, table.Outbound
	on, off := table.Onnet, table.Offnet
	tests := []struct {
		name       string
		policy     string
		cell       cellRef
		wantRecord bool
		wantProv   string // provenance of enabled
		check      func(t *testing.T, c *table.Cell)
	}{
		{
			name:       "d.n beats any.n, d.any and any.any",
			policy:     `accounts: a: devices: d: call_recording: {inbound: offnet: enabled: true, any: offnet: enabled: false, inbound: any: enabled: false, any: any: enabled: false}`,
			cell:       cellRef{"a", "device:d", in, off},
			wantRecord: true, wantProv: "device:d call_recording.inbound.offnet.enabled",
		},
		{
			name:       "any.n beats d.any",
			policy:     `accounts: a: devices: d: call_recording: {any: offnet: enabled: true, inbound: any: enabled: false}`,
			cell:       cellRef{"a", "device:d", in, off},
			wantRecord: true, wantProv: "device:d call_recording.any.offnet.enabled",
		},
		{
			name:       "d.any beats any.any",
			policy:     `accounts: a: devices: d: call_recording: {inbound: any: enabled: false, any: any: enabled: true}`,
			cell:       cellRef{"a", "device:d", in, off},
			wantRecord: false, wantProv: "device:d call_recording.inbound.any.enabled",
		},
		{
			name:       "any.any applies to every cell",
			policy:     `accounts: a: devices: d: call_recording: any: any: enabled: true`,
			cell:       cellRef{"a", "device:d", out, on},
			wantRecord: true, wantProv: "device:d call_recording.any.any.enabled",
		},
		{
			name: "device any.any beats owner's d.n (scope-major)",
			policy: `accounts: a: {
				users: u: call_recording: inbound: offnet: enabled: true
				devices: d: {owner: "u", call_recording: any: any: enabled: false}
			}`,
			cell:       cellRef{"a", "device:d", in, off},
			wantRecord: false, wantProv: "device:d call_recording.any.any.enabled",
		},
		{
			name: "undefined device uses its owner",
			policy: `accounts: a: {
				users: u: call_recording: inbound: offnet: enabled: true
				devices: d: owner: "u"
			}`,
			cell:       cellRef{"a", "device:d", in, off},
			wantRecord: true, wantProv: "user:u call_recording.inbound.offnet.enabled",
		},
		{
			name: "owner beats account endpoint",
			policy: `accounts: a: {
				call_recording: endpoint: any: any: enabled: true
				users: u: call_recording: any: any: enabled: false
				devices: d: owner: "u"
			}`,
			cell:       cellRef{"a", "device:d", out, off},
			wantRecord: false, wantProv: "user:u call_recording.any.any.enabled",
		},
		{
			name: "device without owner uses account endpoint",
			policy: `accounts: a: {
				call_recording: endpoint: outbound: any: enabled: true
				devices: d: {}
			}`,
			cell:       cellRef{"a", "device:d", out, on},
			wantRecord: true, wantProv: "account:a call_recording.endpoint.outbound.any.enabled",
		},
		{
			name: "user uses account endpoint",
			policy: `accounts: a: {
				call_recording: endpoint: inbound: onnet: enabled: true
				users: u: {}
			}`,
			cell:       cellRef{"a", "user:u", in, on},
			wantRecord: true, wantProv: "account:a call_recording.endpoint.inbound.onnet.enabled",
		},
		{
			name: "account endpoint beats defaults",
			policy: `defaults: enabled: true
			accounts: a: {
				call_recording: endpoint: any: any: enabled: false
				devices: d: {}
			}`,
			cell:       cellRef{"a", "device:d", in, on},
			wantRecord: false, wantProv: "account:a call_recording.endpoint.any.any.enabled",
		},
		{
			name:       "defaults beat builtin",
			policy:     `defaults: enabled: true, accounts: a: devices: d: {}`,
			cell:       cellRef{"a", "device:d", in, on},
			wantRecord: true, wantProv: "defaults enabled",
		},
		{
			name:       "unset enabled is not recorded",
			policy:     `accounts: a: devices: d: call_recording: any: any: format: "wav"`,
			cell:       cellRef{"a", "device:d", in, on},
			wantRecord: false, wantProv: "builtin enabled",
		},
		{
			name: "account cell ignores the endpoint object",
			policy: `accounts: a: call_recording: {
				endpoint: any: any: enabled: true
			}`,
			cell:       cellRef{"a", "", in, off},
			wantRecord: false, wantProv: "builtin enabled",
		},
		{
			name:       "account cell from call_recording.account",
			policy:     `accounts: a: call_recording: account: inbound: offnet: enabled: true`,
			cell:       cellRef{"a", "", in, off},
			wantRecord: true, wantProv: "account:a call_recording.account.inbound.offnet.enabled",
		},
		{
			name:       "account cell uses defaults",
			policy:     `defaults: enabled: true, accounts: a: {}`,
			cell:       cellRef{"a", "", out, on},
			wantRecord: true, wantProv: "defaults enabled",
		},
		{
			name: "fields resolve independently",
			policy: `defaults: time_limit: 600
			accounts: a: {
				call_recording: endpoint: any: any: {format: "wav", record_min_sec: 3}
				users: u: call_recording: inbound: any: {enabled: true, record_sample_rate: 16000}
				devices: d: {owner: "u", call_recording: inbound: offnet: {format: "mp3", url: "https://rec.example.com/x"}}
			}`,
			cell:       cellRef{"a", "device:d", in, off},
			wantRecord: true, wantProv: "user:u call_recording.inbound.any.enabled",
			check: func(t *testing.T, c *table.Cell) {
				wantS := table.Settings{Format: "mp3", TimeLimit: 600, RecordMinSec: 3, RecordSampleRate: 16000,
					Method: "put", URL: "https://rec.example.com/x", AnnounceTo: "both"}
				if diff := cmp.Diff(wantS, *c.Settings); diff != "" {
					t.Errorf("settings (-want +got):\n%s", diff)
				}
				wantP := table.Provenance{
					Enabled:          "user:u call_recording.inbound.any.enabled",
					Format:           "device:d call_recording.inbound.offnet.format",
					TimeLimit:        "defaults time_limit",
					RecordMinSec:     "account:a call_recording.endpoint.any.any.record_min_sec",
					RecordSampleRate: "user:u call_recording.inbound.any.record_sample_rate",
					RecordOnAnswer:   "builtin record_on_answer",
					RecordOnBridge:   "builtin record_on_bridge",
					Method:           "builtin method",
					URL:              "device:d call_recording.inbound.offnet.url",
					Stereo:           "builtin stereo",
					AnnounceTo:       "builtin announce_to",
				}
				if diff := cmp.Diff(wantP, *c.Provenance); diff != "" {
					t.Errorf("provenance (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:       "builtin settings",
			policy:     `accounts: a: devices: d: {}`,
			cell:       cellRef{"a", "device:d", out, off},
			wantRecord: false, wantProv: "builtin enabled",
			check: func(t *testing.T, c *table.Cell) {
				want := table.Settings{Format: "mp3", TimeLimit: 10800, RecordMinSec: 0, RecordSampleRate: 8000, Method: "put", AnnounceTo: "both"}
				if diff := cmp.Diff(want, *c.Settings); diff != "" {
					t.Errorf("settings (-want +got):\n%s", diff)
				}
				if c.Provenance.URL != "" {
					t.Errorf("unset url has provenance %q", c.Provenance.URL)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := compileSource(t, tc.policy)
			c := tc.cell.get(t, tb)
			if c.Record != tc.wantRecord {
				t.Errorf("record = %v, want %v", c.Record, tc.wantRecord)
			}
			if c.Provenance.Enabled != tc.wantProv {
				t.Errorf("provenance of enabled = %q, want %q", c.Provenance.Enabled, tc.wantProv)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

// TestEveryCellPresent checks that every account has its 4 cells and every
// user and device its 8, even when the policy sets nothing.
func TestEveryCellPresent(t *testing.T) {
	tb := compileSource(t, `accounts: {
		a: {users: {u1: {}, u2: {}}, devices: {d1: owner: "u1", d2: {}}}
		b: {}
	}`)
	if diff := cmp.Diff([]string{"a", "b"}, tb.AccountIDs()); diff != "" {
		t.Fatalf("accounts (-want +got):\n%s", diff)
	}
	for _, id := range tb.AccountIDs() {
		a, _ := tb.Account(id)
		cells := []*table.Cells{&a.Cells}
		for _, e := range a.Users {
			cells = append(cells, &e.Cells)
		}
		for _, e := range a.Devices {
			cells = append(cells, &e.Cells)
		}
		for _, cs := range cells {
			for _, d := range table.Directions {
				for _, n := range table.Networks {
					if c := cs.Get(d, n); c.Settings == nil || c.Provenance == nil || c.Provenance.Enabled == "" {
						t.Errorf("account %s: incomplete cell %s.%s", id, d, n)
					}
				}
			}
		}
	}
}

// TestActions checks the resolved callflow and metaflow actions: action
// data > defaults > builtin, with the action time limit of 3600 s, and
// metaflows resolved device > owner > account.
func TestActions(t *testing.T) {
	tb := compileSource(t, `defaults: format: "wav"
	accounts: a: {
		metaflows: {binding_digit: "#", numbers: {
			"1": {module: "record_call", data: action: "mask"}
			"2": {module: "record_call", data: action: "unmask"}
		}}
		users: u: metaflows: {digit_timeout: 5000, numbers: "1": {module: "record_call", data: action: "pause"}}
		devices: d: {owner: "u", metaflows: {listen_on: "both", patterns: "^9(\\d)$": {module: "record_call", data: action: "toggle"}}}
		devices: lone: {}
		callflows: cf: {
			numbers: ["100"]
			patterns: ["^2\\d\\d$"]
			actions: [
				{module: "record_call", data: {label: "Sales queue", record_sample_rate: 16000}},
				{module: "record_caller", data: {time_limit: 300}},
			]
		}
	}`)
	a, _ := tb.Account("a")
	cf, ok := a.MatchCallflow("250")
	if !ok || cf.ID != "cf" {
		t.Fatalf("pattern match: %v %v", cf, ok)
	}
	if _, ok := a.MatchCallflow("2500"); ok {
		t.Errorf("anchored pattern matched 2500")
	}
	got := cf.Actions
	want := []table.Action{
		{Module: "record_call", Action: "start", Label: "Sales queue", FollowTransfer: true,
			Settings: &table.Settings{Format: "wav", TimeLimit: 3600, RecordSampleRate: 16000, Method: "put", AnnounceTo: "both"},
			Provenance: &table.Provenance{Format: "defaults format", TimeLimit: "builtin action.time_limit",
				RecordMinSec: "builtin record_min_sec", RecordSampleRate: "account:a callflows.cf.actions.0.data.record_sample_rate",
				RecordOnAnswer: "builtin record_on_answer", RecordOnBridge: "builtin record_on_bridge", Method: "builtin method",
				Stereo: "builtin stereo", AnnounceTo: "builtin announce_to"}},
		{Module: "record_caller", Action: "start", FollowTransfer: true,
			Settings: &table.Settings{Format: "wav", TimeLimit: 300, RecordSampleRate: 8000, Method: "put", AnnounceTo: "both"},
			Provenance: &table.Provenance{Format: "defaults format", TimeLimit: "account:a callflows.cf.actions.1.data.time_limit",
				RecordMinSec: "builtin record_min_sec", RecordSampleRate: "builtin record_sample_rate",
				RecordOnAnswer: "builtin record_on_answer", RecordOnBridge: "builtin record_on_bridge", Method: "builtin method",
				Stereo: "builtin stereo", AnnounceTo: "builtin announce_to"}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(table.Action{})); diff != "" {
		t.Errorf("callflow actions (-want +got):\n%s", diff)
	}

	d := a.Devices["d"].Metaflows
	if d == nil {
		t.Fatal("device d has no metaflows")
	}
	type binding struct{ Code, Action, From string }
	var bs []binding
	for _, b := range append(append([]table.MetaflowBinding(nil), d.Numbers...), d.Patterns...) {
		bs = append(bs, binding{b.Code, string(b.Action.Action), b.From})
	}
	wantBs := []binding{{"1", "pause", "user:u"}, {"2", "unmask", "account:a"}, {`^9(\d)$`, "toggle", "device:d"}}
	if diff := cmp.Diff(wantBs, bs); diff != "" {
		t.Errorf("metaflow bindings (-want +got):\n%s", diff)
	}
	if d.BindingDigit != "#" || d.DigitTimeout != 5000 || d.ListenOn != "both" {
		t.Errorf("metaflow fields = %q %d %q, want # 5000 both", d.BindingDigit, d.DigitTimeout, d.ListenOn)
	}
	if m, ok := d.Match("95"); !ok || m.Action.Action != "toggle" {
		t.Errorf("Match(95) = %v, %v", m, ok)
	}
	if lone := a.Devices["lone"].Metaflows; lone == nil || lone.BindingDigit != "#" || lone.DigitTimeout != 3000 || lone.ListenOn != "self" {
		t.Errorf("device without owner: metaflows %+v, want the account's with built-in defaults", lone)
	}
}

// TestMetaflowsShared checks which endpoints share one resolved metaflows
// value: those whose chains define the same metaflows (the account's, or
// an owner's and the account's), never two that define different ones.
func TestMetaflowsShared(t *testing.T) {
	tb := compileSource(t, `
accounts: acme: {
	metaflows: numbers: "71": {module: "record_call", data: action: "start"}
	users: {
		bob: {}
		carol: metaflows: numbers: "72": {module: "record_call", data: action: "stop"}
	}
	devices: {
		d1: {}
		d2: owner: "bob"
		d3: owner: "carol"
		d4: {owner: "carol", metaflows: numbers: "73": {module: "record_call", data: action: "mask"}}
	}
}
accounts: other: {
	metaflows: numbers: "71": {module: "record_call", data: action: "start"}
	users: bob: {}
}`)
	a, _ := tb.Account("acme")
	o, _ := tb.Account("other")
	ep := map[string]*table.Metaflows{
		"acme user:bob": a.Users["bob"].Metaflows, "acme user:carol": a.Users["carol"].Metaflows,
		"acme device:d1": a.Devices["d1"].Metaflows, "acme device:d2": a.Devices["d2"].Metaflows,
		"acme device:d3": a.Devices["d3"].Metaflows, "acme device:d4": a.Devices["d4"].Metaflows,
		"other user:bob": o.Users["bob"].Metaflows,
	}
	// Endpoints grouped by the value they point to, in name order.
	var got [][]string
	seen := map[*table.Metaflows]int{}
	for _, name := range []string{"acme device:d1", "acme device:d2", "acme device:d3", "acme device:d4",
		"acme user:bob", "acme user:carol", "other user:bob"} {
		m := ep[name]
		if m == nil {
			t.Fatalf("%s: no metaflows", name)
		}
		i, ok := seen[m]
		if !ok {
			i = len(got)
			seen[m] = i
			got = append(got, nil)
		}
		got[i] = append(got[i], name)
	}
	want := [][]string{
		{"acme device:d1", "acme device:d2", "acme user:bob"},
		{"acme device:d3", "acme user:carol"},
		{"acme device:d4"},
		{"other user:bob"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("endpoints sharing metaflows (-want +got):\n%s", diff)
	}
	if n := len(a.Devices["d4"].Metaflows.Numbers); n != 3 {
		t.Errorf("d4 has %d metaflow numbers, want its own, its owner's and the account's", n)
	}
}

// TestSettingsSharedAcrossAccounts checks that accounts of different
// files, which the plain-data path compiles as separate groups, share
// their equal settings values and provenance strings when one worker
// resolves them, and keep their own provenance when it differs.
func TestSettingsSharedAcrossAccounts(t *testing.T) {
	file := func(id string) compiler.File {
		return compiler.File{Name: id + ".cue", Data: []byte(`package recpol
accounts: "` + id + `": devices: d1: call_recording: inbound: any: {enabled: true, format: "wav"}
accounts: "` + id + `": call_recording: account: any: any: format: "mp3"
`)}
	}
	res := compiler.Options{Parallel: 1}.CompileFiles([]compiler.File{file("a"), file("b"),
		{Name: "shared.cue", Data: []byte("package recpol\ndefaults: record_sample_rate: 16000\n")}})
	if res.Table == nil {
		t.Fatal(res.Diagnostics)
	}
	a, _ := res.Table.Account("a")
	b, _ := res.Table.Account("b")
	for _, tc := range []struct {
		name       string
		ca, cb     *table.Cell
		provShared bool
	}{
		{"device cells", a.Devices["d1"].Cells.Get(table.Inbound, table.Offnet), b.Devices["d1"].Cells.Get(table.Inbound, table.Offnet), true},
		{"account cells", a.Cells.Get(table.Outbound, table.Onnet), b.Cells.Get(table.Outbound, table.Onnet), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(*tc.ca.Settings, *tc.cb.Settings); diff != "" {
				t.Fatalf("settings differ (-a +b):\n%s", diff)
			}
			if tc.ca.Settings != tc.cb.Settings {
				t.Errorf("equal settings of two accounts are two values")
			}
			if got := tc.ca.Provenance.Format == tc.cb.Provenance.Format &&
				unsafe.StringData(tc.ca.Provenance.Format) == unsafe.StringData(tc.cb.Provenance.Format); got != tc.provShared {
				t.Errorf("format provenance %q and %q shared: %v, want %v",
					tc.ca.Provenance.Format, tc.cb.Provenance.Format, got, tc.provShared)
			}
		})
	}
}
