package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Op is one write, applied by Apply. The constructors below make them.
type Op interface {
	apply(ctx context.Context, w *writeTx) error
}

// writeTx is the writer's transaction, shared by the ops of one group.
type writeTx struct {
	c   *Catalog
	tx  *sql.Tx
	d   *dialect
	now int64 // unix microseconds of the group
}

func (w *writeTx) exec(ctx context.Context, query string, args ...any) (int64, error) {
	var res sql.Result
	var err error
	if st, ok := w.c.stmts[query]; ok {
		res, err = w.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	} else {
		res, err = w.tx.ExecContext(ctx, w.d.q(query), args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (w *writeTx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st, ok := w.c.stmts[query]; ok {
		return w.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return w.tx.QueryRowContext(ctx, w.d.q(query), args...)
}

// prepare prepares the writes' statements on SQLite's one writer
// connection, where a transaction's statement reuses them; the SQLite
// driver would otherwise compile each statement anew. pgx caches its
// statements itself, per connection.
func (c *Catalog) prepare(ctx context.Context) error {
	if c.d != sqliteDialect {
		return nil
	}
	for _, q := range []string{qPutRecording, qPutSame, qAddRecording, qSetStateRead, qSetState, qSetStateOnly, qSetHold, qEnqueueUpload, qUploadResult, qAudit} {
		st, err := c.wdb.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("catalog: prepare %q: %w", q, err)
		}
		c.stmts[q] = st
	}
	// A recording read by its id (Get) is the read of every upload
	// attempt that does not hold its metadata: parsing the query each
	// time cost half of it.
	st, err := c.rdb.PrepareContext(ctx, qGet)
	if err != nil {
		return fmt.Errorf("catalog: prepare %q: %w", qGet, err)
	}
	c.get = st
	return nil
}

// commitDelay is how long the writer, holding a request, waits for more
// before it commits when the last commit carried more than one (as
// PostgreSQL's commit_delay with commit_siblings). Under load (starts,
// finishes and upload results of many calls at once) each commit costs a
// WAL write and an fsync however little it carries, so waiting this long
// turns many small commits into fewer larger ones: in a 60-second soak at
// 200 calls/s, 770 commits a second carrying 1.6 requests each. A caller
// that applies one request after another alone never waits: each of its
// commits carries one.
const commitDelay = 4 * time.Millisecond

// maxGroup bounds the Apply calls committed in one transaction: the
// writer gathers no more once it holds that many (an ApplyEach call is
// taken whole, and may go over it).
const maxGroup = 512

// request is one Apply call, or one part of an ApplyEach call, waiting
// for the writer.
type request struct {
	ctx context.Context
	ops []Op
	// err is where the writer puts the request's outcome, before it
	// counts the request off its call.
	err  *error
	call *call
}

// call is one Apply or ApplyEach call: the writer closes done once it has
// answered every request of the call, so the caller is woken once however
// many parts it sent.
type call struct {
	left int // requests not answered yet; touched by the writer only
	done chan struct{}
}

// Apply applies the ops in one transaction, atomically: all of them or,
// when one fails, none (the error says which). Concurrent Apply calls share
// the transaction and its commit (group commit) but not their failures.
// Apply returns once the transaction is committed; a caller's context that
// ends before the writer reaches its ops cancels them, and once they are
// running Apply waits for the commit.
func (c *Catalog) Apply(ctx context.Context, ops ...Op) error {
	if len(ops) == 0 {
		return nil
	}
	return c.ApplyEach(ctx, ops)[0]
}

// ApplyEach applies each list of ops as if by its own Apply call (each
// list atomic, failing alone), all handed to the writer at once: they
// share one transaction and one commit when the writer is free (a list
// may go into the next transaction when the writer's group is full), and
// the caller waits for one answer, not one per list. It returns each
// list's error, in order; an empty list succeeds without a write.
func (c *Catalog) ApplyEach(ctx context.Context, lists ...[]Op) []error {
	errs := make([]error, len(lists))
	reqs := make([]*request, 0, len(lists))
	cl := &call{done: make(chan struct{})}
	for i, ops := range lists {
		if len(ops) > 0 {
			reqs = append(reqs, &request{ctx: ctx, ops: ops, err: &errs[i], call: cl})
		}
	}
	if len(reqs) == 0 {
		return errs
	}
	cl.left = len(reqs)
	var fail error
	select {
	case c.reqs <- reqs:
		<-cl.done
		return errs
	case <-ctx.Done():
		fail = fmt.Errorf("catalog: apply: %w", ctx.Err())
	case <-c.quit:
		fail = fmt.Errorf("catalog: apply: %w", ErrClosed)
	}
	for _, r := range reqs {
		*r.err = fail
	}
	return errs
}

// writer gathers the Apply calls waiting to be sent when it is free and
// commits them in one transaction.
func (c *Catalog) writer() {
	defer close(c.writerDone)
	group := make([]*request, 0, maxGroup)
	sinceCheckpoint := 0
	last := 0 // requests the last commit carried
	delay := time.NewTimer(time.Hour)
	delay.Stop()
	for {
		select {
		case rs := <-c.reqs:
			group = append(group[:0], rs...)
		case <-c.quit:
			return
		}
	gather:
		for len(group) < maxGroup {
			select {
			case rs := <-c.reqs:
				group = append(group, rs...)
			default:
				break gather
			}
		}
		if last > 1 && len(group) < maxGroup {
			delay.Reset(time.Duration(c.delay.Load()))
			if f := c.onDelay.Load(); f != nil {
				(*f)(len(group))
			}
		wait:
			for len(group) < maxGroup {
				select {
				case rs := <-c.reqs:
					group = append(group, rs...)
				case <-delay.C:
					break wait
				case <-c.quit:
					break wait // commit what was taken; the loop then ends
				}
			}
			delay.Stop()
		}
		last = len(group)
		c.commitGroup(group)
		if c.ckKick != nil {
			if sinceCheckpoint++; sinceCheckpoint >= checkpointEvery {
				sinceCheckpoint = 0
				select {
				case c.ckKick <- struct{}{}:
				default: // one is asked for already
				}
			}
		}
	}
}

// checkpointEvery is how many commits of the writer ask the checkpointer
// for a checkpoint: a group of finishes writes a few dozen pages, so that
// the WAL holds about as many as SQLite's own default (1,000 pages)
// between two. checkpointIdle is how soon after the last commit the
// checkpointer copies what fewer commits left in the WAL.
const (
	checkpointEvery = 32
	checkpointIdle  = time.Second
)

// walLimit is how many frames (pages) the WAL may hold after a passive
// checkpoint before the checkpointer empties it with a TRUNCATE one. A
// passive checkpoint copies what no reader still needs and does not wait,
// and the WAL starts again from its beginning only when one copied every
// frame before the writer's next commit: under steady load (a commit every
// few milliseconds, reads of uploads all along) that may never happen, and
// the WAL grew to 10.5 GB in 17 minutes of a soak at 200 calls/s. A
// TRUNCATE checkpoint waits for the readers of older snapshots, holds the
// writer's next commit until it has copied everything (the writer waits
// up to its busy timeout), and empties the file.
const walLimit = 16384 // 64 MiB of 4 KiB pages

// checkpointer copies the WAL into the database file (PRAGMA
// wal_checkpoint(PASSIVE)) when the writer asks, and after commits that
// did not ask, on a connection of its own, until Close; past walLimit it
// empties the WAL (TRUNCATE). A checkpoint that fails is counted
// (Stats.CheckpointErrors) and the next one copies what it did not;
// nothing is lost, the WAL is durable.
func (c *Catalog) checkpointer() {
	defer close(c.ckDone)
	t := time.NewTicker(checkpointIdle)
	defer t.Stop()
	done := c.commits.Load()
	for {
		select {
		case <-c.quit:
			return
		case <-c.ckKick:
		case <-t.C:
			if c.commits.Load() == done {
				continue
			}
		}
		done = c.commits.Load()
		var busy, frames, copied int64
		err := c.ckdb.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
		if err == nil && frames > c.walLimit.Load() {
			// The WAL is not restarting: empty it, holding the writer's
			// next commit until then.
			err = c.ckdb.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &copied)
			if err == nil && busy == 0 {
				c.truncates.Add(1)
			}
		}
		if err != nil {
			c.ckpointErrs.Add(1)
		} else {
			c.checkpoints.Add(1)
		}
		if f := c.onCheckpoint.Load(); f != nil {
			(*f)()
		}
	}
}

// commitGroup runs the group's requests in one transaction and commits
// once, then answers each request. It first runs them one after the other
// as they are; should one fail, it rolls back and runs them again, each in
// a savepoint of its own, so that the failure undoes only its own writes.
// Failures are rare, and savepoints cost a statement or two each (and, in
// SQLite, a journal of the pages they change).
func (c *Catalog) commitGroup(group []*request) {
	c.applies.Add(int64(len(group)))
	c.commits.Add(1)
	errs := make([]error, len(group))
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			errs[i] = fmt.Errorf("catalog: apply: %w", err)
		}
	}
	ok, err := c.tryGroup(group, errs, false)
	if err == nil && !ok && len(group) > 1 {
		for i := range errs {
			if !errors.Is(errs[i], context.Canceled) && !errors.Is(errs[i], context.DeadlineExceeded) {
				errs[i] = nil
			}
		}
		_, err = c.tryGroup(group, errs, true)
	}
	if err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	c.answer(group, errs)
}

