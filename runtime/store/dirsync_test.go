package store

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDirSyncShared: concurrent callers share fsyncs of a directory, and
// each returns only after an fsync that began after its change has ended;
// an fsync's error reaches the callers it served.
func TestDirSyncShared(t *testing.T) {
	var changes atomic.Int64 // changes made so far
	var mu sync.Mutex
	covered := map[string]int64{} // by dir: changes made before the last fsync that ended began
	fsyncs := 0
	ds := newDirSyncer()
	ds.fsync = func(dir string) error {
		before := changes.Load()
		time.Sleep(time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		fsyncs++
		covered[dir] = before
		return nil
	}
	const workers, rounds = 32, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir := []string{"a", "b"}[w%2]
			for range rounds {
				c := changes.Add(1)
				if err := ds.sync(dir); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got := covered[dir]
				mu.Unlock()
				if got < c {
					t.Errorf("sync of %s returned after an fsync that began before change %d (it covers %d)", dir, c, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	if fsyncs >= workers*rounds {
		t.Errorf("%d fsyncs for %d calls: none shared", fsyncs, workers*rounds)
	}
	ds.mu.Lock()
	if len(ds.dirs) != 0 {
		t.Errorf("%d directories still tracked after every call returned", len(ds.dirs))
	}
	ds.mu.Unlock()

	boom := errors.New("disk gone")
	ds.fsync = func(string) error { return boom }
	if err := ds.sync("a"); !errors.Is(err, boom) {
		t.Errorf("sync error %v, want %v", err, boom)
	}
}
