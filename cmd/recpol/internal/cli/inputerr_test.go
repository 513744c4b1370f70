package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestInputErrorsPrintLikeVet: the errors of every CUE input besides a
// policy (a scenario, a runtime config, an expectations file) print as
// `recpol vet` prints a policy's, one "file:line:col: path: message" a
// line, with the exit status of the command.
func TestInputErrorsPrintLikeVet(t *testing.T) {
	policy := "package recpol\n\naccounts: acme: {users: bob: {}, devices: desk: owner: \"bob\"}\n"
	tests := []struct {
		name     string
		file     string
		src      string
		args     []string
		wantCode int
		want     []string
	}{
		{
			name: "scenario",
			file: "scenario.cue",
			src: `calls: [{
	id: "c"
	legs: [{name: "a", direction: 3}]
	steps: [{at_ms: "soon", do: "create", leg: "a"}]
}]
`,
			args:     []string{"simulate", "policy", "--scenario", "scenario.cue", "--format", "json"},
			wantCode: ExitUsage,
			want: []string{
				`scenario.cue:3:32: calls[0].legs[0].direction: 3 is not allowed: want one of "inbound", "outbound"`,
				`scenario.cue:4:18: calls[0].steps[0].at_ms: conflicting values "soon" and int (mismatched types string and int)`,
			},
		},
		{
			name: "runtime config",
			file: "runtime.cue",
			src: `switches: [{address: "127.0.0.1:8021", password: "x"}]
policies: "policy"
storage:  "s"
spool:    "q"
classify: preset: "asterisk"
upload_workers: 0
`,
			args:     []string{"catalog", "rebuild", "--config", "runtime.cue"},
			wantCode: ExitUsage,
			want: []string{
				`runtime.cue:5:19: classify.preset: "asterisk" is not allowed: want one of "freeswitch", "kazoo", "recpol"`,
				`runtime.cue:6:17: upload_workers: 0 is out of range: it must be >=1`,
			},
		},
		{
			name: "expectations",
			file: "expect.cue",
			src: `expect: x: {from: "offnet", to: "*", recordings: -1, action: "explode"}
expect: y: {from: "offnet", to: "*", recordngs: 1}
expects: {}
`,
			args:     []string{"simulate", "policy", "--expect", "expect.cue"},
			wantCode: ExitInvalid,
			want: []string{
				`expect.cue:1:50: expect.x.recordings: -1 is out of range: it must be >=0`,
				`expect.cue:1:62: expect.x.action: "explode" is not allowed: want one of "mask", "none", "pause", "resume", "start", "stop", "toggle", "unmask"`,
				`expect.cue:2:38: expect.y.recordngs: unknown field "recordngs" (did you mean recordings?)`,
				`expect.cue:3:1: expects: unknown top-level field "expects": an expectations file has only expect`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "policy"), 0o700); err != nil {
				t.Fatal(err)
			}
			for name, data := range map[string]string{"policy/p.cue": policy, tt.file: tt.src} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			t.Chdir(dir)
			var stdout, stderr bytes.Buffer
			code := Run(tt.args, strings.NewReader(""), &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit status %d, want %d", code, tt.wantCode)
			}
			got := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}
