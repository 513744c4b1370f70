package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/cue/input"
)

func writeConfig(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "runtime.cue")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	t.Setenv("RECPOL_TEST_PW", "s3cret-pw")
	t.Setenv("RECPOL_TEST_TOKEN", "tok-123")
	p := writeConfig(t, `
switches: [{address: "127.0.0.1:8021", password: "env:RECPOL_TEST_PW"}]
policies: "./policies"
storage:  "./recordings"
spool:    "./spool"
http: {listen: "127.0.0.1:8089", token: "env:RECPOL_TEST_TOKEN"}
uploads: [{prefix: "https://store.example.com/", headers: Authorization: "file:upload-token"}]
`)
	dir := filepath.Dir(p)
	if err := os.WriteFile(filepath.Join(dir, "upload-token"), []byte("Bearer xyz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	got := struct {
		Policies, Storage, Spool, Preset, Listen, Token, Password, LocalDir, RecordDir, Upload string
		Debounce, UploadMaxAge, UploadAlertAfter                                               time.Duration
		UploadWorkers                                                                          int
		MemoryLimit                                                                            int64
	}{c.Policies, c.Storage, c.Spool, c.Classify.Preset, c.HTTP.Listen, c.HTTP.Tokens[0].Secret.Reveal(),
		c.Switches[0].Password.Reveal(), c.Switches[0].LocalDir, c.Switches[0].RecordDir,
		c.Uploads[0].Headers["Authorization"].Reveal(), c.ReloadDebounce, c.UploadMaxAge, c.UploadAlertAfter, c.UploadWorkers, c.MemoryLimit}
	want := got
	want.Policies, want.Storage, want.Spool = filepath.Join(dir, "policies"), filepath.Join(dir, "recordings"), filepath.Join(dir, "spool")
	want.Preset, want.Listen, want.Token, want.Password = "recpol", "127.0.0.1:8089", "tok-123", "s3cret-pw"
	want.LocalDir = filepath.Join(dir, "spool", "recordings", "127.0.0.1-8021")
	want.RecordDir, want.Upload, want.Debounce = want.LocalDir, "Bearer xyz", 20*time.Millisecond
	want.UploadWorkers, want.MemoryLimit = 64, 120<<20
	want.UploadMaxAge, want.UploadAlertAfter = 24*time.Hour, time.Hour
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if s := c.Switches[0].Password.String(); strings.Contains(s, "s3cret") {
		t.Errorf("a secret prints as %q", s)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	const base = `switches: [{address: "127.0.0.1:8021", password: "x"}], policies: "p", storage: "s", spool: "q"`
	tests := []struct{ name, src, want string }{
		{"unknown field", `switches: [{address: "127.0.0.1:8021", password: "x"}], policies: "p", storage: "s", spool: "q", colour: 1`, "runtime.cue:1:"},
		{"no switch", `switches: [], policies: "p", storage: "s", spool: "q"`, "switches"},
		{"bad preset", `switches: [{address: "127.0.0.1:8021", password: "x"}], policies: "p", storage: "s", spool: "q", classify: preset: "asterisk"`, "classify"},
		{"missing env", `switches: [{address: "127.0.0.1:8021", password: "env:RECPOL_NOT_SET_ANYWHERE"}], policies: "p", storage: "s", spool: "q"`, "RECPOL_NOT_SET_ANYWHERE is not set"},
		{"remote without shared dir", `switches: [{address: "10.1.2.3:8021", password: "x"}], policies: "p", storage: "s", spool: "q"`, "is remote"},
		{"address with a space", `switches: [{address: "127.0.0.1 8021", password: "x"}], policies: "p", storage: "s", spool: "q"`, "address"},
		{"token device without account", base + `, http: tokens: t: {secret: "s", device: "d1", rights: ["read"]}`, "http.tokens.t: a device needs its account"},
		{"token without rights", base + `, http: tokens: t: {secret: "s", rights: []}`, "rights"},
		{"token with an unknown right", base + `, http: tokens: t: {secret: "s", rights: ["admin"]}`, "rights"},
		{"two tokens, one secret", base + `, http: {token: "s", tokens: t: {secret: "s", rights: ["read"]}}`, "tokens token and t have the same secret"},
		{"a token named token beside http.token", base + `, http: {token: "s", tokens: token: {secret: "u", rights: ["read"]}}`, "the name is taken by http.token"},
		{"a memory limit too small to run in", base + `, memory_limit_mb: 16`, "memory_limit_mb"},
		{"a negative memory limit", base + `, memory_limit_mb: -1`, "memory_limit_mb"},
		{"a token with an empty secret", base + `, http: tokens: t: {secret: "", rights: ["read"]}`, "http.tokens.t.secret: the secret is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestLoadConfigDiagnostics: an invalid config's errors are diagnostics
// positioned and worded as those of `recpol vet`, every one at once, and
// so are the checks made after the schema's.
func TestLoadConfigDiagnostics(t *testing.T) {
	diag := func(line, col int, code, path, msg string) input.Diagnostic {
		return input.Diagnostic{Code: code, Severity: input.Error, Position: input.Position{File: "runtime.cue", Line: line, Column: col},
			Path: path, Message: path + ": " + msg}
	}
	tests := []struct {
		name, src string
		want      input.Diagnostics
	}{
		{
			name: "types, enums, bounds and unknown fields",
			src: `switches: [{address: "127.0.0.1:8021", password: "x"}]
policies: "p"
storage:  5
spool:    "q"
classify: preset: "asterisk"
lease_ttl_s: 1
polices: "p"
`,
			want: input.Diagnostics{
				diag(3, 11, input.CodeSchema, "storage", "conflicting values string and 5 (mismatched types string and int)"),
				diag(5, 19, input.CodeSchema, "classify.preset", `"asterisk" is not allowed: want one of "freeswitch", "kazoo", "recpol"`),
				diag(6, 14, input.CodeSchema, "lease_ttl_s", "1 is out of range: it must be >=3"),
				diag(7, 1, input.CodeSchema, "polices", `unknown field "polices" (did you mean policies?)`),
			},
		},
		{
			name: "a missing field",
			src:  `switches: [{address: "127.0.0.1:8021", password: "x"}], storage: "s", spool: "q"`,
			want: input.Diagnostics{{Code: input.CodeIncomplete, Severity: input.Error, Position: input.Position{File: "runtime.cue"},
				Path: "policies", Message: "policies: policies must be set to a value, not just string"}},
		},
		{
			name: "a check after the schema",
			src: `switches: [{address: "10.1.2.3:8021", password: "x"}]
policies: "p", storage: "s", spool: "q"`,
			want: input.Diagnostics{diag(1, 12, input.CodeInvalid, "switches[0]", "10.1.2.3:8021 is remote: set record_dir (the directory FreeSWITCH records into) "+
				"and local_dir (the same directory, shared or mounted, as this runtime sees it)")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(filepath.Dir(writeConfig(t, tt.src)))
			_, err := LoadConfig("runtime.cue")
			var got input.Diagnostics
			if !errors.As(err, &got) {
				t.Fatalf("LoadConfig: %v, want Diagnostics", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(err.Error(), "runtime config:\n"+tt.want[0].String()) {
				t.Errorf("error %q does not start with the config's first diagnostic", err)
			}
		})
	}
}

// TestLoadConfigMemoryLimit: memory_limit_mb defaults to 120 and 0 is no
// limit.
func TestLoadConfigMemoryLimit(t *testing.T) {
	const base = `switches: [{address: "127.0.0.1:8021", password: "x"}], policies: "p", storage: "s", spool: "q"`
	tests := []struct {
		name, src string
		want      int64
	}{
		{"default", base, 120 << 20},
		{"none", base + `, memory_limit_mb: 0`, 0},
		{"set", base + `, memory_limit_mb: 512`, 512 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig(writeConfig(t, tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if c.MemoryLimit != tt.want {
				t.Errorf("MemoryLimit = %d, want %d", c.MemoryLimit, tt.want)
			}
		})
	}
}
