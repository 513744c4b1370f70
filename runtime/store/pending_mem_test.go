package store

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/recpol/recpol/runtime/catalog"
)

// fullMeta is metadata shaped like the runtime's: every field it sets,
// a provenance for each setting, masked ranges.
func fullMeta(id string, i int) Metadata {
	m := meta(id)
	m.CallID = fmt.Sprintf("2f0c6a4e-4b1d-4f7e-9c1a-%012d", i)
	m.InteractionID = fmt.Sprintf("9a1b2c3d-0000-4000-8000-%012d", i)
	m.Endpoint, m.Owner = "device:desk-1001", "user:alice"
	m.Scope, m.Leg, m.Origin, m.Direction = "callee", "b", "inbound offnet", "inbound"
	m.PolicyVersion = "sha256:5d41402abc4b2a76b9719d911017c592ae0f0c7b4d5e6f708192a3b4c5d6e7f8"
	m.Switch = "fs-node-1"
	m.URL = "http://127.0.0.1:9/recordings/acme/"
	m.MaskedRanges = []Range{{StartMS: 100, EndMS: 200}}
	m.Provenance = map[string]string{}
	for _, k := range []string{"enabled", "record_sample_rate", "record_min_sec", "time_limit", "format", "url",
		"method", "record_on_answer", "record_on_bridge", "should_follow_transfer", "announce", "media_name",
		"stereo", "channels", "retention_days", "legal_hold", "mask_dtmf", "pause_on_hold", "upload", "notes"} {
		m.Provenance[k] = "account acme: endpoints/desk-1001.cue:12:3 (" + k + ")"
	}
	return m
}

// pendingHeap finishes n recordings whose uploads stay pending (Run is
// not started), with Store.holdMax set to hold, and returns the live heap
// the queue holds and how many of its entries hold their journal: the
// heap after a GC with the queue, less the heap after a GC once the queue
// (pending and the scheduler) is dropped. The store is of no further use.
func pendingHeap(tb testing.TB, n, hold int, mk func(id string, i int) Metadata) (bytes float64, held int) {
	tb.Helper()
	e := newEnv(tb)
	os.MkdirAll(e.spool+"/rec", 0o700)
	s := e.open(tb)
	s.holdMax = hold
	wav := pcmWAV(8000, 100)
	for i := range n {
		m := mk(fmt.Sprintf("rec-%08d", i), i)
		if m.URL == "" {
			m.URL = "http://127.0.0.1:9/up/"
		}
		if err := os.WriteFile(e.src(m), wav, 0o600); err != nil {
			tb.Fatal(err)
		}
		if r, err := s.Finish(m, e.src(m)); err != nil || !r.Queued {
			tb.Fatalf("Finish: %+v %v", r, err)
		}
	}
	s.syncSidecars()
	if got := s.Pending(); got != n {
		tb.Fatalf("Pending() = %d, want %d", got, n)
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	with := heap()
	s.mu.Lock()
	for _, e := range s.pending {
		if e.j != nil {
			held++
		}
	}
	s.pending = map[string]*entry{}
	s.sched = sched{}
	s.parked = map[string][]*entry{}
	s.mu.Unlock()
	without := heap()
	runtime.KeepAlive(s)
	return float64(with) - float64(without), held
}

// Bounds of the live heap of the upload queue: per pending upload that
// does not hold its journal, and per one that does. An entry holding the
// recording's metadata (1.4 KB with the least of it, 4.5 KB shaped like
// the runtime's) exceeds the first; the slim entry is well under it.
const (
	maxPendingBytes = 400
	maxHeldBytes    = 8 << 10
)

// A pending upload costs a small, bounded amount of memory whatever its
// metadata holds, and at most maxHeldUploads of them hold their journal:
// a backlog of 200,000 costs tens of MB, not GBs.
func TestPendingUploadHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("finishes thousands of recordings")
	}
	minimal := func(id string, i int) Metadata {
		m := meta(id)
		m.CallID = fmt.Sprintf("call-%d", i)
		return m
	}
	for _, tc := range []struct {
		name     string
		n, hold  int
		mk       func(string, int) Metadata
		wantHeld int
	}{
		{"none held, minimal metadata", 1000, 0, minimal, 0},
		{"none held, runtime-shaped metadata", 1000, 0, fullMeta, 0},
		{"a backlog past the held ones", 1200, maxHeldUploads, fullMeta, maxHeldUploads},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, held := pendingHeap(t, tc.n, tc.hold, tc.mk)
			t.Logf("%.0f bytes for %d pending uploads, %d holding their journal: %.0f bytes each", got, tc.n, held, got/float64(tc.n))
			if held != tc.wantHeld {
				t.Errorf("%d pending uploads hold their journal, want %d", held, tc.wantHeld)
			}
			if limit := float64(tc.n*maxPendingBytes + held*maxHeldBytes); got > limit {
				t.Errorf("the upload queue holds %.0f bytes of heap, want at most %.0f", got, limit)
			}
		})
	}
}

