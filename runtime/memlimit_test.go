package runtime

import (
	"bytes"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestMemoryLimit: the config's limit is applied unless GOMEMLIMIT is
// set, and 0 means none.
func TestMemoryLimit(t *testing.T) {
	tests := []struct {
		name       string
		config     int64
		env        string
		current    int64 // the limit before
		wantSet    []int64
		wantLimit  int64
		wantSource string
	}{
		{"config", 150 << 20, "", math.MaxInt64, []int64{150 << 20, -1}, 150 << 20, "memory_limit_mb"},
		{"config 0: none", 0, "", 100 << 20, []int64{math.MaxInt64, -1}, math.MaxInt64, "memory_limit_mb"},
		{"GOMEMLIMIT wins", 150 << 20, "300MiB", 300 << 20, []int64{-1}, 300 << 20, "GOMEMLIMIT"},
		{"GOMEMLIMIT=off wins", 150 << 20, "off", math.MaxInt64, []int64{-1}, math.MaxInt64, "GOMEMLIMIT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := tt.current
			var calls []int64
			set := func(n int64) int64 {
				calls = append(calls, n)
				old := cur
				if n >= 0 {
					cur = n
				}
				return old
			}
			limit, source := memoryLimit(tt.config, tt.env, set)
			if diff := cmp.Diff(tt.wantSet, calls); diff != "" {
				t.Errorf("SetMemoryLimit calls (-want +got):\n%s", diff)
			}
			if limit != tt.wantLimit || source != tt.wantSource {
				t.Errorf("limit %d from %s, want %d from %s", limit, source, tt.wantLimit, tt.wantSource)
			}
		})
	}
}

// TestApplyMemoryLimit: the process's limit is the config's, logged, and
// /metrics shows it.
func TestApplyMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	const want = 150 << 20
	if got := ApplyMemoryLimit(&Config{MemoryLimit: want}, log); got != want {
		t.Errorf("ApplyMemoryLimit = %d, want %d", got, want)
	}
	if got := debug.SetMemoryLimit(-1); got != want {
		t.Errorf("the process's limit is %d, want %d", got, want)
	}
	if !bytes.Contains(buf.Bytes(), []byte(`msg="memory limit" limit_mb=150 source=memory_limit_mb`)) {
		t.Errorf("log %q does not give the limit", buf.String())
	}
	mfs, err := NewMetrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var gauge float64 = -1
	for _, mf := range mfs {
		if mf.GetName() == "go_gc_gomemlimit_bytes" {
			gauge = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	if gauge != want {
		t.Errorf("go_gc_gomemlimit_bytes = %v, want %d", gauge, want)
	}
}
