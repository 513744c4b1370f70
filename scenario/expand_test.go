package scenario

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// st builds a step: at, do, leg and, for two-leg steps, other.
func st(at int64, do, leg string, other ...string) Step {
	s := Step{AtMS: at, Do: do, Leg: leg}
	if len(other) > 0 {
		s.Other = other[0]
	}
	return s
}

// legs builds legs named by "name" or "name<parent", each with uuid
// "u-<name>".
func legs(specs ...string) []Leg {
	var out []Leg
	for _, sp := range specs {
		name, parent, _ := strings.Cut(sp, "<")
		out = append(out, Leg{Name: name, UUID: "u-" + name, Parent: parent})
	}
	return out
}

// bridgedPair is the start of most calls: a originates b, both answer,
// a bridges b at 100 ms.
func bridgedPair() []Step {
	return []Step{st(0, DoCreate, "a"), st(10, DoCreate, "b"), st(90, DoAnswer, "b"), st(90, DoAnswer, "a"), st(100, DoBridge, "a", "b")}
}

func eff(step int, at int64, kind EffectKind, leg string) Effect {
	return Effect{Step: step, AtMS: at, Kind: kind, Leg: leg}
}

func with(e Effect, f func(*Effect)) Effect { f(&e); return e }

func pairEffects() []Effect {
	return []Effect{
		eff(0, 0, EffCreate, "a"), eff(1, 10, EffCreate, "b"), eff(2, 90, EffAnswer, "b"), eff(3, 90, EffAnswer, "a"),
		with(eff(4, 100, EffBridge, "a"), func(e *Effect) { e.Other = "b" }),
	}
}

func hangup(step int, at int64, leg, cause string) []Effect {
	return []Effect{with(eff(step, at, EffHangup, leg), func(e *Effect) { e.Cause = cause }), eff(step, at, EffHangupComplete, leg)}
}

func unbridge(step int, at int64, a, b string) Effect {
	return with(eff(step, at, EffUnbridge, a), func(e *Effect) { e.Other = b })
}

func execute(step int, at int64, leg, app, data string) Effect {
	return with(eff(step, at, EffExecute, leg), func(e *Effect) { e.App, e.Data = app, data })
}

func cat(parts ...any) []Effect {
	var out []Effect
	for _, p := range parts {
		switch v := p.(type) {
		case Effect:
			out = append(out, v)
		case []Effect:
			out = append(out, v...)
		}
	}
	return out
}

