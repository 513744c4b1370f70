package fakeswitch

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiorix/go-eventsocket/eventsocket"
	"github.com/google/go-cmp/cmp"
	"github.com/recpol/recpol/runtime/eslwire"
	"github.com/recpol/recpol/scenario"
)

func TestAuth(t *testing.T) {
	_, addr := startServer(t, Config{Password: "s3cret"})
	tests := []struct {
		name    string
		pw      string
		wantErr bool
	}{
		{"good password", "s3cret", false},
		{"bad password", "ClueCon", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := eventsocket.Dial(addr, tt.pw)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Dial err = %v, want error %v", err, tt.wantErr)
			}
			if c != nil {
				c.Close()
			}
		})
	}
}

// TestBadAuthBytes checks the exact frames of a refused login, as in
// noevents_badauth_rx_raw.txt: -ERR invalid, the disconnect notice, EOF.
func TestBadAuthBytes(t *testing.T) {
	_, addr := startServer(t, Config{})
	c := dialRaw(t, addr)
	c.send(t, "auth wrong")
	if got := c.frame(t).Get("Reply-Text"); got != "-ERR invalid" {
		t.Errorf("reply %q", got)
	}
	f := c.frame(t)
	if f.Get("Content-Type") != eslwire.TypeDisconnectNotice || string(f.Body) != eslwire.DisconnectText {
		t.Errorf("disconnect notice %+v", f)
	}
	if _, err := eslwire.ReadFrame(c.r); err == nil {
		t.Errorf("connection still open after a bad password")
	}
}

