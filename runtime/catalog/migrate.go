package catalog

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered step of the schema.
type migration struct {
	version int
	name    string
	stmts   []string
}

// migrations returns the embedded migrations in order, their {{type}}
// markers replaced for the dialect. A file is named NNNN_name.sql, numbered
// from 1 without gaps.
func (d *dialect) migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []migration
	for i, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != i+1 {
			return nil, fmt.Errorf("catalog: migration %s: want number %04d", base, i+1)
		}
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		text := string(b)
		for k, t := range d.types {
			text = strings.ReplaceAll(text, "{{"+k+"}}", t)
		}
		if strings.Contains(text, "{{") {
			return nil, fmt.Errorf("catalog: migration %s: unknown type marker", base)
		}
		m := migration{version: v, name: base}
		for _, s := range splitStatements(text) {
			m.stmts = append(m.stmts, s)
		}
		out = append(out, m)
	}
	return out, nil
}

// splitStatements splits a migration at the semicolons that end a line,
// dropping comment lines.
func splitStatements(text string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// migrate applies the missing migrations, each in a transaction of its own
// that also records it in schema_migrations.
func (c *Catalog) migrate(ctx context.Context) error {
	ms, err := c.d.migrations()
	if err != nil {
		return err
	}
	for _, m := range ms {
		// Two processes opening a new SQLite catalog at once can meet
		// SQLITE_BUSY where the busy timeout does not apply (one switching
		// the file to WAL while the other begins): the migration is tried
		// again, a few times, after a pause.
		delay := 20 * time.Millisecond
		for attempt := 1; ; attempt++ {
			err := c.applyMigration(ctx, m, len(ms))
			if err == nil {
				break
			}
			if !sqliteBusy(err) || attempt == 10 || ctx.Err() != nil {
				return fmt.Errorf("catalog: migration %s: %w", m.name, err)
			}
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("catalog: migration %s: %w", m.name, ctx.Err())
			case <-t.C:
			}
			delay *= 2
		}
	}
	return nil
}

// sqliteBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED
// (its primary result code, from the driver's error value).
func sqliteBusy(err error) bool {
	var coded interface{ Code() int }
	if !errors.As(err, &coded) {
		return false
	}
	switch coded.Code() & 0xff {
	case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
		return true
	}
	return false
}

func (c *Catalog) applyMigration(ctx context.Context, m migration, known int) (err error) {
	tx, err := c.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if c.d.migrationLock != "" {
		if _, err := tx.ExecContext(ctx, c.d.migrationLock); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_us "+c.d.types["bigint"]+" NOT NULL)"); err != nil {
		return err
	}
	var newest sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&newest); err != nil {
		return err
	}
	if newest.Valid && newest.Int64 > int64(known) {
		return fmt.Errorf("%w: version %d, this binary knows %d", ErrSchemaTooNew, newest.Int64, known)
	}
	var one int
	err = tx.QueryRowContext(ctx, c.d.q("SELECT 1 FROM schema_migrations WHERE version = ?"), m.version).Scan(&one)
	switch {
	case err == nil:
		return tx.Commit() // applied before
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	for _, s := range m.stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%w\n%s", err, s)
		}
	}
	if _, err := tx.ExecContext(ctx, c.d.q("INSERT INTO schema_migrations (version, applied_us) VALUES (?, ?)"), m.version, time.Now().UnixMicro()); err != nil {
		return err
	}
	return tx.Commit()
}
