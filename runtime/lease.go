package runtime

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/recpol/recpol/runtime/catalog"
	"github.com/recpol/recpol/runtime/esl"
	"github.com/recpol/recpol/runtime/eslcmd"
)

// apiFunc runs one api command on a switch.
type apiFunc func(ctx context.Context, cmd string) (string, error)

// lease is a switch's ownership: only the runtime holding it subscribes to
// the switch's events, so that two runtimes configured on one switch never
// both record its calls.
type lease interface {
	// acquire takes the lease when it is free, expired or already ours,
	// and renews it; it reports whether we hold it, and who does.
	acquire(ctx context.Context, api apiFunc) (held bool, holder string, err error)
	// release gives it up, so that another runtime takes it at once.
	release(ctx context.Context, api apiFunc)
}

// errNotOwner: another runtime holds the switch's lease.
var errNotOwner = errors.New("another runtime holds the switch's lease")

// notOwnerError is errNotOwner with the runtime that holds the lease.
type notOwnerError struct{ holder string }

func (e *notOwnerError) Error() string { return errNotOwner.Error() + ": " + e.holder }
func (e *notOwnerError) Unwrap() error { return errNotOwner }

// ownerVar is the switch's global variable that holds its lease:
// "<runtime name>;<expiry, unix ms>".
const ownerVar = "recpol_owner"

// switchLease keeps the lease in the switch itself, for runtimes that share
// no catalog. It takes an expired lease, and renews its own, with the
// compare-and-set form of global_setvar ("<var>=<value>=<expected>",
// switch_core_set_var_conditional under the globals' write lock:
// mod_commands.c global_setvar_function), then reads the variable back:
// of two runtimes taking it at once, one wins. A variable that was never
// set cannot be compared (an empty expected value sets unconditionally),
// so the first claim of a fresh switch is a plain set read back, and two
// runtimes starting at the same instant may both serve it until the next
// renewal, a third of the lease later, settles it.
type switchLease struct {
	me  string
	ttl time.Duration
	now func() time.Time
}

func (l *switchLease) acquire(ctx context.Context, api apiFunc) (bool, string, error) {
	cur, err := runAPI(ctx, api, eslcmd.GlobalGetVar{Name: ownerVar})
	if err != nil {
		return false, "", fmt.Errorf("reading the switch's lease: %w", err)
	}
	cur = strings.TrimSpace(cur)
	holder, expires := parseOwner(cur)
	now := l.now()
	if cur != "" && holder != l.me && now.Before(expires) {
		return false, holder, nil
	}
	next := l.me + ";" + strconv.FormatInt(now.Add(l.ttl).UnixMilli(), 10)
	// Only if nobody changed it meanwhile.
	set := eslcmd.GlobalSetVar{Name: ownerVar, Value: next, IfEqual: cur != "", Expected: cur}
	if _, err := runAPI(ctx, api, set); err != nil {
		return false, "", fmt.Errorf("taking the switch's lease: %w", err)
	}
	got, err := runAPI(ctx, api, eslcmd.GlobalGetVar{Name: ownerVar})
	if err != nil {
		return false, "", fmt.Errorf("reading the switch's lease: %w", err)
	}
	got = strings.TrimSpace(got)
	holder, _ = parseOwner(got)
	return got == next, holder, nil
}

func (l *switchLease) release(ctx context.Context, api apiFunc) {
	cur, err := runAPI(ctx, api, eslcmd.GlobalGetVar{Name: ownerVar})
	if err != nil {
		return
	}
	cur = strings.TrimSpace(cur)
	if holder, _ := parseOwner(cur); holder == l.me {
		// An empty value unsets it, if it is still ours.
		runAPI(ctx, api, eslcmd.GlobalSetVar{Name: ownerVar, IfEqual: true, Expected: cur})
	}
}

// parseOwner splits the lease variable; an unreadable one has expired.
func parseOwner(v string) (holder string, expires time.Time) {
	h, ms, ok := strings.Cut(v, ";")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || !validID(h) {
		return "", time.Time{}
	}
	return h, time.UnixMilli(n)
}

