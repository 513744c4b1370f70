package fakeswitch

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/recpol/recpol/runtime/eslwire"
	"github.com/recpol/recpol/scenario"
)

// playAll plays sc to the end with one subscriber of every event and
// returns the events sent.
func playAll(t *testing.T, sc *scenario.Scenario) []*eslwire.Event {
	t.Helper()
	srv, addr := startServer(t, Config{Heartbeat: -1})
	sub := dialES(t, addr, "ClueCon")
	sub.send(t, "event plain all")
	if err := srv.Load(sc); err != nil {
		t.Fatal(err)
	}
	srv.RunUntilIdle()
	var out []*eslwire.Event
	for _, e := range srv.Events() {
		out = append(out, e.Event)
	}
	if got := srv.PreAnswered(); len(got) != 0 {
		t.Errorf("legs pre-answered: %v", got)
	}
	return out
}

// find returns the first event named name on the leg with uuid after
// index from, and its index.
func find(t *testing.T, evs []*eslwire.Event, from int, name, uuid string) (*eslwire.Event, int) {
	t.Helper()
	for i := from; i < len(evs); i++ {
		if evs[i].Name() == name && evs[i].Get("Unique-ID") == uuid {
			return evs[i], i
		}
	}
	t.Fatalf("no %s on %s after event %d", name, uuid, from)
	return nil, 0
}

