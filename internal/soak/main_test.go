package main

import (
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/recpol/recpol/runtime/store"
)

// pcmWAV is a 16-bit mono PCM WAV of ms milliseconds at 8 kHz.
func pcmWAV(ms int) []byte {
	data := make([]byte, 8*ms*2)
	for i := 0; i+1 < len(data); i += 2 {
		binary.LittleEndian.PutUint16(data[i:], uint16((i*37)%2000))
	}
	b := []byte("RIFF")
	b = binary.LittleEndian.AppendUint32(b, uint32(36+len(data)))
	b = append(b, "WAVEfmt "...)
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, 1) // PCM
	b = binary.LittleEndian.AppendUint16(b, 1) // mono
	b = binary.LittleEndian.AppendUint32(b, 8000)
	b = binary.LittleEndian.AppendUint32(b, 8000*2)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 16)
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// TestObjectPathIsTheStores: the harness names each recording's object
// as the store uploads it (plain, with a media_name, and with several
// recordings on one leg), so that uploads are compared by the names the
// server really receives.
func TestObjectPathIsTheStores(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, r.URL.Path)
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	dir := t.TempDir()
	st, err := store.Open(store.Config{Storage: filepath.Join(dir, "storage"), Spool: filepath.Join(dir, "spool")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go st.Run(ctx)

	base := store.Metadata{CallID: "call-1", InteractionID: "ia-1", Account: "acme", From: "+15550100", To: "2001",
		Start: time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC), SampleRate: 8000, Format: "wav", URL: srv.URL + "/rec/"}
	plain, media, several := base, base, base
	plain.RecordingID = "r-plain"
	media.RecordingID, media.CallID, media.MediaName = "r-media", "call-2", "greeting"
	several.RecordingID, several.CallID, several.SameLegRecordings = "r-several", "call-3", true
	var want []string
	for _, m := range []store.Metadata{plain, media, several} {
		f := filepath.Join(dir, m.RecordingID+".wav")
		if err := os.WriteFile(f, pcmWAV(500), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Finish(m, f); err != nil {
			t.Fatalf("Finish %s: %v", m.RecordingID, err)
		}
		want = append(want, objectPath(m))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("the store uploaded %q, the harness expects %q", got, want)
	}
}

// TestCountUploads: the same name answered 2xx twice is one object
// re-sent, not a duplicate; a second name for one leg, scope and origin,
// or a name no recording has, is a duplicated object; a recording whose
// name never got a 2xx is not uploaded (lost).
func TestCountUploads(t *testing.T) {
	m := func(id, call string, sameLeg bool) store.Metadata {
		return store.Metadata{RecordingID: id, CallID: call, Scope: "account", Origin: "policy", Format: "wav",
			SameLegRecordings: sameLeg, URL: "http://127.0.0.1:1/rec"}
	}
	metas := []store.Metadata{
		m("r1", "c1", false),                             // sent once
		m("r2", "c2", false),                             // sent three times
		m("r3", "c3", false),                             // never received
		m("r4", "c4", true),                              // received, and under the plain name too
		{RecordingID: "r5", CallID: "c5", Format: "wav"}, // no URL
	}
	received := map[string]int{
		"/rec/call_recording_c1.wav":    1,
		"/rec/call_recording_c2.wav":    3,
		"/rec/call_recording_c4_r4.wav": 1,
		"/rec/call_recording_c4.wav":    1, // no recording has it
		"/rec/call_recording_x.wav":     2, // no recording has it, re-sent too
	}
	r := &result{uploadsExpected: 4}
	r.countUploads(metas, received)
	if r.objects != 5 || r.resent != 3 || r.uploaded != 3 || r.lost() != 1 {
		t.Errorf("objects %d re-sent %d uploaded %d lost %d, want 5 3 3 1", r.objects, r.resent, r.uploaded, r.lost())
	}
	if want := []string{"/rec/call_recording_c4.wav", "/rec/call_recording_x.wav"}; !slices.Equal(r.strays, want) || r.dupObjects() != 2 {
		t.Errorf("strays %q (duplicated objects %d), want %q", r.strays, r.dupObjects(), want)
	}
	if len(r.extraObjects) != 0 || len(r.shared) != 0 {
		t.Errorf("second objects %q, shared names %q, want none", r.extraObjects, r.shared)
	}

	// Two recordings of one leg under two names (a duplicate stored with
	// SameLegRecordings), and two recordings under one name.
	metas = []store.Metadata{m("a1", "c1", false), m("a2", "c1", true), m("b1", "c2", false), m("b2", "c2", false)}
	received = map[string]int{"/rec/call_recording_c1.wav": 1, "/rec/call_recording_c1_a2.wav": 1, "/rec/call_recording_c2.wav": 1}
	r = &result{uploadsExpected: 4}
	r.countUploads(metas, received)
	if want := []string{"/rec/call_recording_c1_a2.wav"}; !slices.Equal(r.extraObjects, want) {
		t.Errorf("second objects %q, want %q", r.extraObjects, want)
	}
	if want := []string{"/rec/call_recording_c2.wav"}; !slices.Equal(r.shared, want) {
		t.Errorf("shared names %q, want %q", r.shared, want)
	}
	if r.uploaded != 4 || r.resent != 0 {
		t.Errorf("uploaded %d re-sent %d, want 4 0", r.uploaded, r.resent)
	}
}

// TestHistogramQuantiles: the quantiles are read from the cumulative
// buckets of every series of the histogram, as bucket bounds.
func TestHistogramQuantiles(t *testing.T) {
	const head = "# HELP recpol_start_delay_seconds x\n# TYPE recpol_start_delay_seconds histogram\n"
	for _, tc := range []struct {
		name, text, want string
	}{
		{"none", head, ""},
		{"one series", head +
			`recpol_start_delay_seconds_bucket{switch="fs",le="0.001"} 60` + "\n" +
			`recpol_start_delay_seconds_bucket{switch="fs",le="0.01"} 99` + "\n" +
			`recpol_start_delay_seconds_bucket{switch="fs",le="1"} 100` + "\n" +
			`recpol_start_delay_seconds_bucket{switch="fs",le="+Inf"} 100` + "\n" +
			`recpol_start_delay_seconds_sum{switch="fs"} 1.5` + "\n",
			"p50 <= 1ms, p99 <= 10ms, 100 starts"},
		{"two series summed, the tail past the last bound", head +
			`recpol_start_delay_seconds_bucket{switch="a",le="0.001"} 10` + "\n" +
			`recpol_start_delay_seconds_bucket{switch="a",le="5"} 10` + "\n" +
			`recpol_start_delay_seconds_bucket{switch="a",le="+Inf"} 10` + "\n" +
			`recpol_start_delay_seconds_bucket{switch="b",le="0.001"} 0` + "\n" +
			`recpol_start_delay_seconds_bucket{switch="b",le="5"} 0` + "\n" +
			`recpol_start_delay_seconds_bucket{switch="b",le="+Inf"} 10` + "\n",
			"p50 <= 1ms, p99 > 5s, 20 starts"},
		{"another histogram only", `other_bucket{le="1"} 5` + "\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := histogramQuantiles(tc.text, "recpol_start_delay_seconds"); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestLagSummary: quantiles of the sorted lags, the largest, and the
// count strictly later than the limit.
func TestLagSummary(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		lags []time.Duration
		want string
	}{
		{"none", nil, ""},
		{"one", ms(5), "p50 5ms, p90 5ms, p99 5ms, max 5ms; 0 of 1 later than 800ms"},
		{"unsorted, one at the limit", ms(900, 10, 800, 20, 30), "p50 30ms, p90 800ms, p99 800ms, max 900ms; 1 of 5 later than 800ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := lagSummary(tc.lags, 800*time.Millisecond); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCheckDisk: a run whose calls fit in the free space starts; one that
// would fill the disk is refused with what it needs and what is free.
func TestCheckDisk(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		calls float64
		ok    bool
	}{
		{1, true},
		{1e15, false}, // about 100 EB
	} {
		err := checkDisk(dir, tc.calls)
		if (err == nil) != tc.ok {
			t.Errorf("checkDisk(%g calls) = %v, want ok %v", tc.calls, err, tc.ok)
		}
	}
	if err := checkDisk(filepath.Join(dir, "missing"), 1); err == nil {
		t.Error("checkDisk of a missing directory: no error")
	}
}
