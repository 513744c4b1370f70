package ordered

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEncode checks that Encode consumes every encoding in index order,
// whatever the number of workers, and never encodes far ahead of the
// consumer.
func TestEncode(t *testing.T) {
	for _, tc := range []struct{ n, workers int }{
		{0, 1}, {0, 4}, {1, 1}, {1, 4}, {2, 2}, {7, 1}, {100, 2}, {100, 3}, {1000, 8},
	} {
		t.Run(fmt.Sprintf("n=%d/workers=%d", tc.n, tc.workers), func(t *testing.T) {
			var want, got []string
			for i := 0; i < tc.n; i++ {
				want = append(want, fmt.Sprint(i))
			}
			var encoded, consumed, maxAhead atomic.Int64
			Encode(tc.n, tc.workers, func() func(int) []byte {
				return func(i int) []byte {
					if a := encoded.Add(1) - consumed.Load(); a > maxAhead.Load() {
						maxAhead.Store(a)
					}
					return []byte(fmt.Sprint(i))
				}
			}, func(c []byte) {
				got = append(got, string(c))
				consumed.Add(1)
			})
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("consumed (-want +got):\n%s", diff)
			}
			if limit := int64(4*tc.workers + 1); maxAhead.Load() > limit {
				t.Errorf("encoded %d ahead of the consumer, want at most %d", maxAhead.Load(), limit)
			}
		})
	}
}
