package fakeswitch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/recpol/recpol/runtime/eslwire"
	"github.com/recpol/recpol/scenario"
)

// TestRecordings drives recordings through their commands on the virtual
// clock and checks the files: duration, sample rate, silent masked spans,
// paused time left out, limits, deletion.
func TestRecordings(t *testing.T) {
	type cmd struct {
		afterMS int64  // advance the clock this much first
		args    string // uuid_record arguments after the uuid; PATH is replaced
	}
	tests := []struct {
		name     string
		file     string
		cmds     []cmd
		hangupMS int64 // from the first command
		want     FileRecord
		tone     []Span
	}{
		{
			name: "limit", file: "limit.wav",
			cmds:     []cmd{{0, "start PATH 2"}},
			hangupMS: 5000,
			want:     FileRecord{Cause: "success-maxtime", SampleRate: 8000, Samples: 16000, DurationMS: 2000},
			tone:     []Span{{0, 2000}},
		},
		{
			name: "sample rate from recording vars", file: "wide.wav",
			cmds:     []cmd{{0, "start PATH 0 {record_sample_rate=16000}"}, {1500, "stop PATH"}},
			hangupMS: 5000,
			want:     FileRecord{Cause: "success-maxtime", SampleRate: 16000, Samples: 24000, DurationMS: 1500, Vars: []eslwire.Header{{Name: "record_sample_rate", Value: "16000"}}},
			tone:     []Span{{0, 1500}},
		},
		{
			name: "pause leaves time out, mask is silence", file: "pm.wav",
			cmds: []cmd{{0, "start PATH 60"}, {1000, "pause PATH"}, {3000, "resume PATH"}, {1000, "mask PATH"},
				{500, "pause PATH"}, {1000, "resume PATH"}, {500, "unmask PATH"}, {1000, "stop PATH"}},
			hangupMS: 10000,
			want:     FileRecord{Cause: "success-maxtime", SampleRate: 8000, Samples: 32000, DurationMS: 4000, Masked: []Span{{2000, 3000}}},
			tone:     []Span{{0, 2000}, {3000, 4000}},
		},
		{
			name: "hangup", file: "sub/dir/hang.wav",
			cmds:     []cmd{{0, "start PATH"}},
			hangupMS: 3250,
			want:     FileRecord{Cause: "success-silence", SampleRate: 8000, Samples: 26000, DurationMS: 3250},
			tone:     []Span{{0, 3250}},
		},
		{
			name: "stop all", file: "all.wav",
			cmds:     []cmd{{0, "start PATH"}, {1000, "stop all"}},
			hangupMS: 3000,
			want:     FileRecord{Cause: "success-maxtime", SampleRate: 8000, Samples: 8000, DurationMS: 1000},
			tone:     []Span{{0, 1000}},
		},
		{
			name: "too short", file: "short.wav",
			cmds:     []cmd{{0, "start PATH 60 {RECORD_MIN_SEC=3}"}, {2200, "stop PATH"}},
			hangupMS: 5000,
			want:     FileRecord{Cause: "input-too-short", SampleRate: 8000, Samples: 17600, DurationMS: 2200, Deleted: true, Vars: []eslwire.Header{{Name: "RECORD_MIN_SEC", Value: "3"}}},
		},
		{
			name: "empty", file: "empty.wav",
			cmds:     []cmd{{0, "start PATH"}, {0, "stop PATH"}},
			hangupMS: 5000,
			want:     FileRecord{Cause: "empty-file", SampleRate: 8000, Deleted: true},
		},
		{
			name: "paused throughout", file: "paused.wav",
			cmds:     []cmd{{0, "start PATH"}, {0, "pause PATH"}},
			hangupMS: 2000,
			want:     FileRecord{Cause: "empty-file", SampleRate: 8000, Deleted: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, addr := startServer(t, Config{})
			call := twoLegCall("rec", 1100+tt.hangupMS)
			uuids, err := srv.StartCall(call)
			if err != nil {
				t.Fatal(err)
			}
			a := uuids["a"]
			srv.Advance(1100 * time.Millisecond)
			hzA, _ := srv.VoiceHz(a)
			hzB, _ := srv.VoiceHz(uuids["b1"])
			path := filepath.Join(srv.cfg.RecordingsDir, tt.file)
			c := dialRaw(t, addr)
			c.login(t, "")
			for _, cm := range tt.cmds {
				srv.Advance(time.Duration(cm.afterMS) * time.Millisecond)
				if got := c.api(t, "uuid_record "+a+" "+strings.ReplaceAll(cm.args, "PATH", path)); got != "+OK Success\n" {
					t.Fatalf("%s: %q", cm.args, got)
				}
			}
			srv.RunUntilIdle()
			files := srv.Files()
			if len(files) != 1 {
				t.Fatalf("%d files: %+v", len(files), files)
			}
			got := files[0]
			want := tt.want
			want.Path, want.UUID, want.CallID, want.ToneHz, want.Channels = path, a, "rec", hzA, 1
			want.AnsweredAt = time.Second // twoLegCall answers a at 1000 ms, before every start
			if want.Samples > 0 {
				// Recorded after the bridge: the callee's voice too.
				want.OtherHz = []float64{hzB}
			}
			if diff := cmp.Diff(want, got, cmpFile); diff != "" {
				t.Errorf("file (-want +got):\n%s", diff)
			}
			if tt.want.Deleted {
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Errorf("deleted recording still there: %v", err)
				}
				return
			}
			rate, samples := readWAV(t, path)
			if rate != tt.want.SampleRate || len(samples) != tt.want.Samples {
				t.Fatalf("WAV %d Hz %d samples; want %d Hz %d", rate, len(samples), tt.want.SampleRate, tt.want.Samples)
			}
			if st, _ := os.Stat(path); st.Size() != int64(44+2*len(samples)) || got.Size != st.Size() {
				t.Errorf("file size %d, record %d, want %d", st.Size(), got.Size, 44+2*len(samples))
			}
			checkAudio(t, samples, rate, []float64{hzA, hzB}, tt.tone, tt.want.Masked)
		})
	}
}

