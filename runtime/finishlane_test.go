package runtime

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recpol/recpol/runtime/catalog"
	"github.com/recpol/recpol/runtime/store"
)

// silentWAV is a second of 8 kHz 16-bit mono silence.
func silentWAV() []byte {
	const data = 8000 * 2
	b := make([]byte, 44+data)
	le := binary.LittleEndian
	copy(b, "RIFF")
	le.PutUint32(b[4:], 36+data)
	copy(b[8:], "WAVEfmt ")
	le.PutUint32(b[16:], 16)
	le.PutUint16(b[20:], 1) // PCM
	le.PutUint16(b[22:], 1) // mono
	le.PutUint32(b[24:], 8000)
	le.PutUint32(b[28:], 8000*2)
	le.PutUint16(b[32:], 2)
	le.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	le.PutUint32(b[40:], data)
	return b
}

// laneRig is a finish lane in front of a real store and catalog, its
// workers not started.
type laneRig struct {
	r       *Runtime
	cat     *catalog.Catalog
	spool   string
	storage string
	depth   atomic.Int64
	done    atomic.Int64 // recordings whose Done was called
	mu      sync.Mutex
	failed  int // storage failures the store reported
}

func newLaneRig(t *testing.T) *laneRig {
	t.Helper()
	d := t.TempDir()
	rig := &laneRig{spool: filepath.Join(d, "spool"), storage: filepath.Join(d, "storage")}
	cat, err := catalog.Open(context.Background(), catalog.Config{DSN: filepath.Join(d, "catalog.db")})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Config{Storage: rig.storage, Spool: filepath.Join(d, "store"), Catalog: cat, Logger: quietLogger(),
		Events: func(e store.Event) {
			if e.Kind == store.EventStorageFull {
				rig.mu.Lock()
				rig.failed++
				rig.mu.Unlock()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(); cat.Close() })
	rig.cat = cat
	rig.r = &Runtime{log: quietLogger(), Metrics: NewMetrics(), Store: st,
		finishing: newFinishLane(func(n int) { rig.depth.Store(int64(n)) })}
	rig.r.finishing.retryBase = time.Millisecond
	return rig
}

// push writes n recordings of account into the spool and queues them.
func (rig *laneRig) push(t *testing.T, account string, n int) []string {
	t.Helper()
	files := make([]string, n)
	for i := range files {
		id := fmt.Sprintf("%s-%03d", account, i)
		files[i] = filepath.Join(rig.spool, id+".wav")
		if err := os.MkdirAll(rig.spool, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(files[i], silentWAV(), 0o600); err != nil {
			t.Fatal(err)
		}
		m := store.Metadata{RecordingID: id, CallID: "call-" + id, InteractionID: "ia-" + id, Account: account,
			Start: time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC), SampleRate: 8000, Format: "wav"}
		rig.r.Finish(Finished{Meta: m, LocalPath: files[i], Done: func() { rig.done.Add(1) }})
	}
	return files
}

// run starts the lane's workers until the test ends.
func (rig *laneRig) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { rig.r.runFinishLane(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
}

// TestFinishLaneBatches: a burst queued together is taken by the finish
// workers in batches of at most finishBatch and committed to the catalog
// in one transaction per batch: the workers are woken once per batch, not
// once per recording.
func TestFinishLaneBatches(t *testing.T) {
	rig := newLaneRig(t)
	const n = 2*finishBatch - 10
	files := rig.push(t, "acme", n)
	if got := rig.depth.Load(); got != n {
		t.Errorf("queue depth %d, want %d", got, n)
	}
	before := rig.cat.Stats()
	rig.run(t)
	waitFor(t, "every recording taken", func() bool { return rig.done.Load() == n })
	st := rig.cat.Stats()
	// The burst was queued before the workers started: each batch is
	// full but the last, each one commit (two batches taken at once by two
	// workers may even share one).
	batches := int64((n + finishBatch - 1) / finishBatch)
	if c, a := st.Commits-before.Commits, st.Applies-before.Applies; c < (batches+finishWorkers-1)/finishWorkers || c > batches || a != n {
		t.Errorf("%d commits of %d applies, want at most %d (one a batch) of %d", c, a, batches, n)
	}
	for _, f := range files {
		if _, err := os.Lstat(f); !os.IsNotExist(err) {
			t.Errorf("%s still in the spool (%v)", f, err)
		}
	}
	waitFor(t, "an empty queue", func() bool { return rig.depth.Load() == 0 })
}

// TestFinishLaneRetries: while storage fails, the recordings stay in the
// spool, counted in the queue depth, their intents kept (Done not
// called), and the lane retries them with backoff; once storage works
// they are stored, each once.
func TestFinishLaneRetries(t *testing.T) {
	rig := newLaneRig(t)
	// A file where the account's directory goes: every move fails.
	if err := os.MkdirAll(rig.storage, 0o700); err != nil {
		t.Fatal(err)
	}
	block := filepath.Join(rig.storage, "blocked")
	if err := os.WriteFile(block, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const n = 8
	files := rig.push(t, "blocked", n)
	rig.run(t)
	waitFor(t, "a failure per recording", func() bool {
		rig.mu.Lock()
		defer rig.mu.Unlock()
		return rig.failed == n
	})
	before := rig.cat.Stats().Applies
	waitFor(t, "retries", func() bool { return rig.cat.Stats().Applies > before+n })
	if got := rig.done.Load(); got != 0 {
		t.Fatalf("%d intents released while storage failed", got)
	}
	if got := rig.depth.Load(); got != n {
		t.Errorf("queue depth %d while storage fails, want %d", got, n)
	}
	for _, f := range files {
		if _, err := os.Lstat(f); err != nil {
			t.Errorf("%s left the spool while storage failed: %v", f, err)
		}
	}
	if err := os.Remove(block); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every recording stored", func() bool { return rig.done.Load() == n })
	for i, f := range files {
		if _, err := os.Lstat(f); !os.IsNotExist(err) {
			t.Errorf("%s still in the spool (%v)", f, err)
		}
		r, err := rig.r.Store.Lookup(context.Background(), fmt.Sprintf("blocked-%03d", i))
		if err != nil || r.State != "stored" {
			t.Errorf("recording %d in the catalog: %q %v", i, r.State, err)
		}
	}
	waitFor(t, "an empty queue", func() bool { return rig.depth.Load() == 0 })
	if got := rig.done.Load(); got != n {
		t.Errorf("Done called %d times for %d recordings", got, n)
	}
}
