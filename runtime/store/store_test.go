package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestFinish(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		file    string                       // name in the spool
		write   func(t *testing.T, p string) // nil: no file
		edit    func(m *Metadata)
		outcome Outcome
		reason  string // substring
		dur     int64
		rate    int
		ranges  []Range // masked ranges stored, when the case sets some
		flags   []string
	}{
		{name: "wav stored", file: "r1.wav", write: func(t *testing.T, p string) { writeWAV(t, p, 8000, 2500) },
			outcome: Stored, dur: 2500, rate: 8000},
		{name: "wav 16k, rate filled in", file: "r2.wav", write: func(t *testing.T, p string) { writeWAV(t, p, 16000, 1000) },
			edit: func(m *Metadata) { m.SampleRate = 0 }, outcome: Stored, dur: 1000, rate: 16000},
		{name: "mp3 read from its frames", file: "r3.mp3", write: func(t *testing.T, p string) { writeMP3(t, p, 58) },
			edit: func(m *Metadata) { m.Format = "mp3"; m.DurationMS = 4200; m.RecordMinSec = 3 }, outcome: Stored, dur: 4176, rate: 8000},
		{name: "an .mp3 holding WAV bytes: stored and flagged, never withheld", file: "r16.mp3", write: func(t *testing.T, p string) { writeWAV(t, p, 8000, 2500) },
			edit: func(m *Metadata) { m.Format = "mp3" }, outcome: Stored, dur: 2500, rate: 8000, flags: []string{FlagFormat}},
		{name: "an .mp3 that is not MPEG audio", file: "r17.mp3", write: func(t *testing.T, p string) { os.WriteFile(p, []byte("ID3 not really"), 0o644) },
			edit: func(m *Metadata) { m.Format = "mp3" }, outcome: Quarantined, reason: "not a readable recording"},
		{name: "masked ranges end with the recording", file: "r13.wav", write: func(t *testing.T, p string) { writeWAV(t, p, 8000, 2500) },
			edit: func(m *Metadata) {
				m.MaskedRanges = []Range{{StartMS: 100, EndMS: 400}, {StartMS: 1000, EndMS: 2600}, {StartMS: 2000, EndMS: -1}}
			},
			outcome: Stored, dur: 2500, rate: 8000, ranges: []Range{{StartMS: 100, EndMS: 400}, {StartMS: 1000, EndMS: 2500}, {StartMS: 2000, EndMS: 2500}}},
		{name: "too short", file: "r4.wav", write: func(t *testing.T, p string) { writeWAV(t, p, 8000, 2200) },
			edit: func(m *Metadata) { m.RecordMinSec = 5 }, outcome: Discarded, reason: "too short"},
		{name: "mp3 too short", file: "r5.mp3", write: func(t *testing.T, p string) { writeMP3(t, p, 14) },
			edit: func(m *Metadata) { m.Format = ""; m.DurationMS = 1000; m.RecordMinSec = 2 }, outcome: Discarded, reason: "too short"},
		{name: "empty file", file: "r6.wav", write: func(t *testing.T, p string) { os.WriteFile(p, nil, 0o644) },
			outcome: Discarded, reason: "empty file"},
		{name: "wav without samples", file: "r7.wav", write: func(t *testing.T, p string) { writeWAV(t, p, 8000, 0) },
			outcome: Discarded, reason: "no samples"},
		{name: "missing file", file: "r8.wav", outcome: Discarded, reason: "missing"},
		{name: "another sample rate: stored and flagged, never withheld", file: "r9.wav", write: func(t *testing.T, p string) { writeWAV(t, p, 16000, 1000) },
			outcome: Stored, dur: 1000, rate: 16000, flags: []string{FlagSampleRate}},
		{name: "a file longer than its events say: stored and flagged", file: "r14.wav", write: func(t *testing.T, p string) { writeWAV(t, p, 8000, 5000) },
			edit: func(m *Metadata) { m.DurationMS = 2000 }, outcome: Stored, dur: 5000, rate: 8000, flags: []string{FlagDuration}},
		{name: "within the duration tolerance: not flagged", file: "r15.wav", write: func(t *testing.T, p string) { writeWAV(t, p, 8000, 5000) },
			edit: func(m *Metadata) { m.DurationMS = 5400 }, outcome: Stored, dur: 5000, rate: 8000},
		{name: "corrupt wav", file: "r10.wav", write: func(t *testing.T, p string) { os.WriteFile(p, []byte("RIFF\x10\x00\x00\x00garbage-garbage"), 0o644) },
			outcome: Quarantined, reason: "not a readable recording"},
		{name: "truncated wav", file: "r11.wav", write: func(t *testing.T, p string) {
			writeWAV(t, p, 8000, 1000)
			os.Truncate(p, 1000)
		}, outcome: Quarantined, reason: "data chunk"},
		{name: "symlink as recording", file: "r12.wav", write: func(t *testing.T, p string) {
			writeWAV(t, p+".real", 8000, 1000)
			os.Symlink(p+".real", p)
		}, outcome: Quarantined, reason: "not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.open(t)
			src := filepath.Join(e.spool, "rec", tc.file)
			os.MkdirAll(filepath.Dir(src), 0o755)
			var want []byte
			if tc.write != nil {
				tc.write(t, src)
				want, _ = os.ReadFile(src)
			}
			m := meta(strings.TrimSuffix(tc.file, filepath.Ext(tc.file)))
			if tc.edit != nil {
				tc.edit(&m)
			}
			r, err := s.Finish(m, src)
			if err != nil {
				t.Fatalf("Finish: %v", err)
			}
			if r.Outcome != tc.outcome || !strings.Contains(r.Reason, tc.reason) {
				t.Fatalf("outcome %s %q, want %s %q", r.Outcome, r.Reason, tc.outcome, tc.reason)
			}
			if exists(src) {
				t.Errorf("%s still in the spool", src)
			}
			switch tc.outcome {
			case Stored:
				ext := filepath.Ext(tc.file)
				wantPath := filepath.Join(s.storage, "acme", "2026", "03", "05", m.RecordingID+ext)
				if r.Path != wantPath {
					t.Errorf("path %s, want %s", r.Path, wantPath)
				}
				got, err := os.ReadFile(wantPath)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("stored bytes differ: %v", err)
				}
				sum := sha256.Sum256(want)
				if r.Metadata.SHA256 != hex.EncodeToString(sum[:]) {
					t.Errorf("sha256 %s", r.Metadata.SHA256)
				}
				if r.Metadata.DurationMS != tc.dur || r.Metadata.SampleRate != tc.rate {
					t.Errorf("duration %d rate %d, want %d %d", r.Metadata.DurationMS, r.Metadata.SampleRate, tc.dur, tc.rate)
				}
				if diff := cmp.Diff(tc.ranges, r.Metadata.MaskedRanges); tc.ranges != nil && diff != "" {
					t.Errorf("masked ranges (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tc.flags, r.Metadata.Flags); diff != "" {
					t.Errorf("flags (-want +got):\n%s", diff)
				}
				s.syncSidecars()
				for _, p := range []string{wantPath, strings.TrimSuffix(wantPath, ext) + ".json"} {
					fi, err := os.Stat(p)
					if err != nil || fi.Mode().Perm() != 0o600 {
						t.Errorf("%s: %v mode %v", p, err, fi.Mode())
					}
				}
				for d := filepath.Dir(wantPath); d != s.storage; d = filepath.Dir(d) {
					if fi, _ := os.Stat(d); fi.Mode().Perm() != 0o700 {
						t.Errorf("%s mode %v", d, fi.Mode())
					}
				}
				gm, media, err := s.Get(m.RecordingID)
				if err != nil || media != wantPath {
					t.Fatalf("Get: %v %s", err, media)
				}
				if diff := cmp.Diff(r.Metadata, gm, cmpopts.EquateApproxTime(0)); diff != "" {
					t.Errorf("sidecar (-finish +get):\n%s", diff)
				}
			case Quarantined:
				got, err := os.ReadFile(r.Path)
				if err != nil || !bytes.Equal(got, want) && tc.name != "symlink as recording" {
					t.Fatalf("quarantined file: %v", err)
				}
				if !exists(r.Path + ".json") {
					t.Errorf("no reason beside the quarantined file")
				}
				if _, _, err := s.Get(m.RecordingID); !errors.Is(err, ErrNotFound) {
					t.Errorf("Get of a quarantined recording: %v", err)
				}
				// The catalog lists it, with the reason.
				q, err := s.Lookup(context.Background(), m.RecordingID)
				if err != nil || q.State != "quarantined" || q.Path != r.Path || !strings.Contains(q.QuarantineReason, tc.reason) {
					t.Errorf("the catalog's quarantined recording: %+v %v", q, err)
				}
			}
			if des, _ := os.ReadDir(filepath.Join(e.spool, dirJournal)); len(des) != 0 {
				t.Errorf("journals left: %v", des)
			}
			// Finishing again is harmless.
			r2, err := s.Finish(m, src)
			if err != nil {
				t.Fatal(err)
			}
			if tc.outcome == Stored && (!r2.Duplicate || r2.Path != r.Path) {
				t.Errorf("second Finish: %+v", r2)
			}
		})
	}
}

func TestFinishInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.open(t)
	src := filepath.Join(e.spool, "x.wav")
	writeWAV(t, src, 8000, 1000)
	tests := []struct {
		name string
		edit func(*Metadata)
		file string
	}{
		{"dotdot id", func(m *Metadata) { m.RecordingID = "../x" }, src},
		{"slash id", func(m *Metadata) { m.RecordingID = "a/b" }, src},
		{"absolute id", func(m *Metadata) { m.RecordingID = "/etc/passwd" }, src},
		{"dots inside", func(m *Metadata) { m.RecordingID = "a..b" }, src},
		{"dotdot account", func(m *Metadata) { m.Account = ".." }, src},
		{"account with slash", func(m *Metadata) { m.Account = "acme/../../x" }, src},
		{"call id with newline", func(m *Metadata) { m.CallID = "c\n1" }, src},
		{"empty id", func(m *Metadata) { m.RecordingID = "" }, src},
		{"bad extension", func(m *Metadata) { m.Format = "" }, filepath.Join(e.spool, "x.sh")},
		{"format mismatch", func(m *Metadata) { m.Format = "mp3" }, src},
		{"no start", func(m *Metadata) { m.Start = time.Time{} }, src},
		{"url with userinfo", func(m *Metadata) { m.URL = "https://user:hunter2@store.example.com/" }, src},
		{"url ftp", func(m *Metadata) { m.URL = "ftp://store.example.com/" }, src},
		{"method", func(m *Metadata) { m.URL = "https://store.example.com/"; m.Method = "delete" }, src},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := meta("ok")
			tc.edit(&m)
			_, err := s.Finish(m, tc.file)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error repeats a secret: %v", err)
			}
			if !exists(src) {
				t.Fatal("the recording was touched")
			}
		})
	}
	for _, id := range []string{"../x", "a/b", "/etc/passwd", "..", "", "a\x00b"} {
		if _, _, err := s.Get(id); !errors.Is(err, ErrInvalid) {
			t.Errorf("Get(%q) = %v, want ErrInvalid", id, err)
		}
	}
}

