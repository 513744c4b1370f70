package simulate

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/table"
)

// smallPolicy has one account with a user owning two devices, a device
// without owner, account recording of calls from offnet, and endpoint
// recording for the user's external calls.
const smallPolicy = `package recpol

accounts: acme: {
	call_recording: account: inbound: offnet: {enabled: true, format: "wav"}
	users: bob: call_recording: {
		outbound: offnet: enabled: true
		inbound: offnet: enabled: true
	}
	devices: {
		"bob-desk": owner: "bob"
		"bob-soft": {owner: "bob", call_recording: any: any: enabled: false}
		lobby: call_recording: inbound: onnet: {enabled: true, url: "https://rec.example.com/in"}
	}
}
`

func TestSimulateCodes(t *testing.T) {
	r, err := Run(compile(t, smallPolicy))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range r.Accounts[0].Calls {
		got[c.From.String()+" -> "+c.To.String()] = truthCode(c.Recordings)
	}
	want := map[string]string{
		"device:bob-desk -> device:bob-desk": "-",
		"device:bob-desk -> device:bob-soft": "-",
		"device:bob-desk -> device:lobby":    "E",
		"device:bob-desk -> user:bob":        "-",
		"device:bob-desk -> offnet":          "C",
		"device:bob-soft -> device:bob-desk": "-",
		"device:bob-soft -> device:bob-soft": "-",
		"device:bob-soft -> device:lobby":    "E",
		"device:bob-soft -> user:bob":        "-",
		"device:bob-soft -> offnet":          "-",
		"device:lobby -> device:bob-desk":    "-",
		"device:lobby -> device:bob-soft":    "-",
		"device:lobby -> device:lobby":       "-",
		"device:lobby -> user:bob":           "-",
		"device:lobby -> offnet":             "-",
		"offnet -> device:bob-desk":          "A E",
		"offnet -> device:bob-soft":          "A",
		"offnet -> device:lobby":             "A",
		"offnet -> user:bob":                 "A E",
		"offnet -> offnet":                   "A",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("codes (-want +got):\n%s", diff)
	}
	if n := len(r.Accounts[0].Calls); n != 4*5 {
		t.Errorf("%d calls, want 20", n)
	}
}

func TestGolden(t *testing.T) {
	example, err := compiler.Options{}.Compile("../testdata/policies/example")
	if err != nil || example.Table == nil {
		t.Fatalf("example policy: %v %v", err, example.Diagnostics)
	}
	for _, p := range []struct {
		name string
		t    *table.Table
	}{
		{"small", compile(t, smallPolicy)},
		{"example", example.Table},
	} {
		r, err := Run(p.t)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []struct {
			ext   string
			write func(*bytes.Buffer) error
		}{
			{".txt", func(b *bytes.Buffer) error { return r.WriteText(b) }},
			{".md", func(b *bytes.Buffer) error { return r.WriteMarkdown(b) }},
			{".json", func(b *bytes.Buffer) error { return r.WriteJSON(b) }},
		} {
			var b bytes.Buffer
			if err := f.write(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, p.name+f.ext, b.Bytes())
		}
	}
}

// TestExampleSales checks the KAZOO example on the bundled policy: Sales
// records calls to and from customers, and no call within the account or
// from another account.
func TestExampleSales(t *testing.T) {
	example, err := compiler.Options{}.Compile("../testdata/policies/example")
	if err != nil || example.Table == nil {
		t.Fatalf("example policy: %v %v", err, example.Diagnostics)
	}
	r, err := Run(example.Table)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range r.Accounts {
		if a.Account.ID != "sales" {
			continue
		}
		for _, c := range a.Calls {
			internal := c.From.Kind != table.OffnetParty && c.To.Kind != table.OffnetParty
			lobby := c.From.ID == "lobby" || c.To.ID == "lobby"
			switch {
			case internal && len(c.Recordings) > 0:
				t.Errorf("internal call %v -> %v is recorded", c.From, c.To)
			case !internal && !lobby && c.From.Kind != c.To.Kind && c.From.Kind != table.OtherAccountParty &&
				c.To.Kind != table.OtherAccountParty && len(c.Recordings) == 0:
				// A customer call reaches a device or user of Sales (a
				// call passing on to another account records none of
				// Sales's endpoints).
				t.Errorf("customer call %v -> %v is not recorded", c.From, c.To)
			}
		}
		return
	}
	t.Fatal("no account sales")
}

func TestGoldenMatrixAndExplain(t *testing.T) {
	rep, err := RunMatrix()
	if err != nil {
		t.Fatal(err)
	}
	var txt, js, md bytes.Buffer
	if err := rep.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	golden(t, "matrix.txt", txt.Bytes())
	golden(t, "matrix.json", js.Bytes())
	golden(t, "matrix.md", md.Bytes())

	a, _ := compile(t, smallPolicy).Account("acme")
	var ex bytes.Buffer
	if err := Explain(&ex, a, table.Call{From: table.OffnetRef(), To: table.UserRef("bob")}); err != nil {
		t.Fatal(err)
	}
	golden(t, "explain.txt", ex.Bytes())
}
