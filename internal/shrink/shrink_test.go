package shrink

import "testing"

// TestMap: an emptied map is replaced by a new one, so that the buckets
// of a burst are let go; a map with entries is kept.
func TestMap(t *testing.T) {
	for _, tc := range []struct {
		name string
		left int // entries left of 1000
		same bool
	}{
		{name: "empty", left: 0, same: false},
		{name: "one entry", left: 1, same: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[int]bool{}
			for i := range 1000 {
				m[i] = true
			}
			for i := tc.left; i < 1000; i++ {
				delete(m, i)
			}
			got := Map(m)
			got[-1] = true // a write to the same map shows in m
			if same := m[-1]; same != tc.same {
				t.Errorf("Map returned the same map: %v, want %v", same, tc.same)
			}
		})
	}
}
