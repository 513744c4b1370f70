package catalog

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// State is where a recording is in its life.
type State string

// States of a recording.
const (
	// StateActive: being recorded.
	StateActive State = "active"
	// StateStored: in local storage.
	StateStored State = "stored"
	// StateUploaded: in local storage and uploaded to its target.
	StateUploaded State = "uploaded"
	// StateDead: its upload was given up (dead-lettered).
	StateDead State = "dead"
	// StateQuarantined: the file failed its checks and was set aside.
	StateQuarantined State = "quarantined"
	// StateDeleted: the media was deleted; the row is kept for audit.
	StateDeleted State = "deleted"
	// StateFinishing: the recording ended and its finish failed (storage
	// full, the catalog unreachable) and is retried, or it is on its way
	// to the quarantine; the row's document is the store's journal of
	// that move. A finish that succeeds goes from active (or no row) to
	// stored in one commit.
	StateFinishing State = "finishing"
	// StateDiscarded: the recording ended too short or empty and its
	// file was removed, as FreeSWITCH does; the row is kept for audit.
	StateDiscarded State = "discarded"
)

// Valid reports whether s is one of the States.
func (s State) Valid() bool {
	switch s {
	case StateActive, StateFinishing, StateStored, StateUploaded, StateDead, StateQuarantined, StateDeleted, StateDiscarded:
		return true
	}
	return false
}

// Recording is one recording's row: the columns the catalog filters and
// orders on, and the full metadata document, which the store owns and the
// catalog does not read.
type Recording struct {
	// ID is the recording id, unique.
	ID string
	// CallID is the recorded leg's call (channel) id.
	CallID string
	// InteractionID groups every recording of one call, all legs and
	// scopes.
	InteractionID string
	// Account is the tenant whose policy decided the recording.
	Account string
	// Endpoint is the recorded user or device ("" for an account's
	// recording).
	Endpoint string
	// Owner is the endpoint's owner (a device's user).
	Owner string
	// Origin is why it was recorded (direction and network, callflow...).
	Origin string
	// Scope is whose decision it was: callee, caller, account...
	Scope string
	// Start is when the recording started (UTC, microseconds).
	Start time.Time
	State State
	// Flags are remarks on the recording, e.g. "sample-rate-mismatch";
	// kept sorted and without duplicates.
	Flags []string
	// Hold: on legal hold, never purged nor deleted.
	Hold bool
	// Path is the media file's path.
	Path string
	// Doc is the metadata document (JSON) as the store wrote it.
	Doc []byte
	// CreatedAt and UpdatedAt are set by the catalog when the row is
	// written.
	CreatedAt time.Time
	UpdatedAt time.Time
}

const qGet = "SELECT " + recordingCols + " FROM recordings WHERE id = ?"

const recordingCols = "id, call_id, interaction_id, account, endpoint, owner, origin, scope, start_us, state, flags, hold, path, doc, created_us, updated_us"

func scanRecording(sc interface{ Scan(...any) error }) (Recording, error) {
	var r Recording
	var start, created, updated, hold int64
	var flags string
	err := sc.Scan(&r.ID, &r.CallID, &r.InteractionID, &r.Account, &r.Endpoint, &r.Owner, &r.Origin, &r.Scope,
		&start, &r.State, &flags, &hold, &r.Path, &r.Doc, &created, &updated)
	if err != nil {
		return Recording{}, err
	}
	r.Start, r.CreatedAt, r.UpdatedAt = fromUS(start), fromUS(created), fromUS(updated)
	r.Hold = hold != 0
	if flags != "" && flags != "[]" {
		if err := json.Unmarshal([]byte(flags), &r.Flags); err != nil {
			return Recording{}, fmt.Errorf("recording %s: flags %q: %w", r.ID, flags, err)
		}
	}
	return r, nil
}

