package runtime

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recpol/recpol/table"
)

// TestLegsAreFreed: legs that never join a call (originated legs that
// never bridge, the far side of a loopback, a second leg whose first was
// missed) and whole calls are forgotten once they hang up: the engine's
// state comes back to zero (issue 20: 1.2 KB a leg, never freed).
func TestLegsAreFreed(t *testing.T) {
	tb := exampleTable(t)
	sw := SwitchConfig{Name: "fs1", RecordDir: "/var/spool/rec", LocalDir: "/local/rec"}
	o := &observations{}
	e := newEngine(sw, Classify{Preset: "recpol"}, func() *table.Table { return tb }, &finishes{}, quietLogger(), o.obs)
	hang := func(uuid string, ts int64) {
		e.Handle(ev("CHANNEL_HANGUP", uuid, ts))
		e.Handle(ev("CHANNEL_HANGUP_COMPLETE", uuid, ts+1))
	}
	for i := range 2000 {
		ts := int64(i * 100)
		// An originated leg that never bridges (an outbound dial that
		// fails, a page).
		o := fmt.Sprintf("orig-%d", i)
		e.Handle(ev("CHANNEL_CREATE", o, ts, "Call-Direction", "outbound", "Channel-Name", "sofia/internal/1001"))
		e.Handle(ev("CHANNEL_PROGRESS", o, ts+1))
		hang(o, ts+2)
		// A loopback pair: the far side names the near one.
		la, lb := fmt.Sprintf("loop-a-%d", i), fmt.Sprintf("loop-b-%d", i)
		e.Handle(ev("CHANNEL_CREATE", la, ts, "Call-Direction", "outbound", "Channel-Name", "loopback/2000-a"))
		e.Handle(ev("CHANNEL_CREATE", lb, ts, "Call-Direction", "inbound", "Channel-Name", "loopback/2000-b",
			"variable_other_loopback_leg_uuid", la))
		hang(lb, ts+3)
		hang(la, ts+4)
		// A second leg whose first was never seen (the runtime started
		// mid-call).
		s := fmt.Sprintf("second-%d", i)
		e.Handle(ev("CHANNEL_CREATE", s, ts, "Call-Direction", "outbound", "Other-Leg-Unique-ID", fmt.Sprintf("missed-%d", i),
			"variable_recpol_account", "pci-callcentre", "variable_recpol_device", "sup-phone", "variable_recpol_network", "onnet"))
		e.Handle(ev("CHANNEL_ANSWER", s, ts+5))
		hang(s, ts+6)
		// The hangup of a leg never seen.
		hang(fmt.Sprintf("unseen-%d", i), ts+7)
		// A recorded call of two legs: the call ends, and both legs are
		// forgotten, on the second leg's hangup; the first leg's own
		// hangup came while the call still had the other.
		ca, cb := fmt.Sprintf("call-a-%d", i), fmt.Sprintf("call-b-%d", i)
		e.Handle(ev("CHANNEL_CREATE", ca, ts, "Call-Direction", "inbound", "Channel-Name", "sofia/external/+15551234",
			"Caller-Caller-ID-Number", "+15551234", "Caller-Destination-Number", "2000",
			"variable_recpol_account", "pci-callcentre", "variable_recpol_network", "offnet"))
		e.Handle(ev("CHANNEL_CREATE", cb, ts, "Call-Direction", "outbound", "Other-Leg-Unique-ID", ca,
			"variable_recpol_account", "pci-callcentre", "variable_recpol_device", "sup-phone", "variable_recpol_network", "onnet"))
		e.Handle(ev("CHANNEL_ANSWER", cb, ts+1))
		e.Handle(ev("CHANNEL_ANSWER", ca, ts+1))
		e.Handle(ev("CHANNEL_BRIDGE", ca, ts+2, "Bridge-A-Unique-ID", ca, "Bridge-B-Unique-ID", cb))
		hang(ca, ts+8)
		hang(cb, ts+9)
		drain(e) // no sender here: the queue holds 4,096 commands
	}
	if n := o.get("requested"); n < 2000 {
		t.Fatalf("%d recordings requested: the recorded calls prove nothing", n)
	}
	drain(e)
	if got := e.sizes(); got != (engineSizes{}) {
		t.Errorf("after every leg hung up the engine still holds %+v", got)
	}
}

// liveLegs answers uuid_exists from a set of live legs.
type liveLegs struct{ live map[string]bool }

func (a liveLegs) API(_ context.Context, cmd string) (string, error) {
	if cmd == "show channels as json" {
		var rows []string
		for id, up := range a.live {
			if up {
				rows = append(rows, fmt.Sprintf(`{"uuid":%q}`, id))
			}
		}
		return fmt.Sprintf(`{"row_count":%d,"rows":[%s]}`, len(rows), strings.Join(rows, ",")), nil
	}
	id, ok := strings.CutPrefix(cmd, "uuid_exists ")
	if !ok {
		return "-ERR unexpected " + cmd, nil
	}
	return strconv.FormatBool(a.live[id]), nil
}

// TestLostHangupsAreFreed: legs whose hangup the runtime never saw (the
// connection dropped) are asked about once idle, and forgotten when the
// switch no longer has them; a live one is kept. A few are asked about one
// by one (uuid_exists); more than a round's checks are answered by one
// channel list, all in one round.
func TestLostHangupsAreFreed(t *testing.T) {
	for _, lost := range []int{50, 3 * legChecksPerRound} {
		t.Run(fmt.Sprint(lost), func(t *testing.T) {
			tb := exampleTable(t)
			sw := SwitchConfig{Name: "fs1", RecordDir: "/var/spool/rec", LocalDir: "/local/rec"}
			e := newEngine(sw, Classify{Preset: "recpol"}, func() *table.Table { return tb }, &finishes{}, quietLogger(), nil)
			e.legIdle = time.Minute
			for i := range lost {
				e.Handle(ev("CHANNEL_CREATE", fmt.Sprintf("lost-%d", i), 0, "Call-Direction", "outbound", "Channel-Name", "sofia/internal/1001"))
			}
			e.Handle(ev("CHANNEL_CREATE", "live-1", 0, "Call-Direction", "outbound", "Channel-Name", "sofia/internal/1002"))
			// Nothing is asked about before it has been idle for legIdle.
			e.recheck(context.Background(), liveLegs{live: map[string]bool{"live-1": true}})
			if got := e.sizes().legs; got != lost+1 {
				t.Fatalf("%d legs after a round before any was idle, want %d", got, lost+1)
			}
			// Two minutes later (another channel's event moves the clock).
			e.Handle(ev("HEARTBEAT", "", 0))
			e.Handle(ev("CHANNEL_CREATE", "other", 120_000, "Call-Direction", "outbound", "Channel-Name", "sofia/internal/1003"))
			e.recheck(context.Background(), liveLegs{live: map[string]bool{"live-1": true, "other": true}})
			drain(e)
			if got := e.sizes(); got.legs != 2 || got.seen != 2 {
				t.Errorf("after one round: %+v, want the live leg and the new one", got)
			}
		})
	}
}
