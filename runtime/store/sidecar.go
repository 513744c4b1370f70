package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/recpol/recpol/runtime/catalog"
)

// sidecarQueue bounds the sidecars waiting to be written. Past it a
// sidecar is skipped, with a log line: it is a copy of the catalog's row,
// which the next Open (it stays owed: see sidecarDue) or `recpol
// catalog sidecars` (WriteSidecars) writes again, and a finish never
// waits for it.
const sidecarQueue = 4096

// sidecarJob is a sidecar to write (meta beside media), or, with done
// set, a marker the lane closes once every job queued before it is done.
type sidecarJob struct {
	id, media string
	meta      Metadata
	done      chan struct{}
}

// queueSidecar hands the sidecar of a recording just stored to the
// sidecar lane. It never blocks: with the lane full, or the Store closed,
// the sidecar is skipped.
func (s *Store) queueSidecar(id, media string, m Metadata) {
	s.sidecarMu.Lock()
	defer s.sidecarMu.Unlock()
	if s.sidecars == nil {
		return // closed
	}
	select {
	case s.sidecars <- sidecarJob{id: id, media: media, meta: m}:
	default:
		if s.sidecarsSkipped++; s.sidecarsSkipped == 1 {
			s.log.Warn("the sidecar lane is full: sidecars are skipped until it catches up; the next Open or `recpol catalog sidecars` writes them from the catalog",
				"recording_id", id)
		}
	}
}

// writeSidecars is the sidecar lane: it first writes the sidecars an
// earlier process owed (due, listed by Open: see repairSidecars), then the
// ones queued by queueSidecar, in order, until the queue is closed
// (Close), and then the ones still queued.
func (s *Store) writeSidecars(q <-chan sidecarJob, done chan<- struct{}, due []string) {
	defer close(done)
	if len(due) > 0 {
		s.repairSidecars(due)
		s.trimOwed()
	}
	for job := range q {
		if job.done == nil {
			if err := s.writeSidecar(job); err != nil {
				s.log.Warn("a sidecar could not be written; the next Open or `recpol catalog sidecars` writes it from the catalog",
					"recording_id", job.id, "error", err.Error())
			}
			s.trimOwed()
		}
		if len(q) == 0 {
			s.sidecarMu.Lock()
			n := s.sidecarsSkipped
			s.sidecarsSkipped = 0
			s.sidecarMu.Unlock()
			if n > 0 {
				s.log.Warn("the sidecar lane caught up", "skipped", n)
			}
		}
		if job.done != nil {
			close(job.done)
		}
	}
}

// writeSidecar writes one sidecar and then clears its mark (sidecarDue).
// A sidecar that cannot be written keeps its mark: the next Open tries
// again.
// It holds the recording's lock and writes only while the media is in
// storage, so that a recording deleted meanwhile gets no sidecar again.
func (s *Store) writeSidecar(job sidecarJob) error {
	unlock := s.lock(job.id)
	defer unlock()
	if err := s.writeSidecarLocked(job.id, job.media, job.meta); err != nil {
		return err
	}
	s.sidecarWritten(job.id)
	return nil
}

// writeSidecarLocked writes the sidecar of recording id, stored at media,
// through a temporary file and a rename, without fsync: the catalog is the
// record. Nothing is written when the media is not in storage (deleted).
// The caller holds the recording's lock.
func (s *Store) writeSidecarLocked(id, media string, m Metadata) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("recording %s: sidecar: %w", id, err)
	}
	// The sidecar's directory is the media's: opened at once when no link
	// is on its way (the media looked at, the sidecar written and renamed
	// in it), else checked component by component. The sidecar's own
	// name is not looked at: the rename replaces whatever is there, a
	// symbolic link included, without following it.
	if d, ok := s.openStorageDir(filepath.Dir(media)); ok {
		defer d.close()
		if _, err := d.lstat(filepath.Base(media)); errors.Is(err, os.ErrNotExist) {
			s.log.Debug("no sidecar: the recording was deleted before it was written", "recording_id", id)
			return nil
		} else if err != nil {
			return fmt.Errorf("recording %s: sidecar: %w", id, err)
		}
		if err := d.writeReplace(id+".json", b); err != nil {
			return fmt.Errorf("recording %s: sidecar: %w", id, err)
		}
		return nil
	}
	if _, err := lstatBelow(s.storage, media); errors.Is(err, os.ErrNotExist) {
		s.log.Debug("no sidecar: the recording was deleted before it was written", "recording_id", id)
		return nil
	} else if err != nil {
		return fmt.Errorf("recording %s: sidecar: %w", id, err)
	}
	if err := writeFileReplace(sidecarOf(media, id), b); err != nil {
		return fmt.Errorf("recording %s: sidecar: %w", id, err)
	}
	return nil
}

