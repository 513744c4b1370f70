package callstate_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/callstate"
	"github.com/recpol/recpol/callstate/classify"
	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/table"
)

// announcePolicy announces the account's recordings with a beep to both
// parties, d1's to its own party, d2's to the party bridged to it; d3's
// recordings announce nothing; *71 starts an announced recording, the
// callflow of 7200 one announced with a tone of its own.
const announcePolicy = `package recpol
accounts: acme: {
	call_recording: account: inbound: offnet: {enabled: true, announce: "tone"}
	devices: d1: call_recording: outbound: any: {enabled: true, announce: "/srv/consent.wav", announce_to: "aleg"}
	devices: d2: call_recording: inbound: any: {enabled: true, announce: "/srv/consent.wav", announce_to: "bleg", stereo: true}
	devices: d3: call_recording: inbound: any: enabled: true
	metaflows: {listen_on: "both", numbers: {
		"3": {module: "record_call", data: {action: "toggle", announce: "tone"}}
		"71": {module: "record_call", data: {action: "start", announce: "tone"}}
		"72": {module: "record_call", data: action: "mask"}
		"74": {module: "record_call", data: action: "stop"}}}
	callflows: consult: {numbers: ["7200"], actions: [{module: "record_call", data: {action: "start", announce: "tone_stream://%(200,0,800)"}}]}
	callflows: stoponly: {numbers: ["8100"], actions: [{module: "record_call", data: action: "stop"}]}
}
`

// TestAnnounce states when the machine announces a recording: with its
// start, at the same event, to whom its settings say, and once per call
// and reason.
func TestAnnounce(t *testing.T) {
	res := compiler.Options{}.CompileFiles([]compiler.File{{Name: "p.cue", Data: []byte(announcePolicy)}})
	if res.Table == nil {
		t.Fatal(res.Diagnostics)
	}
	tb := res.Table
	transfer := func(number string) func(*callstate.Event) {
		return func(e *callstate.Event) { e.Dest = number }
	}
	tests := []struct {
		name      string
		continue_ bool // the machine continues every recording of an earlier run
		play      func(r *run)
		want      []string
	}{
		{
			"each recording announces with its start, as its settings say: a beep to both, a file to the bleg",
			false,
			func(r *run) {
				r.call("A", "B", offnetCaller, dev("acme", "d2"))
				r.hangup("A")
				r.hangup("B")
			},
			[]string{
				"start B callee inbound from offnet to endpoint",
				"announce B callee inbound from offnet to endpoint: /srv/consent.wav to bleg at 4",
				"start A account inbound from offnet to account",
				"announce A account inbound from offnet to account: tone_stream://%(500,0,1000) to both at 5",
			},
		},
		{
			"a recording whose settings announce nothing plays nothing; the caller's own to its own party",
			false,
			func(r *run) {
				r.call("A", "B", d1Caller, dev("acme", "d3"))
				r.hangup("A")
				r.hangup("B")
			},
			[]string{
				"start B callee inbound from onnet to endpoint",
				"start A caller outbound to onnet from endpoint",
				"announce A caller outbound to onnet from endpoint: /srv/consent.wav to aleg at 5",
			},
		},
		{
			"a metaflow recording stopped and started again is not announced again",
			false,
			func(r *run) {
				r.call("A", "B", d1Caller, dev("acme", "d3"))
				r.dtmf("B", "*71")
				r.dtmf("B", "*74")
				r.dtmf("B", "*71")
				r.hangup("A")
				r.hangup("B")
			},
			[]string{
				"start B callee inbound from onnet to endpoint",
				"start A caller outbound to onnet from endpoint",
				"announce A caller outbound to onnet from endpoint: /srv/consent.wav to aleg at 5",
				"start B metaflow metaflow : *71",
				"announce B metaflow metaflow : *71: tone_stream://%(500,0,1000) to both at 9",
				"stop B metaflow metaflow : *71",
				"start B metaflow metaflow : *71",
			},
		},
		{
			"a recording that starts masked: start, mask, then its announcement",
			false,
			func(r *run) {
				r.call("A", "B", d1Caller, dev("acme", "d3"))
				r.dtmf("B", "*72")
				r.dtmf("B", "*71")
				r.hangup("A")
				r.hangup("B")
			},
			[]string{
				"start B callee inbound from onnet to endpoint",
				"start A caller outbound to onnet from endpoint",
				"announce A caller outbound to onnet from endpoint: /srv/consent.wav to aleg at 5",
				"mask A caller outbound to onnet from endpoint",
				"mask B callee inbound from onnet to endpoint",
				"start B metaflow metaflow : *71",
				"mask B metaflow metaflow : *71",
				"announce B metaflow metaflow : *71: tone_stream://%(500,0,1000) to both at 12",
			},
		},
		{
			"a toggle that pauses and resumes starts nothing and announces nothing again",
			false,
			func(r *run) {
				r.create("A", "inbound", "")
				r.exec("A", "bridge", d1Caller...)
				r.create("B", "outbound", "A", "recpol_account=acme", "recpol_network=offnet")
				r.ev(callstate.Answer, "B", nil)
				r.ev(callstate.Answer, "A", nil)
				r.bridge("A", "B")
				r.dtmf("A", "*3")
				r.dtmf("A", "*3")
				r.dtmf("A", "*3")
				r.hangup("A")
				r.hangup("B")
			},
			[]string{
				"start A caller outbound to offnet from endpoint",
				"announce A caller outbound to offnet from endpoint: /srv/consent.wav to aleg at 5",
				"pause A caller outbound to offnet from endpoint",
				"resume A caller outbound to offnet from endpoint",
				"pause A caller outbound to offnet from endpoint",
			},
		},
		{
			"a callflow recording stopped by a transfer to a stop number and started again by a transfer back is announced once",
			false,
			func(r *run) {
				r.create("A", "inbound", "")
				r.ev(callstate.Execute, "A", func(e *callstate.Event) { e.App, e.Dest = "bridge", "7200" }, "recpol_account=acme", "recpol_network=offnet")
				r.ev(callstate.Answer, "A", nil)
				r.ev(callstate.Other, "A", transfer("8100"))
				r.ev(callstate.Other, "A", transfer("7200"))
				r.hangup("A")
			},
			[]string{
				"start A account inbound from offnet to account",
				"announce A account inbound from offnet to account: tone_stream://%(500,0,1000) to both at 3",
				"start A callflow callflow : consult",
				"announce A callflow callflow : consult: tone_stream://%(200,0,800) to both at 3",
				"stop A callflow callflow : consult",
				"start A callflow callflow : consult",
			},
		},
		{
			"a recording continued from an earlier run of the driver is not announced again",
			true,
			func(r *run) {
				r.call("A", "B", offnetCaller, dev("acme", "d2"))
				r.hangup("A")
				r.hangup("B")
			},
			[]string{
				"start B callee inbound from offnet to endpoint",
				"start A account inbound from offnet to account",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRun(t, tb)
			if tc.continue_ {
				n := 0
				r.m = callstate.New(callstate.Config{Classifier: classify.Must(classify.Config{}),
					Table: func() *table.Table { return tb }, NewID: func() string { return "new" },
					Continue: func(leg string, scope callstate.Scope, origin string) (callstate.Continued, bool) {
						n++
						return callstate.Continued{ID: "old" + string(rune('0'+n)), StartTS: 1}, true
					}})
			}
			tc.play(r)
			var got []string
			for _, g := range r.got {
				if len(g) < 7 || g[:7] != "follow " {
					got = append(got, g)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
		})
	}
}
