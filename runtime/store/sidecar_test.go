package store

import (
	"context"
	"fmt"
	"path/filepath"
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
	finish := func(t *testing.T, e *env, s *Store, id string) Result {
		t.Helper()
		src := filepath.Join(e.spool, id+".wav")
		writeWAV(t, src, 8000, 1000)
		r, err := s.Finish(meta(id), src)
		if err != nil || r.Outcome != Stored {
			t.Fatalf("Finish(%s): %+v %v", id, r, err)
		}
		return r
	}
	// block holds the lane on a sidecar of its own until the returned
	// func is called: the lane waits for the recording's lock.
	block := func(s *Store) (release func()) {
		unlock := s.lock("blocker")
		s.queueSidecar("blocker", filepath.Join(s.storage, "blocker.wav"), meta("blocker"))
		return unlock
	}
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
