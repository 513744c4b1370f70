package simulate

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/recpol/recpol/table"
)

// ExplainNumber writes why a call from a party to a number records what it
// records: which callflow answers the number and why it wins (an exact
// number beats every pattern, the longest pattern match wins; the losers
// listed with the reason), what its actions start and stop with the
// provenance of every setting, then the call's account and caller
// decisions (the platform answers the call, so it goes to onnet).
func ExplainNumber(w io.Writer, a *table.Account, from table.Party, number string) error {
	if from.Kind == table.DeviceParty && a.Devices[from.ID] == nil {
		return fmt.Errorf("account %s has no device %q%s", a.ID, from.ID, table.DidYouMean(from.ID, a.Devices))
	}
	if from.Kind == table.UserParty {
		return fmt.Errorf("a call is placed by a device, from offnet or from another account, not by %s", from)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "call %s -> %s in account %s (from %s; a callflow answers on the platform: to onnet)\n", from, number, a.ID, from.Network())
	win, ok := a.MatchCallflow(number)
	b.WriteString("\n1. callflow (an exact number beats every pattern; among patterns the longest match wins)\n")
	if len(a.Callflows) == 0 {
		b.WriteString("   the account has no callflow\n")
	}
	exact := ok && slices.Contains(win.Numbers, number)
	winLen := -1
	if ok && !exact {
		winLen = longestMatch(win, number)
	}
	for _, cf := range a.Callflows {
		why := candidate(cf, number)
		switch {
		case ok && cf == win:
			why += ": ANSWERS"
		case why == "":
			why = "no number or pattern matches"
		case exact:
			why += ": loses to the exact number of " + win.ID
		case longestMatch(cf, number) < winLen:
			why += fmt.Sprintf(": loses to the longer match of %s (%d characters)", win.ID, winLen)
		default:
			why += ": ties with " + win.ID + ", which wins by its smaller id (vet rejects such a tie where it can see it)"
		}
		fmt.Fprintf(&b, "   %s (%s): %s\n", cf.ID, dialledList(cf), why)
	}
	if !ok {
		b.WriteString("   no callflow answers the number: nothing of a callflow runs\n")
	} else {
		fmt.Fprintf(&b, "\n2. the actions of callflow %s, in order (a record_call stop stops what earlier actions started)\n", win.ID)
		for i := range win.Actions {
			act := &win.Actions[i]
			fmt.Fprintf(&b, "   %d. %s\n", i+1, describeAction(act))
			switch {
			case act.Module == table.RecordCall && act.Action == table.Stop:
				b.WriteString("      stops the callflow recordings the call has so far\n")
			case act.Module == table.RecordCall || act.Module == table.RecordCaller:
				what := "the caller's leg (the a-leg)"
				if act.Module == table.RecordCaller {
					what = "the caller's audio only, on the a-leg"
				}
				fmt.Fprintf(&b, "      starts a recording of %s, origin %q, should_follow_transfer %t\n", what, actionOrigin(win, act), act.FollowTransfer)
				writeFields(&b, fieldsOf(act.Settings, act.Provenance))
			}
		}
	}
	nc := numberCallOf(a, from, dialledNumber{Number: number}, win)
	step := 3
	if !ok {
		step = 2
	}
	fmt.Fprintf(&b, "\n%d. the call's own decisions (SPEC 2.3, to onnet)\n", step)
	acct, aok := a.AccountDecision(from.Network(), table.Onnet)
	if aok {
		fmt.Fprintf(&b, "   account:%s records the caller's leg: %s (enabled <- %s)\n", a.ID, acct.Origin, acct.Cell.Provenance.Enabled)
	} else {
		fmt.Fprintf(&b, "   account:%s does not record (enabled <- %s)\n", a.ID, acct.Cell.Provenance.Enabled)
	}
	if from.Kind == table.DeviceParty {
		r, cok := a.CallerDecision(from.ID, table.Onnet)
		if cok {
			fmt.Fprintf(&b, "   %s records the caller's leg: %s (enabled <- %s)\n", from, r.Origin, r.Cell.Provenance.Enabled)
		} else {
			fmt.Fprintf(&b, "   %s does not record (enabled <- %s)\n", from, r.Cell.Provenance.Enabled)
		}
	}
	fmt.Fprintf(&b, "\nresult: %d recording(s)\n", len(nc.Recordings))
	aleg := 0
	for _, r := range nc.Recordings {
		fmt.Fprintf(&b, "  %s\n", describeJSON(r))
		if r.Leg == "a" && !r.CallerOnly {
			aleg++
		}
	}
	if aleg > 1 {
		fmt.Fprintf(&b, "  note: the caller's leg is recorded %d times (vet warns: double-recording)\n", aleg)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing explanation: %w", err)
	}
	return nil
}

// candidate says how a callflow matches a number: "exact number N",
// "pattern /p/ matches "m" (n characters)", or "".
func candidate(cf *table.Callflow, number string) string {
	if slices.Contains(cf.Numbers, number) {
		return "exact number " + number
	}
	best, bestP, bestM := -1, "", ""
	for _, p := range cf.Patterns {
		if m, ok := matchPattern(p, number); ok && len(m) > best {
			best, bestP, bestM = len(m), p, m
		}
	}
	if best < 0 {
		return ""
	}
	return fmt.Sprintf("pattern /%s/ matches %q (%d characters)", bestP, bestM, best)
}

