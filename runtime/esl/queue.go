package esl

import "sync"

// item is one Handler call.
type item struct {
	kind int // itemConnected, itemEvent or itemDisconnected
	core string
	ev   *Event
	err  error
}

const (
	itemConnected = iota
	itemEvent
	itemDisconnected
)

// queue hands Handler calls to one delivery goroutine, in order. It is
// unbounded so that the goroutine draining the library never waits on the
// Handler (the library's reader would stall behind it and commands with
// it); the Handler is expected to keep up.
type queue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []item
	closed bool
}

func newQueue() *queue {
	q := &queue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *queue) push(it item) {
	q.mu.Lock()
	q.items = append(q.items, it)
	q.mu.Unlock()
	q.cond.Signal()
}

// pushAll queues its, in order, with one wake-up of the delivery
// goroutine.
func (q *queue) pushAll(its []item) {
	if len(its) == 0 {
		return
	}
	q.mu.Lock()
	q.items = append(q.items, its...)
	q.mu.Unlock()
	q.cond.Signal()
}

// len returns how many items wait for the Handler.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// close makes run return once every queued item is delivered.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Signal()
}

// run delivers items to h until close.
func (q *queue) run(h Handler) {
	for {
		q.mu.Lock()
		for len(q.items) == 0 && !q.closed {
			q.cond.Wait()
		}
		if len(q.items) == 0 {
			q.mu.Unlock()
			return
		}
		it := q.items[0]
		q.items[0] = item{}
		q.items = q.items[1:]
		if len(q.items) == 0 {
			q.items = nil // a drained queue keeps no array sized by its longest backlog
		}
		q.mu.Unlock()
		switch it.kind {
		case itemConnected:
			h.Connected(it.core)
		case itemEvent:
			h.Event(it.ev)
		case itemDisconnected:
			h.Disconnected(it.err)
		}
	}
}
