package runtime

import (
	"testing"

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
