package simulate

import (
	"fmt"
	"sort"

	"github.com/recpol/recpol/table"
)

// Finding is a warning about a policy that only the simulation can see.
type Finding struct {
	Code    string // "double-recording" or "unreachable"
	Account string
	Message string
	// Setting is the provenance of the setting that causes the finding
	// ("device:d1 call_recording.outbound.any.enabled"), for a caller to
	// turn into a file position; empty when none does.
	Setting string
}

// Codes of the findings.
const (
	FindingDouble      = "double-recording"
	FindingUnreachable = "unreachable"
)

// Lint simulates every call of every account and reports the legs that
// one call records twice (the account and the caller device both record
// the A-leg) and recording settings that no call ever reaches.
func Lint(t *table.Table) []Finding {
	var out []Finding
	for _, id := range t.AccountIDs() {
		a, _ := t.Account(id)
		out = append(out, lintAccount(a, len(t.AccountIDs()) > 1)...)
	}
	return out
}

type cellKey struct {
	scope string // "account" or "device:<id>"
	d     table.Direction
	n     table.Network
}

func lintAccount(a *table.Account, between bool) []Finding {
	var out []Finding
	consulted := map[cellKey]bool{}
	type double struct {
		account, caller string // provenance of enabled
		origin          string
	}
	doubles := map[double][]string{} // -> caller devices
	var order []double
	for _, c := range Calls(a, between) {
		from, to := c.From.Network(), c.To.Network()
		consulted[cellKey{"account", table.Inbound, from}] = true
		acct, acctOK := a.AccountInbound(from)
		if !acctOK {
			consulted[cellKey{"account", table.Outbound, to}] = true
			acct, acctOK = a.AccountOutbound(to)
		}
		if c.From.Kind == table.DeviceParty {
			consulted[cellKey{"device:" + c.From.ID, table.Outbound, to}] = true
			if caller, ok := a.CallerDecision(c.From.ID, to); ok && acctOK {
				k := double{acct.Cell.Provenance.Enabled, caller.Cell.Provenance.Enabled, acct.Origin}
				if _, seen := doubles[k]; !seen {
					order = append(order, k)
				}
				if devs := doubles[k]; len(devs) == 0 || devs[len(devs)-1] != c.From.ID {
					doubles[k] = append(devs, c.From.ID)
				}
			}
		}
		for _, d := range a.Ringing(c) {
			consulted[cellKey{"device:" + d, table.Inbound, from}] = true
		}
	}
	for _, k := range order {
		devs := doubles[k]
		out = append(out, Finding{Code: FindingDouble, Account: a.ID, Message: fmt.Sprintf(
			"calls placed by %s record the caller's leg twice: by the account (%s, set by %s) and by the caller device (set by %s)",
			plural(devs, "device"), k.origin, k.account, k.caller), Setting: k.caller})
	}
	for _, d := range table.Directions {
		for _, n := range table.Networks {
			if a.Cells.Get(d, n).Record && !consulted[cellKey{"account", d, n}] {
				out = append(out, Finding{Code: FindingUnreachable, Account: a.ID, Message: fmt.Sprintf(
					"the account cell %s.%s records (set by %s) but no call of the account reaches it%s",
					d, n, a.Cells.Get(d, n).Provenance.Enabled, accountReason(a, d, n)), Setting: a.Cells.Get(d, n).Provenance.Enabled})
			}
		}
	}
	for _, id := range a.DeviceIDs() {
		e := a.Devices[id]
		for _, d := range table.Directions {
			for _, n := range table.Networks {
				if e.Cells.Get(d, n).Record && !consulted[cellKey{"device:" + id, d, n}] {
					out = append(out, Finding{Code: FindingUnreachable, Account: a.ID, Message: fmt.Sprintf(
						"device:%s cell %s.%s records (set by %s) but no call of the account reaches it",
						id, d, n, e.Cells.Get(d, n).Provenance.Enabled), Setting: e.Cells.Get(d, n).Provenance.Enabled})
				}
			}
		}
	}
	for _, id := range a.UserIDs() {
		if len(a.DevicesOf(id)) > 0 {
			continue
		}
		e := a.Users[id]
	cells: // one finding per user
		for _, d := range table.Directions {
			for _, n := range table.Networks {
				if c := e.Cells.Get(d, n); c.Record {
					out = append(out, Finding{Code: FindingUnreachable, Account: a.ID, Message: fmt.Sprintf(
						"user:%s records %s.%s calls (set by %s) but owns no device: calls ring devices, so no call records through it",
						id, d, n, c.Provenance.Enabled), Setting: c.Provenance.Enabled})
					break cells
				}
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

func accountReason(a *table.Account, d table.Direction, n table.Network) string {
	if d == table.Inbound && n == table.Onnet && len(a.Devices) == 0 {
		return ": it has no devices to place calls"
	}
	if d == table.Outbound {
		return ": the inbound cells record every call first"
	}
	return ""
}

func plural(ids []string, kind string) string {
	if len(ids) == 1 {
		return kind + ":" + ids[0]
	}
	return fmt.Sprintf("%d devices (%s:%s, ...)", len(ids), kind, ids[0])
}