// Quarantining the same recording id twice, even at the same instant,
// keeps both files.
func TestQuarantineKeepsEarlierEvidence(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fixed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := e.open(t, func(c *Config) { c.Now = func() time.Time { return fixed } })
	for i := range 2 {
		src := filepath.Join(e.spool, "q.wav")
		os.WriteFile(src, fmt.Appendf(nil, "RIFF\x10\x00\x00\x00garbage-garbage %d", i), 0o600)
		r, err := s.Finish(meta("q"), src)
		if err != nil || r.Outcome != Quarantined {
			t.Fatalf("%+v %v", r, err)
		}
	}
	des, _ := os.ReadDir(filepath.Join(e.spool, dirQuarantine))
	if len(des) != 4 {
		t.Fatalf("quarantine holds %d files, want 4", len(des))
	}
}

func TestFinishConcurrentSameID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.open(t)
	src := filepath.Join(e.spool, "c.wav")
	writeWAV(t, src, 8000, 1000)
	results := make(chan Result, 4)
	for range 4 {
		go func() {
			r, err := s.Finish(meta("c"), src)
			if err != nil {
				t.Error(err)
			}
			results <- r
		}()
	}
	dups := 0
	for range 4 {
		r := <-results
		if r.Outcome != Stored {
			t.Fatalf("%+v", r)
		}
		if r.Duplicate {
			dups++
		}
	}
	if dups != 3 || e.count(EventStored) != 1 {
		t.Fatalf("%d duplicates, %d stored events", dups, e.count(EventStored))
	}
}

