package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// receiver is an upload server that fails the first fail attempts of each
// name with mode, then accepts.
type receiver struct {
	mu       sync.Mutex
	fail     int
	mode     string // "500", "403", "404", "429", "hang", "close"
	release  chan struct{}
	attempts map[string]int
	got      map[string][]request // accepted uploads by name
}

type request struct {
	Method, Path, ContentType string
	Query                     url.Values
	Header                    http.Header
	Body                      []byte
}

func newReceiver(fail int, mode string) *receiver {
	return &receiver{fail: fail, mode: mode, release: make(chan struct{}), attempts: map[string]int{}, got: map[string][]request{}}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := filepath.Base(r.URL.Path)
	rc.mu.Lock()
	rc.attempts[name]++
	n := rc.attempts[name]
	rc.mu.Unlock()
	if n <= rc.fail {
		switch rc.mode {
		case "500":
			http.Error(w, "try later", http.StatusInternalServerError)
		case "403":
			http.Error(w, "no", http.StatusForbidden)
		case "404":
			http.Error(w, "no such bucket", http.StatusNotFound)
		case "429":
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case "hang":
			// Read the request so the server notices the client
			// giving up, then answer nothing.
			io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-rc.release:
			}
		case "close":
			io.CopyN(io.Discard, r.Body, 10)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.got[name] = append(rc.got[name], request{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"),
		Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
	rc.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

func (rc *receiver) accepted() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string]int{}
	for k, v := range rc.got {
		out[k] = len(v)
	}
	return out
}

func (rc *receiver) requests(name string) []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.got[name]
}

func (rc *receiver) totalAttempts() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := 0
	for _, v := range rc.attempts {
		n += v
	}
	return n
}

// run starts s.Run and stops it when the test ends or stop is called.
func run(t *testing.T, s *Store) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// finishWAV writes a WAV in the spool and finishes it with m.
func finishWAV(t *testing.T, s *Store, spool string, m Metadata) Result {
	t.Helper()
	src := filepath.Join(spool, "rec", m.RecordingID+"."+m.Format)
	if m.Format == "mp3" {
		writeMP3(t, src, 17) // 1,224 ms at 8 kHz
	} else {
		writeWAV(t, src, 8000, 1200)
	}
	r, err := s.Finish(m, src)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestUploadRetries(t *testing.T) {
	t.Parallel()
	const nrec = 3
	tests := []struct {
		mode    string
		fail    int
		timeout time.Duration // the client's; a hung attempt costs this much
	}{
		{"500", 3, 5 * time.Second},
		{"429", 2, 5 * time.Second},
		{"hang", 1, time.Second},
		{"close", 2, 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(tc.fail, tc.mode)
			srv := httptest.NewServer(rc)
			defer srv.Close()
			defer close(rc.release)
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			e := newEnv(t)
			s := e.open(t, func(c *Config) {
				c.Client = &http.Client{Timeout: tc.timeout}
			})
			want := map[string]int{}
			bodies := map[string][]byte{}
			for i := range nrec {
				m := meta(fmt.Sprintf("rec-%d", i))
				m.CallID = fmt.Sprintf("leg-%d", i)
				m.URL = srv.URL + "/recordings/"
				r := finishWAV(t, s, e.spool, m)
				if !r.Queued {
					t.Fatalf("not queued: %+v", r)
				}
				name := "call_recording_" + m.CallID + ".wav"
				want[name] = 1
				bodies[name], _ = os.ReadFile(r.Path)
			}
			if s.Pending() != nrec {
				t.Fatalf("Pending() = %d", s.Pending())
			}
			run(t, s)
			waitFor(t, "uploads", func() bool { return s.Pending() == 0 })
			// The event of the last upload follows its pending entry's removal.
			waitFor(t, "upload events", func() bool { return e.count(EventUploadOK) >= nrec })
			if diff := cmp.Diff(want, rc.accepted()); diff != "" {
				t.Errorf("accepted uploads (-want +got):\n%s", diff)
			}
			if got := rc.totalAttempts(); got != nrec*(tc.fail+1) {
				t.Errorf("%d attempts, want %d", got, nrec*(tc.fail+1))
			}
			for name := range want {
				if reqs := rc.requests(name); len(reqs) == 0 || !bytes.Equal(reqs[0].Body, bodies[name]) {
					t.Errorf("%s: body differs from the stored file", name)
				}
			}
			if des, _ := os.ReadDir(filepath.Join(e.spool, dirPending)); len(des) != 0 {
				t.Errorf("pending entries left: %v", des)
			}
			// A connection the server closed can also fail the next
			// request sent on it before it reaches the handler.
			if n := e.count(EventUploadFailed); n < nrec*tc.fail || tc.mode != "close" && n != nrec*tc.fail {
				t.Errorf("%d upload_failed events, want %d", n, nrec*tc.fail)
			}
			if n := e.count(EventUploadOK); n != nrec {
				t.Errorf("%d upload_ok events", n)
			}
		})
	}
}

