package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/recpol/recpol/callstate"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-audio/wav"
	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/runtime/store"
	"github.com/recpol/recpol/scenario"
)

// TestAPI drives a call through the runtime, then the HTTP API: the token
// is required, a call's recording is started and masked through the API,
// and the stored recording is listed and downloaded; hostile ids are
// refused.
func TestAPI(t *testing.T) {
	h := startHarness(t, "../testdata/policies/agreement", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, err := h.rt.HTTPAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, token string) (int, []byte) {
		t.Helper()
		return callAPI(t, ctx, addr, method, path, token)
	}
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/metrics", "", 200},
		{"GET", "/v1/recordings", "", 401},
		{"GET", "/v1/recordings", "wrong", 401},
		{"GET", "/v1/recordings", "test-token-but-longer", 401},
		{"GET", "/v1/recordings", "test-token", 200},
		{"GET", "/v1/recordings/..%2F..%2Fruntime.cue", "test-token", 400},
		{"GET", "/v1/recordings/does-not-exist", "test-token", 404},
		{"GET", "/v1/recordings?from=yesterday", "test-token", 400},
		{"GET", "/v1/recordings?account=a..b", "test-token", 200},
		{"GET", "/v1/recordings?account=a%2Fb", "test-token", 400},
		{"GET", "/v1/recordings?limit=-1", "test-token", 400},
		{"GET", "/v1/recordings?cursor=%00", "test-token", 400},
		{"GET", "/v1/calls", "test-token", 200},
		{"GET", "/livez", "", 200},
		{"POST", "/v1/calls/no-such-call/recording/start", "test-token", 404},
		{"POST", "/v1/calls/x/recording/explode", "test-token", 400},
		{"POST", "/v1/calls/bad%20uuid/recording/stop", "test-token", 400},
	} {
		if got, body := do(tc.method, tc.path, tc.token); got != tc.want {
			t.Errorf("%s %s (token %q): %d %s, want %d", tc.method, tc.path, tc.token, got, body, tc.want)
		}
	}

	// A call nobody's policy records; the API records and masks it.
	legs, err := h.srv.StartCall(scenario.Call{ID: "api", Legs: []scenario.Leg{
		{Name: "a", CallerIDNumber: "3001", DestinationNumber: "2002",
			Variables: map[string]string{"recpol_account": "acme", "recpol_device": "agent-2", "recpol_network": "onnet"}},
	}, Steps: []scenario.Step{{AtMS: 0, Do: "create", Leg: "a"}, {AtMS: 100, Do: "answer", Leg: "a"}, {AtMS: 20000, Do: "hangup", Leg: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	h.srv.Advance(100 * time.Millisecond)
	var started struct {
		Recordings []string `json:"recordings"`
	}
	waitFor(t, "the runtime to see the call", func() bool {
		code, body := do("POST", "/v1/calls/"+legs["a"]+"/recording/start", "test-token")
		return code == http.StatusAccepted && json.Unmarshal(body, &started) == nil
	})
	if len(started.Recordings) != 1 {
		t.Fatalf("start answered recordings %q, want the one started", started.Recordings)
	}
	waitFor(t, "RECORD_START", func() bool { return h.rt.switches[0].engine.runningOnSwitch() == 1 })
	type liveCalls struct {
		Calls []struct {
			Switch     string `json:"switch"`
			Account    string `json:"account"`
			Legs       []struct{ UUID string }
			Recordings []struct {
				RecordingID string `json:"recording_id"`
				Leg, State  string
				Masked      bool
			}
		}
	}
	var live liveCalls
	var code int
	var body []byte
	// The engine's running set and the state machine's view are updated by
	// one event, not atomically together: wait for the view to say running.
	waitFor(t, "GET /v1/calls to show the recording running", func() bool {
		code, body = do("GET", "/v1/calls", "test-token")
		live = liveCalls{}
		return code == 200 && json.Unmarshal(body, &live) == nil && len(live.Calls) == 1 &&
			len(live.Calls[0].Recordings) == 1 && live.Calls[0].Recordings[0].State == "running"
	})
	if c, r := live.Calls[0], live.Calls[0].Recordings[0]; c.Account != "acme" || len(c.Legs) != 1 || c.Legs[0].UUID != legs["a"] ||
		r.RecordingID != started.Recordings[0] || r.Leg != legs["a"] || r.State != "running" || r.Masked {
		t.Errorf("live call: %s", body)
	}
	h.srv.Advance(5 * time.Second)
	if code, body := do("POST", "/v1/calls/"+legs["a"]+"/recording/mask", "test-token"); code != http.StatusAccepted {
		t.Fatalf("mask: %d %s", code, body)
	}
	if code, body = do("GET", "/v1/calls", "test-token"); code != 200 || json.Unmarshal(body, &live) != nil || len(live.Calls) != 1 ||
		len(live.Calls[0].Recordings) != 1 || !live.Calls[0].Recordings[0].Masked {
		t.Errorf("live calls after the mask: %d %s", code, body)
	}
	waitFor(t, "the mask to reach the switch", func() bool { return countCommands(h.srv, " mask ") == 1 })
	h.srv.Advance(15 * time.Second)
	h.waitFinished(t, 1)

	code, body = do("GET", "/v1/recordings?account=acme", "test-token")
	var list struct {
		Items []struct {
			RecordingID  string `json:"recording_id"`
			Origin       string `json:"origin"`
			MaskedRanges []struct {
				StartMS int64 `json:"start_ms"`
			} `json:"masked_ranges"`
		} `json:"items"`
	}
	if code != 200 || json.Unmarshal(body, &list) != nil || len(list.Items) != 1 {
		t.Fatalf("list: %d %s", code, body)
	}
	r := list.Items[0]
	if r.RecordingID != started.Recordings[0] {
		t.Errorf("stored recording %s, the start answered %s", r.RecordingID, started.Recordings[0])
	}
	if r.Origin != "api" || len(r.MaskedRanges) != 1 {
		t.Errorf("recording: origin %q, masked %v; want api, one masked range", r.Origin, r.MaskedRanges)
	}
	code, media := do("GET", "/v1/recordings/"+r.RecordingID+"/media", "test-token")
	if code != 200 {
		t.Fatalf("media: %d", code)
	}
	d := wav.NewDecoder(strings.NewReader(string(media)))
	if !d.IsValidFile() {
		t.Errorf("the media is not a WAV file (%d bytes)", len(media))
	}
}

// TestTokens: each API token sees and acts only within its scope and
// rights; a device's token cannot stop a policy recording, an account's
// can, and the recording's metadata says who stopped it.
func TestTokens(t *testing.T) {
	h := startHarness(t, "../testdata/policies/agreement", `http: tokens: {
	"acme-read": {secret: "s-acme-read", account: "acme", rights: ["read"]}
	"acme-ops": {secret: "s-acme-ops", account: "acme", rights: ["read", "control", "media"]}
	"agent-2": {secret: "s-agent-2", account: "acme", device: "agent-2", rights: ["read", "control"]}
	"beta": {secret: "s-beta", account: "beta", rights: ["read", "media", "control", "delete"]}
}`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, err := h.rt.HTTPAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, token string) (int, string) {
		t.Helper()
		code, body := callAPI(t, ctx, addr, method, path, token)
		return code, string(body)
	}
	// A customer calls agent-2: the account records the A-leg, the
	// agent's user records agent-2's leg.
	legs, err := h.srv.StartCall(scenario.Call{ID: "tokens", Legs: []scenario.Leg{
		{Name: "a", CallerIDNumber: "+15550001111", DestinationNumber: "2002",
			Variables: map[string]string{"recpol_account": "acme", "recpol_network": "offnet"}},
		{Name: "b", Parent: "a", DestinationNumber: "agent-2",
			Variables: map[string]string{"recpol_account": "acme", "recpol_device": "agent-2", "recpol_network": "onnet"}},
	}, Steps: []scenario.Step{
		{AtMS: 0, Do: "create", Leg: "a"}, {AtMS: 10, Do: "create", Leg: "b"},
		{AtMS: 100, Do: "answer", Leg: "b"}, {AtMS: 100, Do: "answer", Leg: "a"}, {AtMS: 100, Do: "bridge", Leg: "a", Other: "b"},
		{AtMS: 20000, Do: "hangup", Leg: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	h.srv.Advance(100 * time.Millisecond)
	waitFor(t, "both policy recordings", func() bool { return h.rt.switches[0].engine.runningOnSwitch() == 2 })
	// The catalog lists them while they run.
	var active struct {
		Items []struct {
			RecordingID string `json:"recording_id"`
		} `json:"items"`
	}
	waitFor(t, "the running recordings in the catalog", func() bool {
		code, body := do("GET", "/v1/recordings?state=active", "s-acme-read")
		return code == 200 && strings.Count(body, `"state": "active"`) == 2 && json.Unmarshal([]byte(body), &active) == nil
	})
	if code, body := do("GET", "/v1/recordings/"+active.Items[0].RecordingID, "s-acme-read"); code != 200 || !strings.Contains(body, `"state": "active"`) {
		t.Errorf("a running recording's metadata: %d %s", code, body)
	}
	a, b := legs["a"], legs["b"]
	for _, tc := range []struct {
		name, method, path, token string
		want                      int
	}{
		{"a read-only token cannot act", "POST", "/v1/calls/" + a + "/recording/stop", "s-acme-read", 403},
		{"another account's token does not see the call", "POST", "/v1/calls/" + a + "/recording/stop", "s-beta", 404},
		{"a device's token does not see another leg", "POST", "/v1/calls/" + a + "/recording/mask", "s-agent-2", 404},
		{"a device's token cannot stop its leg's policy recording", "POST", "/v1/calls/" + b + "/recording/stop", "s-agent-2", 403},
		{"a device's token starts an API recording of its leg", "POST", "/v1/calls/" + b + "/recording/start", "s-agent-2", 202},
		{"a token of one account cannot reload the policy", "POST", "/v1/reload", "s-acme-ops", 403},
		{"another account's token cannot list acme", "GET", "/v1/recordings?account=acme", "s-beta", 403},
		{"a read-only token cannot download media", "GET", "/v1/recordings/x/media", "s-acme-read", 403},
	} {
		if got, body := do(tc.method, tc.path, tc.token); got != tc.want {
			t.Errorf("%s: %s %s: %d %s, want %d", tc.name, tc.method, tc.path, got, body, tc.want)
		}
	}
	// Running on the switch (its RECORD_START handled), not only asked:
	// a start the switch runs after the clock's advance below would make
	// a recording too short to keep.
	waitFor(t, "the API recording", func() bool { return h.rt.switches[0].engine.runningOnSwitch() == 3 })
	// Live calls, by scope: the account's and the device's tokens see the
	// call, another account's does not.
	for token, want := range map[string]int{"s-acme-read": 1, "s-agent-2": 1, "s-beta": 0, "test-token": 1} {
		code, body := do("GET", "/v1/calls", token)
		if code != 200 || strings.Count(body, `"interaction_id"`) != want {
			t.Errorf("GET /v1/calls with %s: %d %s, want %d calls", token, code, body, want)
		}
	}
	h.srv.Advance(2 * time.Second)
	// The device's stop ends its API recording only.
	if code, body := do("POST", "/v1/calls/"+b+"/recording/stop", "s-agent-2"); code != 202 {
		t.Fatalf("device stop: %d %s", code, body)
	}
	waitFor(t, "the API recording to stop", func() bool { return len(h.rt.switches[0].engine.running()) == 2 })
	h.srv.Advance(5 * time.Second)
	// The account's token stops the compliance recording of the A-leg.
	if code, body := do("POST", "/v1/calls/"+a+"/recording/stop", "s-acme-ops"); code != 202 {
		t.Fatalf("account stop: %d %s", code, body)
	}
	h.srv.Advance(15 * time.Second)
	h.waitFinished(t, 3)

	list := func(token string) map[string]string { // origin -> stopped_by
		t.Helper()
		code, body := do("GET", "/v1/recordings", token)
		var out struct {
			Items []struct {
				Origin    string `json:"origin"`
				StoppedBy string `json:"stopped_by"`
			} `json:"items"`
		}
		if code != 200 || json.Unmarshal([]byte(body), &out) != nil {
			t.Fatalf("list: %d %s", code, body)
		}
		m := map[string]string{}
		for _, r := range out.Items {
			m[r.Origin] = r.StoppedBy
		}
		return m
	}
	if diff := cmp.Diff(map[string]string{
		"inbound from offnet to account":  "api token acme-ops",
		"inbound from offnet to endpoint": "",
		"api":                             "api token agent-2",
	}, list("s-acme-read")); diff != "" {
		t.Errorf("acme's recordings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{
		"inbound from offnet to endpoint": "",
		"api":                             "api token agent-2",
	}, list("s-agent-2")); diff != "" {
		t.Errorf("agent-2's recordings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{}, list("s-beta")); diff != "" {
		t.Errorf("beta's recordings (-want +got):\n%s", diff)
	}
}

// TestUploadDeadLetter: an upload answered 404 is dead-lettered on its
// first answer, /healthz says degraded and names it, the metrics count it,
// and once the target is fixed a retry through the API uploads it once.
func TestUploadDeadLetter(t *testing.T) {
	var mu sync.Mutex
	fixed, got := false, map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !fixed {
			http.Error(w, "no such bucket", http.StatusNotFound)
			return
		}
		io.Copy(io.Discard, req.Body)
		got[req.URL.Path]++
	}))
	defer srv.Close()
	policy := t.TempDir()
	if err := os.WriteFile(filepath.Join(policy, "p.cue"), fmt.Appendf(nil, `package recpol
accounts: acme: call_recording: account: inbound: offnet: {enabled: true, format: "wav", url: %q}
`, srv.URL+"/rec"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := startHarness(t, policy, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, err := h.rt.HTTPAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path string) (int, string) {
		t.Helper()
		code, body := callAPI(t, ctx, addr, method, path, "test-token")
		return code, string(body)
	}
	if code, body := do("GET", "/healthz"); code != 200 {
		t.Fatalf("healthz before: %d %s", code, body)
	}
	if err := h.srv.Play(ctx, &scenario.Scenario{Calls: []scenario.Call{{ID: "dl", Legs: []scenario.Leg{
		{Name: "a", CallerIDNumber: "+15550001111", DestinationNumber: "2002",
			Variables: map[string]string{"recpol_account": "acme", "recpol_network": "offnet"}}},
		Steps: []scenario.Step{{AtMS: 0, Do: "create", Leg: "a"}, {AtMS: 100, Do: "answer", Leg: "a"}, {AtMS: 3000, Do: "hangup", Leg: "a"}}}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the dead letter", func() bool { return h.rt.Store.Health().Dead == 1 })
	code, body := do("GET", "/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"degraded"`) || !strings.Contains(body, "1 uploads dead-lettered") {
		t.Errorf("healthz with a dead letter: %d %s", code, body)
	}
	if n := counterValue(h.rt.Metrics.Uploads.WithLabelValues("dead")); n != 1 {
		t.Errorf("recpol_uploads_total{outcome=dead} = %v", n)
	}
	code, body = do("GET", "/v1/uploads?state=dead")
	var dead struct {
		Items []struct {
			RecordingID string `json:"recording_id"`
			Attempts    int    `json:"attempts"`
			LastError   string `json:"last_error"`
		} `json:"items"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &dead) != nil || len(dead.Items) != 1 || dead.Items[0].Attempts != 1 ||
		!strings.Contains(dead.Items[0].LastError, "404") {
		t.Fatalf("dead uploads: %d %s", code, body)
	}
	mu.Lock()
	fixed = true
	mu.Unlock()
	if code, body := do("POST", "/v1/recordings/"+dead.Items[0].RecordingID+"/upload"); code != http.StatusAccepted {
		t.Fatalf("retry: %d %s", code, body)
	}
	waitFor(t, "the retried upload", func() bool { return h.rt.Store.Health() == store.UploadHealth{} })
	mu.Lock()
	if len(got) != 1 {
		t.Errorf("uploads received %v, want one", got)
	}
	mu.Unlock()
	if code, body := do("GET", "/healthz"); code != 200 {
		t.Errorf("healthz after the retry: %d %s", code, body)
	}
	if code, _ := do("POST", "/v1/recordings/"+dead.Items[0].RecordingID+"/upload"); code != http.StatusConflict {
		t.Errorf("a second retry: %d, want 409", code)
	}
}

// TestCatalogAPI: the recordings are searched a page at a time with an
// opaque cursor, by call and by interaction; a held recording cannot be
// deleted, a deleted one is gone from storage and listed only as deleted;
// every hold and deletion is in the audit trail.
func TestCatalogAPI(t *testing.T) {
	h := startHarness(t, "../testdata/policies/agreement", "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addr, err := h.rt.HTTPAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path string) (int, []byte) {
		t.Helper()
		return callAPI(t, ctx, addr, method, path, "test-token")
	}
	// Five customer calls, one after the other: the account records each.
	const n = 5
	sc := &scenario.Scenario{}
	for i := range n {
		sc.Calls = append(sc.Calls, scenario.Call{ID: fmt.Sprintf("c%d", i), Legs: []scenario.Leg{
			{Name: "a", CallerIDNumber: "+1555000111" + strconv.Itoa(i), DestinationNumber: "2002",
				Variables: map[string]string{"recpol_account": "acme", "recpol_network": "offnet"}}},
			Steps: []scenario.Step{{AtMS: int64(i) * 1000, Do: "create", Leg: "a"}, {AtMS: int64(i)*1000 + 100, Do: "answer", Leg: "a"},
				{AtMS: int64(i)*1000 + 2100, Do: "hangup", Leg: "a"}}})
	}
	if err := h.srv.Play(ctx, sc); err != nil {
		t.Fatal(err)
	}
	h.waitFinished(t, n)

	type item struct {
		RecordingID   string `json:"recording_id"`
		CallID        string `json:"call_id"`
		InteractionID string `json:"interaction_id"`
		State         string `json:"state"`
		Hold          bool   `json:"hold"`
		Start         time.Time
	}
	type page struct {
		Items      []item `json:"items"`
		NextCursor string `json:"next_cursor"`
	}
	get := func(path string) page {
		t.Helper()
		code, body := do("GET", path)
		var p page
		if code != 200 || json.Unmarshal(body, &p) != nil {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		return p
	}
	var all []item
	pages := 0
	for cursor := ""; ; {
		p := get("/v1/recordings?account=acme&limit=2&cursor=" + url.QueryEscape(cursor))
		pages++
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if len(all) != n || pages != 3 {
		t.Fatalf("%d recordings in %d pages, want %d in 3", len(all), pages, n)
	}
	for i := 1; i < n; i++ {
		if all[i].Start.Before(all[i-1].Start) || all[i].RecordingID == all[i-1].RecordingID {
			t.Errorf("page order: %v then %v", all[i-1], all[i])
		}
	}
	one := all[2]
	if p := get("/v1/recordings?call_id=" + one.CallID); len(p.Items) != 1 || p.Items[0].RecordingID != one.RecordingID {
		t.Errorf("by call id: %+v", p.Items)
	}
	code, body := do("GET", "/v1/interactions/"+one.InteractionID)
	if code != 200 || !strings.Contains(string(body), one.RecordingID) {
		t.Errorf("interaction: %d %s", code, body)
	}
	if code, _ := do("GET", "/v1/recordings?cursor=not-a-cursor"); code != 400 {
		t.Errorf("a bad cursor: %d, want 400", code)
	}
	if code, _ := do("GET", "/v1/recordings?limit=5000"); code != 400 {
		t.Errorf("limit 5000: %d, want 400", code)
	}

	_, media, err := h.rt.Store.Get(one.RecordingID)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		method, path string
		want         int
	}{
		{"POST", "/v1/recordings/" + one.RecordingID + "/hold", 200},
		{"DELETE", "/v1/recordings/" + one.RecordingID, 409},
		{"DELETE", "/v1/recordings/" + one.RecordingID + "/hold", 200},
		{"DELETE", "/v1/recordings/" + one.RecordingID, 200},
		{"GET", "/v1/recordings/" + one.RecordingID, 404},
		{"DELETE", "/v1/recordings/" + one.RecordingID, 404},
	} {
		if code, body := do(step.method, step.path); code != step.want {
			t.Errorf("%s %s: %d %s, want %d", step.method, step.path, code, body, step.want)
		}
	}
	if _, err := os.Stat(media); !os.IsNotExist(err) {
		t.Errorf("the deleted recording's media is still there: %v", err)
	}
	if p := get("/v1/recordings?state=deleted"); len(p.Items) != 1 || p.Items[0].RecordingID != one.RecordingID {
		t.Errorf("deleted recordings: %+v", p.Items)
	}
	if p := get("/v1/recordings?account=acme"); len(p.Items) != n-1 {
		t.Errorf("%d recordings listed after the deletion, want %d", len(p.Items), n-1)
	}
	code, body = do("GET", "/v1/audit?recording_id="+one.RecordingID)
	var audit struct {
		Items []struct{ Who, Action, Result string } `json:"items"`
	}
	if code != 200 || json.Unmarshal(body, &audit) != nil {
		t.Fatalf("audit: %d %s", code, body)
	}
	want := []struct{ Who, Action, Result string }{
		{"token", "hold", "ok"}, {"token", "delete", "refused: on legal hold"}, {"token", "release hold", "ok"}, {"token", "delete", "ok"},
	}
	if diff := cmp.Diff(want, audit.Items); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

// callAPI sends one request to the runtime's API at addr, with a bearer
// token unless token is empty, and returns the status and the body.
func callAPI(t *testing.T, ctx context.Context, addr, method, path, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// runningOnSwitch counts the recordings whose RECORD_START the engine
// handled: running on the switch, not only asked for.
func (e *engine) runningOnSwitch() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, r := range e.byPath {
		if r.State == callstate.Running {
			n++
		}
	}
	return n
}
