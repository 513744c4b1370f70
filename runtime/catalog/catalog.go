// Package catalog is the recordings catalog on a database: every
// recording's filterable columns and the metadata document the store owns,
// the upload queue, the audit trail and the per-switch leases.
//
// One schema and one set of queries serve both databases through
// database/sql: SQLite (the default, embedded, through a pure-Go driver)
// and PostgreSQL (when several runtimes share one catalog). The few
// differences (placeholders, column types, the database's clock, row
// locks) are kept in one dialect value. The schema is a list of versioned
// migrations embedded in the binary; Open applies the missing ones, each
// once and in its own transaction, recorded in schema_migrations.
//
// # Writes
//
// Every write goes through [Catalog.Apply], which hands its operations to
// one writer goroutine. The writer gathers the Apply calls that arrive
// while it is busy and commits them together in one transaction (group
// commit: one commit and one fsync for many callers). Each caller's
// operations run inside a savepoint of their own, so an operation that
// fails (a missing recording, a held recording being deleted, a constraint)
// fails its own Apply call and no other. Apply returns only once the
// transaction is committed: a nil error means the rows are durable.
//
// With SQLite the database runs in WAL mode with synchronous=FULL (a commit
// is on disk when it returns), foreign keys on and a busy timeout, with one
// writer connection and a small pool of read-only connections. Several
// processes may open the same file; SQLite serializes their writers.
//
// # Times
//
// Times are stored as unix microseconds and come back in UTC, truncated to
// the microsecond.
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// Drivers accepted in Config.Driver.
const (
	// DriverSQLite is an embedded SQLite file (the default).
	DriverSQLite = "sqlite"
	// DriverPostgres is a PostgreSQL server, shared by several runtimes.
	DriverPostgres = "postgres"
)

// Errors returned by the catalog, wrapped with context; test with
// errors.Is.
var (
	// ErrNotFound: no recording (or upload) has the id.
	ErrNotFound = errors.New("not found")
	// ErrBadCursor: a cursor that this catalog did not hand out for this
	// listing.
	ErrBadCursor = errors.New("bad cursor")
	// ErrHeld: the recording is on legal hold and cannot be deleted.
	ErrHeld = errors.New("recording on hold")
	// ErrInvalid: an operation or a filter with a missing or invalid field.
	ErrInvalid = errors.New("invalid")
	// ErrClosed: the catalog was closed.
	ErrClosed = errors.New("catalog closed")
	// ErrSchemaTooNew: the database was migrated by a newer recpol.
	ErrSchemaTooNew = errors.New("catalog schema newer than this binary")
)

// Config says which database holds the catalog.
type Config struct {
	// Driver is DriverSQLite (the default when empty) or DriverPostgres.
	Driver string
	// DSN is, for SQLite, the path of the database file (created when
	// missing; its directory must exist); for PostgreSQL, a pgx connection
	// string or URL.
	DSN string
}

// Catalog is an open catalog. Its methods are safe for concurrent use.
type Catalog struct {
	d   *dialect
	rdb *sql.DB // reads
	wdb *sql.DB // writes: the group-commit writer, migrations and leases

	reqs       chan []*request // the requests of one call
	quit       chan struct{}
	writerDone chan struct{}
	closeOnce  sync.Once

	stmts map[string]*sql.Stmt // the writer's prepared statements
	get   *sql.Stmt            // Get's, on the read pool (SQLite only)

	commits atomic.Int64
	applies atomic.Int64

	delay   atomic.Int64              // the writer's commit delay (commitDelay; tests change it)
	onDelay atomic.Pointer[func(int)] // tests: called with the group's size when the writer starts to wait

	// SQLite only: ckdb is the connection that checkpoints the WAL, off
	// the writer's commits (checkpointer); ckKick asks it to, ckDone is
	// closed when it has stopped.
	ckdb         *sql.DB
	ckKick       chan struct{}
	ckDone       chan struct{}
	checkpoints  atomic.Int64
	ckpointErrs  atomic.Int64
	truncates    atomic.Int64
	walLimit     atomic.Int64           // walLimit; tests change it
	onCheckpoint atomic.Pointer[func()] // tests: called after each checkpoint
}

