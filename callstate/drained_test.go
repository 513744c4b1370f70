package callstate

import "testing"

// TestDrained: an emptied map is replaced by a new one, so that the
// buckets of a burst are let go; a map with entries is kept.
func TestDrained(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		same bool
	}{
		{name: "empty", n: 0, same: false},
		{name: "one entry", n: 1, same: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[int]bool{}
			for i := range 1000 {
				m[i] = true
			}
			for i := tc.n; i < 1000; i++ {
				delete(m, i)
			}
			got := drained(m)
			got[-1] = true // a write to the same map shows in m
			if same := m[-1]; same != tc.same {
				t.Errorf("drained returned the same map: %v, want %v", same, tc.same)
			}
		})
	}
}
