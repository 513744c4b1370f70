package fakeswitch

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/recpol/recpol/scenario"
)

// shapeRow is one call event as the call-shapes timelines show it: the
// event, the leg it is on, the application of a CHANNEL_EXECUTE,
// Bridge-A/B-Unique-ID and Other-Leg-Unique-ID, legs by scenario name.
type shapeRow struct {
	Event, Leg, App, BridgeA, BridgeB, Other string
}

// shapeEvents are the events the call-shapes captures subscribed to that
// the fake switch sends (not CHANNEL_OUTGOING / CHANNEL_ORIGINATE).
var shapeEvents = map[string]bool{
	"CHANNEL_CREATE": true, "CHANNEL_EXECUTE": true, "CHANNEL_ANSWER": true, "CHANNEL_BRIDGE": true,
	"CHANNEL_UNBRIDGE": true, "CHANNEL_HANGUP": true, "CHANNEL_HANGUP_COMPLETE": true, "CHANNEL_PARK": true,
}

func r(ev, leg, other string) shapeRow { return shapeRow{Event: ev, Leg: leg, Other: other} }
func x(leg, app, other string) shapeRow {
	return shapeRow{Event: "CHANNEL_EXECUTE", Leg: leg, App: app, Other: other}
}
func br(ev, a, b, other string) shapeRow {
	return shapeRow{Event: ev, Leg: a, BridgeA: a, BridgeB: b, Other: other}
}