// tryGroup runs the requests that have no error yet in one transaction,
// with a savepoint per request or without, and commits. Without
// savepoints, it stops and rolls back at the first failure and reports
// false. An error of the transaction itself is returned for every request.
func (c *Catalog) tryGroup(group []*request, errs []error, savepoints bool) (bool, error) {
	ctx := context.Background() // one caller's end must not end the others' transaction
	tx, err := c.wdb.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("catalog: apply: begin: %w", err)
	}
	w := &writeTx{c: c, tx: tx, d: c.d, now: time.Now().UnixMicro()}
	ran := 0
	for i, r := range group {
		if errs[i] != nil {
			continue
		}
		if savepoints {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT apply"); err != nil {
				tx.Rollback()
				return false, fmt.Errorf("catalog: apply: savepoint: %w", err)
			}
		}
		err := runOps(ctx, w, r.ops)
		if err != nil {
			errs[i] = err
			if !savepoints {
				tx.Rollback()
				return false, nil
			}
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT apply"); err != nil {
				tx.Rollback()
				return false, fmt.Errorf("catalog: apply: rollback to savepoint: %w", err)
			}
		} else {
			ran++
		}
		if savepoints {
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT apply"); err != nil {
				tx.Rollback()
				return false, fmt.Errorf("catalog: apply: release savepoint: %w", err)
			}
		}
	}
	if ran == 0 {
		tx.Rollback()
		return true, nil
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("catalog: apply: commit: %w", err)
	}
	return true, nil
}