func longestMatch(cf *table.Callflow, number string) int {
	best := -1
	for _, p := range cf.Patterns {
		if m, ok := matchPattern(p, number); ok && len(m) > best {
			best = len(m)
		}
	}
	return best
}

func writeFields(b *strings.Builder, fs []field) {
	for _, f := range fs {
		if (f.name == "url" || f.name == "announce" || f.name == "announce_to") && f.value == "" {
			continue
		}
		fmt.Fprintf(b, "      %-18s %-6s <- %s\n", f.name, f.value, f.prov)
	}
}

// ExplainDTMF writes what keys ("*72") pressed during a call do: for each
// device of the call whose metaflows hear DTMF (the caller device, each
// ringing device; only device when not empty), the binding that answers
// and the scope it comes from (device > owner > account), whose key
// presses fire it (listen_on, or the action's dtmf_leg), and what it does
// to which recordings of the call. With a nil call it explains the
// device's binding alone.
func ExplainDTMF(w io.Writer, a *table.Account, c *table.Call, device, keys string) error {
	var b strings.Builder
	var devices []string
	if c != nil {
		recs, err := a.Decide(*c)
		if err != nil {
			return fmt.Errorf("explaining %s in %s -> %s: %w", keys, c.From, c.To, err)
		}
		fmt.Fprintf(&b, "%s pressed in call %s -> %s of account %s\n", keys, c.From, c.To, a.ID)
		fmt.Fprintf(&b, "the call records (every ringing leg answered):\n")
		for _, line := range strings.Split(strings.TrimSuffix(describe(recs), "\n"), "\n") {
			fmt.Fprintf(&b, "  %s\n", line)
		}
		for _, d := range dtmfDevices(a, *c) {
			if device == "" || d == device {
				devices = append(devices, d)
			}
		}
		if device != "" && len(devices) == 0 {
			return fmt.Errorf("device:%s takes no part in %s -> %s or has no metaflows", device, c.From, c.To)
		}
		if len(devices) == 0 {
			b.WriteString("\nno device of the call has metaflows: the keys do nothing\n")
		}
	} else {
		e := a.Devices[device]
		if e == nil {
			return fmt.Errorf("account %s has no device %q%s", a.ID, device, table.DidYouMean(device, a.Devices))
		}
		fmt.Fprintf(&b, "%s pressed on a call of device:%s of account %s\n", keys, device, a.ID)
		devices = []string{device}
	}
	for _, d := range devices {
		e := a.Devices[d]
		mf := e.Metaflows
		fmt.Fprintf(&b, "\ndevice:%s", d)
		if c != nil {
			leg := "b-leg, a callee"
			if c.From == table.DeviceRef(d) {
				leg = "a-leg, the caller"
			}
			fmt.Fprintf(&b, " (%s)", leg)
		}
		if mf == nil {
			b.WriteString(": no metaflows (none on the device, its owner or the account)\n")
			continue
		}
		fmt.Fprintf(&b, ": metaflows resolved device > owner > account (%s)\n", metaflowsTitle(mf))
		bind, ok := matchKeys(mf, keys)
		if !ok {
			fmt.Fprintf(&b, "   %s: no code answers (binding digit %s, codes %s)\n", keys, mf.BindingDigit, codeList(mf))
			continue
		}
		fmt.Fprintf(&b, "   %s answers: %s, from %s\n", keys, describeAction(&bind.Action), bind.From)
		listen := listenOn(mf, bind)
		whose := "listen_on " + string(mf.ListenOn)
		if bind.Action.DTMFLeg != "" {
			whose = "the action's dtmf_leg " + string(bind.Action.DTMFLeg) + " (over listen_on " + string(mf.ListenOn) + ")"
		}
		switch listen {
		case table.DTMFPeer:
			fmt.Fprintf(&b, "   fired by the other party's key presses, not device:%s's own (%s)\n", d, whose)
		case table.DTMFBoth:
			fmt.Fprintf(&b, "   fired by key presses of either party (%s)\n", whose)
		default:
			fmt.Fprintf(&b, "   fired by device:%s's own key presses (%s)\n", d, whose)
		}
		fmt.Fprintf(&b, "   %s\n", actionEffect(&bind.Action))
		if usesSettings(&bind.Action) {
			writeFields(&b, fieldsOf(bind.Action.Settings, bind.Action.Provenance))
		}
		if c == nil {
			continue
		}
		o, err := pressDTMF(a, *c, d, keys)
		if err != nil {
			return err
		}
		for _, r := range o.Affected {
			fmt.Fprintf(&b, "   %s %s\n", o.Verb(), recordingWho(r))
		}
		if o.Started != nil {
			fmt.Fprintf(&b, "   starts %s\n", describeJSON(*o.Started))
		}
		for _, r := range o.Untouched {
			fmt.Fprintf(&b, "   leaves %s\n", recordingWho(r))
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing explanation: %w", err)
	}
	return nil
}

func codeList(mf *table.Metaflows) string {
	var ks []string
	for _, c := range dtmfCodes(mf) {
		ks = append(ks, c.Keys)
	}
	if len(ks) == 0 {
		return "none"
	}
	return strings.Join(ks, ", ")
}
