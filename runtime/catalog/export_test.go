package catalog

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// CommitGroup runs the ops lists as one group of the writer, as if that
// many Apply calls had arrived together, and returns each one's error.
func (c *Catalog) CommitGroup(ctx context.Context, groups ...[]Op) []error {
	reqs := make([]*request, len(groups))
	errs := make([]error, len(groups))
	cl := &call{left: len(groups), done: make(chan struct{})}
	for i, ops := range groups {
		reqs[i] = &request{ctx: ctx, ops: ops, err: &errs[i], call: cl}
	}
	// The writer is idle between Apply calls; holding no request, it
	// cannot touch the transaction built here.
	c.commitGroup(reqs)
	<-cl.done
	return errs
}

// BulkLoad inserts recordings fast, for benchmarks: multi-row INSERTs in
// one transaction, bypassing the writer. The writer must be idle.
func (c *Catalog) BulkLoad(ctx context.Context, rs []Recording) error {
	tx, err := c.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	const perStmt = 500
	for len(rs) > 0 {
		n := min(perStmt, len(rs))
		var b strings.Builder
		b.WriteString("INSERT INTO recordings (" + recordingCols + ") VALUES ")
		args := make([]any, 0, 16*n)
		for i, r := range rs[:n] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			hold := 0
			if r.Hold {
				hold = 1
			}
			args = append(args, r.ID, r.CallID, r.InteractionID, r.Account, r.Endpoint, r.Owner, r.Origin, r.Scope,
				r.Start.UnixMicro(), string(r.State), encodeFlags(normFlags(r.Flags)), hold, r.Path, r.Doc, r.Start.UnixMicro(), r.Start.UnixMicro())
		}
		if _, err := tx.ExecContext(ctx, c.d.q(b.String()), args...); err != nil {
			return err
		}
		rs = rs[n:]
	}
	return tx.Commit()
}

// Analyze updates the planner's statistics and, on PostgreSQL, vacuums
// (setting the hint bits and the visibility map), as a long-running
// catalog's database has them after autovacuum.
func (c *Catalog) Analyze(ctx context.Context) error {
	q := "ANALYZE"
	if c.d == postgresDialect {
		q = "VACUUM ANALYZE"
	}
	_, err := c.wdb.ExecContext(ctx, q)
	return err
}

// ExplainSearch returns the database's plan of the Search's page query.
func (c *Catalog) ExplainSearch(ctx context.Context, f Filter) (string, error) {
	sq, err := c.searchQuery(f)
	if err != nil {
		return "", err
	}
	prefix := "EXPLAIN QUERY PLAN "
	if c.d == postgresDialect {
		prefix = "EXPLAIN (ANALYZE, BUFFERS) "
	}
	rows, err := c.rdb.QueryContext(ctx, prefix+sq.page, sq.args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		fmt.Fprintln(&b, vals...)
	}
	return b.String(), rows.Err()
}

// OnCheckpoint has f called after each checkpoint of the checkpointer.
func (c *Catalog) OnCheckpoint(f func()) { c.onCheckpoint.Store(&f) }

// CheckpointEvery is how many commits ask for a checkpoint.
const CheckpointEvery = checkpointEvery

// SetCommitDelay sets how long the writer waits for more requests after a
// commit that carried more than one.
func (c *Catalog) SetCommitDelay(d time.Duration) { c.delay.Store(int64(d)) }

// OnDelay has f called with the group's size each time the writer starts
// to wait for more (the commit delay).
func (c *Catalog) OnDelay(f func(int)) { c.onDelay.Store(&f) }

// MaxGroup bounds the requests of one commit.
const MaxGroup = maxGroup

// SetWALLimit sets how many frames the WAL may hold after a passive
// checkpoint before the checkpointer empties it.
func (c *Catalog) SetWALLimit(frames int64) { c.walLimit.Store(frames) }

// Checkpoint asks the checkpointer for a checkpoint, as the writer does
// every CheckpointEvery commits.
func (c *Catalog) Checkpoint() {
	select {
	case c.ckKick <- struct{}{}:
	default: // one is asked for already
	}
}