func scanRecordings(rows *sql.Rows) ([]Recording, error) {
	defer rows.Close()
	var out []Recording
	for rows.Next() {
		r, err := scanRecording(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// normFlags sorts flags and drops duplicates and empty ones.
func normFlags(flags []string) []string {
	out := slices.DeleteFunc(slices.Clone(flags), func(s string) bool { return s == "" })
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

func encodeFlags(flags []string) string {
	if len(flags) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(flags) // []string always marshals
	return string(b)
}

// Get returns the recording with the id, whatever its state, or an error
// wrapping ErrNotFound.
func (c *Catalog) Get(ctx context.Context, id string) (Recording, error) {
	var row *sql.Row
	if c.get != nil {
		row = c.get.QueryRowContext(ctx, id)
	} else {
		row = c.rdb.QueryRowContext(ctx, c.d.q(qGet), id)
	}
	r, err := scanRecording(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Recording{}, fmt.Errorf("catalog: recording %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Recording{}, fmt.Errorf("catalog: get %q: %w", id, err)
	}
	return r, nil
}

// Page limits.
const (
	// DefaultLimit is the page size when Filter.Limit is 0 or less.
	DefaultLimit = 100
	// MaxLimit is the largest page; a larger Filter.Limit is clamped to it.
	MaxLimit = 1000
)

// Filter selects recordings for Search. Empty fields do not filter; the
// set fields are combined with AND.
type Filter struct {
	Account       string
	Endpoint      string
	Owner         string
	CallID        string
	InteractionID string
	Origin        string
	Scope         string
	// State selects one state. Empty selects every state but
	// StateDeleted: deleted (and discarded) recordings are listed only
	// when asked for.
	State State
	// From and Until bound Start: From <= Start < Until. Zero is unbounded.
	From, Until time.Time
	// Limit is the page size: 0 or less is DefaultLimit, more than
	// MaxLimit is MaxLimit.
	Limit int
	// Cursor continues a previous Search with the same filter: its
	// Page.NextCursor. Empty starts at the first page.
	Cursor string
	// Total asks for Page.Total. It counts every matching row, which costs
	// as much as reading them all (O(matches) on an index): ask only when
	// the count is worth it.
	Total bool
}

// Page is one page of a Search.
type Page struct {
	// Items are the recordings in order of (Start, ID).
	Items []Recording
	// NextCursor continues with the next page; empty on the last page.
	NextCursor string
	// Total is the number of recordings matching the filter (all pages),
	// or -1 when Filter.Total was not set.
	Total int
}

// Search lists the recordings that match the filter, one page at a time,
// in the stable order of (Start, ID). A cursor that was not handed out by
// Search is an error wrapping ErrBadCursor.
func (c *Catalog) Search(ctx context.Context, f Filter) (Page, error) {
	sq, err := c.searchQuery(f)
	if err != nil {
		return Page{}, fmt.Errorf("catalog: search: %w", err)
	}
	page := Page{Total: -1}
	if f.Total {
		if err := c.rdb.QueryRowContext(ctx, sq.count, sq.countArgs...).Scan(&page.Total); err != nil {
			return Page{}, fmt.Errorf("catalog: search: count: %w", err)
		}
	}
	rows, err := c.rdb.QueryContext(ctx, sq.page, sq.args...)
	if err != nil {
		return Page{}, fmt.Errorf("catalog: search: %w", err)
	}
	items, err := scanRecordings(rows)
	if err != nil {
		return Page{}, fmt.Errorf("catalog: search: %w", err)
	}
	if len(items) > sq.limit {
		items = items[:sq.limit]
		last := items[sq.limit-1]
		page.NextCursor = encodeCursor(cursorRecordings, last.Start.UnixMicro(), last.ID)
	}
	page.Items = items
	return page, nil
}

// searchSQL is the SQL of one Search.
type searchSQL struct {
	page      string // the page, limit+1 rows
	args      []any
	count     string // the count of every match
	countArgs []any
	limit     int
}

func (c *Catalog) searchQuery(f Filter) (searchSQL, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	var where []string
	var args []any
	eq := func(col, v string) {
		if v != "" {
			where = append(where, col+" = ?")
			args = append(args, v)
		}
	}
	eq("account", f.Account)
	eq("endpoint", f.Endpoint)
	eq("owner", f.Owner)
	eq("call_id", f.CallID)
	eq("interaction_id", f.InteractionID)
	eq("origin", f.Origin)
	eq("scope", f.Scope)
	if f.State != "" {
		if !f.State.Valid() {
			return searchSQL{}, fmt.Errorf("state %q: %w", f.State, ErrInvalid)
		}
		eq("state", string(f.State))
	} else {
		where = append(where, "state NOT IN ('deleted', 'discarded')")
	}
	if !f.From.IsZero() {
		where = append(where, "start_us >= ?")
		args = append(args, f.From.UnixMicro())
	}
	if !f.Until.IsZero() {
		where = append(where, "start_us < ?")
		args = append(args, f.Until.UnixMicro())
	}
	sq := searchSQL{limit: limit}
	sq.count = c.d.q("SELECT COUNT(*) FROM recordings WHERE " + strings.Join(where, " AND "))
	sq.countArgs = slices.Clone(args)
	if f.Cursor != "" {
		start, id, err := decodeCursor(cursorRecordings, f.Cursor)
		if err != nil {
			return searchSQL{}, err
		}
		where = append(where, "(start_us, id) > (?, ?)")
		args = append(args, start, id)
	}
	sq.page = c.d.q("SELECT " + recordingCols + " FROM recordings WHERE " + strings.Join(where, " AND ") +
		fmt.Sprintf(" ORDER BY start_us, id LIMIT %d", limit+1))
	sq.args = args
	return sq, nil
}

// maxInteraction bounds the recordings Interaction returns.
const maxInteraction = 10000

// Interaction returns every recording of one interaction (all legs and
// scopes of one call) in order of (Start, ID), deleted and discarded ones
// excepted.
func (c *Catalog) Interaction(ctx context.Context, id string) ([]Recording, error) {
	rows, err := c.rdb.QueryContext(ctx, c.d.q("SELECT "+recordingCols+
		" FROM recordings WHERE interaction_id = ? AND state NOT IN ('deleted', 'discarded') ORDER BY start_us, id LIMIT ?"), id, maxInteraction)
	if err != nil {
		return nil, fmt.Errorf("catalog: interaction %q: %w", id, err)
	}
	out, err := scanRecordings(rows)
	if err != nil {
		return nil, fmt.Errorf("catalog: interaction %q: %w", id, err)
	}
	return out, nil
}

// PurgeCandidates returns up to n recordings of the account (every account
// when account is empty) that started before the time, are stored or
// uploaded, and are not on hold, oldest first. The caller deletes their
// media and then applies SetState(id, StateDeleted); the rows stay.
func (c *Catalog) PurgeCandidates(ctx context.Context, account string, before time.Time, n int) ([]Recording, error) {
	if n <= 0 {
		return nil, nil
	}
	q := "SELECT " + recordingCols + " FROM recordings WHERE start_us < ? AND state IN ('stored', 'uploaded') AND hold = 0"
	args := []any{before.UnixMicro()}
	if account != "" {
		q += " AND account = ?"
		args = append(args, account)
	}
	q += " ORDER BY start_us, id LIMIT ?"
	args = append(args, n)
	rows, err := c.rdb.QueryContext(ctx, c.d.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("catalog: purge candidates: %w", err)
	}
	out, err := scanRecordings(rows)
	if err != nil {
		return nil, fmt.Errorf("catalog: purge candidates: %w", err)
	}
	return out, nil
}

// Cursor kinds: a cursor of one listing is refused by another.
const (
	cursorRecordings byte = 'r'
	cursorUploads    byte = 'u'
	cursorAudit      byte = 'a'
)

// encodeCursor makes an opaque cursor of a position (a number and an id).
func encodeCursor(kind byte, n int64, id string) string {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(id))
	b = append(b, kind)
	b = binary.AppendVarint(b, n)
	b = append(b, id...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reverses encodeCursor; any other string is ErrBadCursor.
func decodeCursor(kind byte, s string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != kind {
		return 0, "", fmt.Errorf("cursor %q: %w", s, ErrBadCursor)
	}
	n, k := binary.Varint(b[1:])
	if k <= 0 {
		return 0, "", fmt.Errorf("cursor %q: %w", s, ErrBadCursor)
	}
	id := b[1+k:]
	if !utf8.Valid(id) || (kind != cursorAudit && len(id) == 0) {
		return 0, "", fmt.Errorf("cursor %q: %w", s, ErrBadCursor)
	}
	return n, string(id), nil
}