// Stats counts the work of the group-commit writer since Open.
type Stats struct {
	// Applies is the number of Apply calls that reached the writer.
	Applies int64
	// Commits is the number of transactions the writer committed (or
	// tried to): Applies/Commits is the mean group size.
	Commits int64
	// Checkpoints is the number of WAL checkpoints run off the writer
	// (SQLite), CheckpointErrors those that failed (the next one copies
	// what they did not).
	Checkpoints, CheckpointErrors int64
	// WALTruncates counts the checkpoints that emptied a WAL grown past
	// its limit (SQLite).
	WALTruncates int64
}

// Open opens the catalog, applies the migrations it lacks and starts the
// writer. Close releases it.
func Open(ctx context.Context, cfg Config) (*Catalog, error) {
	c := &Catalog{
		reqs:       make(chan []*request),
		quit:       make(chan struct{}),
		writerDone: make(chan struct{}),
		stmts:      map[string]*sql.Stmt{},
	}
	c.delay.Store(int64(commitDelay))
	c.walLimit.Store(walLimit)
	switch cfg.Driver {
	case "", DriverSQLite:
		if cfg.DSN == "" || strings.ContainsRune(cfg.DSN, '?') {
			return nil, fmt.Errorf("catalog: sqlite path %q: %w (empty or containing '?')", cfg.DSN, ErrInvalid)
		}
		c.d = sqliteDialect
		// Page caches: 16 MB for the writer, 2 MB for each of the four
		// readers (the OS caches the file too). They live outside Go's
		// heap, and SQLite's commit walks the writer's cache: 64 MB each
		// cost a 200 calls/s runtime 320 MB of RSS and a tenth of its CPU.
		// The readers' lookups by id and pages of a search on a million
		// rows took the same CPU with 2 MB as with 8 MB (1 MB: 7-11%
		// more, 512 KB: 18% more).
		const common = "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
		// The writer never checkpoints the WAL itself
		// (wal_autocheckpoint 0): a checkpoint copies pages into the
		// database file and fsyncs it, which in the writer would hold up
		// every commit waiting behind it. The checkpointer does it on a
		// connection of its own (PASSIVE: the writer goes on appending
		// meanwhile). journal_size_limit truncates a WAL a burst grew once
		// it restarts.
		w, err := openSQLite(cfg.DSN+common+"&_pragma=cache_size(-16384)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=temp_store(MEMORY)&_pragma=wal_autocheckpoint(0)&_pragma=journal_size_limit(67108864)&_txlock=immediate", 1)
		if err != nil {
			return nil, fmt.Errorf("catalog: open sqlite %s: %w", cfg.DSN, err)
		}
		c.wdb = w
		// The read pool opens its connections after the migrations, once
		// the file is in WAL mode (a persistent setting).
		r, err := openSQLite(cfg.DSN+common+"&_pragma=cache_size(-2048)&_pragma=query_only(1)", 4)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("catalog: open sqlite %s: %w", cfg.DSN, err)
		}
		c.rdb = r
		ck, err := openSQLite(cfg.DSN+common+"&_pragma=cache_size(-512)&_pragma=synchronous(FULL)", 1)
		if err != nil {
			w.Close()
			r.Close()
			return nil, fmt.Errorf("catalog: open sqlite %s: %w", cfg.DSN, err)
		}
		c.ckdb = ck
		c.ckKick = make(chan struct{}, 1)
		c.ckDone = make(chan struct{})
	case DriverPostgres:
		pc, err := pgx.ParseConfig(cfg.DSN)
		if err != nil {
			return nil, fmt.Errorf("catalog: postgres dsn: %w", err)
		}
		// Plan every search with its values: a generic plan of a cached
		// statement cannot tell a range of one day from one of a year and
		// picks the wrong index for one of them.
		if _, set := pc.RuntimeParams["plan_cache_mode"]; !set {
			pc.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
		}
		db := stdlib.OpenDB(*pc)
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(8)
		db.SetConnMaxIdleTime(5 * time.Minute)
		c.d = postgresDialect
		c.rdb, c.wdb = db, db
	default:
		return nil, fmt.Errorf("catalog: driver %q: %w (want %q or %q)", cfg.Driver, ErrInvalid, DriverSQLite, DriverPostgres)
	}
	if err := c.migrate(ctx); err != nil {
		c.closeDBs()
		return nil, err
	}
	if err := c.prepare(ctx); err != nil {
		c.closeDBs()
		return nil, err
	}
	go c.writer()
	if c.ckdb != nil {
		go c.checkpointer()
	}
	return c, nil
}

