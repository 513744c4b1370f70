package runtime

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/recpol/recpol/runtime/store"
)

// finishWorkers is how many recordings are handed to the store at once.
// The store's catalog commits the finishes of one moment together in one
// transaction (one fsync), so its throughput grows with the finishes in
// flight: with 4 workers a 200 calls/s soak finished 250 of its 400
// recordings a second and the queue grew without end; 64 keep the
// transactions full. A start never waits behind them: it has its own
// lane (the engine and its sender).
const finishWorkers = 64

// finishLane hands stopped recordings to the store from a fixed set of
// workers owned by Run. Finish only queues: the engine never waits on
// storage. Nothing queued is lost when the process ends: each recording's
// intent stays in the intent log until the store has taken it, and the
// next run finishes it again.
type finishLane struct {
	mu      sync.Mutex
	cond    *sync.Cond
	q       []Finished
	stopped bool
	depth   func(int) // reports the queue's length (a gauge)
}

func newFinishLane(depth func(int)) *finishLane {
	l := &finishLane{depth: depth}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// push queues f; it never blocks and never drops.
func (l *finishLane) push(f Finished) {
	l.mu.Lock()
	l.q = append(l.q, f)
	n := len(l.q)
	l.mu.Unlock()
	l.depth(n)
	l.cond.Signal()
}

// pop waits for the oldest queued recording; ok is false once the lane
// is stopped.
func (l *finishLane) pop() (f Finished, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.q) == 0 && !l.stopped {
		l.cond.Wait()
	}
	if l.stopped {
		return Finished{}, false
	}
	f = l.q[0]
	l.q[0] = Finished{}
	l.q = l.q[1:]
	l.depth(len(l.q))
	return f, true
}

// stop makes every pop return false; recordings still queued stay in the
// intent log for the next run.
func (l *finishLane) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	l.cond.Broadcast()
}

// Finish hands a stopped recording to the store: it is queued for the
// finish lane's workers (started by Run), which retry with backoff
// while storage fails (full, read-only); the file stays in the spool
// meanwhile.
func (r *Runtime) Finish(f Finished) { r.finishing.push(f) }

// runFinishLane runs the finish workers until ctx is done.
func (r *Runtime) runFinishLane(ctx context.Context) {
	var wg sync.WaitGroup
	for range finishWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				f, ok := r.finishing.pop()
				if !ok {
					return
				}
				r.finishOne(ctx, f)
			}
		}()
	}
	<-ctx.Done()
	r.finishing.stop()
	wg.Wait()
}

// finishOne hands one recording to the store, retrying with backoff
// until the store takes it, refuses it as invalid, or ctx is done.
func (r *Runtime) finishOne(ctx context.Context, f Finished) {
	delay := time.Second
	for {
		res, err := r.Store.Finish(f.Meta, f.LocalPath)
		if err == nil || errors.Is(err, store.ErrInvalid) {
			if err != nil {
				r.log.Error("the store refused a recording: its file stays where the switch wrote it",
					"recording", f.Meta.RecordingID, "file", f.LocalPath, "error", err)
			} else {
				r.logFinished(f, res)
			}
			if f.Done != nil {
				f.Done()
			}
			return
		}
		r.log.Error("finishing a recording failed; it stays in the spool and is retried", "recording", f.Meta.RecordingID, "error", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return // its intent stays: the next run finishes it
		case <-t.C:
		}
		if delay < time.Minute {
			delay *= 2
		}
	}
}

// logFinished is the one INFO line of a recording's end: its outcome,
// where it is, and why only when there is a reason.
func (r *Runtime) logFinished(f Finished, res store.Result) {
	attrs := []any{"recording", f.Meta.RecordingID, "account", f.Meta.Account, "call", f.Meta.InteractionID,
		"outcome", string(res.Outcome), "duration_ms", res.Metadata.DurationMS}
	if res.Path != "" {
		attrs = append(attrs, "path", res.Path)
	}
	if res.Reason != "" {
		attrs = append(attrs, "reason", res.Reason)
	}
	if f.Cause != "" {
		attrs = append(attrs, "cause", f.Cause)
	}
	if res.Queued {
		attrs = append(attrs, "upload_queued", true)
	}
	r.log.Info("recording finished", attrs...)
}
