package store

import (
	"context"
	"errors"

	"github.com/recpol/recpol/runtime/catalog"
)

// activeQueue bounds the catalog entries of starting recordings waiting to
// be written; past it they are skipped (the recording is entered at its
// finish all the same).
const activeQueue = 4096

// Started enters a recording the switch was asked to start in the catalog,
// as active, with its metadata so far, so that searches and interactions
// show it while it runs. It never blocks the caller (the engine's command
// path): the entries are written in order by one goroutine, and an entry
// never overwrites the row its recording's finish wrote. Crash recovery
// does not rest on it: the engine's write-ahead intent log does that.
func (s *Store) Started(m Metadata) {
	s.mirror(activeEntry{meta: &m})
}

// Refused marks a recording whose start the switch refused as discarded:
// it never ran.
func (s *Store) Refused(id string) {
	s.mirror(activeEntry{refused: id})
}

// activeEntry is an entry of Started (meta) or of Refused (refused). Its
// catalog row is built by the writer, off the caller's path.
type activeEntry struct {
	meta    *Metadata
	refused string
}

func (s *Store) mirror(e activeEntry) {
	s.activeMu.Lock()
	defer s.activeMu.Unlock()
	if s.active == nil {
		return // closed
	}
	select {
	case s.active <- e:
	default:
		s.log.Debug("the catalog is behind: a starting recording is entered at its finish")
	}
}

// activeBatch bounds the entries writeActive hands the catalog at once.
const activeBatch = 256

// writeActive writes the entries of Started and Refused in order until the
// queue is closed. It takes every entry queued (up to activeBatch) and
// hands them to the catalog at once (ApplyEach): they share a commit, each
// failing alone.
func (s *Store) writeActive(q <-chan activeEntry, done chan<- struct{}) {
	defer close(done)
	batch := make([][]catalog.Op, 0, activeBatch)
	for e := range q {
		batch = append(batch[:0], activeOps(e))
	more:
		for len(batch) < activeBatch {
			select {
			case e, ok := <-q:
				if !ok {
					break more
				}
				batch = append(batch, activeOps(e))
			default:
				break more
			}
		}
		for _, err := range s.cat.ApplyEach(context.Background(), batch...) {
			if err != nil && !errors.Is(err, catalog.ErrNotFound) {
				s.log.Warn("entering a starting recording in the catalog failed; it is entered at its finish", "error", err.Error())
			}
		}
	}
}

// activeOps is the catalog write of one entry: nil when its row cannot be
// built (ApplyEach skips an empty list).
func activeOps(e activeEntry) []catalog.Op {
	if e.meta == nil {
		return []catalog.Op{catalog.SetState(e.refused, catalog.StateDiscarded, "start-refused")}
	}
	r, err := row(*e.meta, "", catalog.StateActive)
	if err != nil {
		return nil
	}
	return []catalog.Op{catalog.AddRecording(r)}
}
