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

// dirSet is the directories a batch of moves owes an fsync: each is
// fsynced once for all of them (syncAll).
type dirSet map[string]struct{}

// maxDirSyncs bounds the fsyncs syncAll runs at once: they wait on the
// disk, not on a core, and a filesystem commits its journal for several
// at a time.
const maxDirSyncs = 8

// syncAll fsyncs every directory of the set, through ds (shared with
// other callers), several at a time, and returns each one's error.
func (d dirSet) syncAll(ds *dirSyncer) dirErrs {
	errs := make(dirErrs, len(d))
	if len(d) == 1 {
		for dir := range d {
			errs[dir] = ds.sync(dir)
		}
		return errs
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, maxDirSyncs)
	)
	for dir := range d {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := ds.sync(dir)
			<-sem
			mu.Lock()
			errs[dir] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	return errs
}

// dirErrs is the outcome of syncAll: each directory's fsync error.
type dirErrs map[string]error

// errOf returns the first error of the fsyncs of dirs.
func (e dirErrs) errOf(dirs []string) error {
	for _, d := range dirs {
		if err := e[d]; err != nil {
			return err
		}
	}
	return nil
}
