package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestSidecarLane: sidecars are written off the finish path, each equal
// to the catalog's metadata; Close writes the ones still queued; a
// recording deleted before its sidecar was written gets none; a full lane
// skips sidecars, says so, and says when it caught up.
func TestSidecarLane(t *testing.T) {
	t.Parallel()
	finish := finishStored
	block := blockLane
	tests := []struct {
		name string
		run  func(t *testing.T, e *env, s *Store)
	}{
		{"written by Close", func(t *testing.T, e *env, s *Store) {
			release := block(s)
			var want []Result
			for i := range 5 {
				want = append(want, finish(t, e, s, fmt.Sprintf("c%d", i)))
			}
			release()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			for _, r := range want {
				got, err := readSidecar(sidecarOf(r.Path, r.Metadata.RecordingID))
				if err != nil {
					t.Fatalf("sidecar of %s: %v", r.Metadata.RecordingID, err)
				}
				if diff := cmp.Diff(r.Metadata, got, cmpopts.EquateApproxTime(0)); diff != "" {
					t.Errorf("sidecar of %s (-finish +file):\n%s", r.Metadata.RecordingID, diff)
				}
			}
		}},
		{"deleted before written", func(t *testing.T, e *env, s *Store) {
			release := block(s)
			r := finish(t, e, s, "d1")
			if err := s.Delete(context.Background(), "d1", "test"); err != nil {
				t.Fatal(err)
			}
			release()
			s.syncSidecars()
			if exists(sidecarOf(r.Path, "d1")) {
				t.Error("a deleted recording got its sidecar")
			}
		}},
		{"full lane skips", func(t *testing.T, e *env, s *Store) {
			release := block(s)
			// The lane holds the blocker; the queue fills up.
			for i := range sidecarQueue {
				s.queueSidecar(fmt.Sprintf("q%d", i), filepath.Join(s.storage, "none.wav"), Metadata{})
			}
			r := finish(t, e, s, "skipped")
			if !strings.Contains(e.logs.String(), "sidecar lane is full") {
				t.Error("no log line for the skipped sidecar")
			}
			release()
			s.syncSidecars()
			if exists(sidecarOf(r.Path, "skipped")) {
				t.Error("a sidecar written past the lane's bound")
			}
			if !strings.Contains(e.logs.String(), "sidecar lane caught up") {
				t.Error("no log line when the lane caught up")
			}
			// The catalog is the record: the sidecars are written again.
			if _, err := s.WriteSidecars(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !exists(sidecarOf(r.Path, "skipped")) {
				t.Error("WriteSidecars did not write the skipped sidecar")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.open(t)
			tc.run(t, e, s)
		})
	}
}

// finishStored finishes recording id (a 1 s WAV) and fails the test
// unless it is stored.
func finishStored(t *testing.T, e *env, s *Store, id string) Result {
	t.Helper()
	src := filepath.Join(e.spool, id+".wav")
	writeWAV(t, src, 8000, 1000)
	r, err := s.Finish(meta(id), src)
	if err != nil || r.Outcome != Stored {
		t.Fatalf("Finish(%s): %+v %v", id, r, err)
	}
	return r
}

// blockLane holds the lane on a sidecar of its own until the returned
// func is called: the lane waits for the recording's lock.
func blockLane(s *Store) (release func()) {
	unlock := s.lock("blocker")
	s.queueSidecar("blocker", filepath.Join(s.storage, "blocker.wav"), meta("blocker"))
	// Returns once the lane waits for the blocker's lock, out of its
	// queue: a queue filled before that would have room left.
	for {
		s.lockMu.Lock()
		waiting := s.locks["blocker"].refs == 2
		s.lockMu.Unlock()
		if waiting {
			return unlock
		}
		runtime.Gosched()
	}
}

// syncSidecars returns once every sidecar queued before the call is
// written (or skipped for its error); at once when the Store is closed.
// For tests: it waits for room in the lane while holding the lane's lock.
func (s *Store) syncSidecars() {
	done := make(chan struct{})
	s.sidecarMu.Lock()
	q := s.sidecars
	if q != nil {
		// Blocks while the lane is full, which the lane's progress ends.
		q <- sidecarJob{done: done}
	}
	s.sidecarMu.Unlock()
	if q != nil {
		<-done
	}
}

// TestSidecarsOwedAtOpen: the sidecars a store owed when it stopped (its
// process killed after a recording's commit and before the lane wrote the
// sidecar, or the sidecar skipped by a full lane) are written by the next
// Open, equal to the catalog's metadata; a sidecar already there is not
// written again; a recording deleted or never stored gets none; after a
// clean Close the next Open has nothing to check and says nothing.
func TestSidecarsOwedAtOpen(t *testing.T) {
	t.Parallel()
	// owed is what a case expects of the next Open.
	type owed struct {
		written []Result // sidecars it must write, as Finish stored them
		kept    []string // sidecars already there, not to be written again
		none    []string // recordings that must have no sidecar
	}
	// kill stops s as if its process had died: it is never closed, and
	// its lane, held by blockLane until the test's cleanup, writes
	// nothing meanwhile.
	kill := func(t *testing.T, s *Store) {
		release := blockLane(s)
		t.Cleanup(release) // before the Close that e.open registered
	}
	tests := []struct {
		name   string
		before func(t *testing.T, e *env, s *Store) owed
		clean  bool // Close s before the next Open
		want   sidecarRepair
	}{
		{name: "killed with sidecars queued", before: func(t *testing.T, e *env, s *Store) owed {
			kill(t, s)
			var o owed
			for _, id := range []string{"q1", "q2", "q3"} {
				o.written = append(o.written, finishStored(t, e, s, id))
			}
			return o
		}, want: sidecarRepair{Due: 3, Repaired: 3}},
		{name: "killed right after the commit", before: func(t *testing.T, e *env, s *Store) owed {
			s.crashAfter = func(st string) bool { return st == "cataloged" }
			src := filepath.Join(e.spool, "c1.wav")
			writeWAV(t, src, 8000, 1000)
			if _, err := s.Finish(meta("c1"), src); !errors.Is(err, errCrash) {
				t.Fatalf("Finish = %v, want the simulated crash", err)
			}
			s.crashAfter = nil
			kill(t, s)
			r, err := s.Lookup(context.Background(), "c1")
			if err != nil {
				t.Fatal(err)
			}
			return owed{written: []Result{{Path: r.Path, Metadata: r.Metadata}}}
		}, want: sidecarRepair{Due: 1, Repaired: 1}},
		{name: "skipped by a full lane, then closed", clean: true, before: func(t *testing.T, e *env, s *Store) owed {
			release := blockLane(s)
			for i := range sidecarQueue {
				s.queueSidecar(fmt.Sprintf("x%d", i), filepath.Join(s.storage, "none.wav"), Metadata{})
			}
			r := finishStored(t, e, s, "skipped")
			release()
			return owed{written: []Result{r}}
		}, want: sidecarRepair{Due: 1, Repaired: 1}},
		{name: "written before the kill", before: func(t *testing.T, e *env, s *Store) owed {
			finishStored(t, e, s, "w1")
			s.syncSidecars()
			// Killed after the lane wrote the sidecar and before it
			// removed the mark.
			s.sidecarDue("w1")
			kill(t, s)
			return owed{written: []Result{finishStored(t, e, s, "w2")}, kept: []string{"w1"}}
		}, want: sidecarRepair{Due: 2, Repaired: 1, Present: 1}},
		{name: "deleted, never stored or media gone", before: func(t *testing.T, e *env, s *Store) owed {
			kill(t, s)
			finishStored(t, e, s, "d1")
			if err := s.Delete(context.Background(), "d1", "test"); err != nil {
				t.Fatal(err)
			}
			// Marked, and the process died before the commit.
			s.sidecarDue("ghost")
			// Its media removed from storage by hand.
			if err := os.Remove(finishStored(t, e, s, "gone").Path); err != nil {
				t.Fatal(err)
			}
			return owed{none: []string{"d1", "ghost", "gone"}}
		}, want: sidecarRepair{Due: 3, NotStored: 3}},
		{name: "clean Close", clean: true, before: func(t *testing.T, e *env, s *Store) owed {
			var o owed
			for _, id := range []string{"k1", "k2"} {
				finishStored(t, e, s, id)
				o.kept = append(o.kept, id)
			}
			return o
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.open(t)
			o := tc.before(t, e, s)
			if tc.clean {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				// Nothing owed, nothing for the next Open to read.
				if got := exists(s.owedPath()); got != (tc.want.Due > 0) {
					t.Errorf("after Close, the log of the sidecars owed exists: %v, want %v", got, tc.want.Due > 0)
				}
			}
			sidecar := func(id string) string { return sidecarOf(s.mediaPath(meta(id)), id) }
			for _, r := range o.written {
				if id := r.Metadata.RecordingID; exists(sidecarOf(r.Path, id)) {
					t.Fatalf("%s: the sidecar was written before the restart", id)
				}
			}
			kept := map[string]os.FileInfo{}
			for _, id := range o.kept {
				fi, err := os.Stat(sidecar(id))
				if err != nil {
					t.Fatalf("%s: %v", id, err)
				}
				kept[id] = fi
			}

			s2 := e.open(t)
			s2.syncSidecars() // the lane repairs before anything queued

			s2.sidecarMu.Lock()
			got := s2.sidecarsRepair
			s2.sidecarMu.Unlock()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("repair (-want +got):\n%s", diff)
			}
			for _, r := range o.written {
				id := r.Metadata.RecordingID
				m, err := readSidecar(sidecarOf(r.Path, id))
				if err != nil {
					t.Errorf("%s: %v", id, err)
					continue
				}
				if diff := cmp.Diff(r.Metadata, m, cmpopts.EquateApproxTime(0)); diff != "" {
					t.Errorf("sidecar of %s (-stored +file):\n%s", id, diff)
				}
				cat, err := s2.Lookup(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(cat.Metadata, m, cmpopts.EquateApproxTime(0)); diff != "" {
					t.Errorf("sidecar of %s (-catalog +file):\n%s", id, diff)
				}
			}
			for id, before := range kept {
				after, err := os.Stat(sidecar(id))
				if err != nil {
					t.Fatalf("%s: %v", id, err)
				}
				if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
					t.Errorf("%s: the sidecar that was there was written again", id)
				}
			}
			for _, id := range o.none {
				if p := sidecar(id); exists(p) {
					t.Errorf("%s: a sidecar was written for a recording not stored", id)
				}
			}
			s2.owedMu.Lock()
			left := len(s2.owed)
			s2.owedMu.Unlock()
			if left != 0 {
				t.Errorf("%d sidecars still owed after the repair", left)
			}
			if n := e.count(EventSidecarRepaired); n != tc.want.Repaired {
				t.Errorf("%d EventSidecarRepaired, want %d", n, tc.want.Repaired)
			}
			wantLines := 0
			if tc.want.Due > 0 {
				wantLines = 1
			}
			if n := strings.Count(e.logs.String(), "sidecars owed when the store last stopped"); n != wantLines {
				t.Errorf("%d log lines on the repair, want %d", n, wantLines)
			}
		})
	}
}

// TestOwedLog: the log of the sidecars owed holds every id owed, and only
// those once it is trimmed; a replacement that a crash interrupted leaves
// two logs, and Open reads both.
func TestOwedLog(t *testing.T) {
	t.Parallel()
	ids := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s%d", prefix, i))
		}
		return out
	}
	tests := []struct {
		name string
		run  func(t *testing.T, s *Store) (checked []string) // the ids the next Open checks
	}{
		{"trimmed once grown", func(t *testing.T, s *Store) []string {
			for _, id := range ids("w", owedTrimAt+10) {
				s.sidecarDue(id)
				s.sidecarWritten(id)
			}
			owed := ids("o", 3)
			for _, id := range owed {
				s.sidecarDue(id)
			}
			s.trimOwed()
			b, err := os.ReadFile(s.owedPath())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(owed, strings.Fields(string(b)), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("trimmed log (-owed +log):\n%s", diff)
			}
			return owed
		}},
		{"not trimmed while small", func(t *testing.T, s *Store) []string {
			for _, id := range ids("w", 10) {
				s.sidecarDue(id)
				s.sidecarWritten(id)
			}
			s.sidecarDue("o1")
			s.trimOwed()
			b, err := os.ReadFile(s.owedPath())
			if err != nil {
				t.Fatal(err)
			}
			if n := len(strings.Fields(string(b))); n != 11 {
				t.Errorf("log of %d lines, want the 11 appended", n)
			}
			// Open checks the ids written as well as the one owed.
			return append(ids("w", 10), "o1")
		}},
		{"replacement interrupted", func(t *testing.T, s *Store) []string {
			s.sidecarDue("o1")
			// The crash came after the new log was written and before
			// it was renamed over the old one.
			if err := os.WriteFile(s.owedPath()+".tmp", []byte("o2\no1\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{"o1", "o2"}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.open(t)
			owed := tc.run(t, s)
			// Killed: the next Open checks the ids in the log, which the
			// catalog does not know (their commits never happened).
			s2 := e.open(t)
			s2.syncSidecars()
			s2.sidecarMu.Lock()
			got := s2.sidecarsRepair
			s2.sidecarMu.Unlock()
			if diff := cmp.Diff(sidecarRepair{Due: len(owed), NotStored: len(owed)}, got); diff != "" {
				t.Errorf("repair (-want +got):\n%s", diff)
			}
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{s2.owedPath(), s2.owedPath() + ".tmp"} {
				if exists(p) {
					t.Errorf("%s left by a Close with nothing owed", p)
				}
			}
		})
	}
}