// TestUploadDeadLetter: a permanent failure (a 4xx but 408 and 429)
// dead-letters an upload on its first answer, a transient one once it
// has failed for longer than MaxUploadAge; dead letters survive a
// restart, show in Health and DeadUploads, and Retry uploads them once
// the target is fixed.
func TestUploadDeadLetter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode     string
		maxAge   time.Duration
		attempts int // before the dead letter
	}{
		{"404", time.Hour, 1},
		{"403", time.Hour, 1},
		// The clock moves two hours between the finish and the first
		// attempt: its failure is past the maximum age already.
		{"500", time.Hour, 1},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(tc.attempts, tc.mode)
			srv := httptest.NewServer(rc)
			defer srv.Close()
			e := newEnv(t)
			var late atomic.Bool
			clock := func() time.Time {
				if late.Load() {
					return time.Now().Add(2 * time.Hour)
				}
				return time.Now()
			}
			s := e.open(t, func(c *Config) { c.MaxUploadAge, c.Now = tc.maxAge, clock })
			m := meta("dl-1")
			m.URL = srv.URL + "/recordings/"
			finishWAV(t, s, e.spool, m)
			late.Store(tc.mode == "500")
			stop := run(t, s)
			waitFor(t, "the dead letter", func() bool { return e.count(EventUploadDead) == 1 })
			stop()
			if got := rc.totalAttempts(); got != tc.attempts {
				t.Errorf("%d attempts, want %d", got, tc.attempts)
			}
			// A restart keeps it dead, and does not retry it.
			s2 := e.open(t, func(c *Config) { c.MaxUploadAge = tc.maxAge })
			if h := s2.Health(); h.Dead != 1 || h.Pending != 0 {
				t.Errorf("health after restart %+v, want one dead, none pending", h)
			}
			if d, next, err := s2.DeadUploads(context.Background(), 10, ""); err != nil || next != "" || len(d) != 1 ||
				d[0].RecordingID != "dl-1" || d[0].Account != "acme" || d[0].Attempts != 1 {
				t.Errorf("dead uploads %+v %q %v", d, next, err)
			}
			if _, _, err := s2.Get("dl-1"); err != nil {
				t.Errorf("the dead-lettered recording is not listed: %v", err)
			}
			run(t, s2)
			if err := s2.Retry("dl-2"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Retry of an unknown id: %v", err)
			}
			// The target is fixed (the receiver accepts from now on).
			if err := s2.Retry("dl-1"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the retried upload", func() bool { return s2.Pending() == 0 && len(rc.accepted()) == 1 })
			if diff := cmp.Diff(map[string]int{"call_recording_call-1.wav": 1}, rc.accepted()); diff != "" {
				t.Errorf("accepted (-want +got):\n%s", diff)
			}
			if h := s2.Health(); h.Dead != 0 {
				t.Errorf("health after the retry %+v", h)
			}
		})
	}
}

