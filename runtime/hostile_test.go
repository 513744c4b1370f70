package runtime

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recpol/recpol/runtime/store"
)

// TestAPIHostileRequests: every /v1 route answers 401 without the right
// bearer token (none, another scheme, a prefix or an extension of the
// token, another case), and recording ids that try to leave the storage
// directory or smuggle characters are refused before any file is opened.
func TestAPIHostileRequests(t *testing.T) {
	h := startHarness(t, "../testdata/policies/agreement", "")
	srv := httptest.NewServer(h.rt.Handler())
	defer srv.Close()
	do := func(method, path string, hdr map[string]string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	routes := []struct{ method, path string }{
		{"GET", "/v1/recordings"}, {"GET", "/v1/recordings/abc"}, {"GET", "/v1/recordings/abc/media"},
		{"POST", "/v1/calls/abc/recording/mask"}, {"POST", "/v1/reload"},
	}
	// (Trailing whitespace is not part of a header value in HTTP: the
	// server never sees it.)
	for _, auth := range []string{"", "Bearer", "Bearer ", "bearer test-token", "Basic dGVzdC10b2tlbjo=", "Bearer test-toke",
		"Bearer test-tokenX", "Bearer  test-token", "Bearer TEST-TOKEN", "Token test-token", "Bearer test-token,test-token"} {
		for _, r := range routes {
			hdr := map[string]string{}
			if auth != "" {
				hdr["Authorization"] = auth
			}
			if code, body := do(r.method, r.path, hdr); code != http.StatusUnauthorized {
				t.Errorf("%s %s with Authorization %q: %d %s, want 401", r.method, r.path, auth, code, body)
			}
		}
	}
	ok := map[string]string{"Authorization": "Bearer test-token"}
	for _, id := range []string{"..", "..%2F..%2Fruntime.cue", "%2Fetc%2Fpasswd", "a%00b", "a%20b", "a%0Ab", "%7Bx%7D",
		"...", ".hidden", "a..b", strings.Repeat("a", 200), "%2E%2E"} {
		for _, suffix := range []string{"", "/media"} {
			code, body := do("GET", "/v1/recordings/"+id+suffix, ok)
			// The mux redirects a path with ".." to its clean form
			// (307): that serves nothing either.
			if code != http.StatusBadRequest && code != http.StatusNotFound && code != http.StatusTemporaryRedirect {
				t.Errorf("recording id %q%s: %d %s, want 400, 404 or 307", id, suffix, code, body)
			}
			if strings.Contains(body, "root:") || strings.Contains(body, "switches:") {
				t.Errorf("recording id %q%s leaked a file: %s", id, suffix, body)
			}
		}
	}
	// A symlink planted in the storage directory is not followed.
	acct := filepath.Join(h.dir, "storage", "acme")
	if err := os.MkdirAll(acct, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(h.dir, "runtime.cue"), filepath.Join(acct, "planted.json")); err != nil {
		t.Fatal(err)
	}
	if code, body := do("GET", "/v1/recordings/planted/media", ok); code == http.StatusOK || strings.Contains(body, "switches:") {
		t.Errorf("a planted symlink was served: %d %s", code, body)
	}
	for _, uuid := range []string{"a%20b", "a%0Ab", "x%7D%7Bapi", strings.Repeat("u", 200), "a;b"} {
		if code, body := do("POST", "/v1/calls/"+uuid+"/recording/mask", ok); code != http.StatusBadRequest {
			t.Errorf("call uuid %q: %d %s, want 400", uuid, code, body)
		}
	}
	for _, c := range h.srv.Commands() {
		if strings.Contains(c.Line, "a b") || strings.Contains(c.Line, "{api") {
			t.Errorf("a hostile uuid reached the switch: %q", c.Line)
		}
	}
}

// syncBuffer is a log sink for tests.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNoSecretsInLogs runs a runtime whose event-socket password, API
// token and upload credentials (basic auth and a header, read from the
// environment and a file) are all in use: a call is recorded and
// uploaded (the server refuses the first attempt), the API is called with
// wrong tokens, and debug logs are on. No secret appears in the logs.
func TestNoSecretsInLogs(t *testing.T) {
	var got struct {
		sync.Mutex
		auth, key []string
		n         int
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got.Lock()
		defer got.Unlock()
		got.n++
		got.auth = append(got.auth, r.Header.Get("Authorization"))
		got.key = append(got.key, r.Header.Get("X-Api-Key"))
		if got.n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer up.Close()
	secrets := map[string]string{"upload password": "upl-Secret-4a7f", "header key": "hdr-Secret-9c2e"}
	t.Setenv("RECPOL_TEST_UPLOAD_PW", secrets["upload password"])
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(secrets["header key"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	policyDir := filepath.Join(dir, "policy")
	if err := os.MkdirAll(policyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	pol := fmt.Sprintf(`package recpol
accounts: acme: call_recording: account: inbound: offnet: {enabled: true, format: "wav", url: %q}
`, up.URL+"/rec")
	if err := os.WriteFile(filepath.Join(policyDir, "p.cue"), []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	extra := fmt.Sprintf(`uploads: [{prefix: %q, username: "rec", password: "env:RECPOL_TEST_UPLOAD_PW", headers: {"X-Api-Key": "file:%s"}}]
log: level: "debug"
`, up.URL, keyFile)
	h := startHarnessOpts(t, policyDir, harnessOpts{extra: extra,
		log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	secrets["switch password"] = "ClueCon"
	secrets["api token"] = "test-token"
	h.rt.log.Info("runtime config", "config", *h.rt.cfg)

	srv := httptest.NewServer(h.rt.Handler())
	defer srv.Close()
	for _, tok := range []string{"test-token", "test-tokenX", "wrong"} {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/recordings", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	legs, err := h.srv.StartCall(twoLegCall("secrets", 5000))
	if err != nil {
		t.Fatal(err)
	}
	_ = legs
	h.srv.Advance(1010 * time.Millisecond)
	waitFor(t, "a recording to start", func() bool { return startsSent(h.srv) >= 1 })
	time.Sleep(50 * time.Millisecond)
	h.srv.Advance(5 * time.Second)
	h.waitFinished(t, 1)
	waitFor(t, "the upload to succeed", func() bool {
		got.Lock()
		defer got.Unlock()
		return got.n >= 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for h.rt.Store.Pending() > 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	got.Lock()
	if got.key[len(got.key)-1] != secrets["header key"] || !strings.HasPrefix(got.auth[len(got.auth)-1], "Basic ") {
		t.Errorf("the upload did not carry its credentials: %q %q", got.auth, got.key)
	}
	got.Unlock()
	h.stop()
	out := logs.String()
	if len(out) < 200 {
		t.Fatalf("too few logs to check (%d bytes)", len(out))
	}
	if !strings.Contains(out, "upload") {
		t.Errorf("the logs do not mention the upload; nothing was checked:\n%s", out)
	}
	for what, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the %s appears in the logs", what)
		}
	}
	if _, err := store.Open(store.Config{Storage: filepath.Join(h.dir, "storage"), Spool: filepath.Join(h.dir, "spool", "store")}); err != nil {
		t.Fatal(err)
	}
}
