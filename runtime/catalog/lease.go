package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// AcquireLease takes the lease called name (a switch) for holder, for ttl
// from now by the database's clock, when it is free, expired or already
// holder's (a renewal). It reports whether holder now holds it, and who
// does and until when. Taking and renewing are one statement, atomic
// between processes sharing the database: at any moment at most one holder
// has an unexpired lease.
func (c *Catalog) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (held bool, holderNow string, expires time.Time, err error) {
	if name == "" || holder == "" || ttl <= 0 {
		return false, "", time.Time{}, fmt.Errorf("catalog: lease %q for %q: %w: name, holder and a positive ttl are required", name, holder, ErrInvalid)
	}
	now := c.d.nowUS
	var exp int64
	err = c.wdb.QueryRowContext(ctx, c.d.q(`INSERT INTO leases (name, holder, expires_us) VALUES (?, ?, `+now+` + ?)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_us = excluded.expires_us
WHERE leases.expires_us <= `+now+` OR leases.holder = excluded.holder
RETURNING holder, expires_us`), name, holder, ttl.Microseconds()).Scan(&holderNow, &exp)
	if err == nil {
		return true, holderNow, fromUS(exp), nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, "", time.Time{}, fmt.Errorf("catalog: lease %q for %q: %w", name, holder, err)
	}
	// Held by another: say by whom.
	err = c.wdb.QueryRowContext(ctx, c.d.q("SELECT holder, expires_us FROM leases WHERE name = ?"), name).Scan(&holderNow, &exp)
	if err != nil {
		return false, "", time.Time{}, fmt.Errorf("catalog: lease %q for %q: %w", name, holder, err)
	}
	return false, holderNow, fromUS(exp), nil
}

// ReleaseLease gives up holder's lease called name, if holder has it, so
// that another can take it at once.
func (c *Catalog) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := c.wdb.ExecContext(ctx, c.d.q("DELETE FROM leases WHERE name = ? AND holder = ?"), name, holder); err != nil {
		return fmt.Errorf("catalog: release lease %q for %q: %w", name, holder, err)
	}
	return nil
}
