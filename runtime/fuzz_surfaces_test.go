package runtime

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzLoadConfig: any bytes as a runtime config are loaded or refused
// with an error; never a panic, and what is loaded is usable.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte(`switches: [{address: "127.0.0.1:8021", password: "ClueCon", record_dir: "/r", local_dir: "/r"}]
policies: "p"
storage: "s"
spool: "q"
`))
	f.Add([]byte(`switches: [{address: "x:1", password: "env:NOPE"}]`))
	f.Add([]byte(`http: tokens: {a: {secret: "file:../../etc/passwd", rights: ["read"]}}`))
	f.Add([]byte("\x00\xff{{{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "runtime.cue")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(p)
		if err != nil {
			return
		}
		if len(cfg.Switches) == 0 || cfg.Spool == "" || cfg.Storage == "" || cfg.Policies == "" {
			t.Fatalf("loaded a config a runtime cannot use: %+v", cfg)
		}
	})
}

// FuzzAPI: any method, path and query against a running runtime's API,
// with and without a token, answer a status below 500 (a bad request is
// the client's, never the runtime's failure) and never panic.
func FuzzAPI(f *testing.F) {
	h := startHarness(f, "../testdata/policies/agreement", "")
	srv := httptest.NewServer(h.rt.Handler())
	f.Cleanup(srv.Close)
	for _, s := range []struct{ method, path, token string }{
		{"GET", "/v1/recordings?account=acme&limit=5", "test-token"},
		{"GET", "/v1/recordings?from=2026-01-01T00:00:00Z&until=x", "test-token"},
		{"POST", "/v1/calls/abc/recording/mask", "test-token"},
		{"DELETE", "/v1/recordings/../../x/hold", "test-token"},
		{"GET", "/v1/audit?cursor=%ff%fe", "test-token"},
		{"GET", "/v1/calls", "wrong"},
		{"GET", "/healthz", ""},
	} {
		f.Add(s.method, s.path, s.token)
	}
	f.Fuzz(func(t *testing.T, method, path, token string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		u, err := url.Parse(srv.URL + path)
		if err != nil || !strings.HasPrefix(u.String(), srv.URL) {
			return
		}
		switch method {
		case "GET", "POST", "DELETE", "PUT", "HEAD":
		default:
			method = "GET"
		}
		if strings.IndexFunc(token, func(r rune) bool { return r < 0x20 || r >= 0x7f }) >= 0 {
			token = "" // not a header value a client can send
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
		if err != nil {
			return
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 && !(path == "/healthz" && resp.StatusCode == 503) {
			t.Fatalf("%s %s (token %q): %d", method, path, token, resp.StatusCode)
		}
	})
}
