package simulate

import (
	"fmt"
	"io"
	"strings"

	"github.com/recpol/recpol/table"
)

// Explain writes the decision trace of SPEC 2.3 for one call of an
// account: the account's inbound cell (and its outbound cell when inbound
// does not record), the caller device's cell and the cell of every ringing
// callee device, each with the provenance of the fields that mattered
// (enabled for a cell that does not record; every setting for one that
// does). It ends with the recordings the call starts, as decided by
// (*table.Account).Decide.
func Explain(w io.Writer, a *table.Account, c table.Call) error {
	recs, err := a.Decide(c)
	if err != nil {
		return fmt.Errorf("explaining %s -> %s: %w", c.From, c.To, err)
	}
	from, to := c.From.Network(), c.To.Network()
	var b strings.Builder
	fmt.Fprintf(&b, "call %s -> %s in account %s (from %s, to %s)\n", c.From, c.To, a.ID, from, to)

	b.WriteString("\n1. account (at most one recording; inbound before outbound)\n")
	in, ok := a.AccountInbound(from)
	in.Leg = c.AccountLeg()
	explainCell(&b, "account:"+a.ID, in, ok)
	if !ok {
		out, ok := a.AccountOutbound(to)
		out.Leg = c.AccountLeg()
		explainCell(&b, "account:"+a.ID, out, ok)
	} else {
		fmt.Fprintf(&b, "   account cell outbound.%s not consulted: the inbound cell recorded\n", to)
	}

	b.WriteString("\n2. caller endpoint\n")
	switch c.From.Kind {
	case table.DeviceParty:
		r, ok := a.CallerDecision(c.From.ID, to)
		explainCell(&b, c.From.String(), r, ok)
	case table.OtherAccountParty:
		b.WriteString("   the caller is on another account of the platform: its account decides on its leg\n")
	default:
		b.WriteString("   the caller is offnet: no caller recording\n")
	}

	b.WriteString("\n3. callee endpoints (each ringing device, when its leg answers)\n")
	ringing := a.Ringing(c)
	switch {
	case c.To.Kind == table.OffnetParty:
		b.WriteString("   the callee is offnet: no device rings\n")
	case c.To.Kind == table.OtherAccountParty:
		b.WriteString("   the callee is on another account of the platform: no device of this account rings\n")
	case len(ringing) == 0 && c.To.Kind == table.UserParty:
		fmt.Fprintf(&b, "   %s has no device that rings (the caller's own device never rings)\n", c.To)
	case len(ringing) == 0:
		b.WriteString("   a device calling itself rings nothing\n")
	default:
		if c.To.Kind == table.UserParty {
			fmt.Fprintf(&b, "   %s rings device:%s\n", c.To, strings.Join(ringing, ", device:"))
		}
		for _, id := range ringing {
			r, ok := a.CalleeDecision(id, from)
			explainCell(&b, "device:"+id, r, ok)
		}
	}

	fmt.Fprintf(&b, "\nresult: %d recording(s)\n", len(recs))
	for _, line := range strings.Split(strings.TrimSuffix(describe(recs), "\n"), "\n") {
		fmt.Fprintf(&b, "  %s\n", line)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing explanation: %w", err)
	}
	return nil
}

// explainCell writes one consulted cell: whether it records, and the
// provenance of what mattered.
func explainCell(b *strings.Builder, who string, r table.Recording, record bool) {
	c := r.Cell
	fmt.Fprintf(b, "   %s cell %s.%s: ", who, r.Direction, r.Network)
	if !record {
		fmt.Fprintf(b, "does not record\n      enabled            %-6t <- %s\n", false, c.Provenance.Enabled)
		return
	}
	fmt.Fprintf(b, "records the %s-leg, origin %q\n", r.Leg, r.Origin)
	s, p := c.Settings, c.Provenance
	field := func(name string, v any, prov string) {
		fmt.Fprintf(b, "      %-18s %-6v <- %s\n", name, v, prov)
	}
	field(table.EnabledName, true, p.Enabled)
	for _, st := range table.ShownSettings() {
		// url and announce only when set, announce_to only with announce
		if (st.OmitEmpty && st.IsZero(s)) || !st.Shown(s) {
			continue
		}
		field(st.Name, st.Value(s), st.Provenance(p))
	}
	if s.Announce != "" {
		fmt.Fprintf(b, "      %-18s %s to %s when the recording starts, once per call\n", "plays", table.AnnounceMedia(s.Announce), s.AnnounceTo)
	}
}
