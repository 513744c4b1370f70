package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// exdev makes every rename fail as across filesystems, so files are
// copied.
func exdev(oldpath, newpath string) error {
	return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: syscall.EXDEV}
}

// TestCrashBetweenSteps stops a Finish at each of its steps as if the
// process had died there, opens the store again and hands the recording
// to it again, as the runtime does from its intent log: the recording is
// stored once, with its sidecar, and uploaded once; nothing is left in
// the spool.
func TestCrashBetweenSteps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		step string
		// cataloged: Open alone lists the recording (the crash came
		// after its one commit); before it, Open knows nothing and the
		// file is in the spool or at its destination.
		cataloged bool
	}{
		{step: "hashed"}, // before anything was changed
		{step: "copied"}, // across filesystems: copied, the source not yet removed
		{step: "moved"},  // in storage, not yet in the catalog
		{step: "cataloged", cataloged: true},
	}
	for _, tc := range tests {
		for _, upload := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/upload=%v", tc.step, upload), func(t *testing.T) {
				t.Parallel()
				rc := newReceiver(0, "")
				srv := httptest.NewServer(rc)
				defer srv.Close()
				e := newEnv(t)
				s := e.open(t)
				s.crashAfter = func(st string) bool { return st == tc.step }
				if tc.step == "copied" {
					s.rename = exdev
				}
				m := meta("crash-1")
				if upload {
					m.URL = srv.URL + "/r/"
				}
				src := filepath.Join(e.spool, "rec", "crash-1.wav")
				writeWAV(t, src, 8000, 1500)
				want, _ := os.ReadFile(src)
				dst := s.mediaPath(m)
				if _, err := s.Finish(m, src); !errors.Is(err, errCrash) {
					t.Fatalf("Finish = %v, want the simulated crash", err)
				}
				// The process is gone; a new one starts.
				s.syncSidecars()
				s2 := e.open(t)
				_, _, err := s2.Get("crash-1")
				if tc.cataloged {
					if err != nil {
						t.Errorf("Get after the restart: %v, want the recording", err)
					}
				} else {
					if !errors.Is(err, ErrNotFound) {
						t.Errorf("Get after the restart: %v, want ErrNotFound", err)
					}
					// The file is whole at one end of the move or both.
					found := 0
					for _, p := range []string{src, dst} {
						if b, err := os.ReadFile(p); err == nil {
							found++
							if !bytes.Equal(b, want) {
								t.Errorf("%s holds other bytes", p)
							}
						}
					}
					if found == 0 {
						t.Fatal("the recording is neither in the spool nor in storage")
					}
				}
				// The caller's next Finish (the runtime's intent log).
				r, err := s2.Finish(m, src)
				if err != nil || r.Outcome != Stored || r.Duplicate != tc.cataloged {
					t.Fatalf("Finish after restart: %+v %v", r, err)
				}
				md, media, err := s2.Get("crash-1")
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				got, _ := os.ReadFile(media)
				if !bytes.Equal(got, want) || md.DurationMS != 1500 || len(md.SHA256) != 64 {
					t.Fatalf("stored %d bytes, duration %d", len(got), md.DurationMS)
				}
				if exists(src) {
					t.Error("recording still in the spool")
				}
				s2.syncSidecars()
				dayDir := filepath.Dir(media)
				des, _ := os.ReadDir(dayDir)
				var names []string
				for _, d := range des {
					names = append(names, d.Name())
				}
				if diff := cmp.Diff([]string{"crash-1.json", "crash-1.wav"}, names); diff != "" {
					t.Errorf("storage holds (-want +got):\n%s", diff)
				}
				if des, _ := os.ReadDir(filepath.Join(e.spool, dirJournal)); len(des) != 0 {
					t.Errorf("journals left: %v", des)
				}
				wantPending := 0
				if upload {
					wantPending = 1
				}
				if s2.Pending() != wantPending {
					t.Fatalf("Pending() = %d, want %d", s2.Pending(), wantPending)
				}
				run(t, s2)
				waitFor(t, "uploads", func() bool { return s2.Pending() == 0 })
				wantUploads := map[string]int{}
				if upload {
					wantUploads["call_recording_call-1.wav"] = 1
				}
				if diff := cmp.Diff(wantUploads, rc.accepted()); diff != "" {
					t.Errorf("uploads (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// A crash after the server's 2xx and before the pending entry is removed
// is the one case that sends an upload again: to the same name.
func TestCrashAfterUpload(t *testing.T) {
	t.Parallel()
	rc := newReceiver(0, "")
	srv := httptest.NewServer(rc)
	defer srv.Close()
	e := newEnv(t)
	s := e.open(t)
	s.crashAfter = func(st string) bool { return st == "uploaded" }
	m := meta("up-1")
	m.URL = srv.URL + "/"
	finishWAV(t, s, e.spool, m)
	stop := run(t, s)
	waitFor(t, "first upload", func() bool { return rc.accepted()["call_recording_call-1.wav"] == 1 })
	stop()
	s2 := e.open(t)
	if s2.Pending() != 1 {
		t.Fatalf("Pending() = %d after restart", s2.Pending())
	}
	run(t, s2)
	waitFor(t, "upload", func() bool { return s2.Pending() == 0 })
	if diff := cmp.Diff(map[string]int{"call_recording_call-1.wav": 2}, rc.accepted()); diff != "" {
		t.Error(diff)
	}
}

func TestCrashWhileQuarantining(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.open(t)
	s.crashAfter = func(st string) bool { return st == "quarantine" }
	src := filepath.Join(e.spool, "q.wav")
	os.WriteFile(src, []byte("RIFF\x10\x00\x00\x00garbage-garbage"), 0o600)
	if _, err := s.Finish(meta("q"), src); !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	e.open(t)
	if exists(src) {
		t.Fatal("recording still in the spool")
	}
	des, _ := os.ReadDir(filepath.Join(e.spool, dirQuarantine))
	if len(des) != 2 || !strings.HasSuffix(des[0].Name(), ".wav") {
		t.Fatalf("quarantine holds %v", des)
	}
	if e.count(EventQuarantined) != 1 {
		t.Error("no quarantined event")
	}
}

func TestCorruptJournals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.open(t)
	src := filepath.Join(e.spool, "rec", "j2.wav")
	writeWAV(t, src, 8000, 1000)
	tampered := fmt.Sprintf(`{"version":1,"state":"checked","src":%q,"dst":"/tmp/evil.wav","metadata":{"recording_id":"j2","call_id":"c","account":"acme","format":"wav","start":"2026-01-01T00:00:00Z","sha256":"%064d"}}`, src, 0)
	files := map[string]string{
		filepath.Join(e.spool, dirJournal, "j1.json"):     "{not json",
		filepath.Join(e.spool, dirJournal, "j2.json"):     tampered,
		filepath.Join(e.spool, dirJournal, "j3.json"):     `{"version":1,"state":"received","src":"/x.wav","metadata":{"recording_id":"../j3","call_id":"c","account":"acme","format":"wav","start":"2026-01-01T00:00:00Z"}}`,
		filepath.Join(e.spool, dirJournal, "j4.json"):     `{"version":7}`,
		filepath.Join(e.spool, dirPending, "p1.json"):     "",
		filepath.Join(e.spool, dirJournal, "j5.json.tmp"): "half written",
	}
	for p, c := range files {
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := e.open(t)
	if s.Pending() != 0 {
		t.Errorf("Pending() = %d", s.Pending())
	}
	for _, dir := range []string{dirJournal, dirPending} {
		if des, _ := os.ReadDir(filepath.Join(e.spool, dir)); len(des) != 0 {
			t.Errorf("%s still holds %v", dir, des)
		}
	}
	des, _ := os.ReadDir(filepath.Join(e.spool, dirQuarantine))
	if len(des) != 5 {
		t.Errorf("quarantine holds %d files, want 5", len(des))
	}
	if n := e.count(EventJournalQuarantined); n != 5 {
		t.Errorf("%d journal_quarantined events", n)
	}
	if !strings.Contains(e.logs.String(), "journal quarantined") {
		t.Error("no log line")
	}
	if !exists(src) || exists("/tmp/evil.wav") {
		t.Error("a tampered journal moved the recording")
	}
	// The recording of the tampered journal can still be finished.
	if r, err := s.Finish(meta("j2"), src); err != nil || r.Outcome != Stored {
		t.Fatalf("%+v %v", r, err)
	}
}

// TestStorageFault: a full or read-only storage keeps the recording in
// the spool, is reported once per recording however often it is retried,
// shows as the store's Fault (the runtime's metric and /healthz), and
// clears when a recording is stored again.
func TestStorageFault(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		errno syscall.Errno
		kind  StorageFaultKind
		full  bool
	}{
		{syscall.ENOSPC, StorageFull, true},
		{syscall.EROFS, StorageReadOnly, false},
		{syscall.EIO, StorageError, false},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.open(t)
			s.rename = func(oldpath, newpath string) error {
				return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: tc.errno}
			}
			src := filepath.Join(e.spool, "full.wav")
			writeWAV(t, src, 8000, 1000)
			for range 3 { // the engine's retries
				_, err := s.Finish(meta("full"), src)
				if errors.Is(err, ErrStorageFull) != tc.full || !errors.Is(err, tc.errno) {
					t.Fatalf("Finish = %v, want %v (storage full: %v)", err, tc.errno, tc.full)
				}
			}
			if !exists(src) {
				t.Fatal("recording gone from the spool")
			}
			if r, err := s.Lookup(context.Background(), "full"); err != nil || r.State != "finishing" {
				t.Fatalf("the catalog's journal of the recording: %+v %v", r.State, err)
			}
			if n := e.count(EventStorageFull); n != 1 || !strings.Contains(e.logs.String(), "storage failing") {
				t.Errorf("%d storage events for one recording retried 3 times, want 1", n)
			}
			if f := s.Fault(); f == nil || f.Kind != tc.kind {
				t.Errorf("Fault() = %+v, want %s", f, tc.kind)
			}
			// Storage comes back; Run retries without the engine's help.
			s.rename = os.Rename
			run(t, s)
			waitFor(t, "stored", func() bool { return e.count(EventStored) == 1 })
			if _, media, err := s.Get("full"); err != nil || exists(src) || !exists(media) {
				t.Fatalf("Get: %v", err)
			}
			if f := s.Fault(); f != nil {
				t.Errorf("Fault() = %+v after a recording was stored, want none", f)
			}
		})
	}
}

