package catalog

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// AuditEntry is one line of the audit trail: who did what to which call or
// recording, and how it ended.
type AuditEntry struct {
	// Seq orders the entries; set by the catalog.
	Seq int64
	// At is when it happened; the zero time is the commit group's time.
	At time.Time
	// Who is the actor: an API token's name.
	Who string
	// Action is what was done: start, stop, mask, delete, hold...
	Action      string
	Account     string
	CallID      string
	RecordingID string
	// Result is how it ended: "ok" or the error.
	Result string
}

const qAudit = "INSERT INTO audit (at_us, who, action, account, call_id, recording_id, result) VALUES (?, ?, ?, ?, ?, ?, ?)"

// Audit appends the entry to the audit trail; Who and Action are required.
func Audit(e AuditEntry) Op { return audit{e} }

type audit struct{ e AuditEntry }

func (o audit) apply(ctx context.Context, w *writeTx) error {
	e := o.e
	if e.Who == "" || e.Action == "" {
		return fmt.Errorf("catalog: audit: %w: who and action are required", ErrInvalid)
	}
	at := w.now
	if !e.At.IsZero() {
		at = e.At.UnixMicro()
	}
	if _, err := w.exec(ctx, qAudit, at, e.Who, e.Action, e.Account, e.CallID, e.RecordingID, e.Result); err != nil {
		return fmt.Errorf("catalog: audit: %w", err)
	}
	return nil
}

// AuditFilter selects audit entries; empty fields do not filter.
type AuditFilter struct {
	Who         string
	Action      string
	Account     string
	CallID      string
	RecordingID string
	// From and Until bound At: From <= At < Until. Zero is unbounded.
	From, Until time.Time
}

// ListAudit lists the audit entries that match the filter in the order they
// were written, a page of at most limit (clamped as Filter.Limit) at a
// time; cursor is the next cursor of the previous page ("" for the first),
// and the next cursor returned is empty on the last page.
func (c *Catalog) ListAudit(ctx context.Context, f AuditFilter, limit int, cursor string) ([]AuditEntry, string, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	where := []string{"1 = 1"}
	var args []any
	eq := func(col, v string) {
		if v != "" {
			where = append(where, col+" = ?")
			args = append(args, v)
		}
	}
	eq("who", f.Who)
	eq("action", f.Action)
	eq("account", f.Account)
	eq("call_id", f.CallID)
	eq("recording_id", f.RecordingID)
	if !f.From.IsZero() {
		where = append(where, "at_us >= ?")
		args = append(args, f.From.UnixMicro())
	}
	if !f.Until.IsZero() {
		where = append(where, "at_us < ?")
		args = append(args, f.Until.UnixMicro())
	}
	if cursor != "" {
		seq, _, err := decodeCursor(cursorAudit, cursor)
		if err != nil {
			return nil, "", fmt.Errorf("catalog: audit: %w", err)
		}
		where = append(where, "seq > ?")
		args = append(args, seq)
	}
	q := "SELECT seq, at_us, who, action, account, call_id, recording_id, result FROM audit WHERE " +
		strings.Join(where, " AND ") + fmt.Sprintf(" ORDER BY seq LIMIT %d", limit+1)
	rows, err := c.rdb.QueryContext(ctx, c.d.q(q), args...)
	if err != nil {
		return nil, "", fmt.Errorf("catalog: audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.Seq, &at, &e.Who, &e.Action, &e.Account, &e.CallID, &e.RecordingID, &e.Result); err != nil {
			return nil, "", fmt.Errorf("catalog: audit: %w", err)
		}
		e.At = fromUS(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("catalog: audit: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encodeCursor(cursorAudit, out[limit-1].Seq, "")
	}
	return out, next, nil
}
