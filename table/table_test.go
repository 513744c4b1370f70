package table_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/table"
)

func compile(t testing.TB, src string) *table.Table {
	t.Helper()
	res := compiler.Options{}.CompileFiles([]compiler.File{{Name: "p.cue", Data: []byte("package recpol\n" + src)}})
	if res.Table == nil {
		t.Fatalf("policy does not compile:\n%v", res.Diagnostics)
	}
	return res.Table
}

func example(t testing.TB) *table.Table {
	t.Helper()
	res, err := compiler.Options{}.Compile("../testdata/policies/example")
	if err != nil {
		t.Fatal(err)
	}
	if res.Table == nil {
		t.Fatalf("example does not compile:\n%v", res.Diagnostics)
	}
	return res.Table
}

// TestJSONRoundTrip checks that a table read back from its JSON is the same
// table: same bytes, same version.
func TestJSONRoundTrip(t *testing.T) {
	tb := example(t)
	b, err := tb.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := table.DecodeBytes(b, compiler.DefaultsDigest())
	if err != nil {
		t.Fatal(err)
	}
	if back.Version != tb.Version {
		t.Errorf("version %s, want %s", back.Version, tb.Version)
	}
	b2, err := back.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(b), string(b2)); diff != "" {
		t.Errorf("JSON differs after a round trip (-first +second):\n%s", diff)
	}
}

// TestCanonicalJSON checks the canonical form: valid JSON, object keys
// sorted bytewise, no insignificant whitespace, one trailing newline.
func TestCanonicalJSON(t *testing.T) {
	b, err := example(t).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(b, []byte("}\n")) || bytes.Count(b, []byte("\n")) != 1 {
		t.Errorf("want exactly one trailing newline")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if !bytes.Equal(compact.Bytes(), bytes.TrimSuffix(b, []byte("\n"))) {
		t.Errorf("the JSON has insignificant whitespace")
	}
	// Walk the tokens: within every object, keys must be strictly increasing.
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		object  bool
		lastKey string
		wantKey bool
		hasKey  bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		isKey := top != nil && top.object && top.wantKey
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.object {
					top.wantKey = true
				}
				stack = append(stack, &frame{object: v == '{', wantKey: v == '{'})
				continue
			case '}', ']':
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].wantKey = true
				}
				continue
			}
		case string:
			if isKey {
				if top.hasKey && v <= top.lastKey {
					t.Fatalf("key %q follows %q: keys are not sorted", v, top.lastKey)
				}
				top.lastKey, top.hasKey, top.wantKey = v, true, false
				continue
			}
		}
		if top != nil && top.object {
			top.wantKey = true
		}
	}
}

