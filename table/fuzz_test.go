package table_test

import (
	"bytes"
	"testing"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/table"
)

// FuzzDecode feeds arbitrary bytes to the table loader: it must never
// panic, and a table it accepts re-encodes to canonical JSON that decodes
// to the same table and the same bytes.
func FuzzDecode(f *testing.F) {
	tb := example(f)
	enc, err := tb.MarshalJSON()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add([]byte(`{"accounts":{},"format_version":1,"version":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := table.DecodeBytes(data, compiler.DefaultsDigest())
		if err != nil {
			return
		}
		out, err := got.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := table.DecodeBytes(out, compiler.DefaultsDigest())
		if err != nil {
			t.Fatalf("a decoded table's own JSON does not decode: %v", err)
		}
		again, _ := back.MarshalJSON()
		if !bytes.Equal(out, again) || back.Version != got.Version {
			t.Fatalf("re-encoding changed the table:\n%s\n%s", out, again)
		}
		if bytes.Equal(bytes.TrimSpace(data), bytes.TrimSpace(enc)) && !bytes.Equal(out, enc) {
			t.Fatal("the canonical JSON did not re-encode to the same bytes")
		}
	})
}

// FuzzCollector presses arbitrary digits at arbitrary times on metaflows
// with exact codes, a prefix code and patterns: it must never panic, a
// completed binding is one of the metaflows' own, and the digits it holds
// stay bounded however long the presses go on (a DTMF flood must not grow
// memory or matching time).
func FuzzCollector(f *testing.F) {
	tb := compile(f, `accounts: a: devices: {
		d: metaflows: {
			digit_timeout: 1000
			numbers: {
				"7": {module: "record_call", data: action: "toggle"}
				"72": {module: "record_call", data: action: "mask"}
				"73": {module: "record_call", data: action: "unmask"}
			}
			patterns: "^9\\d$": {module: "record_call", data: action: "stop"}
		}
		p: metaflows: {binding_digit: "#", patterns: "^1+2$": {module: "record_call", data: action: "pause"}}
	}`)
	f.Add([]byte("*72*73"), uint16(100), false)
	f.Add([]byte("*94*5*7"), uint16(1), false)
	f.Add([]byte("#1111111111112"), uint16(10), true)
	f.Add([]byte("*7*72"), uint16(2000), false)
	f.Fuzz(func(t *testing.T, digits []byte, step uint16, second bool) {
		m := tb.Accounts["a"].Devices["d"].Metaflows
		if second {
			m = tb.Accounts["a"].Devices["p"].Metaflows
		}
		var c table.Collector
		at := int64(0)
		for i := 0; i < len(digits); i++ {
			d := string(digits[i : i+1])
			at += int64(step)
			b, ok := c.Feed(m, d, at)
			if ok {
				if b == nil {
					t.Fatal("ok without a binding")
				}
				found := false
				for _, bs := range [][]table.MetaflowBinding{m.Numbers, m.Patterns} {
					for j := range bs {
						if &bs[j] == b {
							found = true
						}
					}
				}
				if !found {
					t.Fatalf("binding %+v is not one of the metaflows'", b)
				}
				if c.Pending() != "" {
					t.Fatalf("digits %q left after a completed code", c.Pending())
				}
			}
			if n := len(c.Pending()); n > table.MaxMetaflowDigits {
				t.Fatalf("the collector holds %d digits", n)
			}
		}
	})
}