func (c *Catalog) answer(group []*request, errs []error) {
	for i, r := range group {
		*r.err = errs[i]
		if r.call.left--; r.call.left == 0 {
			close(r.call.done)
		}
		group[i] = nil
	}
}

func runOps(ctx context.Context, w *writeTx, ops []Op) error {
	for _, op := range ops {
		if err := op.apply(ctx, w); err != nil {
			return err
		}
	}
	return nil
}

const qPutRecording = `INSERT INTO recordings (` + recordingCols + `)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET call_id = excluded.call_id, interaction_id = excluded.interaction_id,
	account = excluded.account, endpoint = excluded.endpoint, owner = excluded.owner, origin = excluded.origin,
	scope = excluded.scope, start_us = excluded.start_us, state = excluded.state, flags = excluded.flags,
	path = excluded.path, doc = excluded.doc, updated_us = excluded.updated_us`

// qPutSame replaces the row of a recording whose indexed columns keep
// their values, writing only the others: a recording's finish, whose start
// entered it as active with the same ids, times and owners. It rewrites
// one index (state) where qPutRecording's upsert rewrites all seven: in
// SQLite an UPDATE rewrites the entry of every index whose columns it
// sets, equal or not, and at finish that was a quarter of the WAL. It
// updates nothing when the row is missing or differs; qPutRecording then
// does.
const qPutSame = `UPDATE recordings SET origin = ?, scope = ?, state = ?, flags = ?, path = ?, doc = ?, updated_us = ?
WHERE id = ? AND call_id = ? AND interaction_id = ? AND account = ? AND endpoint = ? AND owner = ? AND start_us = ?`

const qAddRecording = `INSERT INTO recordings (` + recordingCols + `)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING`

// AddRecording inserts the recording unless a row with its id exists: a
// recording entered as active when it starts never overwrites what its
// finish entered, whichever commits first.
func AddRecording(r Recording) Op { return addRecording{r} }

type addRecording struct{ r Recording }

func (o addRecording) apply(ctx context.Context, w *writeTx) error {
	return writeRecording(ctx, w, qAddRecording, "add", o.r)
}