// catalogLease keeps the lease in the catalog that the runtimes share
// (PostgreSQL): taking and renewing it is one statement on the database's
// clock (catalog.AcquireLease).
type catalogLease struct {
	cat *catalog.Catalog
	key string // "switch:<name>"
	me  string
	ttl time.Duration
}

func (l *catalogLease) acquire(ctx context.Context, _ apiFunc) (bool, string, error) {
	held, holder, _, err := l.cat.AcquireLease(ctx, l.key, l.me, l.ttl)
	if err != nil {
		return false, "", fmt.Errorf("the catalog's lease: %w", err)
	}
	return held, holder, nil
}

func (l *catalogLease) release(ctx context.Context, _ apiFunc) {
	l.cat.ReleaseLease(ctx, l.key, l.me)
}

// gate is the switch client's Gate: the connection serves the switch only
// while this runtime holds its lease.
func (sr *switchRun) gate(ctx context.Context, api func(context.Context, string) (string, error)) error {
	held, holder, err := sr.lease.acquire(ctx, api)
	if err != nil {
		return err
	}
	if !held {
		sr.rt.log.Info("switch served by another runtime: not subscribing until its lease expires",
			"switch", sr.cfg.Name, "owner", holder, "lease_ttl", sr.rt.cfg.LeaseTTL.String())
		return &notOwnerError{holder}
	}
	sr.checkMP3(ctx, api)
	return nil
}

// checkMP3 asks the switch whether it can write mp3: FreeSWITCH does with
// mod_shout loaded (mod_commands.c, module_exists_function answers "true"
// or "false"). A switch that cannot gets WAV recordings instead of lost
// ones (engine.start), and this is said once per connection, loudly. An
// unclear answer keeps mp3: the switch's refusal of a start is then the
// signal, as before.
func (sr *switchRun) checkMP3(ctx context.Context, api apiFunc) {
	res, err := runAPI(ctx, api, eslcmd.ModuleExists{Module: "mod_shout"})
	state, can := mp3Unknown, 0.0
	switch strings.TrimSpace(res) {
	case "true":
		state, can = mp3Yes, 1
	case "false":
		state = mp3No
	}
	prev := sr.engine.mp3.Swap(state)
	sr.rt.Metrics.SwitchMP3.WithLabelValues(sr.cfg.Name).Set(can)
	switch {
	case err != nil || state == mp3Unknown:
		sr.rt.log.Warn("could not tell whether the switch writes mp3 (module_exists mod_shout); asking for mp3 where the policy does",
			"switch", sr.cfg.Name, "reply", strings.TrimSpace(res), "error", err)
	case state == mp3No && prev != mp3No:
		sr.rt.log.Error("the switch cannot write mp3 (mod_shout is not loaded): recordings the policy wants in mp3 are made in WAV, their metadata says format_requested mp3; load mod_shout or set format: \"wav\"",
			"switch", sr.cfg.Name)
	}
}

// keepLease renews the switch's lease every third of its life while the
// switch is connected, until ctx is done, then releases it. A lease found
// in another runtime's hands (this one stalled past its expiry) ends the
// connection: the other runtime serves the switch now.
func (sr *switchRun) keepLease(ctx context.Context) {
	ttl := sr.rt.cfg.LeaseTTL
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if sr.rt.releaseLeases && sr.client.Connected() {
				rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				sr.lease.release(rctx, sr.client.API)
				cancel()
			}
			return
		case <-t.C:
		}
		if !sr.client.Connected() {
			continue
		}
		held, holder, err := sr.lease.acquire(ctx, sr.client.API)
		switch {
		case err != nil && ctx.Err() == nil:
			sr.rt.log.Warn("renewing the switch's lease failed; will retry", "switch", sr.cfg.Name, "error", err)
		case err == nil && !held:
			sr.rt.log.Error("the switch's lease is another runtime's: disconnecting", "switch", sr.cfg.Name, "owner", holder)
			sr.client.Drop(&notOwnerError{holder})
		}
	}
}

// gated reports whether a disconnection only means another runtime holds
// the switch.
func gated(err error) bool { return errors.Is(err, esl.ErrGated) }
