package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// finishSummary is what a test checks of one FinishAll outcome.
type finishSummary struct {
	Outcome   Outcome
	Duplicate bool
	Queued    bool
	Invalid   bool
}

func summarize(out []FinishResult) []finishSummary {
	s := make([]finishSummary, len(out))
	for i, o := range out {
		s[i] = finishSummary{Outcome: o.Result.Outcome, Duplicate: o.Result.Duplicate, Queued: o.Result.Queued,
			Invalid: errors.Is(o.Err, ErrInvalid)}
	}
	return s
}

// TestFinishAllCommitsOnce: the recordings of a burst handed over
// together are entered in the catalog with one transaction (one wait for
// one commit), each with its own outcome; a recording discarded or
// refused among them takes nothing from the others, and a recording
// handed over twice in one burst is stored once.
func TestFinishAllCommitsOnce(t *testing.T) {
	t.Parallel()
	stored := finishSummary{Outcome: Stored}
	burst := func(e *env, t *testing.T) ([]Item, []finishSummary) {
		var items []Item
		var want []finishSummary
		for i := range 64 {
			m := meta(fmt.Sprintf("burst-%02d", i))
			src := filepath.Join(e.spool, "rec", m.RecordingID+".wav")
			writeWAV(t, src, 8000, 1000)
			items = append(items, Item{Meta: m, File: src})
			want = append(want, stored)
		}
		return items, want
	}
	mixed := func(e *env, t *testing.T) ([]Item, []finishSummary) {
		a, d := meta("a"), meta("d")
		d.URL = "http://127.0.0.1:9/up/"
		srcA, srcD := filepath.Join(e.spool, "rec", "a.wav"), filepath.Join(e.spool, "rec", "d.wav")
		srcEmpty, srcBad := filepath.Join(e.spool, "rec", "b.wav"), filepath.Join(e.spool, "rec", "c.mp3")
		writeWAV(t, srcA, 8000, 1000)
		writeWAV(t, srcD, 8000, 1000)
		if err := os.WriteFile(srcEmpty, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		c := meta("c") // a WAV's metadata for an .mp3 file: refused
		return []Item{{a, srcA}, {meta("b"), srcEmpty}, {c, srcBad}, {a, srcA}, {d, srcD}},
			[]finishSummary{stored, {Outcome: Discarded}, {Invalid: true}, {Outcome: Stored, Duplicate: true}, {Outcome: Stored, Queued: true}}
	}
	for _, tc := range []struct {
		name            string
		items           func(*env, *testing.T) ([]Item, []finishSummary)
		commits, applys int64
	}{
		{"burst of 64", burst, 1, 64},
		// The discarded recording's row is an Apply of its own; the
		// repeated one is answered from the catalog after the others'
		// commit, without a write.
		{"mixed", mixed, 2, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.open(t)
			items, want := tc.items(e, t)
			before := s.cat.Stats()
			out := s.FinishAll(items)
			st := s.cat.Stats()
			if diff := cmp.Diff(want, summarize(out)); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
			if c, a := st.Commits-before.Commits, st.Applies-before.Applies; c != tc.commits || a != tc.applys {
				t.Errorf("%d commits of %d applies, want %d of %d", c, a, tc.commits, tc.applys)
			}
			for i, o := range out {
				if o.Result.Outcome != Stored {
					continue
				}
				if exists(items[i].File) || !regularFile(o.Result.Path) {
					t.Errorf("%s: still in the spool, or not at %s", items[i].Meta.RecordingID, o.Result.Path)
				}
				if r, err := s.Lookup(context.Background(), items[i].Meta.RecordingID); err != nil || r.State != "stored" {
					t.Errorf("%s in the catalog: %q %v", items[i].Meta.RecordingID, r.State, err)
				}
			}
		})
	}
}

// TestFinishAllStorageFails: while storage fails, every recording of a
// burst stays in the spool, listed in the catalog as finishing, and
// reports the failure; Run retries them once storage works again, and
// each one is stored once.
func TestFinishAllStorageFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.open(t)
	s.rename = func(oldpath, newpath string) error {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: syscall.ENOSPC}
	}
	const n = 16
	items := make([]Item, n)
	for i := range items {
		m := meta(fmt.Sprintf("full-%02d", i))
		items[i] = Item{Meta: m, File: filepath.Join(e.spool, "rec", m.RecordingID+".wav")}
		writeWAV(t, items[i].File, 8000, 1000)
	}
	for i, o := range s.FinishAll(items) {
		if !errors.Is(o.Err, ErrStorageFull) {
			t.Errorf("%s: %v, want storage full", items[i].Meta.RecordingID, o.Err)
		}
		if !exists(items[i].File) {
			t.Errorf("%s left the spool", items[i].Meta.RecordingID)
		}
		if r, err := s.Lookup(context.Background(), items[i].Meta.RecordingID); err != nil || r.State != "finishing" {
			t.Errorf("%s in the catalog: %q %v, want finishing", items[i].Meta.RecordingID, r.State, err)
		}
	}
	if e.count(EventStored) != 0 {
		t.Fatal("a recording was stored while storage failed")
	}
	s.rename = os.Rename
	run(t, s)
	waitFor(t, "every recording stored", func() bool { return e.count(EventStored) == n })
	for _, it := range items {
		if _, media, err := s.Get(it.Meta.RecordingID); err != nil || exists(it.File) || !regularFile(media) {
			t.Errorf("%s: %v (in the spool: %v)", it.Meta.RecordingID, err, exists(it.File))
		}
	}
	if got := e.count(EventStored); got != n {
		t.Errorf("%d stored events, want %d", got, n)
	}
}