// sidecarRepair counts what the lane did at its start with the sidecars
// an earlier process owed.
type sidecarRepair struct {
	Due       int // ids in the log Open read (owed.go)
	Repaired  int // sidecars written from the catalog
	Present   int // sidecars already there, left alone
	NotStored int // recordings not (or no longer) stored, or their media gone: nothing owed
	Failed    int // not written; still owed, for the next Open
}

// repairSidecars writes the sidecars an earlier process owed when it
// stopped: killed between a recording's commit and its sidecar, or with
// sidecars skipped by a full lane or failed. Each is checked with one
// catalog read and one stat; a sidecar already there is not written
// again. One Info line says what was done, and each sidecar written is an
// EventSidecarRepaired.
func (s *Store) repairSidecars(ids []string) {
	rep := sidecarRepair{Due: len(ids)}
	for _, id := range ids {
		s.repairSidecar(id, &rep)
	}
	s.sidecarMu.Lock()
	s.sidecarsRepair = rep
	s.sidecarMu.Unlock()
	s.log.Info("sidecars owed when the store last stopped", "due", rep.Due, "repaired", rep.Repaired,
		"present", rep.Present, "not_stored", rep.NotStored, "failed", rep.Failed)
}

func (s *Store) repairSidecar(id string, rep *sidecarRepair) {
	unlock := s.lock(id)
	defer unlock()
	cr, err := s.cat.Get(context.Background(), id)
	if errors.Is(err, catalog.ErrNotFound) {
		rep.NotStored++ // its commit never happened
		s.sidecarWritten(id)
		return
	}
	if err != nil {
		rep.Failed++
		s.log.Warn("an owed sidecar could not be checked; the next Open tries again", "recording_id", id, "error", err.Error())
		return
	}
	switch cr.State {
	case catalog.StateStored, catalog.StateUploaded, catalog.StateDead:
	default:
		// Deleted, quarantined, discarded; or finishing, whose next
		// attempt marks it again before its commit.
		rep.NotStored++
		s.sidecarWritten(id)
		return
	}
	r, err := fromRow(cr)
	if err != nil {
		// WriteSidecars cannot write it either: the row needs a look.
		rep.Failed++
		s.log.Error("an owed sidecar cannot be written: its catalog row cannot be read", "recording_id", id, "error", err.Error())
		return
	}
	if !exists(r.Path) {
		// Its media left storage without Delete: no sidecar beside
		// nothing.
		rep.NotStored++
		s.sidecarWritten(id)
		return
	}
	if exists(sidecarOf(r.Path, id)) {
		rep.Present++
		s.sidecarWritten(id)
		return
	}
	if err := s.writeSidecarLocked(id, r.Path, r.Metadata); err != nil {
		rep.Failed++
		s.log.Warn("an owed sidecar could not be written; the next Open tries again", "recording_id", id, "error", err.Error())
		return
	}
	s.sidecarWritten(id)
	rep.Repaired++
	s.emit(Event{Kind: EventSidecarRepaired, RecordingID: id, Account: r.Account})
}

// closeSidecars stops the sidecar lane once it has written the sidecars
// still queued.
func (s *Store) closeSidecars() {
	s.sidecarMu.Lock()
	q := s.sidecars
	s.sidecars = nil
	s.sidecarMu.Unlock()
	if q != nil {
		close(q)
		<-s.sidecarsDone
	}
}
