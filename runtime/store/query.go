package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/recpol/recpol/internal/readlimit"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/recpol/recpol/runtime/catalog"
)

// row is a recording's catalog row: its filterable columns and its
// metadata as the document.
func row(m Metadata, path string, state catalog.State) (catalog.Recording, error) {
	doc, err := json.Marshal(m)
	if err != nil {
		return catalog.Recording{}, fmt.Errorf("recording %s: metadata: %w", m.RecordingID, err)
	}
	return catalog.Recording{ID: m.RecordingID, CallID: m.CallID, InteractionID: m.InteractionID, Account: m.Account,
		Endpoint: m.Endpoint, Owner: m.Owner, Origin: m.Origin, Scope: m.Scope, Start: m.Start, State: state,
		Flags: m.Flags, Path: path, Doc: doc}, nil
}

// Recording is a recording as the catalog lists it: its metadata, where
// its media is, and where it stands.
type Recording struct {
	Metadata
	// State is active, stored, uploaded, dead (its upload dead-lettered),
	// quarantined or deleted.
	State string `json:"state"`
	// Hold: on legal hold, never purged nor deleted.
	Hold bool `json:"hold"`
	// Path is the media file (in storage, or in the spool's quarantine).
	Path string `json:"-"`
}

func fromRow(r catalog.Recording) (Recording, error) {
	var m Metadata
	if r.State == catalog.StateFinishing {
		// The document is the store's journal of the move into storage.
		var j journal
		if err := json.Unmarshal(r.Doc, &j); err != nil {
			return Recording{}, fmt.Errorf("recording %s: catalog journal: %w", r.ID, err)
		}
		m = j.Meta
	} else if err := json.Unmarshal(r.Doc, &m); err != nil {
		return Recording{}, fmt.Errorf("recording %s: catalog document: %w", r.ID, err)
	}
	if m.RecordingID != r.ID {
		return Recording{}, fmt.Errorf("recording %s: catalog document names %q", r.ID, m.RecordingID)
	}
	return Recording{Metadata: m, State: string(r.State), Hold: r.Hold, Path: r.Path}, nil
}

// Get returns a stored recording's metadata and the path of its media
// file: one in storage, whose upload may be pending, done or dead. id is
// checked with ValidName first, as it usually comes from an HTTP request.
func (s *Store) Get(id string) (Metadata, string, error) {
	r, err := s.Lookup(context.Background(), id)
	if err != nil {
		return Metadata{}, "", err
	}
	switch catalog.State(r.State) {
	case catalog.StateStored, catalog.StateUploaded, catalog.StateDead:
	default:
		return Metadata{}, "", fmt.Errorf("recording %s is %s: %w", id, r.State, ErrNotFound)
	}
	if err := checkNoLinks(s.storage, r.Path); err != nil {
		return Metadata{}, "", err
	}
	return r.Metadata, r.Path, nil
}

