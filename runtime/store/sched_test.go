package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestSchedDue: due entries come out first in, delayed ones when their
// time comes, in time order; an entry no longer current, busy, or queued
// twice comes out once or not at all; the wait is until the next one.
func TestSchedDue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &Store{pending: map[string]*entry{}, stuck: map[string]*entry{}}
	add := func(id string, upload bool, at time.Duration) *entry {
		e := &entry{id: id, upload: upload, next: t0.Add(at)}
		if !upload {
			e.j = &journal{Meta: Metadata{RecordingID: id}}
		}
		if upload {
			s.pending[id] = e
		} else {
			s.stuck[id] = e
		}
		s.schedule(e, t0)
		return e
	}
	add("a", true, 0)
	add("b", false, 0)
	add("late-2", true, 2*time.Second)
	late1 := add("late-1", true, time.Second)
	s.schedule(late1, t0) // queued already: once
	add("gone", true, 0)
	delete(s.pending, "gone")
	replaced := add("c", true, 0)
	s.pending["c"] = &entry{id: replaced.id, upload: true}

	ids := func(es []*entry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.id)
		}
		return out
	}
	steps := []struct {
		now      time.Duration
		n        int
		want     []string
		wantWait time.Duration
	}{
		{now: 0, n: 1, want: []string{"a"}, wantWait: 0},
		{now: 0, n: 10, want: []string{"b"}, wantWait: time.Second},
		{now: 1500 * time.Millisecond, n: 10, want: []string{"late-1"}, wantWait: 500 * time.Millisecond},
		{now: 3 * time.Second, n: 10, want: []string{"late-2"}, wantWait: -1},
	}
	for i, st := range steps {
		got, wait := s.due(t0.Add(st.now), st.n)
		if diff := cmp.Diff(st.want, ids(got)); diff != "" {
			t.Errorf("step %d: due (-want +got):\n%s", i, diff)
		}
		if wait != st.wantWait {
			t.Errorf("step %d: wait %v, want %v", i, wait, st.wantWait)
		}
		for _, e := range got {
			if !e.busy {
				t.Errorf("step %d: %s handed out without busy", i, e.id)
			}
		}
	}
	// A busy entry is not queued; once released and rescheduled, it is.
	a := s.pending["a"]
	s.schedule(a, t0)
	if got, _ := s.due(t0.Add(4*time.Second), 10); len(got) != 0 {
		t.Errorf("a busy entry came out: %v", ids(got))
	}
	a.busy = false
	a.next = t0.Add(5 * time.Second)
	s.schedule(a, t0.Add(4*time.Second))
	if got, wait := s.due(t0.Add(4*time.Second), 10); len(got) != 0 || wait != time.Second {
		t.Errorf("before its time: %v, wait %v", ids(got), wait)
	}
	if got, _ := s.due(t0.Add(5*time.Second), 10); !cmp.Equal(ids(got), []string{"a"}) {
		t.Errorf("at its time: %v", ids(got))
	}
}

// TestLockPerID: a recording's lock held (a Finish waiting on the disk)
// holds up that recording only; the same id waits; nothing is kept once
// released.
func TestLockPerID(t *testing.T) {
	s := &Store{locks: map[string]*idLock{}}
	unlockA := s.lock("a")
	done := make(chan struct{})
	go func() {
		for i := range 1000 {
			s.lock(fmt.Sprintf("other-%d", i))()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("other recordings wait on a's lock")
	}
	got := make(chan struct{})
	go func() {
		s.lock("a")()
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("a's lock taken twice")
	case <-time.After(50 * time.Millisecond):
	}
	unlockA()
	<-got
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	if len(s.locks) != 0 {
		t.Errorf("%d locks kept after release", len(s.locks))
	}
}
