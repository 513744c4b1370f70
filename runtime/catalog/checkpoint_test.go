package catalog_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/recpol/recpol/runtime/catalog"
)

// TestCheckpointOffTheWriter: the WAL is copied into the database file by
// the checkpointer once the writer has committed CheckpointEvery times: a
// copy of the database file alone, without its WAL, holds every
// recording committed before.
func TestCheckpointOffTheWriter(t *testing.T) {
	dir := t.TempDir()
	c := open(t, catalog.Config{Driver: catalog.DriverSQLite, DSN: filepath.Join(dir, "catalog.db")})
	ran := make(chan struct{}, 64)
	c.OnCheckpoint(func() {
		select {
		case ran <- struct{}{}:
		default:
		}
	})
	for i := range catalog.CheckpointEvery {
		put(t, c, rec(fmt.Sprintf("r%03d", i), i)) // one Apply, one commit each
	}
	rows := func() (int, error) {
		b, err := os.ReadFile(filepath.Join(dir, "catalog.db"))
		if err != nil {
			return 0, err
		}
		cp := filepath.Join(t.TempDir(), "copy.db")
		if err := os.WriteFile(cp, b, 0o600); err != nil {
			return 0, err
		}
		db, err := sql.Open("sqlite", cp)
		if err != nil {
			return 0, err
		}
		defer db.Close()
		var n int
		err = db.QueryRow("SELECT count(*) FROM recordings").Scan(&n)
		return n, err
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case <-ran:
		case <-deadline:
			n, err := rows()
			t.Fatalf("no checkpoint copied the %d commits into the database file: it holds %d recordings (%v); %+v",
				catalog.CheckpointEvery, n, err, c.Stats())
		}
		// Until then the file alone may not even hold the schema.
		if n, err := rows(); err == nil && n == catalog.CheckpointEvery {
			break
		}
	}
	if s := c.Stats(); s.Checkpoints == 0 || s.CheckpointErrors != 0 {
		t.Errorf("stats %+v: want checkpoints and no errors", s)
	}
}

// TestWALEmptiedPastItsLimit: a WAL that passive checkpoints leave behind
// (here a reader holds an old snapshot while the writer commits) is
// emptied by the checkpointer once it is past its limit and the reader is
// done; below the limit it is left for the WAL's own restart.
func TestWALEmptiedPastItsLimit(t *testing.T) {
	for _, tc := range []struct {
		name      string
		limit     int64
		wantEmpty bool
	}{
		{"past the limit", 8, true},
		{"within it", 1 << 30, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dsn := filepath.Join(dir, "catalog.db")
			c := open(t, catalog.Config{Driver: catalog.DriverSQLite, DSN: dsn})
			c.SetWALLimit(tc.limit)
			ran := make(chan struct{}, 64)
			c.OnCheckpoint(func() {
				select {
				case ran <- struct{}{}:
				default: // one is waiting to be read: the checkpointer never blocks here
				}
			})
			put(t, c, rec("first", 0))

			// A reader of another connection holds the snapshot of one
			// recording while 20 more are committed: no checkpoint can
			// copy them until it ends.
			db, err := sql.Open("sqlite", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			tx, err := db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			var n int
			if err := tx.QueryRow("SELECT count(*) FROM recordings").Scan(&n); err != nil || n != 1 {
				t.Fatalf("the reader sees %d recordings (%v), want 1", n, err)
			}
			for i := range 20 {
				put(t, c, rec(fmt.Sprintf("r%02d", i), i+1))
			}
			wal := filepath.Join(dir, "catalog.db-wal")
			size := func() int64 {
				fi, err := os.Stat(wal)
				if err != nil {
					t.Fatal(err)
				}
				return fi.Size()
			}
			if size() == 0 {
				t.Fatal("the WAL is empty before any checkpoint")
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			before := c.Stats().Checkpoints
			for {
				c.Checkpoint()
				select {
				case <-ran:
				case <-time.After(30 * time.Second):
					t.Fatalf("no checkpoint ran; %+v", c.Stats())
				}
				if c.Stats().Checkpoints > before {
					break
				}
			}
			// Drain what the writer asked for meanwhile, then look.
			for len(ran) > 0 {
				<-ran
			}
			if got := size() == 0; got != tc.wantEmpty {
				t.Errorf("WAL of %d bytes after the checkpoint, want emptied: %v; %+v", size(), tc.wantEmpty, c.Stats())
			}
			if got := c.Stats().WALTruncates > 0; got != tc.wantEmpty {
				t.Errorf("stats %+v: want a truncate: %v", c.Stats(), tc.wantEmpty)
			}
		})
	}
}