// TestRenderHeaders checks the headers the new effects put on the wire
// against the captures: a blind transfer's CHANNEL_UNBRIDGE
// (blind_transfer event 17), a loopback pair's CHANNEL_CREATEs
// (loopback_between_accounts events 9 and 10), a uuid_bridge's
// CHANNEL_UNBRIDGE and CHANNEL_EXECUTEs (attended_transfer events 24-27).
func TestRenderHeaders(t *testing.T) {
	legs := []scenario.Leg{
		{Name: "a", UUID: "u-a", CallerIDNumber: "d1", DestinationNumber: "2002", Context: "recpol"},
		{Name: "b", UUID: "u-b", Parent: "a", DestinationNumber: "d2"},
		{Name: "c", UUID: "u-c", Parent: "a", DestinationNumber: "d3"},
		{Name: "la", UUID: "u-la", Parent: "a", DestinationNumber: "beta-5001", Variables: map[string]string{"recpol_account": "beta"}},
		{Name: "lb", UUID: "u-lb", LoopbackOf: "la"},
		{Name: "e", UUID: "u-e", Parent: "lb", DestinationNumber: "e1"},
		{Name: "x", UUID: "u-x", CallerIDNumber: "d3"},
	}
	steps := []scenario.Step{
		{AtMS: 0, Do: "create", Leg: "a"}, {AtMS: 10, Do: "create", Leg: "b"}, {AtMS: 300, Do: "answer", Leg: "b"},
		{AtMS: 300, Do: "answer", Leg: "a"}, {AtMS: 300, Do: "bridge", Leg: "a", Other: "b"},
		{AtMS: 2000, Do: "transfer", Leg: "a", DestinationNumber: "3003", Via: "api"},
		{AtMS: 2010, Do: "create", Leg: "la"}, {AtMS: 2010, Do: "create", Leg: "lb"}, {AtMS: 2020, Do: "create", Leg: "e"},
		{AtMS: 2300, Do: "answer", Leg: "e"}, {AtMS: 2300, Do: "answer", Leg: "la"}, {AtMS: 2300, Do: "answer", Leg: "lb"},
		{AtMS: 2300, Do: "bridge", Leg: "lb", Other: "e"}, {AtMS: 2340, Do: "bridge", Leg: "a", Other: "la"},
		{AtMS: 4000, Do: "bowout", Leg: "la"},
		{AtMS: 5000, Do: "create", Leg: "x"}, {AtMS: 5010, Do: "answer", Leg: "x"}, {AtMS: 5020, Do: "park", Leg: "x"},
		{AtMS: 6000, Do: "uuid_bridge", Leg: "x", Other: "a"},
		{AtMS: 9000, Do: "hangup", Leg: "a"},
	}
	evs := playAll(t, &scenario.Scenario{Calls: []scenario.Call{{ID: "h", Legs: legs, Steps: steps}}})
	hdrs := func(ev *eslwire.Event, names ...string) map[string]string {
		out := map[string]string{}
		for _, n := range names {
			if ev.Has(n) {
				v := ev.Get(n)
				if n == "Caller-Transfer-Source" || n == "variable_transfer_history" {
					v = v[len("1234567890:")+36:] // drop "<epoch>:<uuid>"
				}
				out[n] = v
			}
		}
		return out
	}
	tests := []struct {
		name  string
		event string
		uuid  string
		after int // index of an earlier match to search after, -1: from the start
		hdrs  []string
		want  map[string]string
	}{
		{"blind transfer: UNBRIDGE of the transferred leg", "CHANNEL_UNBRIDGE", "u-a", 0,
			[]string{"Bridge-A-Unique-ID", "Bridge-B-Unique-ID", "Caller-Destination-Number", "Caller-RDNIS", "Caller-Profile-Index", "Caller-Transfer-Source", "Other-Leg-Unique-ID", "variable_signal_bond", "variable_transfer_history"},
			map[string]string{"Bridge-A-Unique-ID": "u-a", "Bridge-B-Unique-ID": "u-b", "Caller-Destination-Number": "3003", "Caller-RDNIS": "2002",
				"Caller-Profile-Index": "2", "Caller-Transfer-Source": ":bl_xfer:3003/recpol/XML", "variable_transfer_history": ":bl_xfer:3003/recpol/XML"}},
		{"loopback -a half CREATE", "CHANNEL_CREATE", "u-la", 0,
			[]string{"Channel-Name", "Call-Direction", "Other-Leg-Unique-ID", "Caller-Source", "variable_other_loopback_leg_uuid", "variable_loopback_leg", "variable_loopback_from_uuid", "variable_originator"},
			map[string]string{"Channel-Name": "loopback/beta-5001-a", "Call-Direction": "outbound", "Other-Leg-Unique-ID": "u-a", "Caller-Source": "mod_loopback",
				"variable_other_loopback_leg_uuid": "u-lb", "variable_loopback_leg": "A", "variable_loopback_from_uuid": "u-a", "variable_originator": "u-a"}},
		{"loopback -b half CREATE", "CHANNEL_CREATE", "u-lb", 0,
			[]string{"Channel-Name", "Call-Direction", "Other-Leg-Unique-ID", "Channel-HIT-Dialplan", "Caller-Source", "variable_other_loopback_leg_uuid", "variable_loopback_leg", "variable_other_loopback_from_uuid", "variable_originator", "variable_recpol_account"},
			map[string]string{"Channel-Name": "loopback/beta-5001-b", "Call-Direction": "inbound", "Channel-HIT-Dialplan": "true", "Caller-Source": "mod_loopback",
				"variable_other_loopback_leg_uuid": "u-la", "variable_loopback_leg": "B", "variable_other_loopback_from_uuid": "u-a", "variable_recpol_account": "beta"}},
		{"bow-out: the -a half's HANGUP", "CHANNEL_HANGUP", "u-la", 0,
			[]string{"Hangup-Cause", "variable_loopback_hangup_cause", "variable_loopback_bowout_other_uuid"},
			map[string]string{"Hangup-Cause": "NORMAL_CLEARING", "variable_loopback_hangup_cause": "bridge", "variable_loopback_bowout_other_uuid": "u-a"}},
		{"bow-out: the outer A's UNBRIDGE already names the new partner", "CHANNEL_UNBRIDGE", "u-a", 1,
			[]string{"Bridge-A-Unique-ID", "Bridge-B-Unique-ID", "Other-Leg-Unique-ID", "Other-Type", "Caller-Transfer-Source"},
			map[string]string{"Bridge-A-Unique-ID": "u-a", "Bridge-B-Unique-ID": "u-la", "Other-Leg-Unique-ID": "u-e", "Other-Type": "originatee", "Caller-Transfer-Source": ":uuid_br:u-e"}},
		{"bow-out: uuid_bridge on the far leg", "CHANNEL_EXECUTE", "u-e", 0,
			[]string{"Application", "Application-Data", "Other-Leg-Unique-ID", "Other-Type", "variable_signal_bond"},
			map[string]string{"Application": "uuid_bridge", "Application-Data": "u-a", "Other-Leg-Unique-ID": "u-a", "Other-Type": "originator", "variable_signal_bond": "u-a"}},
		{"park", "CHANNEL_PARK", "u-x", 0, []string{"Answer-State", "Event-Calling-Function"},
			map[string]string{"Answer-State": "answered", "Event-Calling-Function": "switch_ivr_park"}},
		{"uuid_bridge: BRIDGE on the bridging leg", "CHANNEL_BRIDGE", "u-x", 0,
			[]string{"Bridge-A-Unique-ID", "Bridge-B-Unique-ID", "Other-Leg-Unique-ID"},
			map[string]string{"Bridge-A-Unique-ID": "u-x", "Bridge-B-Unique-ID": "u-a", "Other-Leg-Unique-ID": "u-a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := 0
			var ev *eslwire.Event
			for n := 0; n <= tt.after; n++ {
				var i int
				ev, i = find(t, evs, from, tt.event, tt.uuid)
				from = i + 1
			}
			if diff := cmp.Diff(tt.want, hdrs(ev, tt.hdrs...)); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
		})
	}
}