func TestEffects(t *testing.T) {
	tests := []struct {
		name  string
		start int64
		legs  []Leg
		steps []Step
		want  []Effect
	}{
		{
			name: "two-leg call, caller hangs up",
			legs: legs("a", "b<a"),
			steps: []Step{
				st(0, DoCreate, "a"),
				{AtMS: 5, Do: DoSet, Leg: "a", Variables: map[string]string{"recpol_account": "acme"}},
				{AtMS: 6, Do: DoExecute, Leg: "a", Application: "bridge", Data: "user/1002"},
				st(10, DoCreate, "b"), st(20, DoRing, "b"), st(30, DoMedia, "b"), st(90, DoAnswer, "b"), st(90, DoAnswer, "a"),
				st(100, DoBridge, "a", "b"),
				{AtMS: 200, Do: DoDTMF, Leg: "a", Digits: "*7", Source: "ENDPOINT"},
				st(300, DoHangup, "a"),
			},
			want: cat(
				eff(0, 1000, EffCreate, "a"),
				with(eff(1, 1005, EffSet, "a"), func(e *Effect) { e.Vars = map[string]string{"recpol_account": "acme"} }),
				execute(2, 1006, "a", "bridge", "user/1002"),
				eff(3, 1010, EffCreate, "b"), eff(4, 1020, EffRing, "b"), eff(5, 1030, EffMedia, "b"),
				eff(6, 1090, EffAnswer, "b"), eff(7, 1090, EffAnswer, "a"),
				with(eff(8, 1100, EffBridge, "a"), func(e *Effect) { e.Other = "b" }),
				with(eff(9, 1200, EffDTMF, "a"), func(e *Effect) { e.Digit, e.Source, e.Duration = "*", "ENDPOINT", 2000 }),
				with(eff(9, 1200, EffDTMF, "a"), func(e *Effect) { e.Digit, e.Source, e.Duration = "7", "ENDPOINT", 2000 }),
				with(eff(10, 1300, EffHangup, "a"), func(e *Effect) { e.Cause = "NORMAL_CLEARING" }),
				unbridge(10, 1300, "a", "b"),
				eff(10, 1300, EffHangupComplete, "a"),
				hangup(10, 1300, "b", "NORMAL_CLEARING"),
			),
			start: 1000,
		},
		{
			name:  "callee hangs up; a ringing leg of the caller is cancelled",
			legs:  legs("a", "b<a", "c<a"),
			steps: append(bridgedPair(), st(110, DoCreate, "c"), st(120, DoRing, "c"), Step{AtMS: 500, Do: DoHangup, Leg: "b", Cause: "USER_BUSY"}),
			want: cat(pairEffects(), eff(5, 110, EffCreate, "c"), eff(6, 120, EffRing, "c"),
				hangup(7, 500, "b", "USER_BUSY"),
				with(eff(7, 500, EffHangup, "a"), func(e *Effect) { e.Cause = "USER_BUSY" }), unbridge(7, 500, "a", "b"), eff(7, 500, EffHangupComplete, "a"),
				hangup(7, 500, "c", "ORIGINATOR_CANCEL")),
		},
		{
			name: "blind transfer of the caller via api (blind_transfer capture), then a new callee",
			legs: legs("a", "b<a", "c<a"),
			steps: append(bridgedPair(),
				Step{AtMS: 2000, Do: DoTransfer, Leg: "a", DestinationNumber: "3003", Via: ViaAPI},
				Step{AtMS: 2010, Do: DoSet, Leg: "a", Variables: map[string]string{"recpol_device": "d1"}},
				st(2020, DoCreate, "c"), st(2300, DoAnswer, "c"), st(2300, DoBridge, "a", "c"), st(9000, DoHangup, "a")),
			want: cat(pairEffects(),
				hangup(5, 2000, "b", "NORMAL_CLEARING"), unbridge(5, 2000, "a", "b"),
				with(eff(5, 2000, EffTransfer, "a"), func(e *Effect) { e.Dest = "3003" }),
				with(eff(6, 2010, EffSet, "a"), func(e *Effect) { e.Vars = map[string]string{"recpol_device": "d1"} }),
				eff(7, 2020, EffCreate, "c"), eff(8, 2300, EffAnswer, "c"),
				with(eff(9, 2300, EffBridge, "a"), func(e *Effect) { e.Other = "c" }),
				with(eff(10, 9000, EffHangup, "a"), func(e *Effect) { e.Cause = "NORMAL_CLEARING" }),
				unbridge(10, 9000, "a", "c"), eff(10, 9000, EffHangupComplete, "a"),
				hangup(10, 9000, "c", "NORMAL_CLEARING")),
		},
		{
			name:  "transfer of the callee: the caller hangs up, ending its bridge",
			legs:  legs("a", "b<a"),
			steps: append(bridgedPair(), Step{AtMS: 2000, Do: DoTransfer, Leg: "b", DestinationNumber: "3003", Via: ViaAPI}),
			want: cat(pairEffects(),
				with(eff(5, 2000, EffHangup, "a"), func(e *Effect) { e.Cause = "NORMAL_CLEARING" }), unbridge(5, 2000, "a", "b"), eff(5, 2000, EffHangupComplete, "a"),
				with(eff(5, 2000, EffTransfer, "b"), func(e *Effect) { e.Dest = "3003" })),
		},
		{
			name:  "transfer application on an unbridged leg",
			legs:  legs("a"),
			steps: []Step{st(0, DoCreate, "a"), st(5, DoAnswer, "a"), {AtMS: 10, Do: DoTransfer, Leg: "a", DestinationNumber: "7000"}},
			want: []Effect{eff(0, 0, EffCreate, "a"), eff(1, 5, EffAnswer, "a"),
				with(eff(2, 10, EffTransfer, "a"), func(e *Effect) { e.App, e.Data, e.Dest = "transfer", "7000", "7000" })},
		},
		{
			name: "uuid_bridge of two bridged legs (attended transfer)",
			legs: legs("a", "b<a", "c", "d<c"),
			steps: append(bridgedPair(), st(200, DoCreate, "c"), st(210, DoCreate, "d"), st(300, DoAnswer, "d"), st(300, DoAnswer, "c"),
				st(310, DoBridge, "c", "d"), st(2000, DoUUIDBridge, "a", "d")),
			want: cat(pairEffects(), eff(5, 200, EffCreate, "c"), eff(6, 210, EffCreate, "d"), eff(7, 300, EffAnswer, "d"), eff(8, 300, EffAnswer, "c"),
				with(eff(9, 310, EffBridge, "c"), func(e *Effect) { e.Other = "d" }),
				hangup(10, 2000, "b", "NORMAL_CLEARING"), unbridge(10, 2000, "a", "b"),
				with(eff(10, 2000, EffHangup, "c"), func(e *Effect) { e.Cause = "NORMAL_CLEARING" }), unbridge(10, 2000, "c", "d"), eff(10, 2000, EffHangupComplete, "c"),
				execute(10, 2000, "a", "uuid_bridge", "u-d"), execute(10, 2000, "d", "uuid_bridge", "u-a"),
				with(eff(10, 2000, EffBridge, "a"), func(e *Effect) { e.Other = "d" })),
		},
		{
			name: "refer with Replaces (attended transfer by the transferor's phone)",
			legs: legs("a", "b<a", "c", "d<c"),
			steps: append(bridgedPair(), st(200, DoCreate, "c"), st(210, DoCreate, "d"), st(300, DoAnswer, "d"), st(300, DoAnswer, "c"),
				st(310, DoBridge, "c", "d"), st(2000, DoRefer, "b", "c")),
			want: cat(pairEffects(), eff(5, 200, EffCreate, "c"), eff(6, 210, EffCreate, "d"), eff(7, 300, EffAnswer, "d"), eff(8, 300, EffAnswer, "c"),
				with(eff(9, 310, EffBridge, "c"), func(e *Effect) { e.Other = "d" }),
				with(eff(10, 2000, EffReplace, "b"), func(e *Effect) { e.Other = "a" }),
				with(eff(10, 2000, EffReplace, "c"), func(e *Effect) { e.Other = "d" }),
				hangup(10, 2000, "b", "NORMAL_CLEARING"), unbridge(10, 2000, "a", "b"),
				with(eff(10, 2000, EffHangup, "c"), func(e *Effect) { e.Cause = "NORMAL_CLEARING" }), unbridge(10, 2000, "c", "d"), eff(10, 2000, EffHangupComplete, "c"),
				execute(10, 2000, "a", "uuid_bridge", "u-d"), execute(10, 2000, "d", "uuid_bridge", "u-a"),
				with(eff(10, 2000, EffBridge, "a"), func(e *Effect) { e.Other = "d" })),
		},
		{
			name:  "park",
			legs:  legs("a"),
			steps: []Step{st(0, DoCreate, "a"), st(5, DoAnswer, "a"), st(10, DoPark, "a")},
			want:  []Effect{eff(0, 0, EffCreate, "a"), eff(1, 5, EffAnswer, "a"), execute(2, 10, "a", "park", ""), eff(2, 10, EffPark, "a")},
		},
		{
			name: "intercept of a ringing leg (pickup); the caller's other ringing leg is cancelled",
			legs: legs("a", "b<a", "b2<a", "p"),
			steps: []Step{st(0, DoCreate, "a"), st(10, DoCreate, "b"), st(10, DoCreate, "b2"), st(20, DoRing, "b"), st(20, DoRing, "b2"),
				st(1000, DoCreate, "p"), st(1010, DoAnswer, "p"), st(1100, DoIntercept, "p", "b")},
			want: cat(eff(0, 0, EffCreate, "a"), eff(1, 10, EffCreate, "b"), eff(2, 10, EffCreate, "b2"), eff(3, 20, EffRing, "b"), eff(4, 20, EffRing, "b2"),
				eff(5, 1000, EffCreate, "p"), eff(6, 1010, EffAnswer, "p"),
				execute(7, 1100, "p", "intercept", "-bleg u-b"), eff(7, 1100, EffAnswer, "a"),
				hangup(7, 1100, "b", "PICKED_OFF"), hangup(7, 1100, "b2", "ORIGINATOR_CANCEL"),
				execute(7, 1100, "p", "uuid_bridge", "u-a"), execute(7, 1100, "a", "uuid_bridge", "u-p"),
				with(eff(7, 1100, EffBridge, "p"), func(e *Effect) { e.Other = "a" })),
		},
		{
			name: "loopback bow-out (loopback_between_accounts capture)",
			legs: append(legs("a", "la<a"), Leg{Name: "lb", UUID: "u-lb", LoopbackOf: "la"}, Leg{Name: "e", UUID: "u-e", Parent: "lb"}),
			steps: []Step{st(0, DoCreate, "a"), st(10, DoCreate, "la"), st(10, DoCreate, "lb"), st(20, DoCreate, "e"),
				st(300, DoAnswer, "e"), st(300, DoAnswer, "la"), st(300, DoAnswer, "lb"), st(300, DoBridge, "lb", "e"),
				st(340, DoAnswer, "a"), st(340, DoBridge, "a", "la"), st(2540, DoBowout, "la"), st(6000, DoHangup, "e")},
			want: cat(eff(0, 0, EffCreate, "a"), eff(1, 10, EffCreate, "la"), eff(2, 10, EffCreate, "lb"), eff(3, 20, EffCreate, "e"),
				eff(4, 300, EffAnswer, "e"), eff(5, 300, EffAnswer, "la"), eff(6, 300, EffAnswer, "lb"),
				with(eff(7, 300, EffBridge, "lb"), func(e *Effect) { e.Other = "e" }),
				eff(8, 340, EffAnswer, "a"), with(eff(9, 340, EffBridge, "a"), func(e *Effect) { e.Other = "la" }),
				with(eff(10, 2540, EffHangup, "la"), func(e *Effect) {
					e.Cause, e.Vars = "NORMAL_CLEARING", map[string]string{"loopback_hangup_cause": "bridge", "loopback_bowout_other_uuid": "u-a"}
				}),
				with(eff(10, 2540, EffHangup, "lb"), func(e *Effect) {
					e.Cause, e.Vars = "NORMAL_CLEARING", map[string]string{"loopback_hangup_cause": "bridge", "loopback_bowout_other_uuid": "u-e"}
				}),
				eff(10, 2540, EffHangupComplete, "la"), unbridge(10, 2540, "a", "la"), unbridge(10, 2540, "lb", "e"), eff(10, 2540, EffHangupComplete, "lb"),
				execute(10, 2540, "a", "uuid_bridge", "u-e"), execute(10, 2540, "e", "uuid_bridge", "u-a"),
				with(eff(10, 2540, EffBridge, "a"), func(e *Effect) { e.Other = "e" }),
				hangup(11, 6000, "e", "NORMAL_CLEARING"),
				with(eff(11, 6000, EffHangup, "a"), func(e *Effect) { e.Cause = "NORMAL_CLEARING" }), unbridge(11, 6000, "a", "e"), eff(11, 6000, EffHangupComplete, "a")),
		},
		{
			name:  "hanging up one loopback half hangs up the other and its callee",
			legs:  append(legs("a", "la<a"), Leg{Name: "lb", UUID: "u-lb", LoopbackOf: "la"}, Leg{Name: "e", UUID: "u-e", Parent: "lb"}),
			steps: []Step{st(0, DoCreate, "a"), st(10, DoCreate, "la"), st(10, DoCreate, "lb"), st(20, DoCreate, "e"), st(500, DoHangup, "a")},
			want: cat(eff(0, 0, EffCreate, "a"), eff(1, 10, EffCreate, "la"), eff(2, 10, EffCreate, "lb"), eff(3, 20, EffCreate, "e"),
				hangup(4, 500, "a", "NORMAL_CLEARING"), hangup(4, 500, "la", "ORIGINATOR_CANCEL"), hangup(4, 500, "lb", "ORIGINATOR_CANCEL"), hangup(4, 500, "e", "ORIGINATOR_CANCEL")),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Call{ID: "c", StartMS: tt.start, Legs: tt.legs, Steps: tt.steps}
			sc := &Scenario{Calls: []Call{c}}
			if err := sc.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			got := c.Effects()
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Effects (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(got, c.Effects(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("a second expansion differs:\n%s", diff)
			}
		})
	}
}

func TestValidateNewSteps(t *testing.T) {
	lb := Leg{Name: "lb", UUID: "u-lb", LoopbackOf: "la"}
	loop := append(legs("a", "la<a"), lb, Leg{Name: "e", UUID: "u-e", Parent: "lb"})
	loopUp := []Step{st(0, DoCreate, "a"), st(10, DoCreate, "la"), st(10, DoCreate, "lb"), st(20, DoCreate, "e"),
		st(300, DoAnswer, "e"), st(300, DoAnswer, "la"), st(300, DoAnswer, "lb"), st(300, DoBridge, "lb", "e"), st(340, DoAnswer, "a")}
	tests := []struct {
		name  string
		legs  []Leg
		steps []Step
		want  string
	}{
		{"media after answer", legs("a"), []Step{st(0, DoCreate, "a"), st(1, DoAnswer, "a"), st(2, DoMedia, "a")}, "steps[2].do: leg \"a\" has early media after it was answered"},
		{"bad via", legs("a"), []Step{st(0, DoCreate, "a"), {AtMS: 1, Do: DoTransfer, Leg: "a", DestinationNumber: "1", Via: "refer"}}, "steps[1].via: via must be"},
		{"partner used after a transfer", legs("a", "b<a"), append(bridgedPair(), Step{AtMS: 200, Do: DoTransfer, Leg: "a", DestinationNumber: "3", Via: ViaAPI}, st(300, DoDTMF, "b")), "steps[6].do: dtmf on leg \"b\" after it hung up"},
		{"refer of legs of one call", legs("a", "b<a"), append(bridgedPair(), st(200, DoRefer, "b", "a")), "steps[5].do: refer: legs \"b\" and \"a\" are in one call"},
		{"refer of an unbridged leg", legs("a", "b<a", "c"), append(bridgedPair(), st(200, DoCreate, "c"), st(201, DoRefer, "b", "c")), "steps[6].do: refer: leg \"c\" must be bridged to one party, not 0"},
		{"uuid_bridge of an unanswered leg", legs("a", "c"), []Step{st(0, DoCreate, "a"), st(0, DoCreate, "c"), st(1, DoAnswer, "a"), st(2, DoUUIDBridge, "a", "c")}, "steps[3].do: uuid_bridge of leg \"c\" before it is answered"},
		{"uuid_bridge with a leg not up", legs("a", "c"), []Step{st(0, DoCreate, "a"), st(1, DoAnswer, "a"), st(2, DoUUIDBridge, "a", "c")}, "steps[2].other: leg \"c\" is not up"},
		{"uuid_bridge without other", legs("a"), []Step{st(0, DoCreate, "a"), st(2, DoUUIDBridge, "a")}, "steps[1].other: a uuid_bridge step needs the other leg"},
		{"leg dropped by uuid_bridge used later", legs("a", "b<a", "c"), append(bridgedPair(), st(200, DoCreate, "c"), st(201, DoAnswer, "c"), st(300, DoUUIDBridge, "c", "a"), st(400, DoAnswer, "b")), "steps[8].do: answer on leg \"b\" after it hung up"},
		{"park while bridged", legs("a", "b<a"), append(bridgedPair(), st(200, DoPark, "a")), "steps[5].do: park of leg \"a\" while it is bridged to \"b\""},
		{"intercept of an answered leg", legs("a", "b<a", "p"), append(bridgedPair(), st(200, DoCreate, "p"), st(300, DoIntercept, "p", "b")), "steps[6].other: leg \"b\" was answered"},
		{"intercept of a leg without parent", legs("a", "p"), []Step{st(0, DoCreate, "a"), st(1, DoCreate, "p"), st(2, DoIntercept, "p", "a")}, "steps[2].other: leg \"a\" has no parent"},
		{"intercepted leg used later", legs("a", "b<a", "p"), []Step{st(0, DoCreate, "a"), st(1, DoCreate, "b"), st(2, DoCreate, "p"), st(3, DoIntercept, "p", "b"), st(4, DoAnswer, "b")}, "steps[4].do: answer on leg \"b\" after it hung up"},
		{"bowout of a leg that is no -a half", legs("a"), []Step{st(0, DoCreate, "a"), st(1, DoBowout, "a")}, "steps[1].leg: leg \"a\" is not the -a half of a loopback"},
		{"bowout before the -a half is bridged", loop, append(append([]Step{}, loopUp...), st(400, DoBowout, "la")), ""},
		{"bowout of an unanswered half", loop, []Step{st(0, DoCreate, "a"), st(10, DoCreate, "la"), st(10, DoCreate, "lb"), st(20, DoBowout, "la")}, "bowout of loopback half \"la\" before it is answered"},
		{"-b half used after the bowout", loop, append(append([]Step{}, loopUp...), st(340, DoBridge, "a", "la"), st(400, DoBowout, "la"), st(500, DoDTMF, "lb")), "steps[11].do: dtmf on leg \"lb\" after it hung up"},
		{"-b half without its -a half's bridge partner", append(legs("la"), lb, Leg{Name: "e", UUID: "u-e", Parent: "lb"}), []Step{st(0, DoCreate, "la"), st(1, DoCreate, "lb"), st(2, DoCreate, "e"), st(3, DoAnswer, "la"), st(3, DoAnswer, "lb"), st(3, DoBridge, "lb", "e"), st(4, DoBowout, "la")}, "the -a half \"la\" is not bridged to an outer leg"},
		{"-b half created first", loop, []Step{st(0, DoCreate, "a"), st(1, DoCreate, "lb")}, "steps[1].do: loopback -b half \"lb\" created before its -a half \"la\""},
		{"unknown loopback_of", []Leg{{Name: "lb", LoopbackOf: "zz"}}, nil, "legs[0].loopback_of: unknown leg \"zz\""},
		{"-b half with a parent", []Leg{{Name: "a"}, {Name: "lb", LoopbackOf: "a", Parent: "a"}}, nil, "legs[1].loopback_of: the -b half of a loopback is inbound"},
		{"two -b halves", []Leg{{Name: "a"}, {Name: "b1", LoopbackOf: "a"}, {Name: "b2", LoopbackOf: "a"}}, nil, "legs[2].loopback_of: leg \"a\" already has the -b half \"b1\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := &Scenario{Calls: []Call{{ID: "c", Legs: tt.legs, Steps: tt.steps}}}
			err := sc.Validate()
			if tt.want == "" {
				// the outer leg a is up and answered but not bridged to
				// la: its parent stands in (the -a half's parent).
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestNormalizeLoopbackAndVia(t *testing.T) {
	sc := &Scenario{Calls: []Call{{ID: "c",
		Legs: []Leg{{Name: "a"}, {Name: "la", Parent: "a", DestinationNumber: "beta-5001"}, {Name: "lb", LoopbackOf: "la"},
			{Name: "x", Parent: "a", DestinationNumber: "9"}, {Name: "xb", LoopbackOf: "x", ChannelName: "loopback/own-b"}},
		Steps: []Step{st(0, DoCreate, "a"), {AtMS: 1, Do: DoTransfer, Leg: "a", DestinationNumber: "2"}},
	}}}
	sc.Normalize()
	c := sc.Calls[0]
	got := map[string]string{}
	for _, l := range c.Legs {
		got[l.Name] = l.ChannelName + " " + l.Direction
	}
	want := map[string]string{"a": "sofia/internal/a inbound", "la": "loopback/beta-5001-a outbound", "lb": "loopback/beta-5001-b inbound",
		"x": "loopback/9-a outbound", "xb": "loopback/own-b inbound"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("channel names (-want +got):\n%s", diff)
	}
	if c.Steps[1].Via != ViaApplication {
		t.Errorf("via %q", c.Steps[1].Via)
	}
}
