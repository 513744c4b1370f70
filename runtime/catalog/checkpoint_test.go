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
