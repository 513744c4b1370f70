package runtime

import (
	goruntime "runtime"
	"strings"
	"testing"
	"unique"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/runtime/eslwire"
)

// TestCopyVars: an event copies the wanted variables only, matched
// case-insensitively as FreeSWITCH's are, the first of duplicated headers
// winning; from the switch's ordered list and from a map alike.
func TestCopyVars(t *testing.T) {
	list := []eslwire.Header{
		{Name: "Unique-ID", Value: "u1"},
		{Name: "variable_recpol_account", Value: "acme"},
		{Name: "variable_ecallmgr_Account-ID", Value: "k1"},
		{Name: "variable_unwanted", Value: "x"},
		{Name: "variable_recpol_account", Value: "later duplicate"},
		{Name: "variable_", Value: "empty name"},
	}
	headers := map[string]string{}
	for _, h := range list {
		if _, dup := headers[h.Name]; !dup {
			headers[h.Name] = h.Value
		}
	}
	want := map[string]bool{"recpol_account": true, "ecallmgr_account-id": true}
	wantVars := map[string]string{"recpol_account": "acme", "ecallmgr_account-id": "k1"}
	for _, ev := range []*Event{{Headers: headers, List: list}, {Headers: headers}} {
		got := map[string]string{}
		if !ev.CopyVars(got, want) {
			t.Error("CopyVars reported no change on an empty map")
		}
		if diff := cmp.Diff(wantVars, got); diff != "" {
			t.Errorf("list %t: variables (-want +got):\n%s", ev.List != nil, diff)
		}
		if ev.CopyVars(got, want) {
			t.Errorf("list %t: CopyVars reported a change copying the same values again", ev.List != nil)
		}
	}
}

// TestCopyVarsNames: which header names reach which wanted variable,
// from a list and from a map: the prefix in any case, the name in any
// case (ASCII or not), names of a length no wanted name has, and names
// of 64 bytes and more.
func TestCopyVarsNames(t *testing.T) {
	long := "a_very_long_variable_name_that_is_longer_than_sixty_four_bytes_xyz"
	tests := []struct {
		name   string
		header string
		want   map[string]bool
		got    map[string]string // the variables copied
	}{
		{"exact", "variable_acct", map[string]bool{"acct": true}, map[string]string{"acct": "v"}},
		{"prefix in upper case", "VARIABLE_acct", map[string]bool{"acct": true}, map[string]string{"acct": "v"}},
		{"name in mixed case", "variable_AcCt", map[string]bool{"acct": true}, map[string]string{"acct": "v"}},
		{"same length, not wanted", "variable_abcd", map[string]bool{"acct": true}, map[string]string{}},
		{"other length", "variable_account", map[string]bool{"acct": true}, map[string]string{}},
		{"no prefix", "variablesacct", map[string]bool{"acct": true}, map[string]string{}},
		{"long, wanted", "variable_" + long, map[string]bool{long: true}, map[string]string{long: "v"}},
		{"long, another wanted", "variable_" + long + "2", map[string]bool{long: true}, map[string]string{}},
		{"long, none wanted", "variable_" + long, map[string]bool{"acct": true}, map[string]string{}},
		// The Kelvin sign lower-cases to a one-byte k.
		{"lower-cased to another length", "variable_\u212Aey", map[string]bool{"key": true}, map[string]string{"key": "v"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, ev := range []*Event{
				{List: []eslwire.Header{{Name: tt.header, Value: "v"}}},
				{Headers: map[string]string{tt.header: "v"}},
			} {
				got := map[string]string{}
				changed := ev.CopyVars(got, tt.want)
				if diff := cmp.Diff(tt.got, got); diff != "" {
					t.Errorf("list %t: variables (-want +got):\n%s", ev.List != nil, diff)
				}
				if changed != (len(tt.got) > 0) {
					t.Errorf("list %t: changed %t", ev.List != nil, changed)
				}
			}
		})
	}
}

// TestCopyVarsInterned: the names copied are one copy for every leg, and
// neither names nor values are slices of the event's frame.
func TestCopyVarsInterned(t *testing.T) {
	want := map[string]bool{"recpol_account": true}
	frame := func() (string, *Event) {
		f := strings.Clone("variable_recpol_accountacme") // a frame of its own
		return f, &Event{List: []eslwire.Header{{Name: f[:23], Value: f[23:]}}}
	}
	in := func(s, f string) bool {
		p, b := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(f)))
		return p >= b && p < b+uintptr(len(f))
	}
	// Held, so that no collection between the legs drops the interned
	// name from unique's weak map.
	h := unique.Make("recpol_account")
	defer goruntime.KeepAlive(h)
	var names []string
	for range 2 {
		f, ev := frame()
		leg := map[string]string{}
		ev.CopyVars(leg, want)
		for k, v := range leg {
			if in(k, f) || in(v, f) {
				t.Errorf("%s=%s is a slice of the frame", k, v)
			}
			names = append(names, k)
		}
	}
	if len(names) != 2 || unsafe.StringData(names[0]) != unsafe.StringData(names[1]) {
		t.Errorf("the legs' names %q are not one copy", names)
	}
}