func TestUploadRequest(t *testing.T) {
	t.Parallel()
	rc := newReceiver(1, "500")
	srv := httptest.NewServer(rc)
	defer srv.Close()
	e := newEnv(t)
	const token, password = "Bearer s3cr3t-token", "hunter2-pw"
	s := e.open(t, func(c *Config) {
		c.Uploads = []Upload{
			{Prefix: srv.URL + "/", Headers: map[string]string{"X-Api-Key": "k-root-secret"}},
			{Prefix: srv.URL + "/acme/", Headers: map[string]string{"Authorization": token}, Username: "acme", Password: password},
			{Prefix: "http://127.0.0.1.example.net/", Headers: map[string]string{"X-Api-Key": "never"}},
		}
	})
	tests := []struct {
		name     string
		edit     func(*Metadata)
		wantName string
		method   string
		ctype    string
		auth     string // Authorization header expected
		apiKey   string
	}{
		{"put wav, deepest prefix", func(m *Metadata) { m.URL = srv.URL + "/acme/rec" }, "call_recording_call-1.wav",
			"PUT", "audio/wav", "Basic " + base64.StdEncoding.EncodeToString([]byte("acme:"+password)), ""},
		{"post mp3, same leg, root prefix", func(m *Metadata) {
			m.URL = srv.URL + "/other/"
			m.Method = "POST"
			m.Format = "mp3"
			m.CallID = "call-2"
			m.SameLegRecordings = true
		}, "call_recording_call-2_r2.mp3", "POST", "audio/mpeg", "", "k-root-secret"},
		{"media_name replaces the prefix, its extension dropped", func(m *Metadata) {
			m.URL = srv.URL + "/acme/rec"
			m.CallID = "call-3"
			m.MediaName = "support.wav"
		}, "support_call-3.wav", "PUT", "audio/wav", "Basic " + base64.StdEncoding.EncodeToString([]byte("acme:"+password)), ""},
		{"media_name, same leg: the recording id keeps it unique", func(m *Metadata) {
			m.URL = srv.URL + "/acme/rec"
			m.CallID = "call-4"
			m.MediaName = "support"
			m.SameLegRecordings = true
		}, "support_call-4_r4.wav", "PUT", "audio/wav", "Basic " + base64.StdEncoding.EncodeToString([]byte("acme:"+password)), ""},
	}
	for i, tc := range tests {
		m := meta(fmt.Sprintf("r%d", i+1))
		tc.edit(&m)
		finishWAV(t, s, e.spool, m)
	}
	run(t, s)
	waitFor(t, "uploads", func() bool { return s.Pending() == 0 })
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reqs := rc.requests(tc.wantName)
			if len(reqs) != 1 {
				t.Fatalf("%s received %d times; all: %v", tc.wantName, len(reqs), rc.accepted())
			}
			r := reqs[0]
			m := meta("")
			tc.edit(&m)
			wantQuery := url.Values{"from": {"+33 1 23"}, "to": {"1002"}, "call_id": {m.CallID},
				"interaction_id": {"ia-1"}, "account_id": {"acme"}}
			if diff := cmp.Diff(wantQuery, r.Query); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
			if r.Method != tc.method || r.ContentType != tc.ctype {
				t.Errorf("%s %s, want %s %s", r.Method, r.ContentType, tc.method, tc.ctype)
			}
			if got := r.Header.Get("Authorization"); tc.auth != "" && got != tc.auth {
				t.Errorf("Authorization %q, want %q", got, tc.auth)
			}
			if got := r.Header.Get("X-Api-Key"); got != tc.apiKey {
				t.Errorf("X-Api-Key %q, want %q", got, tc.apiKey)
			}
			_ = i
		})
	}
	// The raw query keeps the documented order and encodes values.
	if got := rc.requests("call_recording_call-1.wav")[0]; !strings.Contains(srv.URL, "127.0.0.1") || got.Path != "/acme/rec/call_recording_call-1.wav" {
		t.Errorf("path %s", got.Path)
	}
	m := meta("r1")
	m.URL = "https://h.example/x/"
	u, err := uploadURL(m)
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://h.example/x/call_recording_call-1.wav?from=%2B33+1+23&to=1002&call_id=call-1&interaction_id=ia-1&account_id=acme"; u.String() != want {
		t.Errorf("upload URL\n got %s\nwant %s", u, want)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "upload failed") {
		t.Fatalf("no failure logged:\n%s", logs)
	}
	for _, secret := range []string{"s3cr3t", "hunter2", "k-root-secret", base64.StdEncoding.EncodeToString([]byte("acme:" + password)), "from=", "never"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log output contains %q:\n%s", secret, logs)
		}
	}
}

func TestUploadBadCertificate(t *testing.T) {
	t.Parallel()
	rc := newReceiver(0, "")
	srv := httptest.NewTLSServer(rc)
	defer srv.Close()
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	e := newEnv(t)
	s := e.open(t) // default client: the test server's certificate is not trusted
	m := meta("tls-1")
	m.URL = srv.URL + "/"
	finishWAV(t, s, e.spool, m)
	stop := run(t, s)
	waitFor(t, "failed attempts", func() bool { return e.count(EventUploadFailed) >= 3 })
	stop()
	if n := rc.totalAttempts(); n != 0 {
		t.Fatalf("the server received %d requests over an untrusted connection", n)
	}
	if s.Pending() != 1 || !strings.Contains(e.logs.String(), "certificate") {
		t.Fatalf("pending %d; logs:\n%s", s.Pending(), e.logs.String())
	}
	// After a restart with a client that trusts the server, it goes through.
	s2 := e.open(t, func(c *Config) { c.Client = srv.Client() })
	if s2.Pending() != 1 {
		t.Fatalf("pending after restart: %d", s2.Pending())
	}
	run(t, s2)
	waitFor(t, "upload", func() bool { return s2.Pending() == 0 })
	if diff := cmp.Diff(map[string]int{"call_recording_call-1.wav": 1}, rc.accepted()); diff != "" {
		t.Error(diff)
	}
}

