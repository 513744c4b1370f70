package store

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// loadIndex walks Storage for sidecars (<account>/<yyyy>/<mm>/<dd>/<id>.json)
// and indexes them by recording id. Symbolic links are not followed.
func (s *Store) loadIndex() error {
	err := filepath.WalkDir(s.storage, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			s.log.Warn("cannot read part of storage", "path", p, "error", err.Error())
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(s.storage, p)
		depth := strings.Count(rel, string(filepath.Separator))
		if d.IsDir() {
			if rel != "." && depth >= 4 {
				return fs.SkipDir
			}
			return nil
		}
		if depth != 4 || !d.Type().IsRegular() || !strings.HasSuffix(p, ".json") {
			return nil
		}
		id := strings.TrimSuffix(d.Name(), ".json")
		if ValidName(id) {
			s.index[id] = p
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: index %s: %w", s.storage, err)
	}
	return nil
}

func readSidecar(path string) (Metadata, error) {
	var m Metadata
	b, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("sidecar %s: %w", path, err)
	}
	return m, nil
}

// Get returns a stored recording's metadata and the path of its media
// file. id is checked with ValidName first, as it usually comes from an
// HTTP request.
func (s *Store) Get(id string) (Metadata, string, error) {
	if !ValidName(id) {
		return Metadata{}, "", fmt.Errorf("recording id %q: %w", id, ErrInvalid)
	}
	s.mu.Lock()
	sidecar, ok := s.index[id]
	s.mu.Unlock()
	if !ok {
		return Metadata{}, "", fmt.Errorf("recording %s: %w", id, ErrNotFound)
	}
	m, err := readSidecar(sidecar)
	if os.IsNotExist(err) {
		return Metadata{}, "", fmt.Errorf("recording %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Metadata{}, "", fmt.Errorf("recording %s: %w", id, err)
	}
	if m.RecordingID != id || !ValidName(m.Format) {
		return Metadata{}, "", fmt.Errorf("recording %s: sidecar does not match its name", id)
	}
	media := s.mediaPath(m)
	if filepath.Dir(media) != filepath.Dir(sidecar) {
		return Metadata{}, "", fmt.Errorf("recording %s: sidecar is not where its metadata says the recording is stored", id)
	}
	if err := checkNoLinks(s.storage, media); err != nil {
		return Metadata{}, "", err
	}
	return m, media, nil
}

// List returns the stored recordings that match f, ordered by Start then
// recording id. Directories are pruned by account and date before any
// sidecar is read.
func (s *Store) List(f Filter) ([]Metadata, error) {
	if f.Account != "" && !ValidName(f.Account) {
		return nil, fmt.Errorf("account %q: %w", f.Account, ErrInvalid)
	}
	s.mu.Lock()
	paths := make([]string, 0, len(s.index))
	for _, p := range s.index {
		paths = append(paths, p)
	}
	s.mu.Unlock()
	var out []Metadata
	for _, p := range paths {
		rel, err := filepath.Rel(s.storage, p)
		if err != nil {
			continue
		}
		parts := strings.Split(rel, string(filepath.Separator))
		if len(parts) != 5 {
			continue
		}
		if f.Account != "" && parts[0] != f.Account {
			continue
		}
		day, err := time.Parse("2006/01/02", parts[1]+"/"+parts[2]+"/"+parts[3])
		if err == nil {
			if !f.From.IsZero() && !day.Add(24*time.Hour).After(f.From) {
				continue
			}
			if !f.Until.IsZero() && !day.Before(f.Until) {
				continue
			}
		}
		m, err := readSidecar(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
		if !f.From.IsZero() && m.Start.Before(f.From) {
			continue
		}
		if !f.Until.IsZero() && !m.Start.Before(f.Until) {
			continue
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, k int) bool {
		if !out[i].Start.Equal(out[k].Start) {
			return out[i].Start.Before(out[k].Start)
		}
		return out[i].RecordingID < out[k].RecordingID
	})
	return out, nil
}
