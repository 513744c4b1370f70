package runtime

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/recpol/recpol/fakeswitch"
	"github.com/recpol/recpol/runtime/eslcmd"
	"github.com/recpol/recpol/runtime/store"
	"github.com/recpol/recpol/scenario"
	"github.com/recpol/recpol/table"
)

// restart stops the harness's runtime, as a crash would (its memory is
// gone; only the spool and storage remain), and starts a new one from the
// same configuration.
func (h *harness) restart(t *testing.T) {
	t.Helper()
	h.stop()
	cfg, err := LoadConfig(filepath.Join(h.dir, "runtime.cue"))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := New(cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	h.rt = rt
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- rt.Run(ctx) }()
	waitFor(t, "the new runtime to connect", func() bool { return rt.switches[0].client.Connected() })
}

// twoLegCall is an offnet call to agent-1: the account records the A-leg
// and the agent's user records the B-leg, both from the bridge.
// waitAdopted waits until the runtime has adopted n recordings of an
// earlier run: waiting for their leg, or continued in the call state it
// rebuilt from the switch.
func (h *harness) waitAdopted(t *testing.T, n int) {
	t.Helper()
	waitFor(t, "the recordings to be adopted", func() bool {
		e := h.rt.switches[0].engine
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(e.adopted)+e.restored() == n
	})
}

// restored counts the recordings the engine continues in a call state
// rebuilt after a restart. e.mu is held.
func (e *engine) restored() int {
	n := 0
	for _, r := range e.byID {
		if r.Trigger == "restored" {
			n++
		}
	}
	return n
}

func twoLegCall(id string, hangupMS int64) scenario.Call {
	return scenario.Call{ID: id, Legs: []scenario.Leg{
		{Name: "a", CallerIDNumber: "+15550100", DestinationNumber: "2001",
			Variables: map[string]string{"recpol_account": "acme", "recpol_network": "offnet"}},
		{Name: "b", Parent: "a", DestinationNumber: "2001",
			Variables: map[string]string{"recpol_account": "acme", "recpol_device": "agent-1", "recpol_network": "onnet"}},
	}, Steps: []scenario.Step{
		{AtMS: 0, Do: "create", Leg: "a"},
		{AtMS: 10, Do: "create", Leg: "b"},
		{AtMS: 1000, Do: "answer", Leg: "b"},
		{AtMS: 1000, Do: "answer", Leg: "a"},
		{AtMS: 1010, Do: "bridge", Leg: "a", Other: "b"},
		{AtMS: hangupMS, Do: "hangup", Leg: "a"},
	}}
}

func startsSent(srv *fakeswitch.Server) int {
	n := 0
	for _, c := range srv.Commands() {
		if strings.Contains(c.Line, "uuid_record") && strings.Contains(c.Line, " start ") {
			n++
		}
	}
	return n
}

// liveIntents reads the live intents of the harness's spool from disk,
// by recording id: the intent log's and any intent file.
func liveIntents(t *testing.T, h *harness) map[string][]byte {
	t.Helper()
	dir := filepath.Join(h.dir, "spool", "active")
	live, bad, err := readIntentLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("unreadable lines in the intent log: %+v", bad)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		live[filepath.Base(f)] = b
	}
	return live
}

// checkStoredOnce checks that the store holds exactly the recordings of
// the given legs, each once, and that no intent is left.
func checkStoredOnce(t *testing.T, h *harness, legs map[string]string) {
	t.Helper()
	waitFor(t, "the intents to be removed", func() bool { return len(liveIntents(t, h)) == 0 })
	stored, err := h.rt.Store.List(store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, m := range stored {
		got[m.CallID]++
		if m.DurationMS < 20000 {
			t.Errorf("recording %s of %s: duration %d ms", m.RecordingID, m.CallID, m.DurationMS)
		}
	}
	for _, leg := range []string{legs["a"], legs["b"]} {
		if got[leg] != 1 {
			t.Errorf("leg %s: %d recordings stored, want 1 (stored: %v)", leg, got[leg], got)
		}
	}
	if len(stored) != 2 {
		t.Errorf("%d recordings stored, want 2", len(stored))
	}
}

// TestRestartWhileRecording: the runtime dies while two recordings run;
// the new runtime finds their intents, sees their leg still up, adopts
// them, and stores both at the call's end.
func TestRestartWhileRecording(t *testing.T) {
	h := startHarness(t, "../testdata/policies/agreement", "")
	legs, err := h.srv.StartCall(twoLegCall("adopt", 30000))
	if err != nil {
		t.Fatal(err)
	}
	h.srv.Advance(1010 * time.Millisecond)
	waitFor(t, "two recordings to start", func() bool { return startsSent(h.srv) == 2 })
	waitFor(t, "two intents", func() bool { return len(liveIntents(t, h)) == 2 })
	// Intents hold call metadata: only the runtime's user reads them.
	for _, f := range []string{filepath.Join(h.dir, "spool", "active", intentLogName), filepath.Join(h.dir, "spool", "active")} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if want := os.FileMode(0o600); fi.IsDir() && fi.Mode().Perm() != 0o700 || !fi.IsDir() && fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v", f, fi.Mode().Perm())
		}
	}
	h.restart(t)
	h.waitAdopted(t, 2)
	h.srv.Advance(30 * time.Second)
	h.waitFinished(t, 2)
	checkStoredOnce(t, h, legs)
}

