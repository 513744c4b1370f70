package store

import (
	"fmt"
	"os"
	"sync"
)

// dirSyncer fsyncs directories for many concurrent callers, sharing
// fsyncs: a caller needs an fsync of its directory that began after its
// change (a rename, a removal, a new file), and every caller that arrives
// while one runs is served by the next one. At hundreds of recordings a
// second, each journal, move and sidecar would otherwise fsync the same
// few directories hundreds of times a second.
type dirSyncer struct {
	mu   sync.Mutex
	dirs map[string]*dirSync
	// fsync syncs one directory; fsyncDir but in tests.
	fsync func(dir string) error
}

// dirSync is the state of one directory's fsyncs.
type dirSync struct {
	cond     *sync.Cond // on dirSyncer.mu
	started  uint64     // fsyncs begun
	finished uint64     // the number of the last fsync that ended
	running  bool
	err      error // of the last fsync that ended
	users    int   // callers waiting or syncing
}

func newDirSyncer() *dirSyncer {
	return &dirSyncer{dirs: map[string]*dirSync{}, fsync: fsyncDir}
}

// sync returns once an fsync of dir that began after the call has ended,
// with its error.
func (ds *dirSyncer) sync(dir string) error {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	d := ds.dirs[dir]
	if d == nil {
		d = &dirSync{cond: sync.NewCond(&ds.mu)}
		ds.dirs[dir] = d
	}
	d.users++
	defer func() {
		if d.users--; d.users == 0 && !d.running {
			delete(ds.dirs, dir)
		}
	}()
	// The fsync running now may have begun before the caller's change:
	// the one after it is the first that counts.
	need := d.started + 1
	for d.finished < need {
		if d.running {
			d.cond.Wait()
			continue
		}
		d.running = true
		d.started++
		n := d.started
		ds.mu.Unlock()
		err := ds.fsync(dir)
		ds.mu.Lock()
		d.running, d.finished, d.err = false, n, err
		d.cond.Broadcast()
	}
	return d.err
}

// fsyncDir fsyncs a directory so that a rename or removal in it is
// durable.
func fsyncDir(dir string) error {
	d, err := openRaw(dir, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