// writeRecording runs an insert of a recording's row (qAddRecording,
// qPutRecording).
func writeRecording(ctx context.Context, w *writeTx, query, what string, r Recording) error {
	if r.ID == "" || !r.State.Valid() {
		return fmt.Errorf("catalog: %s recording %q: %w: id and a valid state are required (state %q)", what, r.ID, ErrInvalid, r.State)
	}
	hold := 0
	if r.Hold {
		hold = 1
	}
	if _, err := w.exec(ctx, query,
		r.ID, r.CallID, r.InteractionID, r.Account, r.Endpoint, r.Owner, r.Origin, r.Scope,
		r.Start.UnixMicro(), string(r.State), encodeFlags(normFlags(r.Flags)), hold, r.Path, r.Doc, w.now, w.now); err != nil {
		return fmt.Errorf("catalog: %s recording %q: %w", what, r.ID, err)
	}
	return nil
}

// PutRecording inserts the recording or replaces the row with its id. A
// replaced row keeps its CreatedAt and its Hold (SetHold changes a hold).
func PutRecording(r Recording) Op { return putRecording{r} }

type putRecording struct{ r Recording }

func (o putRecording) apply(ctx context.Context, w *writeTx) error {
	r := o.r
	if r.ID != "" && r.State.Valid() {
		n, err := w.exec(ctx, qPutSame, r.Origin, r.Scope, string(r.State), encodeFlags(normFlags(r.Flags)), r.Path, r.Doc, w.now,
			r.ID, r.CallID, r.InteractionID, r.Account, r.Endpoint, r.Owner, r.Start.UnixMicro())
		if err != nil {
			return fmt.Errorf("catalog: put recording %q: %w", r.ID, err)
		}
		if n == 1 {
			return nil
		}
	}
	return writeRecording(ctx, w, qPutRecording, "put", r)
}

const (
	qSetStateRead = "SELECT flags, hold FROM recordings WHERE id = ?"
	qSetState     = "UPDATE recordings SET state = ?, flags = ?, updated_us = ? WHERE id = ?"
	// qSetStateOnly sets a state that needs neither the row's flags nor
	// its hold: one statement instead of a read and a write (an upload's
	// outcome, a refused start).
	qSetStateOnly = "UPDATE recordings SET state = ?, updated_us = ? WHERE id = ?"
	qSetHold      = "UPDATE recordings SET hold = ?, updated_us = ? WHERE id = ?"
)

// SetState sets a recording's state and adds the flags to its own. Setting
// StateDeleted on a recording on hold fails with ErrHeld; a missing
// recording fails with ErrNotFound.
func SetState(id string, s State, flags ...string) Op { return setState{id, s, flags} }

type setState struct {
	id    string
	s     State
	flags []string
}

func (o setState) apply(ctx context.Context, w *writeTx) error {
	if !o.s.Valid() {
		return fmt.Errorf("catalog: set state of %q: state %q: %w", o.id, o.s, ErrInvalid)
	}
	if len(o.flags) == 0 && o.s != StateDeleted {
		n, err := w.exec(ctx, qSetStateOnly, string(o.s), w.now, o.id)
		if err != nil {
			return fmt.Errorf("catalog: set state of %q: %w", o.id, err)
		}
		if n == 0 {
			return fmt.Errorf("catalog: set state of %q: %w", o.id, ErrNotFound)
		}
		return nil
	}
	var flags string
	var hold int64
	err := w.queryRow(ctx, qSetStateRead+w.d.forUpdate, o.id).Scan(&flags, &hold)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("catalog: set state of %q: %w", o.id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("catalog: set state of %q: %w", o.id, err)
	}
	if o.s == StateDeleted && hold != 0 {
		return fmt.Errorf("catalog: delete %q: %w", o.id, ErrHeld)
	}
	if len(o.flags) > 0 {
		var have []string
		if err := jsonUnmarshalString(flags, &have); err != nil {
			return fmt.Errorf("catalog: set state of %q: flags: %w", o.id, err)
		}
		flags = encodeFlags(normFlags(append(have, o.flags...)))
	}
	if _, err := w.exec(ctx, qSetState, string(o.s), flags, w.now, o.id); err != nil {
		return fmt.Errorf("catalog: set state of %q: %w", o.id, err)
	}
	return nil
}

// SetHold puts a recording on legal hold (or takes it off); a missing
// recording fails with ErrNotFound.
func SetHold(id string, hold bool) Op { return setHold{id, hold} }

type setHold struct {
	id   string
	hold bool
}

func (o setHold) apply(ctx context.Context, w *writeTx) error {
	h := 0
	if o.hold {
		h = 1
	}
	n, err := w.exec(ctx, qSetHold, h, w.now, o.id)
	if err != nil {
		return fmt.Errorf("catalog: set hold of %q: %w", o.id, err)
	}
	if n == 0 {
		return fmt.Errorf("catalog: set hold of %q: %w", o.id, ErrNotFound)
	}
	return nil
}