func TestUnsafeStorage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		link string // relative to Storage
	}{
		{"account dir", "acme"},
		{"year dir", "acme/2026"},
		{"day dir", "acme/2026/03/05"},
		{"the recording's file", "acme/2026/03/05/x.wav"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.open(t)
			outside := t.TempDir()
			l := filepath.Join(e.storage, tc.link)
			os.MkdirAll(filepath.Dir(l), 0o700)
			if err := os.Symlink(outside, l); err != nil {
				t.Fatal(err)
			}
			src := filepath.Join(e.spool, "x.wav")
			writeWAV(t, src, 8000, 1000)
			_, err := s.Finish(meta("x"), src)
			if !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("Finish = %v, want ErrUnsafePath", err)
			}
			if des, _ := os.ReadDir(outside); len(des) != 0 {
				t.Errorf("wrote through the link: %v", des)
			}
			if !exists(src) {
				t.Error("recording left the spool")
			}
		})
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.open(t)
	day := func(d, h int) time.Time { return time.Date(2026, 5, d, h, 0, 0, 0, time.UTC) }
	recs := []struct {
		id, account string
		start       time.Time
	}{
		{"a1", "acme", day(1, 10)},
		{"a2", "acme", day(2, 23)},
		{"b1", "beta", day(2, 1)},
		{"a3", "acme", day(3, 0)},
	}
	for _, r := range recs {
		m := meta(r.id)
		m.Account, m.Start = r.account, r.start
		finishWAV(t, s, e.spool, m)
	}
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{"all", Filter{}, []string{"a1", "b1", "a2", "a3"}},
		{"account", Filter{Account: "acme"}, []string{"a1", "a2", "a3"}},
		{"from", Filter{From: day(2, 1)}, []string{"b1", "a2", "a3"}},
		{"until is exclusive", Filter{Account: "acme", Until: day(3, 0)}, []string{"a1", "a2"}},
		{"window", Filter{From: day(2, 0), Until: day(2, 23)}, []string{"b1"}},
		{"other account", Filter{Account: "none"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := s.List(tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range ms {
				got = append(got, m.RecordingID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := s.List(Filter{Account: "../x"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("List with a bad account: %v", err)
	}
	// A new process finds them too.
	s2 := e.open(t)
	if ms, err := s2.List(Filter{}); err != nil || len(ms) != 4 {
		t.Fatalf("after restart: %d, %v", len(ms), err)
	}
}

// TestFinishAfterMoveWithoutCatalog: a recording in storage that the
// catalog does not hold (a crash between its move and its commit) is
// entered by the caller's next Finish, checked and hashed where it is,
// also when that Finish dates it to another UTC day than the one that
// moved it (it is then moved to where the new metadata puts it); a
// recording neither in the spool nor in storage is discarded as missing.
func TestFinishAfterMoveWithoutCatalog(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		moved time.Duration // the first Finish's Start, from the caller's
	}{
		{"same start", 0},
		{"started a little later, after midnight", 2 * time.Second},
		{"started a little earlier, before midnight", -2 * time.Minute},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.open(t)
			id := fmt.Sprintf("moved-%d", i)
			m := meta(id)
			m.Start = time.Date(2026, 3, 4, 23, 59, 59, 0, time.UTC)
			if tc.moved < 0 {
				m.Start = time.Date(2026, 3, 5, 0, 0, 30, 0, time.UTC)
			}
			m.MaskedRanges = []Range{{StartMS: 200, EndMS: -1}}
			src := filepath.Join(e.spool, id+".wav")
			writeWAV(t, src, 8000, 1200)
			want, _ := os.ReadFile(src)
			first := m
			first.Start = m.Start.Add(tc.moved)
			at := s.mediaPath(first)
			if err := s.dirs.mkdirSafe(s.storage, filepath.Dir(at)); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(src, at); err != nil {
				t.Fatal(err)
			}
			r, err := s.Finish(m, src)
			dst := s.mediaPath(m)
			if err != nil || r.Outcome != Stored || r.Duplicate || r.Path != dst {
				t.Fatalf("Finish: %+v %v, want stored at %s", r, err, dst)
			}
			if r.Metadata.DurationMS != 1200 || len(r.Metadata.SHA256) != 64 {
				t.Errorf("duration %d, sha256 %q", r.Metadata.DurationMS, r.Metadata.SHA256)
			}
			if diff := cmp.Diff([]Range{{StartMS: 200, EndMS: 1200}}, r.Metadata.MaskedRanges); diff != "" {
				t.Errorf("masked ranges (-want +got):\n%s", diff)
			}
			if got, _ := os.ReadFile(dst); !bytes.Equal(got, want) {
				t.Error("stored bytes differ")
			}
			if at != dst && exists(at) {
				t.Errorf("%s left where the first Finish moved it", at)
			}
			if _, media, err := s.Get(id); err != nil || media != dst {
				t.Errorf("Get: %s %v", media, err)
			}
		})
	}
	t.Run("nowhere", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		s := e.open(t)
		if r, err := s.Finish(meta("never-1"), filepath.Join(e.spool, "never-1.wav")); err != nil || r.Outcome != Discarded {
			t.Errorf("Finish of a file that is nowhere: %+v %v", r, err)
		}
	})
}
