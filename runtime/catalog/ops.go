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
	tx  *sql.Tx
	d   *dialect
	now int64 // unix microseconds of the group
}

func (w *writeTx) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := w.tx.ExecContext(ctx, w.d.q(query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// maxGroup bounds the Apply calls committed in one transaction.
const maxGroup = 512

// request is one Apply call waiting for the writer.
type request struct {
	ctx  context.Context
	ops  []Op
	done chan error
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
	r := &request{ctx: ctx, ops: ops, done: make(chan error, 1)}
	select {
	case c.reqs <- r:
	case <-ctx.Done():
		return fmt.Errorf("catalog: apply: %w", ctx.Err())
	case <-c.quit:
		return fmt.Errorf("catalog: apply: %w", ErrClosed)
	}
	return <-r.done
}

// writer gathers the Apply calls waiting to be sent when it is free and
// commits them in one transaction.
func (c *Catalog) writer() {
	defer close(c.writerDone)
	group := make([]*request, 0, maxGroup)
	for {
		select {
		case r := <-c.reqs:
			group = append(group[:0], r)
		case <-c.quit:
			return
		}
	gather:
		for len(group) < maxGroup {
			select {
			case r := <-c.reqs:
				group = append(group, r)
			default:
				break gather
			}
		}
		c.commitGroup(group)
	}
}

// commitGroup runs every request's ops in a savepoint of its own and
// commits once, then answers each request.
func (c *Catalog) commitGroup(group []*request) {
	ctx := context.Background() // one caller's end must not end the others' transaction
	c.applies.Add(int64(len(group)))
	c.commits.Add(1)
	errs := make([]error, len(group))
	failAll := func(err error) {
		for i := range group {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	tx, err := c.wdb.BeginTx(ctx, nil)
	if err != nil {
		failAll(fmt.Errorf("catalog: apply: begin: %w", err))
		c.answer(group, errs)
		return
	}
	w := &writeTx{tx: tx, d: c.d, now: time.Now().UnixMicro()}
	single := len(group) == 1
	ok := 0
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			errs[i] = fmt.Errorf("catalog: apply: %w", err)
			continue
		}
		if !single {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT apply"); err != nil {
				failAll(fmt.Errorf("catalog: apply: savepoint: %w", err))
				tx.Rollback()
				c.answer(group, errs)
				return
			}
		}
		err := runOps(ctx, w, r.ops)
		if err == nil {
			ok++
			if !single {
				_, err = tx.ExecContext(ctx, "RELEASE SAVEPOINT apply")
			}
			if err != nil {
				failAll(fmt.Errorf("catalog: apply: release savepoint: %w", err))
				tx.Rollback()
				c.answer(group, errs)
				return
			}
			continue
		}
		errs[i] = err
		if single {
			break
		}
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT apply"); err != nil {
			failAll(fmt.Errorf("catalog: apply: rollback to savepoint: %w", err))
			tx.Rollback()
			c.answer(group, errs)
			return
		}
		if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT apply"); err != nil {
			failAll(fmt.Errorf("catalog: apply: release savepoint: %w", err))
			tx.Rollback()
			c.answer(group, errs)
			return
		}
	}
	if ok == 0 {
		tx.Rollback()
	} else if err := tx.Commit(); err != nil {
		failAll(fmt.Errorf("catalog: apply: commit: %w", err))
	}
	c.answer(group, errs)
}

func (c *Catalog) answer(group []*request, errs []error) {
	for i, r := range group {
		r.done <- errs[i]
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

// PutRecording inserts the recording or replaces the row with its id. A
// replaced row keeps its CreatedAt and its Hold (SetHold changes a hold).
func PutRecording(r Recording) Op { return putRecording{r} }

type putRecording struct{ r Recording }

func (o putRecording) apply(ctx context.Context, w *writeTx) error {
	r := o.r
	if r.ID == "" || !r.State.Valid() {
		return fmt.Errorf("catalog: put recording %q: %w: id and a valid state are required (state %q)", r.ID, ErrInvalid, r.State)
	}
	hold := 0
	if r.Hold {
		hold = 1
	}
	_, err := w.exec(ctx, `INSERT INTO recordings (`+recordingCols+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET call_id = excluded.call_id, interaction_id = excluded.interaction_id,
	account = excluded.account, endpoint = excluded.endpoint, owner = excluded.owner, origin = excluded.origin,
	scope = excluded.scope, start_us = excluded.start_us, state = excluded.state, flags = excluded.flags,
	path = excluded.path, doc = excluded.doc, updated_us = excluded.updated_us`,
		r.ID, r.CallID, r.InteractionID, r.Account, r.Endpoint, r.Owner, r.Origin, r.Scope,
		r.Start.UnixMicro(), string(r.State), encodeFlags(normFlags(r.Flags)), hold, r.Path, r.Doc, w.now, w.now)
	if err != nil {
		return fmt.Errorf("catalog: put recording %q: %w", r.ID, err)
	}
	return nil
}

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
	var flags string
	var hold int64
	err := w.tx.QueryRowContext(ctx, w.d.q("SELECT flags, hold FROM recordings WHERE id = ?"+w.d.forUpdate), o.id).Scan(&flags, &hold)
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
	if _, err := w.exec(ctx, "UPDATE recordings SET state = ?, flags = ?, updated_us = ? WHERE id = ?", string(o.s), flags, w.now, o.id); err != nil {
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
	n, err := w.exec(ctx, "UPDATE recordings SET hold = ?, updated_us = ? WHERE id = ?", h, w.now, o.id)
	if err != nil {
		return fmt.Errorf("catalog: set hold of %q: %w", o.id, err)
	}
	if n == 0 {
		return fmt.Errorf("catalog: set hold of %q: %w", o.id, ErrNotFound)
	}
	return nil
}