// TestDecodeRejects checks that a damaged or foreign table is refused.
func TestDecodeRejects(t *testing.T) {
	b, err := compile(t, `accounts: a: {users: u: {}, devices: d: owner: "u"}`).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	good := string(b)
	tests := []struct {
		name, json, want string
	}{
		{"not JSON", "{", "decoding table"},
		{"no format version", `{"accounts":{},"version":"x"}`, "no format_version"},
		{"future format", strings.Replace(good, `"format_version":2`, `"format_version":3`, 1), "format_version 3"},
		{"format 1 (before stereo and announce)", strings.Replace(good, `"format_version":2`, `"format_version":1`, 1), "format_version 1, this recpol reads 2"},
		{"edited cell", strings.Replace(good, `"record":false`, `"record":true`, 1), "does not match its content"},
		{"missing cell", strings.Replace(good, `"onnet":{"provenance"`, `"onnetx":{"provenance"`, 1), "unknown field"},
		{"unknown field", strings.Replace(good, `{"accounts"`, `{"extra":1,"accounts"`, 1), "unknown field"},
		{"wrong version", strings.Replace(good, `"version":"sha256:`, `"version":"sha256:00`, 1), "does not match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := table.DecodeBytes([]byte(tc.json), compiler.DefaultsDigest())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestLookupAllocationFree checks that a decision lookup never allocates.
func TestLookupAllocationFree(t *testing.T) {
	tb := example(t)
	allocs := testing.AllocsPerRun(1000, func() {
		c, ok := tb.Lookup("sales", table.Device, "anna-desk", table.Inbound, table.Offnet)
		if !ok || !c.Record {
			t.Fatal("lookup failed")
		}
		if _, ok := tb.LookupAccount("pci-callcentre", table.Inbound, table.Offnet); !ok {
			t.Fatal("account lookup failed")
		}
	})
	if allocs != 0 {
		t.Errorf("lookup allocates %v times", allocs)
	}
}

// TestInterning checks that identical settings and provenance are stored
// once.
func TestInterning(t *testing.T) {
	tb := example(t)
	a, _ := tb.Account("sales")
	x := a.Devices["anna-desk"].Cells.Get(table.Inbound, table.Onnet)
	y := a.Devices["ben-desk"].Cells.Get(table.Inbound, table.Onnet)
	if x.Settings != y.Settings {
		t.Errorf("identical settings are stored twice")
	}
}

// TestInternerForgetProvenances interns provenances across more than one
// chunk: equal values share one copy, each its own value, until
// ForgetProvenances, after which they are interned anew; settings are not
// forgotten.
func TestInternerForgetProvenances(t *testing.T) {
	in := table.NewInterner()
	prov := func(i int) table.Provenance { return table.Provenance{Enabled: fmt.Sprintf("user:u%d", i)} }
	const n = 200
	first := make([]*table.Provenance, n)
	for i := range first {
		first[i] = in.Provenance(prov(i))
	}
	s := in.Settings(table.Settings{Format: "mp3"})
	for _, tc := range []struct {
		name   string
		forget bool
		same   bool
	}{
		{"again", false, true},
		{"forgotten", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.forget {
				in.ForgetProvenances()
			}
			for i := range first {
				got := in.Provenance(prov(i))
				if diff := cmp.Diff(prov(i), *got); diff != "" {
					t.Fatalf("provenance %d (-want +got):\n%s", i, diff)
				}
				if (got == first[i]) != tc.same {
					t.Fatalf("provenance %d: the same copy: %v, want %v", i, got == first[i], tc.same)
				}
			}
			if in.Settings(table.Settings{Format: "mp3"}) != s {
				t.Errorf("settings interned anew")
			}
		})
	}
	for i := range first {
		if diff := cmp.Diff(prov(i), *first[i]); diff != "" {
			t.Fatalf("provenance %d changed (-want +got):\n%s", i, diff)
		}
	}
}

// TestDecide covers SPEC 2.3: the three independent decisions, at most one
// account recording (inbound before outbound), callees per ringing device,
// and the caller's own device never ringing.
func TestDecide(t *testing.T) {
	tb := compile(t, `accounts: a: {
		call_recording: account: {inbound: offnet: enabled: true, outbound: any: enabled: true}
		users: {u: {}, v: {}, lonely: {}}
		devices: {
			d1: {owner: "u", call_recording: any: any: enabled: true}
			d2: {owner: "u", call_recording: inbound: onnet: enabled: true}
			d3: {owner: "v"}
			d4: {owner: "lonely"}
		}
	}`)
	a, _ := tb.Account("a")
	type rec struct{ Scope, Endpoint, Leg, Origin string }
	tests := []struct {
		from, to string
		want     []rec
	}{
		{"device:d1", "device:d2", []rec{
			{"account", "", "a", "outbound to onnet from account"},
			{"caller", "d1", "a", "outbound to onnet from endpoint"},
			{"callee", "d2", "b", "inbound from onnet to endpoint"},
		}},
		{"offnet", "device:d1", []rec{
			{"account", "", "a", "inbound from offnet to account"},
			{"callee", "d1", "b", "inbound from offnet to endpoint"},
		}},
		{"offnet", "offnet", []rec{{"account", "", "a", "inbound from offnet to account"}}},
		{"device:d3", "offnet", []rec{{"account", "", "a", "outbound to offnet from account"}}},
		// A device calling its owner rings the owner's other devices.
		{"device:d1", "user:u", []rec{
			{"account", "", "a", "outbound to onnet from account"},
			{"caller", "d1", "a", "outbound to onnet from endpoint"},
			{"callee", "d2", "b", "inbound from onnet to endpoint"},
		}},
		// A device calling itself rings nothing.
		{"device:d1", "device:d1", []rec{
			{"account", "", "a", "outbound to onnet from account"},
			{"caller", "d1", "a", "outbound to onnet from endpoint"},
		}},
		// A user whose only device is the caller's: account and caller only.
		{"device:d4", "user:lonely", []rec{{"account", "", "a", "outbound to onnet from account"}}},
		{"device:d3", "user:u", []rec{
			{"account", "", "a", "outbound to onnet from account"},
			{"callee", "d1", "b", "inbound from onnet to endpoint"},
			{"callee", "d2", "b", "inbound from onnet to endpoint"},
		}},
	}
	for _, tc := range tests {
		from, _ := table.ParseParty(tc.from)
		to, _ := table.ParseParty(tc.to)
		recs, err := a.Decide(table.Call{From: from, To: to})
		if err != nil {
			t.Fatalf("%s -> %s: %v", tc.from, tc.to, err)
		}
		var got []rec
		for _, r := range recs {
			got = append(got, rec{r.Scope.String(), r.Endpoint, r.Leg.String(), r.Origin})
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s -> %s (-want +got):\n%s", tc.from, tc.to, diff)
		}
	}
	for _, bad := range []table.Call{
		{From: table.DeviceRef("nope"), To: table.OffnetRef()},
		{From: table.UserRef("u"), To: table.OffnetRef()},
		{From: table.OffnetRef(), To: table.UserRef("nope")},
	} {
		if _, err := a.Decide(bad); err == nil {
			t.Errorf("%v -> %v: no error", bad.From, bad.To)
		}
	}
}

// TestCallflowMatching covers SPEC 2.5: an exact number beats every
// pattern, the longest pattern match wins.
func TestCallflowMatching(t *testing.T) {
	tb := compile(t, `accounts: a: callflows: {
		exact: {numbers: ["5000"], actions: []}
		short: {patterns: ["^5"], actions: []}
		long: {patterns: ["^50\\d\\d$"], actions: []}
	}`)
	a, _ := tb.Account("a")
	for number, want := range map[string]string{"5000": "exact", "5001": "long", "5": "short", "59": "short", "6": ""} {
		cf, ok := a.MatchCallflow(number)
		got := ""
		if ok {
			got = cf.ID
		}
		if got != want {
			t.Errorf("MatchCallflow(%q) = %q, want %q", number, got, want)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	tb := example(b)
	b.ReportAllocs()
	for b.Loop() {
		tb.Lookup("sales", table.Device, "anna-desk", table.Inbound, table.Offnet)
	}
}

func BenchmarkMapRead(b *testing.B) {
	m := map[string]int{"sales": 1, "pci-callcentre": 2, "wazo-pbx": 3}
	b.ReportAllocs()
	for b.Loop() {
		_ = m["sales"]
	}
}

// TestCollector covers metaflow digit collection: the binding digit, exact
// codes, a code that is a prefix of a longer one, patterns, and the digit
// timeout.
func TestCollector(t *testing.T) {
	tb := compile(t, `accounts: a: devices: d: metaflows: {
		digit_timeout: 1000
		numbers: {
			"7": {module: "record_call", data: action: "toggle"}
			"72": {module: "record_call", data: action: "mask"}
			"73": {module: "record_call", data: action: "unmask"}
		}
		patterns: "^9\\d$": {module: "record_call", data: action: "stop"}
	}`)
	m := tb.Accounts["a"].Devices["d"].Metaflows
	type press struct {
		digit string
		at    int64
	}
	tests := []struct {
		name    string
		presses []press
		want    []string // actions completed, in order
	}{
		{"*72", []press{{"*", 0}, {"7", 100}, {"2", 200}}, []string{"mask"}},
		{"no binding digit", []press{{"7", 0}, {"2", 100}}, nil},
		{"timeout between digits", []press{{"*", 0}, {"7", 100}, {"2", 1200}}, nil},
		{"timeout, then again", []press{{"*", 0}, {"7", 2000}, {"*", 2100}, {"7", 2200}, {"3", 2300}}, []string{"unmask"}},
		{"pattern", []press{{"*", 0}, {"9", 100}, {"4", 200}}, []string{"stop"}},
		{"unknown code resets", []press{{"*", 0}, {"5", 100}, {"7", 200}, {"2", 300}}, nil},
		{"two codes", []press{{"*", 0}, {"7", 1}, {"2", 2}, {"*", 3}, {"7", 4}, {"3", 5}}, []string{"mask", "unmask"}},
	}
	for _, tc := range tests {
		var c table.Collector
		var got []string
		for _, p := range tc.presses {
			if b, ok := c.Feed(m, p.digit, p.at); ok {
				got = append(got, string(b.Action.Action))
			}
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestStereoAnnounceJSON checks that stereo, announce and announce_to, with
// their provenance, survive the JSON round trip, and how they are written:
// stereo and announce_to always, announce only when set.
func TestStereoAnnounceJSON(t *testing.T) {
	tb := compile(t, `defaults: announce_to: "aleg"
accounts: a: {
	call_recording: account: any: any: {enabled: true, stereo: true, announce: "tone"}
	devices: d: call_recording: inbound: offnet: {enabled: true, announce: "/srv/consent.wav", announce_to: "bleg"}
	callflows: c: {numbers: ["1"], actions: [{module: "record_call", data: {stereo: true, announce: "tone_stream://%(200,0,800)"}}]}
}`)
	b, err := tb.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"settings":{"announce":"tone","announce_to":"aleg","format":"mp3",`,
		`"record_sample_rate":8000,"stereo":true,"time_limit":10800}`,
		`"provenance":{"announce":"account:a call_recording.account.any.any.announce","announce_to":"defaults announce_to","enabled":`,
		`"record_sample_rate":"builtin record_sample_rate","stereo":"account:a call_recording.account.any.any.stereo","time_limit":`,
		`"settings":{"announce":"/srv/consent.wav","announce_to":"bleg",`,
		`"settings":{"announce_to":"aleg","format":"mp3",`,
		`"settings":{"announce":"tone_stream://%(200,0,800)","announce_to":"aleg",`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the table's JSON lacks %s", want)
		}
	}
	back, err := table.DecodeBytes(b, compiler.DefaultsDigest())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := tb.Account("a")
	ba, _ := back.Account("a")
	type pair struct {
		S table.Settings
		P table.Provenance
	}
	tests := []struct {
		name      string
		got, want pair
	}{
		{"account cell", pair{*ba.Cells.Get(table.Inbound, table.Offnet).Settings, *ba.Cells.Get(table.Inbound, table.Offnet).Provenance},
			pair{*a.Cells.Get(table.Inbound, table.Offnet).Settings, *a.Cells.Get(table.Inbound, table.Offnet).Provenance}},
		{"device cell", pair{*ba.Devices["d"].Cells.Get(table.Inbound, table.Offnet).Settings, *ba.Devices["d"].Cells.Get(table.Inbound, table.Offnet).Provenance},
			pair{*a.Devices["d"].Cells.Get(table.Inbound, table.Offnet).Settings, *a.Devices["d"].Cells.Get(table.Inbound, table.Offnet).Provenance}},
		{"callflow action", pair{*ba.Callflows[0].Actions[0].Settings, *ba.Callflows[0].Actions[0].Provenance},
			pair{*a.Callflows[0].Actions[0].Settings, *a.Callflows[0].Actions[0].Provenance}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, tc.got); diff != "" {
			t.Errorf("%s after a round trip (-want +got):\n%s", tc.name, diff)
		}
	}
	if d := a.Devices["d"].Cells.Get(table.Inbound, table.Offnet).Settings; d.Stereo || d.Announce != "/srv/consent.wav" || d.AnnounceTo != "bleg" {
		t.Errorf("device cell settings %+v", *d)
	}
	// Settings without stereo are incomplete: refused.
	old := strings.ReplaceAll(strings.ReplaceAll(string(b), `,"stereo":true`, ``), `,"stereo":false`, ``)
	if _, err := table.DecodeBytes([]byte(old), compiler.DefaultsDigest()); err == nil || !strings.Contains(err.Error(), "settings are missing or incomplete") {
		t.Errorf("a table without stereo: error %v, want settings are missing or incomplete", err)
	}
}

// TestAnnounceMedia checks what the switch plays for an announce setting.
func TestAnnounceMedia(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"tone", "tone_stream://%(500,0,1000)"},
		{"/srv/consent.wav", "/srv/consent.wav"},
		{"tone_stream://%(200,0,800)", "tone_stream://%(200,0,800)"},
	} {
		if got := table.AnnounceMedia(tc.in); got != tc.want {
			t.Errorf("AnnounceMedia(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestDevicesOf lists each user's devices, sorted, and none for a user
// that owns none or an id that is no user.
func TestDevicesOf(t *testing.T) {
	tb := compile(t, `accounts: a: {
		users: {u1: {}, u2: {}, u3: {}}
		devices: {
			d3: owner: "u1"
			d1: owner: "u1"
			d2: owner: "u2"
			d4: {}
			d0: owner: "u1"
		}
	}`)
	a, _ := tb.Account("a")
	for _, tc := range []struct {
		user string
		want []string
	}{
		{"u1", []string{"d0", "d1", "d3"}},
		{"u2", []string{"d2"}},
		{"u3", nil},
		{"nobody", nil},
	} {
		if diff := cmp.Diff(tc.want, a.DevicesOf(tc.user)); diff != "" {
			t.Errorf("DevicesOf(%q) (-want +got):\n%s", tc.user, diff)
		}
	}
	// Each owner's list is its own: appending to one never writes
	// into another's.
	_ = append(a.DevicesOf("u1"), "x")
	if diff := cmp.Diff([]string{"d2"}, a.DevicesOf("u2")); diff != "" {
		t.Errorf("DevicesOf(u2) after an append to u1's (-want +got):\n%s", diff)
	}
}
