package compiler

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestValuePath makes the paths of an account's values, each a slice of
// its own, and refuses a path longer than it holds.
func TestValuePath(t *testing.T) {
	for _, tc := range []struct {
		rest []string
		want []string
	}{
		{nil, []string{"accounts", "a"}},
		{[]string{"metaflows"}, []string{"accounts", "a", "metaflows"}},
		{[]string{"users", "u1", "call_recording"}, []string{"accounts", "a", "users", "u1", "call_recording"}},
		{[]string{"callflows", "c", "actions", "[0]"}, []string{"accounts", "a", "callflows", "c", "actions", "[0]"}},
	} {
		p := pathOf("a", tc.rest...)
		got := p.path()
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("pathOf(a, %q) (-want +got):\n%s", tc.rest, diff)
		}
		got[0] = "changed"
		_ = append(got, "more")
		if diff := cmp.Diff(tc.want, p.path()); diff != "" {
			t.Errorf("pathOf(a, %q) after a change to a path it made (-want +got):\n%s", tc.rest, diff)
		}
	}
	defer func() {
		if recover() == nil {
			t.Errorf("pathOf with five labels did not panic")
		}
	}()
	pathOf("a", "1", "2", "3", "4", "5")
}
