package runtime

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-audio/wav"

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
	base := "http://" + addr
	do := func(method, path, token string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, base+path, nil)
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
	waitFor(t, "the runtime to see the call", func() bool {
		code, _ := do("POST", "/v1/calls/"+legs["a"]+"/recording/start", "test-token")
		return code == http.StatusAccepted
	})
	waitFor(t, "RECORD_START", func() bool { return len(h.rt.switches[0].engine.running()) == 1 })
	h.srv.Advance(5 * time.Second)
	if code, body := do("POST", "/v1/calls/"+legs["a"]+"/recording/mask", "test-token"); code != http.StatusAccepted {
		t.Fatalf("mask: %d %s", code, body)
	}
	time.Sleep(50 * time.Millisecond) // the mask command reaches the switch
	h.srv.Advance(15 * time.Second)
	h.waitFinished(t, 1)

	code, body := do("GET", "/v1/recordings?account=acme", "test-token")
	var list struct {
		Recordings []struct {
			RecordingID  string `json:"recording_id"`
			Origin       string `json:"origin"`
			MaskedRanges []struct {
				StartMS int64 `json:"start_ms"`
			} `json:"masked_ranges"`
		} `json:"recordings"`
	}
	if code != 200 || json.Unmarshal(body, &list) != nil || len(list.Recordings) != 1 {
		t.Fatalf("list: %d %s", code, body)
	}
	r := list.Recordings[0]
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
