package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/fakeswitch"
	"github.com/recpol/recpol/scenario"
)

// healthBody is what /healthz answers.
type healthBody struct {
	Status   string   `json:"status"`
	Reasons  []string `json:"reasons"`
	Build    struct{ Version, Go string }
	Switches []struct {
		Name, State, Reason string
		Connected           bool
	} `json:"switches"`
}

func getHealth(t *testing.T, ctx context.Context, addr string) (int, healthBody) {
	t.Helper()
	code, b := callAPI(t, ctx, addr, "GET", "/healthz", "")
	var h healthBody
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("healthz: %v: %s", err, b)
	}
	return code, h
}

// TestHealthSwitchUnreachable: a runtime whose only switch cannot be
// reached is not ready (503, the switch named with the reason), is alive
// (/livez 200), and its metrics show every alertable series at zero and
// the build.
func TestHealthSwitchUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	srv := fakeswitch.New(fakeswitch.Config{Password: "ClueCon", RecordingsDir: t.TempDir()})
	h := startHarnessOpts(t, "../testdata/policies/agreement", harnessOpts{srv: srv, addr: dead, standby: true})
	ctx, addr := h.apiAddr(t, 30*time.Second)
	var code int
	var body healthBody
	waitFor(t, "a failed connection attempt in /healthz", func() bool {
		code, body = getHealth(t, ctx, addr)
		return len(body.Switches) == 1 && strings.Contains(body.Switches[0].Reason, "refused")
	})
	if code != http.StatusServiceUnavailable || body.Status != "degraded" || body.Switches[0].State != "down" || body.Switches[0].Connected {
		t.Errorf("healthz with the switch unreachable: %d %+v", code, body)
	}
	if len(body.Reasons) != 1 || !strings.HasPrefix(body.Reasons[0], "switch "+body.Switches[0].Name+" not connected: ") {
		t.Errorf("reasons = %q, want the switch named", body.Reasons)
	}
	if body.Build.Version == "" || body.Build.Go == "" {
		t.Errorf("healthz names no build: %+v", body.Build)
	}
	if code, b := callAPI(t, ctx, addr, "GET", "/livez", ""); code != http.StatusOK {
		t.Errorf("livez: %d %s", code, b)
	}
	_, metrics := callAPI(t, ctx, addr, "GET", "/metrics", "")
	for _, want := range []string{
		`recpol_recordings_total{event="failed"} 0`,
		`recpol_recordings_total{event="started"} 0`,
		`recpol_recordings_finished_total{outcome="error"} 0`,
		`recpol_policy_reloads_total{outcome="failed"} 0`,
		`recpol_switch_up{switch="` + body.Switches[0].Name + `"} 0`,
		`recpol_build_info{goversion="`,
	} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestHealthReloadFailed: a policy that stops compiling makes /healthz
// degraded with the reason while the previous table stays live; fixing
// it makes it ready again.
func TestHealthReloadFailed(t *testing.T) {
	h := startHarness(t, "../testdata/policies/agreement", "")
	ctx, addr := h.apiAddr(t, 30*time.Second)
	if code, body := getHealth(t, ctx, addr); code != http.StatusOK || body.Status != "ok" || body.Switches[0].State != "connected" {
		t.Fatalf("healthz with the switch up: %d %+v", code, body)
	}
	bad := filepath.Join(h.dir, "policies", "broken.cue")
	if err := os.WriteFile(bad, []byte("package recpol\naccounts: acme: call_recording: account: any: any: enabled: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var code int
	var body healthBody
	waitFor(t, "the failed reload in /healthz", func() bool {
		code, body = getHealth(t, ctx, addr)
		return code == http.StatusServiceUnavailable
	})
	if len(body.Reasons) != 1 || !strings.Contains(body.Reasons[0], "the last policy reload failed") || !strings.Contains(body.Reasons[0], "broken.cue") {
		t.Errorf("reasons = %q, want the failed reload and its file", body.Reasons)
	}
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready again after the fix", func() bool {
		code, _ = getHealth(t, ctx, addr)
		return code == http.StatusOK
	})
}

// duplicateKeys returns the keys that occur more than once in one JSON
// object (at the top level, where slog writes a record's attributes).
func duplicateKeys(line string) ([]string, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var dups []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k := fmt.Sprint(tok)
		if seen[k] {
			dups = append(dups, k)
		}
		seen[k] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
	}
	return dups, nil
}

