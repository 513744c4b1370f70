package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/recpol/recpol/runtime/catalog"
)

// Delete removes a stored recording's media and sidecar and marks its
// catalog row deleted (the row stays, for the audit). A recording on legal
// hold is refused with an error wrapping ErrHeld; one that is not stored
// (quarantined, unknown) with ErrNotFound. Deleting a deleted recording
// removes whatever of its files a crash left. who is logged.
func (s *Store) Delete(ctx context.Context, id, who string) error {
	unlock := s.lock(id)
	defer unlock()
	r, err := s.Lookup(ctx, id)
	if err != nil {
		return err
	}
	switch catalog.State(r.State) {
	case catalog.StateStored, catalog.StateUploaded, catalog.StateDead, catalog.StateDeleted:
	default:
		return fmt.Errorf("recording %s is %s: %w", id, r.State, ErrNotFound)
	}
	if r.Hold {
		return fmt.Errorf("recording %s: %w", id, ErrHeld)
	}
	s.mu.Lock()
	_, pending := s.pending[id]
	s.mu.Unlock()
	if pending {
		return fmt.Errorf("recording %s: its upload is pending; delete it once uploaded or dead-lettered: %w", id, ErrConflict)
	}
	if err := checkNoLinks(s.storage, r.Path); err != nil {
		return err
	}
	// The row first: a recording the catalog says is deleted is never
	// served, and a crash before the files go leaves them to the next
	// Delete, never a listed recording without its media.
	if err := s.cat.Apply(ctx, catalog.SetState(id, catalog.StateDeleted)); err != nil {
		if errors.Is(err, catalog.ErrHeld) {
			return fmt.Errorf("recording %s: %w", id, ErrHeld)
		}
		return fmt.Errorf("recording %s: delete: %w", id, err)
	}
	for _, p := range []string{r.Path, sidecarOf(r.Path, id)} {
		if err := s.dirs.removeDurable(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("recording %s: delete: %w", id, err)
		}
	}
	s.log.Info("recording deleted", "recording_id", id, "account", r.Account, "by", who)
	return nil
}

// SetHold puts a recording on legal hold, or lifts it: a held recording
// is never deleted nor purged.
func (s *Store) SetHold(ctx context.Context, id string, hold bool) error {
	if _, err := s.Lookup(ctx, id); err != nil {
		return err
	}
	if err := s.cat.Apply(ctx, catalog.SetHold(id, hold)); err != nil {
		return fmt.Errorf("recording %s: hold: %w", id, err)
	}
	return nil
}

// Purge deletes, per account, the stored recordings older than the
// account's retention (retention: days by account id; the "" entry, when
// present, applies to every account without one), except those on hold.
// It deletes at most n recordings per account in one call and returns how
// many it deleted.
func (s *Store) Purge(ctx context.Context, retention map[string]int, now time.Time, n int) (int, error) {
	total := 0
	for account, days := range retention {
		if days <= 0 {
			continue
		}
		before := now.Add(-time.Duration(days) * 24 * time.Hour)
		rows, err := s.cat.PurgeCandidates(ctx, account, before, n)
		if err != nil {
			return total, fmt.Errorf("retention of %q: %w", account, err)
		}
		for _, cr := range rows {
			if account == "" {
				if _, own := retention[cr.Account]; own {
					continue // that account's own retention decides
				}
			}
			err := s.Delete(ctx, cr.ID, "retention")
			switch {
			case err == nil:
				total++
			case errors.Is(err, ErrHeld), errors.Is(err, ErrConflict):
			default:
				return total, err
			}
		}
	}
	return total, nil
}
