package store

import (
	"container/heap"
	"time"
)

// sched orders the store's background work: pending uploads and journals
// whose finish failed. Due entries wait in a FIFO, the others in a heap
// by their next attempt, so that Run's loop costs in proportion to the
// work it starts, not to the size of the backlog. The maps pending and
// stuck stay the truth: an entry popped that is no longer the map's entry
// for its recording, or is busy, is dropped. Guarded by Store.mu.
type sched struct {
	ready []*entry
	later laterHeap
}

// schedule queues e for its next attempt (e.next); an entry already
// queued or in flight is left alone. s.mu is held.
func (s *Store) schedule(e *entry, now time.Time) {
	if e.busy || e.queued {
		return
	}
	e.queued = true
	if e.next.After(now) {
		heap.Push(&s.sched.later, laterItem{at: e.next, e: e})
		return
	}
	s.sched.ready = append(s.sched.ready, e)
}

// current reports whether e is still the entry of its recording.
func (s *Store) current(e *entry) bool {
	if e.upload {
		return s.pending[e.id] == e
	}
	return s.stuck[e.id] == e
}

// due takes up to n entries whose attempt is due, marks them busy and
// returns them with the time until the next one is due (-1: none is
// waiting). s.mu is held.
func (s *Store) due(now time.Time, n int) ([]*entry, time.Duration) {
	sc := &s.sched
	for sc.later.Len() > 0 && !sc.later[0].at.After(now) {
		it := heap.Pop(&sc.later).(laterItem)
		sc.ready = append(sc.ready, it.e)
	}
	var out []*entry
	for len(out) < n && len(sc.ready) > 0 {
		e := sc.ready[0]
		sc.ready[0] = nil
		sc.ready = sc.ready[1:]
		e.queued = false
		if e.busy || !s.current(e) {
			continue
		}
		if e.next.After(now) { // rescheduled since it was queued
			s.schedule(e, now)
			continue
		}
		e.busy = true
		out = append(out, e)
	}
	if len(sc.ready) == 0 {
		sc.ready = nil // let the backing array go once drained
	}
	wait := time.Duration(-1)
	if len(sc.ready) > 0 {
		wait = 0
	} else if sc.later.Len() > 0 {
		wait = sc.later[0].at.Sub(now)
	}
	return out, wait
}

type laterItem struct {
	at time.Time
	e  *entry
}

// laterHeap is a min-heap of entries by the time of their next attempt.
type laterHeap []laterItem

func (h laterHeap) Len() int           { return len(h) }
func (h laterHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h laterHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *laterHeap) Push(x any)        { *h = append(*h, x.(laterItem)) }
func (h *laterHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = laterItem{}
	*h = old[:len(old)-1]
	return it
}