// TestShapesPlay plays every call shape of testdata/scenarios/shapes
// against the fake switch with a client subscribed to every event: no
// recording-free call pre-answers a leg, every leg hangs up once and is
// gone, and nothing happens on a leg after its CHANNEL_HANGUP_COMPLETE.
// For the three shapes captured on FreeSWITCH 1.10.12
// (../shared/esl-captures/freeswitch-1.10.12/call-shapes, timelines in the
// colleague's shapes.md) the event sequence is the capture's, event by
// event (name, leg, Bridge-A/B, Other-Leg), up to the final hangup; the
// final teardown has the capture's events in the fake switch's order
// (each leg of scenario.HangupSet in turn: the captures show three
// different interleavings, a race between the legs' threads).
func TestShapesPlay(t *testing.T) {
	dhan := func(leg string) []shapeRow {
		return []shapeRow{x(leg, "set", ""), x(leg, "set", ""), x(leg, "set", "")}
	}
	cat := func(parts ...any) []shapeRow {
		var out []shapeRow
		for _, p := range parts {
			switch v := p.(type) {
			case shapeRow:
				out = append(out, v)
			case []shapeRow:
				out = append(out, v...)
			}
		}
		return out
	}
	captured := map[string]struct {
		skip     func(row shapeRow, beforeBridge bool) bool // rows of the fake switch not in the capture
		want     []shapeRow
		teardown []shapeRow
	}{
		// blind_transfer_rx_raw.txt events 3-26, then 27-32 (A=a, B=b, C=c).
		"blind_transfer_by_callee": {
			want: cat(r("CHANNEL_CREATE", "a", ""), dhan("a"), x("a", "bridge", ""),
				r("CHANNEL_CREATE", "b", "a"), r("CHANNEL_ANSWER", "b", "a"), r("CHANNEL_ANSWER", "a", ""), br("CHANNEL_BRIDGE", "a", "b", "b"),
				r("CHANNEL_HANGUP", "b", "a"), r("CHANNEL_HANGUP_COMPLETE", "b", "a"), br("CHANNEL_UNBRIDGE", "a", "b", ""),
				dhan("a"), x("a", "bridge", ""),
				r("CHANNEL_CREATE", "c", "a"), r("CHANNEL_ANSWER", "c", "a"), br("CHANNEL_BRIDGE", "a", "c", "c")),
			teardown: []shapeRow{r("CHANNEL_HANGUP", "a", "c"), r("CHANNEL_HANGUP", "c", "a"), br("CHANNEL_UNBRIDGE", "a", "c", "c"),
				r("CHANNEL_HANGUP_COMPLETE", "c", "a"), r("CHANNEL_HANGUP_COMPLETE", "a", "c")},
		},
		// attended_transfer_rx_raw.txt events 3-13 and 21-27, then 28-32
		// (A=a, B=b, C=d). The consultation differs: there d3 was
		// originated with &park(), here d2's phone calls d3 (legs c2 and
		// d), so c2 and d's events before the uuid_bridge are left out.
		"attended_transfer": {
			skip: func(row shapeRow, beforeBridge bool) bool { return row.Leg == "c2" || (row.Leg == "d" && beforeBridge) },
			want: cat(r("CHANNEL_CREATE", "a", ""), x("a", "set", ""), x("a", "set", ""), x("a", "bridge", ""),
				r("CHANNEL_CREATE", "b", "a"), r("CHANNEL_ANSWER", "b", "a"), r("CHANNEL_ANSWER", "a", ""), br("CHANNEL_BRIDGE", "a", "b", "b"),
				r("CHANNEL_HANGUP", "b", "a"), r("CHANNEL_HANGUP_COMPLETE", "b", "a"), br("CHANNEL_UNBRIDGE", "a", "b", "d"),
				x("a", "uuid_bridge", "d"), x("d", "uuid_bridge", "a"), br("CHANNEL_BRIDGE", "a", "d", "d")),
			teardown: []shapeRow{r("CHANNEL_HANGUP", "a", "d"), r("CHANNEL_HANGUP", "d", "a"), r("CHANNEL_HANGUP_COMPLETE", "d", "a"),
				br("CHANNEL_UNBRIDGE", "a", "d", "d"), r("CHANNEL_HANGUP_COMPLETE", "a", "d")},
		},
		// loopback_between_accounts_rx_raw.txt events 3-32, then 33-37
		// (A=a, B=la, C=lb, D=e).
		"between_accounts_loopback": {
			want: cat(r("CHANNEL_CREATE", "a", ""), dhan("a"), x("a", "bridge", ""),
				r("CHANNEL_CREATE", "la", "a"), r("CHANNEL_CREATE", "lb", ""), x("lb", "set", ""), x("lb", "set", ""), x("lb", "bridge", ""),
				r("CHANNEL_CREATE", "e", "lb"), r("CHANNEL_ANSWER", "e", "lb"), r("CHANNEL_ANSWER", "la", "a"), r("CHANNEL_ANSWER", "lb", ""),
				br("CHANNEL_BRIDGE", "lb", "e", "e"), r("CHANNEL_ANSWER", "a", ""), br("CHANNEL_BRIDGE", "a", "la", "la"),
				r("CHANNEL_HANGUP", "la", "a"), r("CHANNEL_HANGUP", "lb", "e"), r("CHANNEL_HANGUP_COMPLETE", "la", "a"),
				br("CHANNEL_UNBRIDGE", "a", "la", "e"), br("CHANNEL_UNBRIDGE", "lb", "e", "e"), r("CHANNEL_HANGUP_COMPLETE", "lb", "e"),
				x("a", "uuid_bridge", "e"), x("e", "uuid_bridge", "a"), br("CHANNEL_BRIDGE", "a", "e", "e")),
			teardown: []shapeRow{r("CHANNEL_HANGUP", "e", "a"), r("CHANNEL_HANGUP_COMPLETE", "e", "a"), r("CHANNEL_HANGUP", "a", "e"),
				br("CHANNEL_UNBRIDGE", "a", "e", "e"), r("CHANNEL_HANGUP_COMPLETE", "a", "e")},
		},
	}
	files, err := filepath.Glob(filepath.Join("..", "testdata", "scenarios", "shapes", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("shape files: %v, %v", files, err)
	}
	played := map[string]bool{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			sc, err := scenario.ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			srv, addr := startServer(t, Config{Heartbeat: -1})
			sub := dialES(t, addr, "ClueCon")
			sub.send(t, "event plain all")
			if err := srv.Load(sc); err != nil {
				t.Fatal(err)
			}
			srv.RunUntilIdle()
			if got := srv.PreAnswered(); len(got) != 0 {
				t.Errorf("legs pre-answered: %v", got)
			}
			if got := srv.Channels(); len(got) != 0 {
				t.Errorf("legs still up: %v", got)
			}
			names := map[string]string{} // uuid: leg name
			for _, c := range sc.Calls {
				for _, l := range c.Legs {
					names[l.UUID] = l.Name
				}
			}
			completed := map[string]int{} // by uuid
			var rows, teardown []shapeRow
			end := time.Duration(sc.Calls[0].EndMS()) * time.Millisecond
			bridgeAt := time.Duration(-1)
			for _, c := range sc.Calls[0].Steps {
				if c.Do == scenario.DoUUIDBridge {
					bridgeAt = time.Duration(sc.Calls[0].StartMS+c.AtMS) * time.Millisecond
				}
			}
			for _, se := range srv.Events() {
				ev := se.Event
				u := ev.Get("Unique-ID")
				leg := names[u]
				if leg == "" {
					continue
				}
				if completed[u] > 0 {
					t.Errorf("%s on leg %s after its CHANNEL_HANGUP_COMPLETE", ev.Name(), leg)
				}
				if ev.Name() == "CHANNEL_HANGUP_COMPLETE" {
					completed[u]++
				}
				if !shapeEvents[ev.Name()] {
					continue
				}
				row := shapeRow{Event: ev.Name(), Leg: leg, BridgeA: names[ev.Get("Bridge-A-Unique-ID")],
					BridgeB: names[ev.Get("Bridge-B-Unique-ID")], Other: names[ev.Get("Other-Leg-Unique-ID")]}
				if row.Event == "CHANNEL_EXECUTE" {
					row.App = ev.Get("Application")
				}
				if cs, ok := captured[name]; ok && cs.skip != nil && cs.skip(row, se.At < bridgeAt) {
					continue
				}
				if len(sc.Calls) == 1 && se.At == end {
					teardown = append(teardown, row)
				} else {
					rows = append(rows, row)
				}
			}
			for _, c := range sc.Calls {
				for _, l := range c.Legs {
					if completed[l.UUID] != 1 {
						t.Errorf("leg %s of %s hung up %d times", l.Name, c.ID, completed[l.UUID])
					}
				}
			}
			cs, ok := captured[name]
			if !ok {
				return
			}
			played[name] = true
			if diff := cmp.Diff(cs.want, rows); diff != "" {
				t.Errorf("events up to the final hangup (-capture +fake switch):\n%s", diff)
			}
			less := func(a, b shapeRow) bool { return a.Event+a.Leg < b.Event+b.Leg }
			want := append([]shapeRow(nil), cs.teardown...)
			sort.Slice(want, func(i, j int) bool { return less(want[i], want[j]) })
			got := append([]shapeRow(nil), teardown...)
			sort.Slice(got, func(i, j int) bool { return less(got[i], got[j]) })
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("events of the final hangup (-capture +fake switch, sorted):\n%s", diff)
			}
		})
	}
	for name := range captured {
		if !played[name] {
			t.Errorf("captured shape %s was not played", name)
		}
	}
}