// cmpFile ignores the virtual times and size, checked on their own.
var cmpFile = cmp.FilterPath(func(p cmp.Path) bool {
	switch p.Last().String() {
	case ".StartedAt", ".StoppedAt", ".Size":
		return true
	}
	return false
}, cmp.Ignore())

// TestRecordStopEvent checks the RECORD_STOP of a too-short recording and
// that the legs of a call have voices of their own.
func TestRecordStopEvent(t *testing.T) {
	srv, addr := startServer(t, Config{})
	uuids, err := srv.StartCall(twoLegCall("stop", 60000))
	if err != nil {
		t.Fatal(err)
	}
	srv.Advance(1100 * time.Millisecond)
	hzA, okA := srv.VoiceHz(uuids["a"])
	hzB, okB := srv.VoiceHz(uuids["b1"])
	if !okA || !okB || hzA == hzB {
		t.Fatalf("voices %v (%v) and %v (%v): want two distinct voices", hzA, okA, hzB, okB)
	}
	c := dialRaw(t, addr)
	c.login(t, "RECORD_STOP")
	p := filepath.Join(srv.cfg.RecordingsDir, "s.wav")
	c.api(t, "uuid_record "+uuids["a"]+" start "+p+" 60 {RECORD_MIN_SEC=5}")
	srv.Advance(2200 * time.Millisecond)
	c.api(t, "uuid_record "+uuids["a"]+" stop "+p)
	ev := c.nextEvent(t)
	got := map[string]string{}
	for _, k := range []string{"Record-File-Path", "Record-Completion-Cause", "variable_record_seconds", "variable_record_ms", "variable_record_samples", "variable_record_completion_cause", "Recording-Variable-RECORD_MIN_SEC"} {
		got[k] = ev.Get(k)
	}
	want := map[string]string{"Record-File-Path": p, "Record-Completion-Cause": "input-too-short", "variable_record_seconds": "2", "variable_record_ms": "2200", "variable_record_samples": "17600", "variable_record_completion_cause": "input-too-short", "Recording-Variable-RECORD_MIN_SEC": "5"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RECORD_STOP (-want +got):\n%s", diff)
	}
	// RECORD_MIN_SEC applied to that recording only.
	p2 := filepath.Join(srv.cfg.RecordingsDir, "s2.wav")
	c.api(t, "uuid_record "+uuids["a"]+" start "+p2)
	srv.Advance(2200 * time.Millisecond)
	c.api(t, "uuid_record "+uuids["a"]+" stop "+p2)
	if ev := c.nextEvent(t); ev.Get("Record-Completion-Cause") != "success-maxtime" {
		t.Errorf("next recording: %s", ev.Get("Record-Completion-Cause"))
	}
}