// Lookup returns a recording in any state (quarantined and deleted ones
// included).
func (s *Store) Lookup(ctx context.Context, id string) (Recording, error) {
	if !ValidName(id) {
		return Recording{}, fmt.Errorf("recording id %q: %w", id, ErrInvalid)
	}
	cr, err := s.cat.Get(ctx, id)
	if errors.Is(err, catalog.ErrNotFound) {
		return Recording{}, fmt.Errorf("recording %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Recording{}, fmt.Errorf("recording %s: %w", id, err)
	}
	return fromRow(cr)
}

// List returns the stored recordings that match f (their upload pending,
// done or dead-lettered), ordered by Start then recording id.
func (s *Store) List(f Filter) ([]Metadata, error) {
	if f.Account != "" && !ValidName(f.Account) {
		return nil, fmt.Errorf("account %q: %w", f.Account, ErrInvalid)
	}
	var out []Metadata
	cf := catalog.Filter{Account: f.Account, From: f.From, Until: f.Until, Limit: catalog.MaxLimit}
	for {
		p, err := s.Search(context.Background(), cf)
		if err != nil {
			return nil, err
		}
		for _, r := range p.Items {
			switch catalog.State(r.State) {
			case catalog.StateStored, catalog.StateUploaded, catalog.StateDead:
				out = append(out, r.Metadata)
			}
		}
		if p.NextCursor == "" {
			return out, nil
		}
		cf.Cursor = p.NextCursor
	}
}

// Page is one page of a Search.
type Page struct {
	Items []Recording
	// NextCursor continues the search; empty on the last page.
	NextCursor string
}

// Search lists the catalog's recordings that match f, a page at a time, in
// the stable order of start then id (catalog.Filter says which fields
// filter; deleted recordings are listed only when f.State asks for them).
// A cursor the catalog did not hand out is an error wrapping ErrInvalid.
func (s *Store) Search(ctx context.Context, f catalog.Filter) (Page, error) {
	p, err := s.cat.Search(ctx, f)
	if errors.Is(err, catalog.ErrBadCursor) || errors.Is(err, catalog.ErrInvalid) {
		return Page{}, fmt.Errorf("search: %v: %w", err, ErrInvalid)
	}
	if err != nil {
		return Page{}, fmt.Errorf("search: %w", err)
	}
	out := Page{NextCursor: p.NextCursor, Items: make([]Recording, 0, len(p.Items))}
	for _, cr := range p.Items {
		r, err := fromRow(cr)
		if err != nil {
			// One unreadable row must not hide the others: it is
			// listed with what the catalog's columns say.
			s.log.Error("a catalog row's document cannot be read", "recording_id", cr.ID, "error", err.Error())
			r = Recording{Metadata: Metadata{RecordingID: cr.ID, CallID: cr.CallID, InteractionID: cr.InteractionID,
				Account: cr.Account, Endpoint: cr.Endpoint, Owner: cr.Owner, Origin: cr.Origin, Scope: cr.Scope,
				Start: cr.Start, Flags: cr.Flags}, State: string(cr.State), Hold: cr.Hold, Path: cr.Path}
		}
		out.Items = append(out.Items, r)
	}
	return out, nil
}

// Interaction returns every recording of one call (all legs and scopes),
// by start.
func (s *Store) Interaction(ctx context.Context, id string) ([]Recording, error) {
	rows, err := s.cat.Interaction(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("interaction %s: %w", id, err)
	}
	out := make([]Recording, 0, len(rows))
	for _, cr := range rows {
		r, err := fromRow(cr)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Rebuild walks Storage for sidecars (<account>/<yyyy>/<mm>/<dd>/<id>.json,
// symbolic links not followed) and puts every recording they describe in
// the catalog: the migration from a store without a catalog, and the
// repair of a lost one. A recording already in the catalog keeps its state
// (uploaded, dead, on hold); one that is not is entered as stored. It
// returns how many sidecars it read and how many recordings it entered.
func (s *Store) Rebuild(ctx context.Context) (read, entered int, err error) {
	var ops []catalog.Op
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		err := s.cat.Apply(ctx, ops...)
		ops = ops[:0]
		return err
	}
	err = filepath.WalkDir(s.storage, func(p string, d fs.DirEntry, err error) error {
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
		m, err := readSidecar(p)
		if err != nil || m.RecordingID != id || !ValidName(id) {
			s.log.Warn("a sidecar cannot be read; skipped", "path", p, "error", fmt.Sprint(err))
			return nil
		}
		read++
		if _, err := s.cat.Get(ctx, id); err == nil {
			return nil
		}
		media := s.mediaPath(m)
		if filepath.Dir(media) != filepath.Dir(p) {
			s.log.Warn("a sidecar is not where its metadata says the recording is stored; skipped", "path", p)
			return nil
		}
		r, err := row(m, media, catalog.StateStored)
		if err != nil {
			return err
		}
		ops = append(ops, catalog.PutRecording(r))
		entered++
		if len(ops) >= 500 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return read, entered, fmt.Errorf("store: rebuild the catalog from %s: %w", s.storage, err)
	}
	return read, entered, nil
}

func readSidecar(path string) (Metadata, error) {
	var m Metadata
	b, err := readlimit.File(path, maxSidecarBytes)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("sidecar %s: %w", path, err)
	}
	return m, nil
}

// WriteSidecars writes the sidecar of every stored recording again from
// the catalog (the catalog is the record; the sidecars are a readable copy
// beside the media) and returns how many it wrote.
func (s *Store) WriteSidecars(ctx context.Context) (int, error) {
	n := 0
	f := catalog.Filter{Limit: catalog.MaxLimit}
	for {
		p, err := s.Search(ctx, f)
		if err != nil {
			return n, err
		}
		for _, r := range p.Items {
			switch catalog.State(r.State) {
			case catalog.StateStored, catalog.StateUploaded, catalog.StateDead:
			default:
				continue
			}
			sidecar := sidecarOf(r.Path, r.RecordingID)
			if err := checkNoLinks(s.storage, sidecar); err != nil {
				return n, err
			}
			b, err := json.MarshalIndent(r.Metadata, "", "  ")
			if err != nil {
				return n, fmt.Errorf("recording %s: %w", r.RecordingID, err)
			}
			if err := writeFileReplace(sidecar, b); err != nil {
				return n, fmt.Errorf("recording %s: sidecar: %w", r.RecordingID, err)
			}
			n++
		}
		if p.NextCursor == "" {
			return n, nil
		}
		f.Cursor = p.NextCursor
	}
}
