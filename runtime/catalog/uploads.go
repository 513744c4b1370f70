package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// UploadState is where an upload is in the queue.
type UploadState string

// States of an upload.
const (
	// UploadStatePending: waiting for its next attempt at NextAt.
	UploadStatePending UploadState = "pending"
	// UploadStateDead: given up (dead-lettered) until enqueued again.
	UploadStateDead UploadState = "dead"
	// UploadStateDone: uploaded.
	UploadStateDone UploadState = "done"
)

// Upload is a recording's entry in the upload queue.
type Upload struct {
	RecordingID string
	// Target names where the recording goes (the policy's URL or a key
	// the caller resolves); the catalog does not read it.
	Target   string
	State    UploadState
	Attempts int
	// FirstAttemptAt is when the first attempt ended (zero before it).
	FirstAttemptAt time.Time
	// NextAt is when a pending upload is due.
	NextAt    time.Time
	LastError string
	// EnqueuedAt is when it was (last) enqueued: the age of a pending
	// upload counts from it.
	EnqueuedAt time.Time
	UpdatedAt  time.Time
}

const uploadCols = "recording_id, target, state, attempts, first_attempt_us, next_us, last_error, enqueued_us, updated_us"

func scanUploads(rows *sql.Rows) ([]Upload, error) {
	defer rows.Close()
	var out []Upload
	for rows.Next() {
		var u Upload
		var first, next, enq, upd int64
		if err := rows.Scan(&u.RecordingID, &u.Target, &u.State, &u.Attempts, &first, &next, &u.LastError, &enq, &upd); err != nil {
			return nil, err
		}
		u.FirstAttemptAt, u.NextAt, u.EnqueuedAt, u.UpdatedAt = fromUS(first), fromUS(next), fromUS(enq), fromUS(upd)
		out = append(out, u)
	}
	return out, rows.Err()
}

const (
	qEnqueueUpload = `INSERT INTO uploads (` + uploadCols + `) VALUES (?, ?, 'pending', 0, 0, ?, '', ?, ?)
ON CONFLICT (recording_id) DO UPDATE SET target = excluded.target, state = 'pending', attempts = 0,
	first_attempt_us = 0, next_us = excluded.next_us, last_error = '', enqueued_us = excluded.enqueued_us,
	updated_us = excluded.updated_us`
	qUploadResult = `UPDATE uploads SET state = ?, attempts = attempts + 1,
	first_attempt_us = CASE WHEN first_attempt_us = 0 THEN ? ELSE first_attempt_us END,
	next_us = CASE WHEN CAST(? AS BIGINT) = 0 THEN next_us ELSE CAST(? AS BIGINT) END, last_error = ?, updated_us = ?
WHERE recording_id = ?`
)

// EnqueueUpload queues the recording's upload to target, due at the time
// (enqueued then too). An upload already queued, dead or done is queued
// again from scratch: this is also how a dead letter is retried. The
// recording must exist.
func EnqueueUpload(id, target string, at time.Time) Op { return enqueueUpload{id, target, at} }

type enqueueUpload struct {
	id, target string
	at         time.Time
}

func (o enqueueUpload) apply(ctx context.Context, w *writeTx) error {
	at := o.at.UnixMicro()
	_, err := w.exec(ctx, qEnqueueUpload, o.id, o.target, at, at, w.now)
	if err != nil {
		return fmt.Errorf("catalog: enqueue upload of %q: %w", o.id, err)
	}
	return nil
}

// UploadDone records the recording's upload as done.
func UploadDone(id string) Op { return uploadResult{id: id, state: UploadStateDone} }

// UploadFailed records a failed attempt: the upload is due again at nextAt,
// or dead-lettered when dead.
func UploadFailed(id, errMsg string, nextAt time.Time, dead bool) Op {
	s := UploadStatePending
	if dead {
		s = UploadStateDead
	}
	return uploadResult{id: id, state: s, msg: errMsg, next: nextAt}
}

type uploadResult struct {
	id    string
	state UploadState
	msg   string
	next  time.Time
}

func (o uploadResult) apply(ctx context.Context, w *writeTx) error {
	n, err := w.exec(ctx, qUploadResult, string(o.state), w.now, us(o.next), us(o.next), o.msg, w.now, o.id)
	if err != nil {
		return fmt.Errorf("catalog: upload of %q: %w", o.id, err)
	}
	if n == 0 {
		return fmt.Errorf("catalog: upload of %q: %w", o.id, ErrNotFound)
	}
	return nil
}

// DueUploads returns up to n pending uploads due at now, the earliest
// first.
func (c *Catalog) DueUploads(ctx context.Context, now time.Time, n int) ([]Upload, error) {
	rows, err := c.rdb.QueryContext(ctx, c.d.q("SELECT "+uploadCols+
		" FROM uploads WHERE state = 'pending' AND next_us <= ? ORDER BY next_us, recording_id LIMIT ?"), now.UnixMicro(), max(n, 0))
	if err != nil {
		return nil, fmt.Errorf("catalog: due uploads: %w", err)
	}
	out, err := scanUploads(rows)
	if err != nil {
		return nil, fmt.Errorf("catalog: due uploads: %w", err)
	}
	return out, nil
}

// Uploads lists the uploads in a state in the order they were enqueued, a
// page of at most limit (clamped as Filter.Limit) at a time; cursor is the
// next cursor of the previous page ("" for the first), and the next cursor
// returned is empty on the last page.
func (c *Catalog) Uploads(ctx context.Context, state UploadState, limit int, cursor string) ([]Upload, string, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	q := "SELECT " + uploadCols + " FROM uploads WHERE state = ?"
	args := []any{string(state)}
	if cursor != "" {
		n, id, err := decodeCursor(cursorUploads, cursor)
		if err != nil {
			return nil, "", fmt.Errorf("catalog: uploads: %w", err)
		}
		q += " AND (enqueued_us, recording_id) > (?, ?)"
		args = append(args, n, id)
	}
	q += fmt.Sprintf(" ORDER BY enqueued_us, recording_id LIMIT %d", limit+1)
	rows, err := c.rdb.QueryContext(ctx, c.d.q(q), args...)
	if err != nil {
		return nil, "", fmt.Errorf("catalog: uploads: %w", err)
	}
	out, err := scanUploads(rows)
	if err != nil {
		return nil, "", fmt.Errorf("catalog: uploads: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = encodeCursor(cursorUploads, us(last.EnqueuedAt), last.RecordingID)
	}
	return out, next, nil
}

// OldestPending returns when the oldest pending upload was enqueued, and
// false when none is pending.
func (c *Catalog) OldestPending(ctx context.Context) (time.Time, bool, error) {
	var v sql.NullInt64
	if err := c.rdb.QueryRowContext(ctx, "SELECT MIN(enqueued_us) FROM uploads WHERE state = 'pending'").Scan(&v); err != nil {
		return time.Time{}, false, fmt.Errorf("catalog: oldest pending upload: %w", err)
	}
	if !v.Valid {
		return time.Time{}, false, nil
	}
	return time.UnixMicro(v.Int64).UTC(), true, nil
}

// CountDead returns the number of dead-lettered uploads.
func (c *Catalog) CountDead(ctx context.Context) (int, error) {
	var n int
	if err := c.rdb.QueryRowContext(ctx, "SELECT COUNT(*) FROM uploads WHERE state = 'dead'").Scan(&n); err != nil {
		return 0, fmt.Errorf("catalog: count dead uploads: %w", err)
	}
	return n, nil
}

func jsonUnmarshalString(s string, v any) error {
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}
