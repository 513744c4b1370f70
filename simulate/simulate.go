// Package simulate shows what a compiled recording policy does: for every
// account, every call a device or the PSTN can place (SPEC 2.3) and the
// recordings it starts, rendered as truth tables (text, Markdown), as a
// stable JSON document or as a JUnit report. It also reproduces KAZOO's
// documented recording matrix through the real compiler (see Matrix),
// explains the decision of one call (Explain) and compares two tables
// (Diff).
//
// The simulator only reads a table.Table; the decisions themselves are the
// table's (table.Account.Decide), the same code the runtime runs.
package simulate

import (
	"fmt"
	"path"

	"github.com/recpol/recpol/table"
)

// decideFunc returns the recordings a call starts. The simulator uses
// (*table.Account).Decide; tests inject deliberately wrong variants to
// prove that the matrix catches them.
type decideFunc func(a *table.Account, c table.Call) ([]table.Recording, error)

// tableDecide is the table's own decision of a call, the default decideFunc.
func tableDecide(a *table.Account, c table.Call) ([]table.Recording, error) { return a.Decide(c) }

// Call is one simulated call and the recordings it starts, ordered
// account, caller, then callees by device id.
type Call struct {
	From       table.Party
	To         table.Party
	Recordings []table.Recording
}

// Account is the simulation of one account: every call in enumeration
// order (see Calls).
type Account struct {
	ID      string
	Account *table.Account
	// Callees are the columns of the account's truth table.
	Callees []table.Party
	Calls   []Call
}

// Result is the simulation of a whole table, accounts sorted by id.
type Result struct {
	// PolicyVersion is the table's version ("sha256:<hex>").
	PolicyVersion string
	Accounts      []Account
}

// callersOf returns the parties that can place a call in an account: each
// device by id, offnet, then, with between (a table of several accounts),
// another account of the platform (SPEC 2.7: its call arrives onnet and
// this account decides on its own legs).
func callersOf(a *table.Account, between bool) []table.Party {
	ids := a.DeviceIDs()
	ps := make([]table.Party, 0, len(ids)+2)
	for _, id := range ids {
		ps = append(ps, table.DeviceRef(id))
	}
	ps = append(ps, table.OffnetRef())
	if between {
		ps = append(ps, table.OtherAccountRef())
	}
	return ps
}

// calleesOf returns the parties a call can be placed to: each device by id,
// each user by id, offnet, then, with between, another account.
func calleesOf(a *table.Account, between bool) []table.Party {
	dids, uids := a.DeviceIDs(), a.UserIDs()
	ps := make([]table.Party, 0, len(dids)+len(uids)+2)
	for _, id := range dids {
		ps = append(ps, table.DeviceRef(id))
	}
	for _, id := range uids {
		ps = append(ps, table.UserRef(id))
	}
	ps = append(ps, table.OffnetRef())
	if between {
		ps = append(ps, table.OtherAccountRef())
	}
	return ps
}

// callsOf returns every call of an account in simulation order: callers as
// in callersOf, and for each caller the callees as in calleesOf (a device
// calling itself included). A call from another account to another
// account (transit) is left out: neither end is this account's.
func callsOf(a *table.Account, between bool) []table.Call {
	from, to := callersOf(a, between), calleesOf(a, between)
	calls := make([]table.Call, 0, len(from)*len(to))
	for _, f := range from {
		for _, t := range to {
			if f.Kind == table.OtherAccountParty && t.Kind == table.OtherAccountParty {
				continue
			}
			calls = append(calls, table.Call{From: f, To: t})
		}
	}
	return calls
}

// simulateAccount runs every call of one account (Calls) through decide.
func simulateAccount(a *table.Account, between bool, decide decideFunc) (Account, error) {
	if decide == nil {
		decide = tableDecide
	}
	calls := callsOf(a, between)
	out := Account{ID: a.ID, Account: a, Callees: calleesOf(a, between), Calls: make([]Call, 0, len(calls))}
	for _, c := range calls {
		recs, err := decide(a, c)
		if err != nil {
			return Account{}, fmt.Errorf("account %s: call %s -> %s: %w", a.ID, c.From, c.To, err)
		}
		out.Calls = append(out.Calls, Call{From: c.From, To: c.To, Recordings: recs})
	}
	return out, nil
}

// Run simulates every account of a table with the table's own decisions.
func Run(t *table.Table) (*Result, error) { return runWith(t, tableDecide) }

// runWith simulates every account of a table with decide. A table of
// several accounts also has calls between them (callersOf, calleesOf).
func runWith(t *table.Table, decide decideFunc) (*Result, error) {
	return run(t, decide, len(t.AccountIDs()) > 1)
}

func run(t *table.Table, decide decideFunc, between bool) (*Result, error) {
	ids := t.AccountIDs()
	r := &Result{PolicyVersion: t.Version, Accounts: make([]Account, 0, len(ids))}
	for _, id := range ids {
		a, _ := t.Account(id)
		sa, err := simulateAccount(a, between, decide)
		if err != nil {
			return nil, err
		}
		r.Accounts = append(r.Accounts, sa)
	}
	return r, nil
}

// KeepAccounts keeps the simulated accounts whose id matches the glob
// pattern (path.Match); it is an error when none does.
func (r *Result) KeepAccounts(pattern string) error {
	var kept []Account
	for _, a := range r.Accounts {
		ok, err := path.Match(pattern, a.ID)
		if err != nil {
			return fmt.Errorf("pattern %q: %w", pattern, err)
		}
		if ok {
			kept = append(kept, a)
		}
	}
	if len(kept) == 0 {
		return fmt.Errorf("no account matches %q", pattern)
	}
	r.Accounts = kept
	return nil
}
