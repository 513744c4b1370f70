package store

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
)

// The sidecars owed. A recording's sidecar is owed from the commit that
// stores the recording until the lane writes it. Finish marks it before
// that commit (sidecarDue): the id goes into an in-memory set and, as one
// line, into a log, <Spool>/sidecars-owed, appended to without fsync (one
// write of a few bytes: the log has to outlive the process, not the
// machine, as the sidecars it stands for are not fsynced either). The lane
// takes the id out of the set once the sidecar is written (sidecarWritten)
// and, when the log has grown well past the set, replaces the log by one
// holding exactly the set (trimOwed). So the log always holds every owed
// id, and some written ones: Open reads it and the lane checks each id
// with one catalog read and one stat (repairSidecars). A clean Close with
// nothing owed removes the log: the next Open reads nothing.
const owedFile = "sidecars-owed"

// owedTrimAt: the log is replaced once it holds this many lines more than
// twice the ids owed.
const owedTrimAt = 4096

func (s *Store) owedPath() string { return filepath.Join(s.spool, owedFile) }

// openOwed reads the ids an earlier process left owed (its log, and the
// replacement it was writing when it stopped), starts a new log holding
// them, and returns them.
func (s *Store) openOwed() []string {
	owed := map[string]struct{}{}
	var ids []string
	for _, p := range []string{s.owedPath() + ".tmp", s.owedPath()} {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			s.log.Warn("the sidecars owed when the store last stopped cannot be read; `recpol catalog sidecars` writes them",
				"path", p, "error", err.Error())
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			id := sc.Text()
			if _, ok := owed[id]; ok || !ValidName(id) { // a line cut by a crash of the machine
				continue
			}
			owed[id] = struct{}{}
			ids = append(ids, id)
		}
		if err := sc.Err(); err != nil {
			s.log.Warn("the sidecars owed when the store last stopped cannot all be read; `recpol catalog sidecars` writes them",
				"path", p, "error", err.Error())
		}
		f.Close()
	}
	s.owedMu.Lock()
	s.owed = owed
	s.replaceOwedLocked()
	s.owedMu.Unlock()
	return ids
}

// sidecarDue marks the sidecar of recording id as owed, before the commit
// that stores the recording: a crash before the lane writes it leaves the
// id in the log for the next Open. A mark that cannot be written is
// logged (once until the log works again) and the recording stored all
// the same: the sidecar is a copy, and the catalog the record.
func (s *Store) sidecarDue(id string) {
	s.owedMu.Lock()
	defer s.owedMu.Unlock()
	if s.owed == nil {
		return // closed
	}
	s.owed[id] = struct{}{}
	if s.owedLog == nil {
		return // its creation failed; the next replacement writes the id
	}
	if _, err := s.owedLog.Write([]byte(id + "\n")); err != nil {
		s.owedFailed(err)
		return
	}
	s.owedLines++
}

// sidecarWritten clears the mark of recording id: its sidecar is written,
// or is not owed any more.
func (s *Store) sidecarWritten(id string) {
	s.owedMu.Lock()
	delete(s.owed, id)
	s.owedMu.Unlock()
}

// trimOwed replaces the log by one holding exactly the ids owed, once it
// has grown well past them.
func (s *Store) trimOwed() {
	s.owedMu.Lock()
	defer s.owedMu.Unlock()
	if s.owed != nil && (s.owedLog == nil || s.owedLines >= 2*len(s.owed)+owedTrimAt) {
		s.replaceOwedLocked()
	}
}

// replaceOwedLocked writes the ids owed to a new log, which takes the
// marks from then on, and renames it over the old one. A crash between
// the two leaves both, and Open reads both.
func (s *Store) replaceOwedLocked() {
	tmp := s.owedPath() + ".tmp"
	f, err := createExcl(tmp)
	if err != nil {
		s.owedFailed(err)
		return
	}
	b := make([]byte, 0, 40*len(s.owed))
	for id := range s.owed {
		b = append(b, id...)
		b = append(b, '\n')
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		s.owedFailed(err)
		return
	}
	if s.owedLog != nil {
		s.owedLog.Close()
	}
	s.owedLog, s.owedLines = f, len(s.owed)
	if err := os.Rename(tmp, s.owedPath()); err != nil {
		s.owedFailed(err)
		return
	}
	s.owedErr = false
}

func (s *Store) owedFailed(err error) {
	if !s.owedErr {
		s.owedErr = true
		s.log.Warn("the sidecars owed cannot be recorded in the spool; should the process die before they are written, `recpol catalog sidecars` writes them",
			"error", err.Error())
	}
}

// closeOwed ends the log once the lane has stopped: removed when nothing
// is owed, else replaced by one holding exactly the ids still owed (the
// sidecars skipped by a full lane or whose writing failed), which the
// next Open writes.
func (s *Store) closeOwed() {
	s.owedMu.Lock()
	defer s.owedMu.Unlock()
	if s.owed == nil {
		return
	}
	if len(s.owed) > 0 {
		s.replaceOwedLocked()
	}
	if s.owedLog != nil {
		s.owedLog.Close()
	}
	if len(s.owed) == 0 {
		for _, p := range []string{s.owedPath(), s.owedPath() + ".tmp"} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("the log of the sidecars owed cannot be removed; the next Open checks them again", "error", err.Error())
			}
		}
	}
	s.owed, s.owedLog, s.owedLines = nil, nil, 0
}