// openSQLite opens a pool of conns SQLite connections to dsn, kept open
// (no idle time limit).
func openSQLite(dsn string, conns int) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// Driver reports the driver in use: DriverSQLite or DriverPostgres.
func (c *Catalog) Driver() string { return c.d.name }

// Stats reports the writer's counters.
func (c *Catalog) Stats() Stats {
	return Stats{Applies: c.applies.Load(), Commits: c.commits.Load(),
		Checkpoints: c.checkpoints.Load(), CheckpointErrors: c.ckpointErrs.Load(), WALTruncates: c.truncates.Load()}
}

// Close stops the writer, once the transaction in progress is committed,
// and closes the database. Apply calls after Close fail with ErrClosed.
func (c *Catalog) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.quit)
		<-c.writerDone
		if c.ckDone != nil {
			<-c.ckDone
		}
		err = c.closeDBs()
	})
	return err
}

func (c *Catalog) closeDBs() error {
	var err error
	for _, st := range c.stmts {
		err = errors.Join(err, st.Close())
	}
	if c.get != nil {
		err = errors.Join(err, c.get.Close())
	}
	if c.ckdb != nil {
		err = errors.Join(err, c.ckdb.Close())
	}
	err = errors.Join(err, c.wdb.Close())
	if c.rdb != c.wdb {
		err = errors.Join(err, c.rdb.Close())
	}
	if err != nil {
		return fmt.Errorf("catalog: close: %w", err)
	}
	return nil
}

// dialect holds what differs between the two databases.
type dialect struct {
	name string
	// dollar: placeholders are $1, $2... instead of ?.
	dollar bool
	// types replaces the {{name}} markers of the migrations.
	types map[string]string
	// migrationLock is run first in every migration transaction so that
	// concurrent Opens take turns ("" when BEGIN already serializes).
	migrationLock string
	// nowUS is an expression for the database's clock in unix
	// microseconds.
	nowUS string
	// forUpdate locks the rows a SELECT reads inside a transaction.
	forUpdate string
}

var sqliteDialect = &dialect{
	name: DriverSQLite,
	types: map[string]string{
		"text":   "TEXT",
		"bigint": "INTEGER",
		"blob":   "BLOB",
		"serial": "INTEGER PRIMARY KEY",
	},
	nowUS: "CAST(unixepoch('now', 'subsec') * 1000000 AS INTEGER)",
}

var postgresDialect = &dialect{
	name:   DriverPostgres,
	dollar: true,
	types: map[string]string{
		// Byte order, as SQLite's, so that ids sort the same on both
		// and the indexes compare bytes.
		"text":   `TEXT COLLATE "C"`,
		"bigint": "BIGINT",
		"blob":   "BYTEA",
		"serial": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
	},
	migrationLock: "SELECT pg_advisory_xact_lock(7349163012)",
	nowUS:         "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)",
	forUpdate:     " FOR UPDATE",
}

// q rewrites a query written with ? placeholders for the dialect. No query
// of the package has a ? inside a string literal.
func (d *dialect) q(query string) string {
	if !d.dollar {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// us converts a time to the stored unix microseconds; the zero time is 0.
func us(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromUS converts stored unix microseconds back; 0 is the zero time.
func fromUS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}
