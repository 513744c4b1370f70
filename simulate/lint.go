package simulate

import (
	"fmt"
	"slices"
	"sort"
	"strings"

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

// dtmfCodes of the findings.
const (
	FindingDouble      = "double-recording"
	FindingUnreachable = "unreachable"
)

// Lint simulates every call of every account and reports the legs that
// one call records twice (the account and the caller device both record
// the A-leg; the account or the caller device and a callflow record the
// caller's leg of a call to a callflow number; a metaflow start code starts
// a recording of a leg that a policy recording already records) and
// recording settings that no call ever reaches. Every finding names the
// setting that causes it (Finding.Setting). A toggle code never doubles a
// recording: it starts one only when nothing records the call.
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
	for _, c := range callsOf(a, between) {
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
	out = append(out, lintCallflows(a)...)
	out = append(out, lintMetaflowStarts(a, between)...)
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

// callflowSetting is the provenance of a setting the callflow's own action
// sets ("account:a callflows.payments.actions.0.data.time_limit"), which
// places the finding at the callflow, or else fallback.
func callflowSetting(a *table.Account, cf *table.Callflow, act *table.Action, fallback string) string {
	prefix := "account:" + a.ID + " callflows." + cf.ID + "."
	for _, f := range fieldsOf(act.Settings, act.Provenance) {
		if strings.HasPrefix(f.prov, prefix) {
			return f.prov
		}
	}
	return fallback
}

// lintCallflows warns where a call to a callflow number records the
// caller's leg twice: the account's or the caller device's recording and
// the callflow's record_call (record_caller keeps only the caller's audio
// and is left out).
func lintCallflows(a *table.Account) []Finding {
	type key struct {
		cf, policy, prov, origin string
	}
	type group struct {
		callers, dialled []string
		setting          string
		label            string
	}
	groups := map[key]*group{}
	var order []key
	for _, cf := range a.Callflows {
		var flow *table.Action
		for i := range cf.Actions {
			act := &cf.Actions[i]
			switch {
			case act.Module == table.RecordCall && act.Action == table.Stop:
				flow = nil
			case act.Module == table.RecordCall && act.Action == table.Start && flow == nil:
				flow = act
			}
		}
		if flow == nil {
			continue
		}
		for _, d := range callflowDialled(cf) {
			for _, from := range callersOf(a, false) {
				var policies []table.Recording
				if r, ok := a.AccountDecision(from.Network(), table.Onnet); ok {
					policies = append(policies, r)
				}
				if from.Kind == table.DeviceParty {
					if r, ok := a.CallerDecision(from.ID, table.Onnet); ok {
						policies = append(policies, r)
					}
				}
				for _, r := range policies {
					policy := "the account"
					setting := callflowSetting(a, cf, flow, r.Cell.Provenance.Enabled)
					if r.Scope == table.ScopeCaller {
						policy = "the caller device"
						setting = r.Cell.Provenance.Enabled
					}
					k := key{cf.ID, policy, r.Cell.Provenance.Enabled, r.Origin}
					g := groups[k]
					if g == nil {
						g = &group{setting: setting, label: actionOrigin(cf, flow)}
						groups[k] = g
						order = append(order, k)
					}
					if !slices.Contains(g.callers, from.String()) {
						g.callers = append(g.callers, from.String())
					}
					if !slices.Contains(g.dialled, d.String()) {
						g.dialled = append(g.dialled, d.String())
					}
				}
			}
		}
	}
	var out []Finding
	for _, k := range order {
		g := groups[k]
		out = append(out, Finding{Code: FindingDouble, Account: a.ID, Setting: g.setting, Message: fmt.Sprintf(
			"calls from %s to %s record the caller's leg twice: by %s (%s, set by %s) and by callflow %s (%s)",
			strings.Join(g.callers, ", "), strings.Join(g.dialled, ", "), k.policy, k.origin, k.prov, k.cf, g.label)})
	}
	return out
}

// lintMetaflowStarts warns where a metaflow start code would start a
// second recording of a leg that a policy recording of the call already
// records (the device's own caller or callee recording, or the account's
// on the caller's leg).
func lintMetaflowStarts(a *table.Account, between bool) []Finding {
	type key struct {
		keys, from, policy, prov string
	}
	groups := map[key][]string{}
	var order []key
	for _, id := range a.DeviceIDs() {
		mf := a.Devices[id].Metaflows
		if mf == nil {
			continue
		}
		for _, c := range dtmfCodes(mf) {
			if c.Binding.Action.Action != table.Start {
				continue
			}
			for _, call := range callsOf(a, between) {
				var legRecs []table.Recording
				recs, err := a.Decide(call)
				if err != nil {
					continue
				}
				caller := call.From == table.DeviceRef(id)
				rings := slices.Contains(a.Ringing(call), id)
				for _, r := range recs {
					switch {
					case caller && r.Leg == table.LegA:
						legRecs = append(legRecs, r)
					case rings && r.Scope == table.ScopeCallee && r.Endpoint == id:
						legRecs = append(legRecs, r)
					}
				}
				for _, r := range legRecs {
					who := r.Scope.String()
					if r.Endpoint != "" {
						who += " device:" + r.Endpoint
					}
					k := key{c.Keys, c.Binding.From, who, r.Cell.Provenance.Enabled}
					devs, seen := groups[k]
					if !seen {
						order = append(order, k)
					}
					if !slices.Contains(devs, id) {
						groups[k] = append(devs, id)
					}
				}
			}
		}
	}
	var out []Finding
	for _, k := range order {
		out = append(out, Finding{Code: FindingDouble, Account: a.ID, Setting: k.prov, Message: fmt.Sprintf(
			"%s (record_call start, from %s) on %s starts a second recording of a leg that the %s recording already records (set by %s)",
			k.keys, k.from, plural(groups[k], "device"), k.policy, k.prov)})
	}
	return out
}