// TestCallOverEventSocket plays the late-variables call to a
// go-eventsocket client and records the callee's leg with a masked span.
func TestCallOverEventSocket(t *testing.T) {
	srv, addr := startServer(t, Config{})
	dir := srv.cfg.RecordingsDir
	c := dialES(t, addr, "ClueCon")
	if got := c.send(t, "event plain CHANNEL_CREATE CHANNEL_EXECUTE CHANNEL_ANSWER CHANNEL_BRIDGE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE DTMF RECORD_START RECORD_STOP BACKGROUND_JOB").Get("Reply-Text"); got != "+OK event listener enabled plain" {
		t.Fatalf("event reply %q", got)
	}
	uuids, err := srv.StartCall(twoLegCall("c1", 6010))
	if err != nil {
		t.Fatal(err)
	}
	a, b := uuids["a"], uuids["b1"]

	srv.Advance(1010 * time.Millisecond)
	create := c.next(t, "CHANNEL_CREATE")
	if create.Get("Unique-Id") != a || create.Get("Variable_recpol_account") != "" {
		t.Errorf("caller CHANNEL_CREATE: uuid %s, recpol_account %q; want %s and none", create.Get("Unique-Id"), create.Get("Variable_recpol_account"), a)
	}
	var exec *eventsocket.Event
	for exec == nil {
		if e := c.next(t, "CHANNEL_EXECUTE"); e.Get("Application") == "bridge" {
			exec = e
		}
	}
	if got := exec.Get("Variable_recpol_device"); got != "d1" {
		t.Errorf("CHANNEL_EXECUTE bridge: recpol_device %q, want d1", got)
	}
	callee := c.next(t, "CHANNEL_CREATE")
	want := map[string]string{"Unique-Id": b, "Other-Leg-Unique-Id": a, "Variable_originator": a, "Variable_recpol_device": "d2", "Call-Direction": "outbound"}
	for k, v := range want {
		if got := callee.Get(k); got != v {
			t.Errorf("callee CHANNEL_CREATE %s = %q, want %q", k, got, v)
		}
	}
	c.next(t, "CHANNEL_ANSWER")
	ans := c.next(t, "CHANNEL_ANSWER")
	if ans.Get("Unique-Id") != a || ans.Get("Variable_recpol_account") != "acme" {
		t.Errorf("caller CHANNEL_ANSWER: %s, recpol_account %q", ans.Get("Unique-Id"), ans.Get("Variable_recpol_account"))
	}
	br := c.next(t, "CHANNEL_BRIDGE")
	if br.Get("Unique-Id") != a || br.Get("Bridge-A-Unique-Id") != a || br.Get("Bridge-B-Unique-Id") != b {
		t.Errorf("CHANNEL_BRIDGE on %s: A %s B %s", br.Get("Unique-Id"), br.Get("Bridge-A-Unique-Id"), br.Get("Bridge-B-Unique-Id"))
	}

	hzA, _ := srv.VoiceHz(a)
	hzB, _ := srv.VoiceHz(b)
	// The runtime's reaction to the bridge: record both legs.
	bPath := filepath.Join(dir, "acme", "b.wav")
	if got := c.send(t, "api uuid_record "+b+" start "+bPath+" 3600").Body; got != "+OK Success\n" {
		t.Fatalf("uuid_record start: %q", got)
	}
	if rs := c.next(t, "RECORD_START"); rs.Get("Record-File-Path") != bPath || rs.Get("Unique-Id") != b {
		t.Errorf("RECORD_START %s on %s", rs.Get("Record-File-Path"), rs.Get("Unique-Id"))
	}
	srv.Advance(490 * time.Millisecond) // 1500: DTMF
	dtmf := c.next(t, "DTMF")
	if dtmf.Get("Dtmf-Digit") != "*" || dtmf.Get("Unique-Id") != a || dtmf.Get("Dtmf-Source") != "RTP" || dtmf.Get("Variable_uuid") != "" {
		t.Errorf("DTMF: digit %q on %s source %q, variable_uuid %q", dtmf.Get("Dtmf-Digit"), dtmf.Get("Unique-Id"), dtmf.Get("Dtmf-Source"), dtmf.Get("Variable_uuid"))
	}
	if d := c.next(t, "DTMF"); d.Get("Dtmf-Digit") != "7" {
		t.Errorf("second digit %q", d.Get("Dtmf-Digit"))
	}
	srv.Advance(1510 * time.Millisecond) // 3010
	job := c.send(t, "bgapi uuid_record "+b+" mask "+bPath)
	if job.Get("Job-Uuid") == "" || job.Get("Reply-Text") != "+OK Job-UUID: "+job.Get("Job-Uuid") {
		t.Fatalf("bgapi reply %v", job.Header)
	}
	bj := c.next(t, "BACKGROUND_JOB")
	if bj.Get("Job-Uuid") != job.Get("Job-Uuid") || bj.Body != "+OK Success\n" || bj.Get("Job-Command") != "uuid_record" {
		t.Errorf("BACKGROUND_JOB %v body %q", bj.Header, bj.Body)
	}
	srv.Advance(1000 * time.Millisecond) // 4010
	c.send(t, "api uuid_record "+b+" unmask "+bPath)
	aPath := filepath.Join(dir, "acme", "a-short.wav")
	c.send(t, "api uuid_record "+a+" start "+aPath+" 3600 {RECORD_MIN_SEC=5,foo=bar}")
	c.next(t, "RECORD_START")
	srv.RunUntilIdle() // hangup at 6010

	var order []string
	for len(order) < 6 {
		select {
		case ev := <-c.evs:
			switch n := ev.Get("Event-Name"); n {
			case "CHANNEL_HANGUP", "RECORD_STOP", "CHANNEL_HANGUP_COMPLETE":
				order = append(order, n+" "+ev.Get("Unique-Id"))
				if n == "RECORD_STOP" {
					checkRecordStop(t, ev)
				}
			}
		case <-time.After(guard):
			t.Fatalf("hangup events so far: %v", order)
		}
	}
	wantOrder := []string{"CHANNEL_HANGUP " + a, "RECORD_STOP " + a, "CHANNEL_HANGUP_COMPLETE " + a, "CHANNEL_HANGUP " + b, "RECORD_STOP " + b, "CHANNEL_HANGUP_COMPLETE " + b}
	if diff := cmp.Diff(wantOrder, order); diff != "" {
		t.Errorf("hangup order (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(aPath); !os.IsNotExist(err) {
		t.Errorf("too-short recording still exists: %v", err)
	}
	files := srv.Files()
	got := map[string]FileRecord{}
	for _, f := range files {
		got[f.Path] = f
	}
	if f := got[aPath]; f.Cause != "input-too-short" || !f.Deleted || f.DurationMS != 2000 {
		t.Errorf("short recording %+v", f)
	}
	fb := got[bPath]
	if fb.Cause != "success-silence" || fb.DurationMS != 5000 || fb.Samples != 40000 {
		t.Errorf("callee recording %+v", fb)
	}
	if diff := cmp.Diff([]Span{{FromMS: 2000, ToMS: 3000}}, fb.Masked); diff != "" {
		t.Errorf("masked spans (-want +got):\n%s", diff)
	}
	rate, samples := readWAV(t, bPath)
	if rate != 8000 || len(samples) != 40000 {
		t.Fatalf("WAV: %d Hz, %d samples; want 8000 Hz, 40000", rate, len(samples))
	}
	checkAudio(t, samples, rate, []float64{hzA, hzB}, []Span{{0, 2000}, {3000, 5000}}, []Span{{2000, 3000}})
	if got := srv.Channels(); len(got) != 0 {
		t.Errorf("channels still up: %v", got)
	}
}

// checkRecordStop checks the record_* values of a RECORD_STOP against its
// Record-File-Path's FileRecord by arithmetic on the sample count.
func checkRecordStop(t *testing.T, ev *eventsocket.Event) {
	t.Helper()
	samples, err := strconv.Atoi(ev.Get("Variable_record_samples"))
	if err != nil {
		t.Errorf("RECORD_STOP %s: record_samples %q", ev.Get("Record-File-Path"), ev.Get("Variable_record_samples"))
		return
	}
	if ms := ev.Get("Variable_record_ms"); ms != strconv.Itoa(samples/8) {
		t.Errorf("RECORD_STOP: record_ms %s for %d samples", ms, samples)
	}
	if sec := ev.Get("Variable_record_seconds"); sec != strconv.Itoa(samples/8000) {
		t.Errorf("RECORD_STOP: record_seconds %s for %d samples", sec, samples)
	}
}

// checkAudio checks that each tone span carries every voice of hz at
// the full amplitude (Goertzel on 100 ms windows) and masked spans are
// exact zeros.
func checkAudio(t *testing.T, samples []int, rate int, hz []float64, tone, masked []Span) {
	t.Helper()
	at := func(ms int64) int { return int(ms * int64(rate) / 1000) }
	for _, sp := range masked {
		for i := at(sp.FromMS); i < at(sp.ToMS); i++ {
			if samples[i] != 0 {
				t.Errorf("masked span %v: sample %d is %d, want 0", sp, i, samples[i])
				break
			}
		}
	}
	for _, sp := range tone {
		for ms := sp.FromMS; ms+100 <= sp.ToMS; ms += 100 {
			for _, f := range hz {
				if got := ToneLevel(samples[at(ms):at(ms+100)], rate, f); math.Abs(got-ToneAmplitude) > ToneAmplitude/10 {
					t.Errorf("tone span %v at %d ms: %.0f Hz at level %.0f, want %d", sp, ms, f, got, ToneAmplitude)
					return
				}
			}
		}
	}
}

// TestSettledHoldsTheClock: with Config.Settled, Run moves the clock only
// once the client says it is done with every event written (here: once it
// has read them all), and after SettleTimeout without it.
func TestSettledHoldsTheClock(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		settle  bool // the client reads and reports what it read
	}{
		{"settled", time.Minute, true},
		{"never settled: the timeout advances the clock", 50 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var read, asked atomic.Int64
			var writtenSeen atomic.Int64
			srv, addr := startServer(t, Config{Quiet: time.Millisecond, SettleTimeout: tc.timeout, Settled: func(w int64) bool {
				asked.Add(1)
				writtenSeen.Store(w)
				return tc.settle && read.Load() == w
			}})
			c := dialRaw(t, addr)
			c.login(t, "CHANNEL_CREATE CHANNEL_ANSWER")
			call := scenario.Call{ID: "s", Legs: []scenario.Leg{{Name: "a", CallerIDNumber: "1001", DestinationNumber: "1002"}},
				Steps: []scenario.Step{{AtMS: 0, Do: "create", Leg: "a"}, {AtMS: 1000, Do: "answer", Leg: "a"}, {AtMS: 2000, Do: "hangup", Leg: "a"}}}
			if _, err := srv.StartCall(call); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- srv.Run(context.Background()) }()
			if !tc.settle {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				if asked.Load() == 0 || writtenSeen.Load() == 0 {
					t.Errorf("Settled asked %d times, last with %d events written: want asked with the events", asked.Load(), writtenSeen.Load())
				}
				return
			}
			// The create is written at 0 ms; until it is read the clock
			// stays there, however often Settled is asked.
			ev := c.nextEvent(t)
			for deadline := time.Now().Add(10 * time.Second); asked.Load() < 5; runtime.Gosched() {
				if time.Now().After(deadline) {
					t.Fatalf("Settled asked %d times in 10 s, the clock at %v", asked.Load(), srv.Now())
				}
			}
			if now := srv.Now(); now != 0 {
				t.Fatalf("the clock moved to %v before the client settled", now)
			}
			if ev.Get("Event-Name") != "CHANNEL_CREATE" {
				t.Fatalf("first event %s", ev.Get("Event-Name"))
			}
			read.Add(1)
			if ev := c.nextEvent(t); ev.Get("Event-Name") != "CHANNEL_ANSWER" {
				t.Fatalf("second event %s", ev.Get("Event-Name"))
			}
			if now := srv.Now(); now != time.Second {
				t.Errorf("the answer written at %v, want 1s", now)
			}
			read.Add(1)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}
