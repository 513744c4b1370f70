package fakeswitch

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/recpol/recpol/runtime/eslwire"
	"github.com/recpol/recpol/scenario"
)

// oneLeg is a call of one inbound leg "a" (uuid "pa-<id>") that does what
// extra says at 10 ms and hangs up at 60 s.
func oneLeg(id string, extra ...scenario.Step) scenario.Call {
	steps := append([]scenario.Step{{AtMS: 0, Do: scenario.DoCreate, Leg: "a"}}, extra...)
	steps = append(steps, scenario.Step{AtMS: 60000, Do: scenario.DoHangup, Leg: "a"})
	return scenario.Call{ID: id, Legs: []scenario.Leg{{Name: "a", UUID: "pa-" + id, CallerIDNumber: "1001", DestinationNumber: "1002"}}, Steps: steps}
}

// TestRecordingPreAnswers: a uuid_record start on a leg with neither an
// answer nor early media pre-answers it (CHANNEL_PROGRESS_MEDIA, Answer-State
// early), as switch_ivr_record_session_event does on FreeSWITCH 1.10.12,
// even when the start is refused; PreAnswered lists the leg.
func TestRecordingPreAnswers(t *testing.T) {
	type ev struct{ Name, AnswerState string }
	tests := []struct {
		name      string
		step      []scenario.Step // at 10 ms
		file      string
		reply     string
		wantEvs   []ev
		preAnswer bool
	}{
		{"ringing leg, start", []scenario.Step{{AtMS: 10, Do: scenario.DoRing, Leg: "a"}}, "x.wav", "+OK Success\n",
			[]ev{{"CHANNEL_PROGRESS_MEDIA", "early"}, {"RECORD_START", "early"}}, true},
		{"ringing leg, refused start", []scenario.Step{{AtMS: 10, Do: scenario.DoRing, Leg: "a"}}, "x.ogg", "-ERR Cannot record session!\n",
			[]ev{{"CHANNEL_PROGRESS_MEDIA", "early"}}, true},
		{"answered leg", []scenario.Step{{AtMS: 10, Do: scenario.DoAnswer, Leg: "a"}}, "x.wav", "+OK Success\n",
			[]ev{{"RECORD_START", "answered"}}, false},
		{"leg with early media", []scenario.Step{{AtMS: 10, Do: scenario.DoMedia, Leg: "a"}}, "x.wav", "+OK Success\n",
			[]ev{{"RECORD_START", "early"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, addr := startServer(t, Config{Heartbeat: -1})
			sub := dialES(t, addr, "ClueCon") // events recorded by Events
			sub.send(t, "event plain CHANNEL_PROGRESS_MEDIA RECORD_START")
			c := dialRaw(t, addr)
			c.login(t, "")
			uuids, err := srv.StartCall(oneLeg("p", tt.step...))
			if err != nil {
				t.Fatal(err)
			}
			srv.Advance(20 * time.Millisecond)
			n := len(srv.Events())
			if got := c.api(t, "uuid_record "+uuids["a"]+" start "+filepath.Join(srv.cfg.RecordingsDir, tt.file)); got != tt.reply {
				t.Errorf("reply %q, want %q", got, tt.reply)
			}
			var got []ev
			for _, e := range srv.Events()[n:] {
				got = append(got, ev{e.Event.Name(), e.Event.Get("Answer-State")})
			}
			if diff := cmp.Diff(tt.wantEvs, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			var want []string
			if tt.preAnswer {
				want = []string{uuids["a"]}
			}
			if diff := cmp.Diff(want, srv.PreAnswered(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("PreAnswered (-want +got):\n%s", diff)
			}
			if got := c.api(t, "uuid_record "+uuids["a"]+" start "+filepath.Join(srv.cfg.RecordingsDir, "again.wav")); got != "+OK Success\n" {
				t.Errorf("second start: %q", got)
			}
			if len(srv.PreAnswered()) > 1 {
				t.Errorf("a second start pre-answered again: %v", srv.PreAnswered())
			}
		})
	}
}

// TestRecordStartOrder: for a bgapi uuid_record start, RECORD_START (and a
// pre-answer's CHANNEL_PROGRESS_MEDIA) is written before the
// BACKGROUND_JOB (SPEC 5: verified 21 of 21 on FreeSWITCH 1.10.12); an api
// start's reply comes first; a bgapi stop's BACKGROUND_JOB comes before its
// RECORD_STOP, as before.
func TestRecordStartOrder(t *testing.T) {
	tests := []struct {
		name    string
		answer  bool
		cmds    []string // %u: the uuid; %p: a path; "": read a frame first
		want    []string // frame Content-Types, or event names
		wantJob string   // the BACKGROUND_JOB body
	}{
		{"bgapi start", true, []string{"bgapi uuid_record %u start %p"},
			[]string{"command/reply", "RECORD_START", "BACKGROUND_JOB"}, "+OK Success\n"},
		{"bgapi start on a ringing leg", false, []string{"bgapi uuid_record %u start %p"},
			[]string{"command/reply", "CHANNEL_PROGRESS_MEDIA", "RECORD_START", "BACKGROUND_JOB"}, "+OK Success\n"},
		{"bgapi refused start on a ringing leg", false, []string{"bgapi uuid_record %u start /elsewhere/x.wav"},
			[]string{"command/reply", "CHANNEL_PROGRESS_MEDIA", "BACKGROUND_JOB"}, "-ERR Cannot record session!\n"},
		{"api start", true, []string{"api uuid_record %u start %p"},
			[]string{"api/response", "RECORD_START"}, ""},
		{"bgapi stop", true, []string{"api uuid_record %u start %p", "", "", "bgapi uuid_record %u stop %p"},
			[]string{"api/response", "RECORD_START", "command/reply", "BACKGROUND_JOB", "RECORD_STOP"}, "+OK Success\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, addr := startServer(t, Config{Heartbeat: -1})
			c := dialRaw(t, addr)
			c.login(t, "CHANNEL_PROGRESS_MEDIA RECORD_START RECORD_STOP BACKGROUND_JOB")
			var extra []scenario.Step
			if tt.answer {
				extra = append(extra, scenario.Step{AtMS: 10, Do: scenario.DoAnswer, Leg: "a"})
			}
			uuids, err := srv.StartCall(oneLeg("o", extra...))
			if err != nil {
				t.Fatal(err)
			}
			srv.Advance(20 * time.Millisecond)
			path := filepath.Join(srv.cfg.RecordingsDir, "o.wav")
			var frames []eslwire.Frame
			for _, cmd := range tt.cmds {
				if cmd == "" {
					// A RECORD_START waits for its file, a later reply
					// does not: read it before the next command.
					frames = append(frames, c.frame(t))
					continue
				}
				c.send(t, strings.NewReplacer("%u", uuids["a"], "%p", path).Replace(cmd))
			}
			for len(frames) < len(tt.want) {
				frames = append(frames, c.frame(t))
			}
			var got []string
			job := ""
			for _, f := range frames {
				ct := f.Get("Content-Type")
				if ct != eslwire.TypeEventPlain {
					got = append(got, ct)
					continue
				}
				ev, err := eslwire.ParseEventPlain(f.Body)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ev.Name())
				if ev.Name() == "BACKGROUND_JOB" {
					job = ev.Body
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("frames (-want +got):\n%s", diff)
			}
			if job != tt.wantJob {
				t.Errorf("BACKGROUND_JOB body %q, want %q", job, tt.wantJob)
			}
		})
	}
}