// TestRestartAfterHangup: the runtime dies while two recordings run and
// the call ends before it is back (the RECORD_STOPs are lost); the new
// runtime finds the legs gone and stores both recordings from their files.
func TestRestartAfterHangup(t *testing.T) {
	h := startHarness(t, "../testdata/policies/agreement", "")
	legs, err := h.srv.StartCall(twoLegCall("gone", 30000))
	if err != nil {
		t.Fatal(err)
	}
	h.srv.Advance(1010 * time.Millisecond)
	waitFor(t, "two recordings to start", func() bool { return startsSent(h.srv) == 2 })
	waitFor(t, "two intents", func() bool { return len(liveIntents(t, h)) == 2 })
	h.stop()
	h.srv.Advance(30 * time.Second)
	if len(h.srv.Channels()) != 0 {
		t.Fatalf("legs still up: %v", h.srv.Channels())
	}
	h.restart(t)
	h.waitFinished(t, 2)
	checkStoredOnce(t, h, legs)
}

// TestRestartedSwitchFinishesIntents: the runtime dies while recordings
// run and the switch it comes back to is another process (a new
// Core-UUID, none of the old legs): the intents are finished from their
// files without asking for legs the new switch cannot know.
func TestRestartedSwitchFinishesIntents(t *testing.T) {
	rec := t.TempDir()
	srv := fakeswitch.New(fakeswitch.Config{Password: "ClueCon", RecordingsDir: rec, Quiet: 20 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	px := newProxy(t, ln.Addr().String())
	h := startHarnessOpts(t, "../testdata/policies/agreement", harnessOpts{srv: srv, addr: px.ln.Addr().String(), rec: rec})
	legs, err := srv.StartCall(twoLegCall("restart", 30000))
	if err != nil {
		t.Fatal(err)
	}
	srv.Advance(1010 * time.Millisecond)
	waitFor(t, "two recordings to start", func() bool { return startsSent(srv) == 2 })
	waitFor(t, "two intents", func() bool { return len(liveIntents(t, h)) == 2 })
	h.stop()
	srv.Advance(30 * time.Second) // the old switch writes its files out
	srv.Close()
	srv2 := fakeswitch.New(fakeswitch.Config{Password: "ClueCon", RecordingsDir: rec, Quiet: 20 * time.Millisecond})
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv2.Serve(ln2)
	t.Cleanup(func() { srv2.Close() })
	px.retarget(ln2.Addr().String())
	h.srv = srv2
	h.restart(t)
	h.waitFinished(t, 2)
	checkStoredOnce(t, h, legs)
}

// TestCorruptIntentQuarantined: intents that are not JSON, name another
// recording, point outside the switch's directory or are not regular files
// are moved to the spool's quarantine at startup; the runtime runs on and
// counts them.
func TestCorruptIntentQuarantined(t *testing.T) {
	h := startHarness(t, "../testdata/policies/agreement", "")
	active := filepath.Join(h.dir, "spool", "active")
	good := `{"version":1,"switch":"%s","core_uuid":"","leg":"leg-1","path":"%s","meta":{"recording_id":"%s","call_id":"leg-1","account":"acme","format":"wav","start":"2026-11-21T09:00:00Z"}}`
	sw := h.rt.switches[0].cfg
	writes := map[string]string{
		"0123.json":     "{not json",
		"4567.json":     sprintf3(good, "", "/x", "4567"),
		"89ab.json":     sprintf3(good, sw.Name, "/etc/passwd", "89ab"),
		"cdef.json":     sprintf3(good, sw.Name, "/../../x", "cdef"),
		"feed.json":     `{"version":1,"switch":"` + sw.Name + `","extra":true}`,
		"half.json.tmp": `{"version":1`,
	}
	for name, data := range writes {
		if err := os.WriteFile(filepath.Join(active, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(active, "link.json")); err != nil {
		t.Fatal(err)
	}
	h.restart(t)
	waitFor(t, "the intents to be quarantined", func() bool { return len(liveIntents(t, h)) == 0 })
	q, _ := filepath.Glob(filepath.Join(h.dir, "spool", "quarantine", "intent-*"))
	if len(q) != 6 {
		t.Errorf("%d intents quarantined, want 6: %v", len(q), q)
	}
	if n := counterValue(h.rt.Metrics.Finished.WithLabelValues("quarantined")); n != 6 {
		t.Errorf("quarantined metric %v, want 6", n)
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Errorf("/etc/passwd: %v", err)
	}
	// The runtime still records.
	legs, err := h.srv.StartCall(twoLegCall("after", 30000))
	if err != nil {
		t.Fatal(err)
	}
	h.srv.Advance(1010 * time.Millisecond)
	waitFor(t, "two recordings to start", func() bool { return startsSent(h.srv) == 2 })
	time.Sleep(50 * time.Millisecond)
	h.srv.Advance(30 * time.Second)
	h.waitFinished(t, 2)
	checkStoredOnce(t, h, legs)
}

func sprintf3(format, a, b, c string) string {
	return strings.Replace(strings.Replace(strings.Replace(format, "%s", a, 1), "%s", b, 1), "%s", c, 1)
}

// runOn is one run of the engine over the spool's intents, connected to
// the switch "core-1": what a restarted runtime starts with.
func runOn(t *testing.T, spool string, sw SwitchConfig, tb *table.Table, fin Finisher) *engine {
	t.Helper()
	in, err := openIntents(spool, quietLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(sw, Classify{Preset: "recpol"}, func() *table.Table { return tb }, fin, quietLogger(), nil)
	e.intents = in
	e.connected("core-1")
	return e
}

// TestReattachAfterRestart: a run dies while the account records a call;
// the new run, seeing the call again mid-call, takes the same decision and
// continues the recording already running (its id and path, the start
// repeated) instead of starting a second one; the recording is finished
// once, at its RECORD_STOP, under its original id.
func TestReattachAfterRestart(t *testing.T) {
	spool := t.TempDir()
	tb := exampleTable(t)
	sw := SwitchConfig{Name: "fs1", RecordDir: "/rec", LocalDir: filepath.Join(spool, "rec")}
	newRun := func(fin Finisher) *engine { return runOn(t, spool, sw, tb, fin) }
	a := "aaaa-1"
	// A recording starts once its leg has media: the call is seen first
	// at its answer.
	create := ev("CHANNEL_ANSWER", a, 0, "Call-Direction", "inbound", "Channel-Name", "sofia/external/+15551234",
		"Caller-Caller-ID-Number", "+15551234", "Caller-Destination-Number", "2000",
		"variable_recpol_account", "pci-callcentre", "variable_recpol_network", "offnet")
	e1 := newRun(&finishes{})
	e1.Handle(create)
	drain(e1)
	var first string
	for p := range e1.byPath {
		first = p
		e1.writeIntent(eslcmd.RecordStart{UUID: a, Path: p, TimeLimit: 10800})
	}
	if first == "" {
		t.Fatal("the first run started no recording")
	}
	// The first run dies. The second sees the call's next event.
	fin := &finishes{}
	e2 := newRun(fin)
	if len(e2.adopted) != 1 {
		t.Fatalf("%d intents adopted, want 1", len(e2.adopted))
	}
	e2.Handle(ev("CHANNEL_ANSWER", a, 3000, "Call-Direction", "inbound", "Channel-Name", "sofia/external/+15551234",
		"Caller-Caller-ID-Number", "+15551234", "Caller-Destination-Number", "2000",
		"variable_recpol_account", "pci-callcentre", "variable_recpol_network", "offnet"))
	for {
		select {
		case c := <-e2.out:
			if s, ok := c.(eslcmd.RecordStart); ok && s.Path != first {
				t.Errorf("a second recording was started: %s", c)
			}
			continue
		default:
		}
		break
	}
	if len(e2.byPath) != 1 || e2.byPath[first] == nil {
		t.Fatalf("the second run follows %v, want only %s", e2.byPath, first)
	}
	e2.Handle(&Event{Name: "RECORD_STOP", Headers: map[string]string{"Unique-ID": a, "Record-File-Path": first,
		"Record-Completion-Cause": "success-silence", "variable_record_ms": "9000", "Event-Date-Timestamp": "9000000"}})
	e2.Handle(ev("CHANNEL_HANGUP_COMPLETE", a, 9000))
	if len(fin.got) != 1 || !strings.Contains(first, fin.got[0].Meta.RecordingID) {
		t.Fatalf("finished %+v, want the recording of %s once", fin.got, first)
	}
	if n := e2.m.Legs(); n != 0 {
		t.Errorf("%d legs left", n)
	}
}

// TestMaskSurvivesRestart: the agent masks the call with *72 and the
// runtime dies while the mask is in force. Its intents say so, so the
// recordings it could no longer follow are stored with the mask as a
// range to their end, exactly where the switch's files are silent: after
// the call ended while the runtime was down (finished from the files),
// and when the call is still up at the restart (adopted, finished at
// their RECORD_STOP; the new run does not know the call's metaflows, so
// the switch keeps masking to the end, which is what it reports).
func TestMaskSurvivesRestart(t *testing.T) {
	for _, legUp := range []bool{false, true} {
		name := "call ended while down"
		if legUp {
			name = "call still up at the restart"
		}
		t.Run(name, func(t *testing.T) {
			h := startHarness(t, "../testdata/policies/agreement", "")
			call := twoLegCall("maskkill", 30000)
			hangup := call.Steps[len(call.Steps)-1]
			call.Steps = append(call.Steps[:len(call.Steps)-1],
				scenario.Step{AtMS: 5000, Do: "dtmf", Leg: "b", Digits: "*72"}, hangup)
			legs, err := h.srv.StartCall(call)
			if err != nil {
				t.Fatal(err)
			}
			h.srv.Advance(1010 * time.Millisecond)
			waitFor(t, "two recordings to start", func() bool { return startsSent(h.srv) == 2 })
			time.Sleep(100 * time.Millisecond)
			h.srv.Advance(3990 * time.Millisecond) // the *72, at 5 s
			waitFor(t, "two masks", func() bool { return countCommands(h.srv, " mask ") == 2 })
			for id, b := range liveIntents(t, h) {
				if !strings.Contains(string(b), `"masked_from_ms":3990`) {
					t.Errorf("intent %s does not hold the mask: %s", id, b)
				}
			}
			if legUp {
				h.restart(t)
				h.waitAdopted(t, 2)
				h.srv.Advance(25 * time.Second)
			} else {
				h.stop()
				h.srv.Advance(25 * time.Second)
				h.restart(t)
			}
			h.waitFinished(t, 2)
			checkStoredOnce(t, h, legs)
			checkMasked(t, h, func(f fakeswitch.FileRecord) []store.Range {
				return []store.Range{{StartMS: 3990, EndMS: f.DurationMS}}
			})
		})
	}
}

// TestUnmaskAfterRestart: the agent masks the call with *72, the runtime
// dies while the mask is in force and starts again while the call goes on;
// it rebuilds the call from the switch (show channels, uuid_dump), so the
// agent's *73 afterwards unmasks both recordings: the files are silent from
// the *72 to the *73 only, and the metadata says so.
func TestUnmaskAfterRestart(t *testing.T) {
	h := startHarness(t, "../testdata/policies/agreement", "")
	call := twoLegCall("unmaskkill", 30000)
	hangup := call.Steps[len(call.Steps)-1]
	call.Steps = append(call.Steps[:len(call.Steps)-1],
		scenario.Step{AtMS: 5000, Do: "dtmf", Leg: "b", Digits: "*72"},
		scenario.Step{AtMS: 15000, Do: "dtmf", Leg: "b", Digits: "*73"}, hangup)
	legs, err := h.srv.StartCall(call)
	if err != nil {
		t.Fatal(err)
	}
	// The engine of the runtime running now: h.restart replaces it.
	running := func() int { return h.rt.switches[0].engine.runningOnSwitch() }
	h.srv.Advance(1010 * time.Millisecond)
	waitFor(t, "two recordings to run", func() bool { return running() == 2 })
	h.srv.Advance(3990 * time.Millisecond) // the *72, at 5 s
	waitFor(t, "two masks", func() bool { return countCommands(h.srv, " mask ") == 2 })
	waitFor(t, "the masks in the intents", func() bool {
		n := 0
		for _, b := range liveIntents(t, h) {
			if strings.Contains(string(b), `"masked_from_ms":3990`) {
				n++
			}
		}
		return n == 2
	})
	h.restart(t)
	waitFor(t, "the call rebuilt with both recordings", func() bool { return running() == 2 })
	h.srv.Advance(10 * time.Second) // the *73, at 15 s
	waitFor(t, "two unmasks", func() bool { return countCommands(h.srv, " unmask ") == 2 })
	h.srv.Advance(15 * time.Second)
	h.waitFinished(t, 2)
	checkStoredOnce(t, h, legs)
	checkMasked(t, h, func(fakeswitch.FileRecord) []store.Range {
		return []store.Range{{StartMS: 3990, EndMS: 13990}}
	})
}

// checkMasked checks every stored recording against the masked spans want
// says its file must have: the switch's spans, the metadata's ranges, the
// WAV silent in each span and not silent after the last one.
func checkMasked(t *testing.T, h *harness, want func(fakeswitch.FileRecord) []store.Range) {
	t.Helper()
	stored, err := h.rt.Store.List(store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]fakeswitch.FileRecord{}
	for _, f := range h.srv.Files() {
		files[f.UUID] = f
	}
	for _, m := range stored {
		f := files[m.CallID]
		w := want(f)
		var masked []store.Range
		for _, sp := range f.Masked {
			masked = append(masked, store.Range{StartMS: sp.FromMS, EndMS: sp.ToMS})
		}
		if diff := cmp.Diff(w, masked); diff != "" {
			t.Fatalf("recording %s: the switch masked (-want +got):\n%s", m.RecordingID, diff)
		}
		if diff := cmp.Diff(w, m.MaskedRanges); diff != "" {
			t.Errorf("recording %s: metadata masked ranges (-want +got):\n%s", m.RecordingID, diff)
		}
		_, path, err := h.rt.Store.Get(m.RecordingID)
		if err != nil {
			t.Fatal(err)
		}
		samples := wavSamples(t, path)
		for _, r := range w {
			if all, _ := silent(samples, f.SampleRate, r.StartMS, r.EndMS); !all {
				t.Errorf("recording %s: the masked span %d-%d ms holds audio", m.RecordingID, r.StartMS, r.EndMS)
			}
		}
		if end := w[len(w)-1].EndMS; end+10 < f.DurationMS {
			if all, _ := silent(samples, f.SampleRate, end+10, f.DurationMS); all {
				t.Errorf("recording %s: still silent after the unmask at %d ms", m.RecordingID, end)
			}
		}
	}
}

// TestReattachMasked: a run dies while the call is masked; the new run,
// continuing the recording, masks it again (the earlier mask may not have
// reached the switch), knows the call is masked, and an unmask closes the
// range on the file's clock kept in the intent.
func TestReattachMasked(t *testing.T) {
	spool := t.TempDir()
	tb := exampleTable(t)
	sw := SwitchConfig{Name: "fs1", RecordDir: "/rec", LocalDir: filepath.Join(spool, "rec")}
	newRun := func(fin Finisher) *engine { return runOn(t, spool, sw, tb, fin) }
	// send plays the sender: each command's intent, then the command.
	send := func(e *engine) []string {
		var out []string
		for {
			select {
			case c := <-e.out:
				e.writeIntent(c)
				out = append(out, c.String())
				continue
			default:
			}
			return out
		}
	}
	a := "aaaa-2"
	vars := []string{"Call-Direction", "inbound", "Channel-Name", "sofia/external/+15551234",
		"Caller-Caller-ID-Number", "+15551234", "Caller-Destination-Number", "2000",
		"variable_recpol_account", "pci-callcentre", "variable_recpol_network", "offnet"}
	e1 := newRun(&finishes{})
	e1.Handle(ev("CHANNEL_ANSWER", a, 0, vars...))
	send(e1)
	var path string
	for p := range e1.byPath {
		path = p
	}
	if path == "" {
		t.Fatal("the first run started no recording")
	}
	e1.Handle(ev("RECORD_START", a, 1000, "Record-File-Path", path))
	e1.act(a, "mask", 3000*1000)
	if cmds := send(e1); len(cmds) != 1 || !strings.HasPrefix(cmds[0], "uuid_record "+a+" mask ") {
		t.Fatalf("the first run sent %q, want its mask", cmds)
	}
	// The first run dies with the call masked.
	fin := &finishes{}
	e2 := newRun(fin)
	e2.Handle(ev("CHANNEL_ANSWER", a, 4000, vars...))
	var masks int
	for _, c := range send(e2) {
		if c == "uuid_record "+a+" mask "+path {
			masks++
		}
	}
	if masks != 1 {
		t.Errorf("the second run masked %s %d times, want once", path, masks)
	}
	e2.act(a, "unmask", 5000*1000)
	e2.Handle(ev("RECORD_STOP", a, 9000, "Record-File-Path", path, "Record-Completion-Cause", "success-silence", "variable_record_ms", "8000"))
	if len(fin.got) != 1 {
		t.Fatalf("finished %d recordings, want 1", len(fin.got))
	}
	if diff := cmp.Diff([]store.Range{{StartMS: 2000, EndMS: 4000}}, fin.got[0].Meta.MaskedRanges); diff != "" {
		t.Errorf("masked ranges (-want +got):\n%s", diff)
	}
}

// TestIntentWriteAfterDone: a write the sender built before its recording
// ended, and that runs after the store took the recording, does not bring
// the intent back; the memory of finished recordings is bounded.
func TestIntentWriteAfterDone(t *testing.T) {
	spool, in := openTestIntents(t)
	if err := in.write(testIntent("r1")); err != nil {
		t.Fatal(err)
	}
	if !in.claim("r1") {
		t.Fatal("claim of a new recording refused")
	}
	in.done("r1")
	if err := in.write(testIntent("r1")); err != nil {
		t.Fatal(err)
	}
	if live, _, err := readIntentLog(filepath.Join(spool, "active")); err != nil || live["r1"] != nil {
		t.Errorf("the intent came back after its recording was stored: %s %v", live["r1"], err)
	}
	if in.claim("r1") {
		t.Error("a stored recording was claimed again")
	}
	for i := range recordingsRemembered {
		in.done(fmt.Sprintf("x%d", i))
	}
	in.mu.Lock()
	n := len(in.finished)
	in.mu.Unlock()
	if n != recordingsRemembered {
		t.Errorf("%d finished recordings remembered, want %d", n, recordingsRemembered)
	}
	if !in.claim("r1") {
		t.Error("the oldest finished recording is still remembered")
	}
}

// TestIntentLogOpen opens intent logs as a crash or a bad disk leaves
// them: the last record of each recording is its intent, a "done" ends
// it, an unreadable line is quarantined (the others are kept), an
// unfinished last line is dropped, intent files of earlier versions are
// taken in; the log is rewritten with the live intents only.
func TestIntentLogOpen(t *testing.T) {
	put := func(id, path string) string {
		return `{"put":{"version":1,"switch":"fs1","core_uuid":"","leg":"leg-1","path":"` + path + `","meta":{"recording_id":"` + id + `","call_id":"leg-1","account":"acme","format":"wav","start":"2026-11-21T09:00:00Z"}}}` + "\n"
	}
	done := func(id string) string { return `{"done":"` + id + `"}` + "\n" }
	tests := []struct {
		name   string
		log    string
		files  map[string]string // intent files of an earlier version
		want   []string          // live recording ids
		paths  map[string]string // recording id: path of its intent
		quarts int               // quarantined
	}{
		{name: "empty"},
		{name: "put, masked again, done",
			log:  put("r1", "/rec/acme/r1.wav") + put("r2", "/rec/acme/r2.wav") + put("r1", "/rec/acme/r1.wav") + done("r2"),
			want: []string{"r1"}},
		{name: "the last put wins",
			log:   put("r1", "/rec/acme/old.wav") + put("r1", "/rec/acme/r1.wav"),
			want:  []string{"r1"},
			paths: map[string]string{"r1": "/rec/acme/r1.wav"}},
		{name: "unreadable lines quarantined",
			log:    put("r1", "/rec/acme/r1.wav") + "{not json\n" + `{"put":{},"done":"x"}` + "\n" + `{"done":"../x"}` + "\n" + `{"extra":1}` + "\n" + put("r2", "/rec/acme/r2.wav"),
			want:   []string{"r1", "r2"},
			quarts: 4},
		{name: "unfinished last line dropped",
			log:  put("r1", "/rec/acme/r1.wav") + strings.TrimSuffix(put("r2", "/rec/acme/r2.wav"), "}\n"),
			want: []string{"r1"}},
		{name: "a done cut short keeps the intent",
			log:  put("r1", "/rec/acme/r1.wav") + `{"done":"r`,
			want: []string{"r1"}},
		{name: "intent files taken in",
			log: put("r1", "/rec/acme/r1.wav"),
			files: map[string]string{
				"r3.json":     strings.TrimSuffix(strings.TrimPrefix(put("r3", "/rec/acme/r3.wav"), `{"put":`), "}\n"),
				"r4.json":     "{not json",
				"r5.json.tmp": `{"version":1`,
			},
			want:   []string{"r1", "r3"},
			quarts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spool := t.TempDir()
			active := filepath.Join(spool, "active")
			if err := os.MkdirAll(active, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(active, intentLogName), []byte(tt.log), 0o600); err != nil {
				t.Fatal(err)
			}
			for name, data := range tt.files {
				if err := os.WriteFile(filepath.Join(active, name), []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			in, quarantined := openCounting(t, spool)
			var got []string
			for _, it := range in.list(SwitchConfig{Name: "fs1", RecordDir: "/rec"}) {
				got = append(got, it.Meta.RecordingID)
				if p := tt.paths[it.Meta.RecordingID]; p != "" && it.Path != p {
					t.Errorf("%s: path %s, want %s", it.Meta.RecordingID, it.Path, p)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("live intents (-want +got):\n%s", diff)
			}
			if *quarantined != tt.quarts {
				t.Errorf("%d quarantined, want %d", *quarantined, tt.quarts)
			}
			q, _ := filepath.Glob(filepath.Join(spool, "quarantine", "intent-*"))
			if len(q) != tt.quarts {
				t.Errorf("%d files in quarantine, want %d", len(q), tt.quarts)
			}
			// Rewritten: one line per live intent, nothing else in the
			// directory.
			b, err := os.ReadFile(filepath.Join(active, intentLogName))
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(b), "\n"); n != len(tt.want) || (len(b) > 0 && b[len(b)-1] != '\n') {
				t.Errorf("rewritten log holds %d lines, want %d:\n%s", n, len(tt.want), b)
			}
			if n, err := PendingIntents(spool); err != nil || n != len(tt.want) {
				t.Errorf("PendingIntents: %d %v, want %d", n, err, len(tt.want))
			}
			ents, _ := os.ReadDir(active)
			if len(ents) != 1 {
				t.Errorf("%d entries in %s, want the log only", len(ents), active)
			}
		})
	}
}

// TestIntentLogNotAFile: a link or a directory in the place of the intent
// log (or of its temporary file) is set aside in the quarantine, never
// followed; the runtime starts with an empty log and records on.
func TestIntentLogNotAFile(t *testing.T) {
	for _, kind := range []string{"link", "dir", "tmp link"} {
		t.Run(kind, func(t *testing.T) {
			spool := t.TempDir()
			active := filepath.Join(spool, "active")
			if err := os.MkdirAll(active, 0o700); err != nil {
				t.Fatal(err)
			}
			victim := filepath.Join(t.TempDir(), "victim")
			if err := os.WriteFile(victim, []byte("keep me\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			var err error
			switch kind {
			case "link":
				err = os.Symlink(victim, filepath.Join(active, intentLogName))
			case "dir":
				err = os.Mkdir(filepath.Join(active, intentLogName), 0o700)
			case "tmp link":
				err = os.Symlink(victim, filepath.Join(active, intentLogName+".tmp"))
			}
			if err != nil {
				t.Fatal(err)
			}
			in, quarantined := openCounting(t, spool)
			if want := map[bool]int{true: 0, false: 1}[kind == "tmp link"]; *quarantined != want {
				t.Errorf("%d quarantined, want %d", *quarantined, want)
			}
			if b, err := os.ReadFile(victim); err != nil || string(b) != "keep me\n" {
				t.Errorf("the link's target was written: %q %v", b, err)
			}
			if err := in.write(testIntent("r1")); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(filepath.Join(active, intentLogName))
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
				t.Fatalf("the new log: %v %v", fi, err)
			}
			if n, err := PendingIntents(spool); err != nil || n != 1 {
				t.Errorf("PendingIntents %d %v, want 1", n, err)
			}
		})
	}
}

// testIntent is the intent of recording id on switch fs1.
func testIntent(id string) *intent {
	return &intent{Version: 1, Switch: "fs1", Leg: "leg-1", Path: "/rec/acme/" + id + ".wav",
		Meta: store.Metadata{RecordingID: id, CallID: "leg-1", Account: "acme", Format: "wav", Start: time.Now()}}
}

// openTestIntents opens the intent log of a new spool.
func openTestIntents(t *testing.T) (string, *intents) {
	t.Helper()
	spool := t.TempDir()
	in, _ := openCounting(t, spool)
	return spool, in
}

// existsAPI answers uuid_exists for every leg with exists.
type existsAPI struct{ exists bool }

func (a existsAPI) API(ctx context.Context, cmd string) (string, error) {
	if !strings.HasPrefix(cmd, "uuid_exists ") {
		return "", fmt.Errorf("unexpected command %q", cmd)
	}
	return fmt.Sprintf("%t", a.exists), nil
}

// TestRecheckFinishesLostLegs: a leg that still existed when the engine
// asked at a reconnection (FreeSWITCH keeps a session until its files are
// closed) and whose hangup was then never seen is asked about again; once
// it is gone its recording is finished from its file, once. So are adopted
// recordings of an earlier run.
func TestRecheckFinishesLostLegs(t *testing.T) {
	spool := t.TempDir()
	tb := exampleTable(t)
	sw := SwitchConfig{Name: "fs1", RecordDir: "/rec", LocalDir: filepath.Join(spool, "rec")}
	a := "aaaa-1"
	fin1 := &finishes{}
	e1 := runOn(t, spool, sw, tb, fin1)
	e1.Handle(ev("CHANNEL_ANSWER", a, 0, "Call-Direction", "inbound", "Channel-Name", "sofia/external/+15551234",
		"Caller-Caller-ID-Number", "+15551234", "Caller-Destination-Number", "2000",
		"variable_recpol_account", "pci-callcentre", "variable_recpol_network", "offnet"))
	drain(e1)
	for p := range e1.byPath {
		e1.writeIntent(eslcmd.RecordStart{UUID: a, Path: p, TimeLimit: 10800})
	}
	if len(e1.byPath) != 1 {
		t.Fatalf("%d recordings started, want 1", len(e1.byPath))
	}
	ctx := context.Background()
	count := func(f *finishes) int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.got)
	}

	// A run that follows the recording: the leg exists at the
	// reconnection, then is gone.
	e1.reconcile(ctx, existsAPI{true}, "core-1", false)
	e1.recheck(ctx, existsAPI{true})
	if n := count(fin1); n != 0 {
		t.Fatalf("%d recordings finished while their leg exists", n)
	}
	e1.recheck(ctx, existsAPI{false})
	e1.recheck(ctx, existsAPI{false})
	if n := count(fin1); n != 1 || fin1.got[0].Cause != "reconciled" {
		t.Fatalf("finished %+v, want the recording once", fin1.got)
	}

	// A new run adopts the intent (the first run's Finish never
	// completed): the same.
	fin2 := &finishes{}
	e2 := runOn(t, spool, sw, tb, fin2)
	if len(e2.adopted) != 1 {
		t.Fatalf("%d intents adopted, want 1", len(e2.adopted))
	}
	e2.recheck(ctx, existsAPI{true})
	if n := count(fin2); n != 0 {
		t.Fatalf("%d adopted recordings finished while their leg exists", n)
	}
	e2.recheck(ctx, existsAPI{false})
	e2.recheck(ctx, existsAPI{false})
	if n := count(fin2); n != 1 || fin2.got[0].Cause != "recovered" {
		t.Errorf("finished %+v, want the adopted recording once", fin2.got)
	}
	if len(e2.adopted) != 0 {
		t.Errorf("%d still adopted", len(e2.adopted))
	}
}

// openCounting opens the intent log of spool, closed at the test's end,
// and counts what it quarantines.
func openCounting(t *testing.T, spool string) (*intents, *int) {
	t.Helper()
	n := new(int)
	in, err := openIntents(spool, quietLogger(), func() { *n++ })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.close)
	return in, n
}