// TestMediaName: a callflow's media_name names the stored file, with the
// recording id appended so that every recording keeps its own file; a
// name the store cannot use as a path component falls back to the default
// name and the recording is stored all the same.
func TestMediaName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		media    string
		want     string // file name in the day's directory
		wantMeta string // media_name in the sidecar
	}{
		{"", "r1.wav", ""},
		{"support", "support_r2.wav", "support"},
		{"support.WAV", "support_r3.wav", "support"},
		{"../../etc/passwd", "r4.wav", ""},
		{"a b", "r5.wav", ""},
		{".hidden", "r6.wav", ""},
	}
	e := newEnv(t)
	s := e.open(t)
	for i, tc := range tests {
		t.Run(tc.media, func(t *testing.T) {
			m := meta(fmt.Sprintf("r%d", i+1))
			m.MediaName = tc.media
			src := filepath.Join(e.spool, m.RecordingID+".wav")
			writeWAV(t, src, 8000, 1000)
			res, err := s.Finish(m, src)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != Stored {
				t.Fatalf("outcome %s (%s), want stored", res.Outcome, res.Reason)
			}
			want := filepath.Join(e.storage, "acme", "2026", "03", "05", tc.want)
			if res.Path != want {
				t.Errorf("stored at %s, want %s", res.Path, want)
			}
			got, path, err := s.Get(m.RecordingID)
			if err != nil || path != want {
				t.Errorf("Get: %s, %v; want %s", path, err, want)
			}
			if got.MediaName != tc.wantMeta {
				t.Errorf("metadata media_name %q, want %q", got.MediaName, tc.wantMeta)
			}
		})
	}
	// A restart indexes storage from the sidecars, named by recording id.
	s2 := e.open(t)
	for i, tc := range tests {
		id := fmt.Sprintf("r%d", i+1)
		if _, path, err := s2.Get(id); err != nil || filepath.Base(path) != tc.want {
			t.Errorf("after a restart, Get(%s): %s, %v; want %s", id, path, err, tc.want)
		}
	}
}

// TestPurge: retention deletes the stored recordings older than their
// account's days (or the default's), never one on hold, and keeps the
// rows, deleted.
func TestPurge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.open(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	recs := []struct {
		id, account string
		age         time.Duration
		hold        bool
		kept        bool
	}{
		{"old-acme", "acme", 40 * 24 * time.Hour, false, false},
		{"held-acme", "acme", 40 * 24 * time.Hour, true, true},
		{"new-acme", "acme", 10 * 24 * time.Hour, false, true},
		{"old-pci", "pci", 40 * 24 * time.Hour, false, true}, // pci keeps 90 days
		{"older-pci", "pci", 100 * 24 * time.Hour, false, false},
	}
	for _, r := range recs {
		m := meta(r.id)
		m.Account, m.Start = r.account, now.Add(-r.age)
		finishWAV(t, s, e.spool, m)
		if r.hold {
			if err := s.SetHold(ctx, r.id, true); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := s.Purge(ctx, map[string]int{"": 30, "pci": 90}, now, 100)
	if err != nil || n != 2 {
		t.Fatalf("Purge: %d deleted, %v; want 2", n, err)
	}
	for _, r := range recs {
		got, err := s.Lookup(ctx, r.id)
		if err != nil {
			t.Fatalf("%s: %v", r.id, err)
		}
		if kept := got.State != "deleted"; kept != r.kept {
			t.Errorf("%s: state %s, want kept %t", r.id, got.State, r.kept)
		}
		if _, statErr := os.Stat(got.Path); (statErr == nil) != r.kept {
			t.Errorf("%s: media present %t, want %t", r.id, statErr == nil, r.kept)
		}
	}
	if err := s.Delete(ctx, "held-acme", "test"); !errors.Is(err, ErrHeld) {
		t.Errorf("deleting a held recording: %v", err)
	}
}

// TestActive: a recording is in the catalog from its start, active; its
// finish replaces the row (stored, or discarded when too short), and an
// entry of its start that comes late never brings it back to active; a
// start the switch refused is discarded.
func TestActive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.open(t)
	ctx := context.Background()
	state := func(id string) string {
		t.Helper()
		r, err := s.Lookup(ctx, id)
		if err != nil {
			return err.Error()
		}
		return r.State
	}
	for _, id := range []string{"a1", "a2", "a3"} {
		s.Started(meta(id))
	}
	s.Refused("a3")
	waitFor(t, "the entries of the starts", func() bool { return state("a1") == "active" && state("a3") == "discarded" })
	finishWAV(t, s, e.spool, meta("a1"))
	short := meta("a2")
	short.RecordMinSec = 5
	finishWAV(t, s, e.spool, short)
	// A late entry of a start changes nothing.
	s.Started(meta("a1"))
	s.Started(meta("a2"))
	s.Started(meta("a4"))
	waitFor(t, "the late entries", func() bool { return state("a4") == "active" })
	for id, want := range map[string]string{"a1": "stored", "a2": "discarded", "a3": "discarded", "a4": "active"} {
		if got := state(id); got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
}