// TestRunWaitsForClients plays a call with Run while a client reacts to
// CHANNEL_ANSWER by starting a recording with bgapi: the recording starts
// at the answer's virtual time.
func TestRunWaitsForClients(t *testing.T) {
	srv, addr := startServer(t, Config{Quiet: 100 * time.Millisecond})
	c := dialES(t, addr, "ClueCon")
	c.send(t, "event plain CHANNEL_ANSWER RECORD_STOP BACKGROUND_JOB")
	sc := &scenario.Scenario{Calls: []scenario.Call{twoLegCall("run", 61000)}}
	path := filepath.Join(srv.cfg.RecordingsDir, "run.wav")
	done := make(chan error, 1)
	go func() { done <- srv.Play(context.Background(), sc) }()
	ans := c.next(t, "CHANNEL_ANSWER") // b1 first, at 1000 ms
	c.send(t, "bgapi uuid_record "+ans.Get("Unique-Id")+" start "+path)
	c.next(t, "BACKGROUND_JOB")
	stop := c.next(t, "RECORD_STOP")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := stop.Get("Variable_record_ms"); got != "60000" {
		t.Errorf("record_ms %s, want 60000 (answer at 1000 ms, hangup at 61000 ms)", got)
	}
	if got := srv.Now(); got != 61*time.Second {
		t.Errorf("clock at %v after the scenario", got)
	}
}

// TestSlowFileHoldsOnlyItsCall stalls the file write of one call's
// recording: the events of another call, and a bgapi's BACKGROUND_JOB,
// reach the client meanwhile; the stalled call's RECORD_STOP and the
// events after it follow once the file is written, in their order. Until
// then the hung-up leg still exists for uuid_exists, as a FreeSWITCH
// session lives until its media bugs closed their files.
func TestSlowFileHoldsOnlyItsCall(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	srv, addr := startServer(t, Config{OnFile: func(fr FileRecord) {
		if fr.CallID == "slow" {
			<-release
		}
	}})
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	slow, err := srv.StartCall(twoLegCall("slow", 2000))
	if err != nil {
		t.Fatal(err)
	}
	fast, err := srv.StartCall(twoLegCall("fast", 3000))
	if err != nil {
		t.Fatal(err)
	}
	srv.Advance(1100 * time.Millisecond)
	c := dialRaw(t, addr)
	c.login(t, "")
	for _, u := range []string{slow["a"], fast["a"]} {
		if got := c.api(t, "uuid_record "+u+" start "+filepath.Join(srv.cfg.RecordingsDir, u+".wav")); got != "+OK Success\n" {
			t.Fatalf("start: %q", got)
		}
	}
	c.send(t, "event plain RECORD_STOP CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB")
	if got := c.frame(t).Get("Reply-Text"); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("event: %q", got)
	}
	srv.Advance(2 * time.Second) // both calls hang up; slow's file stalls
	type seen struct{ Event, Leg string }
	name := func(ev *eslwire.Event) seen {
		for k, u := range slow {
			if ev.Get("Unique-ID") == u {
				return seen{ev.Name(), "slow/" + k}
			}
		}
		for k, u := range fast {
			if ev.Get("Unique-ID") == u {
				return seen{ev.Name(), "fast/" + k}
			}
		}
		return seen{ev.Name(), ""}
	}
	var got []seen
	for len(got) < 3 {
		got = append(got, name(c.nextEvent(t)))
	}
	c.send(t, "bgapi status")
	for len(got) < 5 {
		f := c.frame(t)
		if f.Get("Content-Type") == eslwire.TypeCommandReply {
			got = append(got, seen{"reply", f.Get("Reply-Text")[:len("+OK Job-UUID")]})
			continue
		}
		ev, err := eslwire.ParseEventPlain(f.Body)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, name(ev))
	}
	want := []seen{{"RECORD_STOP", "fast/a"}, {"CHANNEL_HANGUP_COMPLETE", "fast/a"}, {"CHANNEL_HANGUP_COMPLETE", "fast/b1"},
		{"reply", "+OK Job-UUID"}, {"BACKGROUND_JOB", ""}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("events while slow's file is written (-want +got):\n%s", diff)
	}
	// A leg whose file is still being closed exists; one whose file is
	// closed does not.
	if got := c.api(t, "uuid_exists "+slow["a"]); got != "true" {
		t.Errorf("uuid_exists of a hung-up leg whose file is being written: %q", got)
	}
	if got := c.api(t, "uuid_exists "+fast["a"]); got != "false" {
		t.Errorf("uuid_exists of a hung-up leg whose file is closed: %q", got)
	}
	once.Do(func() { close(release) })
	got = nil
	for len(got) < 3 {
		got = append(got, name(c.nextEvent(t)))
	}
	want = []seen{{"RECORD_STOP", "slow/a"}, {"CHANNEL_HANGUP_COMPLETE", "slow/a"}, {"CHANNEL_HANGUP_COMPLETE", "slow/b1"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events once slow's file is written (-want +got):\n%s", diff)
	}
	if got := c.api(t, "uuid_exists "+slow["a"]); got != "false" {
		t.Errorf("uuid_exists once the file is closed: %q", got)
	}
}
