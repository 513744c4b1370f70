package fakeswitch

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/recpol/recpol/runtime/eslwire"
	"github.com/recpol/recpol/scenario"
)

// TestUUIDDump: uuid_dump answers with the channel's event headers, as
// mod_commands' uuid_dump_function (a CHANNEL_DATA event), in JSON or as
// text, so a client can rebuild a leg's state after a restart.
func TestUUIDDump(t *testing.T) {
	srv, addr := startServer(t, Config{Heartbeat: -1})
	c := dialRaw(t, addr)
	c.login(t, "")
	uuids, err := srv.StartCall(twoLegCall("dump", 60000))
	if err != nil {
		t.Fatal(err)
	}
	srv.Advance(1100 * time.Millisecond) // bridged
	a, b := uuids["a"], uuids["b1"]
	keys := []string{"Event-Name", "Unique-ID", "Call-Direction", "Channel-Name", "Answer-State", "Other-Leg-Unique-ID",
		"Caller-Destination-Number", "Caller-Caller-ID-Number", "variable_recpol_account", "variable_recpol_device", "variable_originator", "Event-Sequence"}
	pick := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for _, k := range keys {
			if v, ok := m[k]; ok {
				out[k] = v
			}
		}
		return out
	}
	fromJSON := func(t *testing.T, body string) map[string]string {
		var m map[string]string
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("not one JSON object of strings: %v: %q", err, body)
		}
		return m
	}
	fromText := func(t *testing.T, body string) map[string]string {
		ev, err := eslwire.ParseEventPlain([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, h := range ev.Headers {
			m[h.Name] = h.Value
		}
		return m
	}
	wantA := map[string]string{"Event-Name": "CHANNEL_DATA", "Unique-ID": a, "Call-Direction": "inbound", "Channel-Name": "sofia/internal/1001",
		"Answer-State": "answered", "Other-Leg-Unique-ID": b, "Caller-Destination-Number": "1002", "Caller-Caller-ID-Number": "1001",
		"variable_recpol_account": "acme", "variable_recpol_device": "d1"}
	wantB := map[string]string{"Event-Name": "CHANNEL_DATA", "Unique-ID": b, "Call-Direction": "outbound", "Channel-Name": "sofia/internal/1002",
		"Answer-State": "answered", "Other-Leg-Unique-ID": a, "Caller-Destination-Number": "1002", "Caller-Caller-ID-Number": "",
		"variable_recpol_account": "acme", "variable_recpol_device": "d2", "variable_originator": a}
	tests := []struct {
		name  string
		cmd   string
		parse func(*testing.T, string) map[string]string
		want  map[string]string
	}{
		{"json, caller", "uuid_dump " + a + " json", fromJSON, wantA},
		{"json, callee", "uuid_dump " + b + " json", fromJSON, wantB},
		{"text", "uuid_dump " + a, fromText, wantA},
		{"plain", "uuid_dump " + b + " plain", fromText, wantB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pick(tt.parse(t, c.api(t, tt.cmd)))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	for cmd, want := range map[string]string{"uuid_dump nosuch json": "-ERR No such channel!\n", "uuid_dump": "-USAGE: <uuid> [format]\n"} {
		if got := c.api(t, cmd); got != want {
			t.Errorf("%s: %q, want %q", cmd, got, want)
		}
	}
}

// TestShowChannelsState: show channels as json gives each leg's call
// state (RINGING, EARLY, ACTIVE); a hung-up leg is gone.
func TestShowChannelsState(t *testing.T) {
	srv, addr := startServer(t, Config{Heartbeat: -1})
	c := dialRaw(t, addr)
	c.login(t, "")
	leg := func(name string, steps ...scenario.Step) scenario.Call {
		return scenario.Call{ID: name, Legs: []scenario.Leg{{Name: "x", UUID: name}},
			Steps: append([]scenario.Step{{AtMS: 0, Do: "create", Leg: "x"}}, steps...)}
	}
	for _, call := range []scenario.Call{
		leg("ringing", scenario.Step{AtMS: 10, Do: "ring", Leg: "x"}),
		leg("early", scenario.Step{AtMS: 10, Do: "media", Leg: "x"}),
		leg("answered", scenario.Step{AtMS: 10, Do: "answer", Leg: "x"}),
		leg("gone", scenario.Step{AtMS: 10, Do: "hangup", Leg: "x"}),
	} {
		if _, err := srv.StartCall(call); err != nil {
			t.Fatal(err)
		}
	}
	srv.Advance(20 * time.Millisecond)
	var out struct {
		Rows []map[string]string `json:"rows"`
	}
	if err := json.Unmarshal([]byte(c.api(t, "show channels as json")), &out); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range out.Rows {
		got[r["uuid"]] = r["callstate"]
	}
	want := map[string]string{"ringing": "RINGING", "early": "EARLY", "answered": "ACTIVE"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
