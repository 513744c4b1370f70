package runtime

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/recpol/recpol/runtime/store"
)

// TestStoreEventMetrics: each store event moves its metric.
func TestStoreEventMetrics(t *testing.T) {
	for _, tc := range []struct {
		kind store.EventKind
		read func(*Metrics) float64
	}{
		{store.EventStored, func(m *Metrics) float64 { return testutil.ToFloat64(m.Finished.WithLabelValues("stored")) }},
		{store.EventQuarantined, func(m *Metrics) float64 { return testutil.ToFloat64(m.Finished.WithLabelValues("quarantined")) }},
		{store.EventUploadDead, func(m *Metrics) float64 { return testutil.ToFloat64(m.Uploads.WithLabelValues("dead")) }},
		{store.EventSidecarRepaired, func(m *Metrics) float64 { return testutil.ToFloat64(m.SidecarsRepaired) }},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			r := &Runtime{Metrics: NewMetrics()}
			var got []float64
			for range 2 {
				r.storeEvent(store.Event{Kind: tc.kind})
				got = append(got, tc.read(r.Metrics))
			}
			if diff := cmp.Diff([]float64{1, 2}, got); diff != "" {
				t.Errorf("metric after each event (-want +got):\n%s", diff)
			}
		})
	}
}