func TestBackoffCapped(t *testing.T) {
	t.Parallel()
	s := &Store{}
	s.cfg.Backoff.Min = 10 * time.Millisecond
	s.cfg.Backoff.Max = 80 * time.Millisecond
	for n := 1; n < 70; n++ {
		want := min(10*time.Millisecond<<min(n-1, 10), 80*time.Millisecond)
		for range 20 {
			if d := s.backoff(n); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
}

// The default client does not follow redirects: credentials never reach
// another host, and the upload is retried.
func TestUploadRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	other := newReceiver(0, "")
	dst := httptest.NewServer(other)
	defer dst.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, dst.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	e := newEnv(t)
	s := e.open(t, func(c *Config) {
		c.Uploads = []Upload{{Prefix: redirect.URL + "/", Headers: map[string]string{"X-Api-Key": "redirect-secret"}}}
	})
	m := meta("rd")
	m.URL = redirect.URL + "/"
	finishWAV(t, s, e.spool, m)
	stop := run(t, s)
	waitFor(t, "failed attempts", func() bool { return e.count(EventUploadFailed) >= 2 })
	stop()
	if n := other.totalAttempts(); n != 0 || s.Pending() != 1 {
		t.Fatalf("redirect followed %d times; pending %d", n, s.Pending())
	}
	if !strings.Contains(e.logs.String(), "307") {
		t.Errorf("status not logged:\n%s", e.logs.String())
	}
}

// A pending upload whose stored file was removed by hand cannot succeed:
// it is dead-lettered at once with the reason, not retried forever.
func TestUploadStoredFileGone(t *testing.T) {
	t.Parallel()
	rc := newReceiver(0, "")
	srv := httptest.NewServer(rc)
	defer srv.Close()
	e := newEnv(t)
	s := e.open(t)
	m := meta("gone")
	m.URL = srv.URL + "/"
	r := finishWAV(t, s, e.spool, m)
	if err := os.Remove(r.Path); err != nil {
		t.Fatal(err)
	}
	run(t, s)
	waitFor(t, "the dead letter", func() bool { return e.count(EventUploadDead) == 1 })
	if rc.totalAttempts() != 0 || s.Pending() != 0 {
		t.Fatalf("attempts %d, pending %d", rc.totalAttempts(), s.Pending())
	}
	d, _, err := s.DeadUploads(context.Background(), 10, "")
	if err != nil || len(d) != 1 || !strings.Contains(d[0].LastError, "stored recording is missing") {
		t.Errorf("dead uploads %+v %v", d, err)
	}
}

// TestSlowTargetDoesNotStarveOthers: one target that accepts uploads and
// then holds its answer takes at most PerTarget workers; the uploads to
// another target go through meanwhile.
func TestSlowTargetDoesNotStarveOthers(t *testing.T) {
	release := make(chan struct{})
	var slowSeen atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		slowSeen.Add(1)
		<-release // a target that never answers while the test runs
	}))
	defer slow.Close()
	defer close(release)
	var fastDone atomic.Int32
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fastDone.Add(1)
	}))
	defer fast.Close()
	e := newEnv(t)
	s := e.open(t, func(c *Config) { c.Workers, c.PerTarget = 4, 2 })
	for i := range 8 {
		m := meta(fmt.Sprintf("slow-%d", i))
		m.URL = slow.URL + "/rec"
		finishWAV(t, s, e.spool, m)
	}
	for i := range 5 {
		m := meta(fmt.Sprintf("fast-%d", i))
		m.URL = fast.URL + "/rec"
		finishWAV(t, s, e.spool, m)
	}
	stop := run(t, s)
	defer stop()
	waitFor(t, "the fast target's uploads", func() bool { return fastDone.Load() == 5 })
	if n := slowSeen.Load(); n > 2 {
		t.Errorf("the slow target holds %d uploads at once, want at most PerTarget 2", n)
	}
}

// TestUploadsParkedByTarget: a backlog to one target is uploaded PerTarget
// at a time, every recording once, and nothing stays parked or counted
// in flight once it is done.
func TestUploadsParkedByTarget(t *testing.T) {
	var mu sync.Mutex
	inFlight, most := 0, 0
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		got[strings.Split(r.URL.Path, "/")[1]]++ // /<id>/<file name>
		mu.Unlock()
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		inFlight--
		mu.Unlock()
	}))
	defer srv.Close()
	e := newEnv(t)
	s := e.open(t, func(c *Config) { c.Workers, c.PerTarget = 8, 2 })
	const n = 60
	want := map[string]int{}
	for i := range n {
		id := fmt.Sprintf("rec-%02d", i)
		m := meta(id)
		m.URL = srv.URL + "/" + id
		finishWAV(t, s, e.spool, m)
		want[id] = 1
	}
	stop := run(t, s)
	defer stop()
	waitFor(t, "every upload", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == n && inFlight == 0
	})
	waitFor(t, "the store to account for every upload", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.pending) == 0
	})
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("uploads per recording (-want +got):\n%s", diff)
	}
	if most > 2 {
		t.Errorf("%d uploads to one target at once, PerTarget 2", most)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.parked) != 0 || len(s.targets) != 0 {
		t.Errorf("left parked %v, in flight %v", s.parked, s.targets)
	}
}
