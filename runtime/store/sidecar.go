package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// sidecarQueue bounds the sidecars waiting to be written. Past it a
// sidecar is skipped, with a log line: it is a copy of the catalog's row,
// which `recpol catalog sidecars` (WriteSidecars) writes again, and a
// finish never waits for it.
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
			s.log.Warn("the sidecar lane is full: sidecars are skipped until it catches up; `recpol catalog sidecars` writes them from the catalog",
				"recording_id", id)
		}
	}
}

// writeSidecars is the sidecar lane: it writes the sidecars queued by
// queueSidecar, in order, until the queue is closed (Close), and then
// the ones still queued.
func (s *Store) writeSidecars(q <-chan sidecarJob, done chan<- struct{}) {
	defer close(done)
	for job := range q {
		if job.done == nil {
			if err := s.writeSidecar(job); err != nil {
				s.log.Warn("a sidecar could not be written; `recpol catalog sidecars` writes it from the catalog",
					"recording_id", job.id, "error", err.Error())
			}
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

// writeSidecar writes one sidecar through a temporary file and a rename,
// without fsync: the catalog is the record. It holds the recording's lock
// and writes only while the media is in storage, so that a recording
// deleted meanwhile gets no sidecar again.
func (s *Store) writeSidecar(job sidecarJob) error {
	unlock := s.lock(job.id)
	defer unlock()
	if _, err := os.Lstat(job.media); errors.Is(err, os.ErrNotExist) {
		s.log.Debug("no sidecar: the recording was deleted before it was written", "recording_id", job.id)
		return nil
	} else if err != nil {
		return fmt.Errorf("recording %s: sidecar: %w", job.id, err)
	}
	sidecar := sidecarOf(job.media, job.id)
	if err := checkNoLinks(s.storage, sidecar); err != nil {
		return fmt.Errorf("recording %s: sidecar: %w", job.id, err)
	}
	b, err := json.MarshalIndent(job.meta, "", "  ")
	if err != nil {
		return fmt.Errorf("recording %s: sidecar: %w", job.id, err)
	}
	if err := writeFileReplace(sidecar, b); err != nil {
		return fmt.Errorf("recording %s: sidecar: %w", job.id, err)
	}
	return nil
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
