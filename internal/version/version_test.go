package version

import (
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var out []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			out = append(out, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	tests := []struct {
		name     string
		bi       debug.BuildInfo
		rev, at  string
		want     Info
		wantLine string
	}{
		{"checkout with vcs stamp",
			debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
				Settings: vcs("vcs.revision", "abc123", "vcs.time", "2026-12-04T17:00:00Z", "vcs.modified", "false")},
			"", "",
			Info{Version: "(devel)", Revision: "abc123", Time: "2026-12-04T17:00:00Z", Go: "go1.26.8"},
			"recpol (devel) commit abc123 (2026-12-04T17:00:00Z), go1.26.8"},
		{"dirty tree",
			debug.BuildInfo{GoVersion: "go1.26.8", Settings: vcs("vcs.revision", "abc123", "vcs.modified", "true")},
			"", "",
			Info{Version: "(devel)", Revision: "abc123+dirty", Go: "go1.26.8"},
			"recpol (devel) commit abc123+dirty, go1.26.8"},
		{"go install of a tagged module",
			debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.3.0"}},
			"", "",
			Info{Version: "v0.3.0", Go: "go1.26.8"},
			"recpol v0.3.0, go1.26.8"},
		{"-buildvcs=false with the Makefile's ldflags",
			debug.BuildInfo{GoVersion: "go1.26.8"},
			"def456", "2026-12-01T10:00:00Z",
			Info{Version: "(devel)", Revision: "def456", Time: "2026-12-01T10:00:00Z", Go: "go1.26.8"},
			"recpol (devel) commit def456 (2026-12-01T10:00:00Z), go1.26.8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fromBuildInfo(&tt.bi, tt.rev, tt.at)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("-want +got:\n%s", d)
			}
			if s := got.String(); s != tt.wantLine {
				t.Errorf("String() = %q, want %q", s, tt.wantLine)
			}
		})
	}
}