// TestLogRecords: a recorded call and a clean shutdown, logged as JSON:
// no record repeats a key, a recording logs one INFO line when it starts
// and one when it ends (no empty reason), and nothing at WARN or above.
func TestLogRecords(t *testing.T) {
	var buf syncBuffer
	lg := slog.New(slog.NewJSONHandler(&buf, nil))
	policy := t.TempDir()
	if err := os.WriteFile(filepath.Join(policy, "p.cue"), []byte(`package recpol
accounts: acme: call_recording: account: inbound: offnet: {enabled: true, format: "wav"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	h := startHarnessOpts(t, policy, harnessOpts{log: lg})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.srv.Play(ctx, &scenario.Scenario{Calls: []scenario.Call{{ID: "log", Legs: []scenario.Leg{
		{Name: "a", CallerIDNumber: "+15550001111", DestinationNumber: "2002",
			Variables: map[string]string{"recpol_account": "acme", "recpol_network": "offnet"}}},
		Steps: []scenario.Step{{AtMS: 0, Do: "create", Leg: "a"}, {AtMS: 100, Do: "answer", Leg: "a"}, {AtMS: 3000, Do: "hangup", Leg: "a"}}}}}); err != nil {
		t.Fatal(err)
	}
	h.waitFinished(t, 1)
	h.stop()

	msgs := map[string]int{}
	var started, finished map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		dups, err := duplicateKeys(line)
		if err != nil {
			t.Fatalf("not a JSON record: %v: %s", err, line)
		}
		if len(dups) > 0 {
			t.Errorf("keys %q repeated in %s", dups, line)
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if lvl := rec["level"]; lvl != "INFO" && lvl != "DEBUG" {
			t.Errorf("a %v record: %s", lvl, line)
		}
		msg, _ := rec["msg"].(string)
		msgs[msg]++
		switch msg {
		case "recording starting":
			started = rec
		case "recording finished":
			finished = rec
		}
	}
	if diff := cmp.Diff(map[string]int{"recording starting": 1, "recording finished": 1},
		map[string]int{"recording starting": msgs["recording starting"], "recording finished": msgs["recording finished"]}); diff != "" {
		t.Errorf("recording log lines (-want +got):\n%s", diff)
	}
	if started == nil || finished == nil {
		t.Fatalf("missing start or end line:\n%s", buf.String())
	}
	if started["recording"] != finished["recording"] || started["recording"] == "" {
		t.Errorf("start and end name different recordings: %v, %v", started["recording"], finished["recording"])
	}
	for _, k := range []string{"account", "call", "leg", "scope", "origin", "switch"} {
		if _, ok := started[k]; !ok {
			t.Errorf("the start line lacks %q: %v", k, started)
		}
	}
	if finished["outcome"] != "stored" {
		t.Errorf("outcome = %v", finished["outcome"])
	}
	if _, ok := finished["reason"]; ok {
		t.Errorf("a stored recording's end line carries a reason: %v", finished)
	}
	if msgs["switch disconnected: the runtime is stopping"] != 1 {
		t.Errorf("the shutdown is not logged at INFO: %v", msgs)
	}
}

// TestIdleConnectionsFlood: hundreds of idle connections (more than the
// server's limit) do not stop the API: a request is answered within the
// header timeout that frees the idle ones. (That the runtime holds at most
// httpMaxConns of them is limitListener's design; this test does not
// count them.)
func TestIdleConnectionsFlood(t *testing.T) {
	h := startHarness(t, "../testdata/policies/agreement", "")
	ctx, addr := h.apiAddr(t, 30*time.Second)
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range httpMaxConns + 150 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("after %d connections: %v", len(idle), err)
		}
		idle = append(idle, c)
	}
	start := time.Now()
	code, _ := getHealth(t, ctx, addr)
	if code != http.StatusOK {
		t.Errorf("healthz during the flood: %d", code)
	}
	if took := time.Since(start); took > httpReadHeaderTimeout+5*time.Second {
		t.Errorf("healthz answered after %v", took)
	}
}

// apiAddr returns a context bounding the test's API calls (cancelled when
// the test ends) and the runtime's HTTP address.
func (h *harness) apiAddr(t *testing.T, d time.Duration) (context.Context, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	addr, err := h.rt.HTTPAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, addr
}