// BenchmarkPendingHeap reports the live heap per pending upload
// (bytes/pending) of a backlog of b.N uploads (at least 2,000) with
// metadata shaped like the runtime's: with none holding its journal
// (slim), and with the default maxHeldUploads holding theirs.
func BenchmarkPendingHeap(b *testing.B) {
	n := max(b.N, 2000)
	for _, tc := range []struct {
		name string
		hold int
	}{{"slim", 0}, {"default", maxHeldUploads}} {
		b.Run(tc.name, func(b *testing.B) {
			got, _ := pendingHeap(b, n, tc.hold, fullMeta)
			b.ReportMetric(got/float64(n), "bytes/pending")
		})
	}
}

// An upload sends the same request whether its entry held the journal
// (a recording finished while few uploads were pending) or read the
// recording from the catalog when its attempt started.
func TestUploadHeldOrRead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		hold     int
		wantHeld int
	}{
		{"read from the catalog", 0, 0},
		{"held journal", maxHeldUploads, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(0, "")
			srv := httptest.NewServer(rc)
			defer srv.Close()
			e := newEnv(t)
			s := e.open(t)
			s.holdMax = tc.hold
			m := fullMeta("r1", 7)
			m.URL = srv.URL + "/acme/"
			m.Method, m.MediaName, m.SameLegRecordings = "post", "support", true
			r := finishWAV(t, s, e.spool, m)
			held := 0
			s.mu.Lock()
			if s.pending["r1"].j != nil {
				held++
			}
			s.mu.Unlock()
			if held != tc.wantHeld {
				t.Fatalf("%d entries hold their journal, want %d", held, tc.wantHeld)
			}
			body, err := os.ReadFile(r.Path)
			if err != nil {
				t.Fatal(err)
			}
			run(t, s)
			waitFor(t, "upload", func() bool { return s.Pending() == 0 })
			name := "support_" + m.CallID + "_r1.wav"
			got := rc.requests(name)
			if len(got) != 1 {
				t.Fatalf("%s received %d times; all: %v", name, len(got), rc.accepted())
			}
			want := request{Method: "POST", Path: "/acme/" + name, ContentType: "audio/wav", Body: body,
				Query: url.Values{"from": {m.From}, "to": {m.To}, "call_id": {m.CallID}, "interaction_id": {m.InteractionID}, "account_id": {"acme"}}}
			if diff := cmp.Diff(want, got[0], cmpopts.IgnoreFields(request{}, "Header")); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			if n := e.count(EventUploadOK); n != 1 {
				t.Errorf("%d upload_ok events, want 1", n)
			}
		})
	}
}

// A pending upload whose recording's document in the catalog does not
// decode can never be sent: it is dead-lettered, listed with the reason,
// not dropped.
func TestUploadUnreadableDocumentDeadLettered(t *testing.T) {
	t.Parallel()
	rc := newReceiver(0, "")
	srv := httptest.NewServer(rc)
	defer srv.Close()
	e := newEnv(t)
	s := e.open(t)
	s.holdMax = 0
	m := meta("bad")
	m.URL = srv.URL + "/up/"
	r := finishWAV(t, s, e.spool, m)
	cr, err := s.cat.Get(context.Background(), "bad")
	if err != nil {
		t.Fatal(err)
	}
	cr.Doc = []byte(`{"recording_id": 42`)
	if err := s.cat.Apply(context.Background(), catalog.PutRecording(cr)); err != nil {
		t.Fatal(err)
	}
	run(t, s)
	waitFor(t, "the dead letter", func() bool { return s.Pending() == 0 })
	if got := rc.totalAttempts(); got != 0 {
		t.Errorf("%d requests sent", got)
	}
	dead, _, err := s.DeadUploads(context.Background(), 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].RecordingID != "bad" || !strings.Contains(dead[0].LastError, "catalog document") {
		t.Errorf("dead uploads %+v, want bad's with the document's error", dead)
	}
	if n := e.count(EventUploadDead); n != 1 {
		t.Errorf("%d upload_dead events, want 1", n)
	}
	if !regularFile(r.Path) {
		t.Errorf("the stored file %s is gone", r.Path)
	}
}
