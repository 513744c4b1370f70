package runtime

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/runtime/eslcmd"
	"github.com/recpol/recpol/runtime/eslwire"
	"github.com/recpol/recpol/runtime/store"
	"github.com/recpol/recpol/table"
)

// fuzzPolicy is the example policy plus an account in the shape of the
// real captures (acme, devices d1 and d2) with metaflows on every action,
// so that mutated captures reach recording, masking and pausing.
const fuzzPolicy = `package recpol
accounts: acme: {
	call_recording: account: inbound: onnet: enabled: true
	call_recording: endpoint: any: any: record_on_answer: true
	devices: d1: call_recording: outbound: onnet: {enabled: true, format: "wav"}
	devices: d2: call_recording: inbound: any: enabled: true
	metaflows: {
		listen_on: "both"
		numbers: {
			"1": {module: "record_call", data: action: "mask"}
			"2": {module: "record_call", data: action: "unmask"}
			"3": {module: "record_call", data: action: "pause"}
			"4": {module: "record_call", data: action: "resume"}
			"5": {module: "record_call", data: action: "toggle"}
			"6": {module: "record_call", data: action: "start"}
			"7": {module: "record_call", data: action: "stop"}
		}
	}
	callflows: cf: {numbers: ["9000"], actions: [{module: "record_caller", data: {time_limit: 60}}]}
}
`

var (
	fuzzTableOnce sync.Once
	fuzzTable     *table.Table
	fuzzTableErr  error
)

func fuzzEngineTable(tb testing.TB) *table.Table {
	fuzzTableOnce.Do(func() {
		files, err := compiler.ReadDir("../testdata/policies/example")
		if err != nil {
			fuzzTableErr = err
			return
		}
		files = append(files, compiler.File{Name: "acme.cue", Data: []byte(fuzzPolicy)})
		res := compiler.Options{}.CompileFiles(files)
		if res.Table == nil {
			fuzzTableErr = fmt.Errorf("%v", res.Diagnostics)
			return
		}
		fuzzTable = res.Table
	})
	if fuzzTableErr != nil {
		tb.Fatal(fuzzTableErr)
	}
	return fuzzTable
}

// Every command the engine may send, strictly: a uuid, an action, a path the
// runtime built (record dir, account id, a 32-hex recording id), and for a
// start the limit and the recording variables. Nothing else may reach the
// event socket, so no event content can inject a command.
var (
	fuzzUUID   = `[A-Za-z0-9][A-Za-z0-9-]{0,127}`
	fuzzPath   = `/rec/[A-Za-z0-9][A-Za-z0-9._-]{0,63}/[0-9a-f]{32}\.(?:mp3|wav)`
	commandREs = []*regexp.Regexp{
		regexp.MustCompile(`^uuid_record ` + fuzzUUID + ` start ` + fuzzPath +
			` [0-9]{1,6} \{RECORD_MIN_SEC=[0-9]{1,6},record_sample_rate=[0-9]{4,5}(?:,RECORD_READ_ONLY=true)?\}$`),
		regexp.MustCompile(`^uuid_record ` + fuzzUUID + ` (?:stop|mask|unmask|pause|resume) ` + fuzzPath + `$`),
		regexp.MustCompile(`^uuid_setvar ` + fuzzUUID + ` (?:recpol_recording_ids|ecallmgr_Media-Recording-ID) [0-9a-f]{32}(?:,[0-9a-f]{32})*$`),
		regexp.MustCompile(`^uuid_setvar ` + fuzzUUID + ` recording_follow_transfer (?:true|false)$`),
	}
	startRE = regexp.MustCompile(`^uuid_record (\S+) start (\S+) `)
)

func validCommand(cmd string) bool {
	for _, re := range commandREs {
		if re.MatchString(cmd) {
			return true
		}
	}
	return false
}

// countingFinisher counts finishes per recording id.
type countingFinisher struct{ n map[string]int }

func (c *countingFinisher) Finish(f Finished) { c.n[f.Meta.RecordingID]++ }

// fuzzEvents reads the text/event-plain frames of an event-socket stream.
func fuzzEvents(data []byte, max int) []*Event {
	r := bufio.NewReader(bytes.NewReader(data))
	var out []*Event
	for len(out) < max {
		fr, err := eslwire.ReadFrame(r)
		if err != nil {
			return out
		}
		if fr.Get("Content-Type") != eslwire.TypeEventPlain {
			continue
		}
		we, err := eslwire.ParseEventPlain(fr.Body)
		if err != nil {
			continue
		}
		e := &Event{Name: we.Name(), Headers: map[string]string{}, Body: we.Body}
		for _, h := range we.Headers {
			if _, dup := e.Headers[h.Name]; !dup {
				e.Headers[h.Name] = h.Value
			}
		}
		out = append(out, e)
	}
	return out
}

// runEngineEvents plays events through an engine the way the switch would
// answer: every start command is followed by its RECORD_START, and an
// event whose Record-File-Path is "@N" names the Nth recording started.
// It fails on a command outside the strict grammar and on a recording
// finished twice.
func runEngineEvents(t *testing.T, evs []*Event) (started, finished int) {
	fin := &countingFinisher{n: map[string]int{}}
	tb := fuzzEngineTable(t)
	preset := "recpol"
	if len(evs)%2 == 1 {
		preset = "kazoo"
	}
	e := newEngine(SwitchConfig{Name: "fs", RecordDir: "/rec", LocalDir: t.TempDir()}, Classify{Preset: preset},
		func() *table.Table { return tb }, fin, quietLogger(), nil)
	var paths []string
	var lastTS string
	check := func() {
		for {
			select {
			case c := <-e.out:
				cmd := c.String()
				if !validCommand(cmd) {
					t.Fatalf("the engine queued a command outside the grammar: %q", cmd)
				}
				if m := startRE.FindStringSubmatch(cmd); m != nil {
					paths = append(paths, m[2])
					e.Handle(&Event{Name: "RECORD_START", Headers: map[string]string{"Unique-ID": m[1],
						"Record-File-Path": m[2], "Event-Date-Timestamp": lastTS}})
				}
			default:
				return
			}
		}
	}
	for _, ev := range evs {
		if p := ev.Headers["Record-File-Path"]; strings.HasPrefix(p, "@") && len(paths) > 0 {
			n, _ := strconv.Atoi(p[1:])
			if n < 0 {
				n = -n
			}
			ev.Headers["Record-File-Path"] = paths[n%len(paths)]
		}
		lastTS = ev.Headers["Event-Date-Timestamp"]
		e.Handle(ev)
		check()
	}
	for id, n := range fin.n {
		if n > 1 {
			t.Fatalf("recording %s finished %d times", id, n)
		}
	}
	return len(paths), len(fin.n)
}

// engineSeed serializes events as the switch frames them.
func engineSeed(evs ...*eslwire.Event) []byte {
	var b []byte
	for _, e := range evs {
		b = eslwire.AppendFrame(b, e.PlainFrame())
	}
	return b
}

func wev(name, uuid string, ms int64, kv ...string) *eslwire.Event {
	e := &eslwire.Event{}
	e.Add("Event-Name", name)
	e.Add("Unique-ID", uuid)
	e.Add("Event-Date-Timestamp", strconv.FormatInt(ms*1000, 10))
	for i := 0; i+1 < len(kv); i += 2 {
		e.Add(kv[i], kv[i+1])
	}
	return e
}

// pciSeed is a PCI call with *72/*73 masking and a hang-up, on the example
// policy; acmeSeed exercises every metaflow action of the fuzz policy.
func pciSeed() []byte {
	a, b := "aaaa-1", "bbbb-2"
	evs := []*eslwire.Event{
		wev("CHANNEL_CREATE", a, 0, "Call-Direction", "inbound", "Channel-Name", "sofia/external/+15551234",
			"Caller-Caller-ID-Number", "+15551234", "Caller-Destination-Number", "+442071234567"),
		wev("CHANNEL_EXECUTE", a, 10, "Application", "bridge", "variable_recpol_account", "pci-callcentre", "variable_recpol_network", "offnet"),
		wev("CHANNEL_CREATE", b, 20, "Call-Direction", "outbound", "Other-Leg-Unique-ID", a,
			"variable_recpol_account", "pci-callcentre", "variable_recpol_device", "sup-phone", "variable_recpol_network", "onnet"),
		wev("CHANNEL_ANSWER", b, 3000), wev("CHANNEL_ANSWER", a, 3000),
		wev("CHANNEL_BRIDGE", a, 3010, "Bridge-A-Unique-ID", a, "Bridge-B-Unique-ID", b),
	}
	for i, d := range "*72" {
		evs = append(evs, wev("DTMF", b, 20000+int64(i)*100, "DTMF-Digit", string(d)))
	}
	for i, d := range "*73" {
		evs = append(evs, wev("DTMF", b, 35000+int64(i)*100, "DTMF-Digit", string(d)))
	}
	evs = append(evs, wev("CHANNEL_HANGUP", a, 60000))
	for i := 0; i < 3; i++ {
		evs = append(evs, wev("RECORD_STOP", a, 60000, "Record-File-Path", "@"+strconv.Itoa(i),
			"Record-Completion-Cause", "success-silence", "variable_record_ms", "56980"))
	}
	evs = append(evs, wev("CHANNEL_HANGUP_COMPLETE", a, 60000), wev("CHANNEL_HANGUP_COMPLETE", b, 60000))
	return engineSeed(evs...)
}

func acmeSeed() []byte {
	a, b := "c-a", "c-b"
	evs := []*eslwire.Event{
		wev("CHANNEL_CREATE", a, 0, "Call-Direction", "inbound", "Channel-Name", "sofia/internal/1001",
			"Caller-Caller-ID-Number", "1001", "Caller-Destination-Number", "9000",
			"variable_recpol_account", "acme", "variable_recpol_device", "d1", "variable_recpol_network", "onnet"),
		wev("CHANNEL_CREATE", b, 20, "Call-Direction", "outbound", "Other-Leg-Unique-ID", a,
			"variable_recpol_account", "acme", "variable_recpol_device", "d2", "variable_recpol_network", "onnet"),
		wev("CHANNEL_ANSWER", b, 1000), wev("CHANNEL_ANSWER", a, 1000),
		wev("CHANNEL_BRIDGE", a, 1010, "Bridge-A-Unique-ID", a, "Bridge-B-Unique-ID", b),
	}
	ts := int64(2000)
	for _, code := range []string{"*1", "*2", "*3", "*4", "*5", "*5", "*6", "*7", "*1"} {
		for _, d := range code {
			evs = append(evs, wev("DTMF", a, ts, "DTMF-Digit", string(d)))
			ts += 100
		}
	}
	evs = append(evs, wev("CHANNEL_EXECUTE", a, ts, "Application", "transfer"),
		wev("CHANNEL_HANGUP", b, ts+10), wev("RECORD_STOP", b, ts+10, "Record-File-Path", "@1",
			"Record-Completion-Cause", "success-silence", "variable_record_ms", "9000"),
		wev("CHANNEL_HANGUP", a, ts+20), wev("RECORD_STOP", a, ts+20, "Record-File-Path", "@0"),
		wev("CHANNEL_HANGUP_COMPLETE", b, ts+30), wev("CHANNEL_HANGUP_COMPLETE", a, ts+30))
	return engineSeed(evs...)
}

// hostileSeed carries channel variables and names crafted to inject
// event-socket commands or escape the recording directory.
func hostileSeed() []byte {
	a, b := "h-a", "h-b"
	return engineSeed(
		wev("CHANNEL_CREATE", a, 0, "Call-Direction", "inbound", "Channel-Name", "sofia/x\n\napi uuid_kill all",
			"Caller-Caller-ID-Number", "1 {x=y}", "Caller-Destination-Number", "9000\nexit",
			"variable_recpol_account", "acme", "variable_recpol_device", "../../etc", "variable_recpol_network", "onnet"),
		wev("CHANNEL_CREATE", "evil uuid\nbgapi originate", 5, "Call-Direction", "inbound"),
		wev("CHANNEL_CREATE", b, 20, "Call-Direction", "outbound", "Other-Leg-Unique-ID", a,
			"variable_recpol_account", "acme/../../x", "variable_recpol_device", "d2 {a=b}", "variable_recpol_network", "onnet"),
		wev("CHANNEL_ANSWER", b, 1000), wev("CHANNEL_ANSWER", a, 1000),
		wev("DTMF", a, 2000, "DTMF-Digit", "*"), wev("DTMF", a, 2100, "DTMF-Digit", "1\n"),
		wev("RECORD_STOP", a, 3000, "Record-File-Path", "/etc/passwd"),
		wev("CHANNEL_HANGUP_COMPLETE", a, 4000), wev("CHANNEL_HANGUP_COMPLETE", b, 4000))
}

// captureSeeds are the real FreeSWITCH captures, when they are beside the
// repository.
func captureSeeds() [][]byte {
	dir := filepath.Join("..", "..", "shared", "esl-captures", "freeswitch-1.10.12")
	var out [][]byte
	for _, name := range []string{"late_vars_bridge_rx_raw.txt", "verbose_ev_rx_raw.txt"} {
		if data, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			out = append(out, data)
		}
	}
	return out
}

// FuzzEngineEvents feeds random and mutated event streams (seeded from
// real captures and crafted calls) to the engine: it must never panic,
// never queue a command outside the strict command grammar, and never
// finish a recording twice.
func FuzzEngineEvents(f *testing.F) {
	f.Add(pciSeed())
	f.Add(acmeSeed())
	f.Add(hostileSeed())
	for _, s := range captureSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		runEngineEvents(t, fuzzEvents(data, 400))
	})
}

// TestHostileEvents runs the crafted hostile call: no command carries
// anything the runtime did not build. Huge names and values are refused
// or ignored without a command.
func TestHostileEvents(t *testing.T) {
	huge := strings.Repeat("x", 1<<20)
	hugeEvs := []*Event{
		{Name: "CHANNEL_CREATE", Headers: map[string]string{"Unique-ID": huge, "Call-Direction": "inbound",
			"variable_recpol_account": "acme", "variable_recpol_network": "offnet"}},
		{Name: "CHANNEL_CREATE", Headers: map[string]string{"Unique-ID": "ok-1", "Call-Direction": "inbound",
			"Caller-Destination-Number": huge, "Caller-Caller-ID-Number": huge,
			"variable_recpol_account": huge, "variable_recpol_device": huge, "variable_recpol_network": "offnet"}},
		{Name: "DTMF", Headers: map[string]string{"Unique-ID": "ok-1", "DTMF-Digit": huge}},
		{Name: "RECORD_STOP", Headers: map[string]string{"Unique-ID": "ok-1", "Record-File-Path": huge}},
		{Name: "CHANNEL_HANGUP_COMPLETE", Headers: map[string]string{"Unique-ID": "ok-1"}},
	}
	if s, _ := runEngineEvents(t, hugeEvs); s != 0 {
		t.Errorf("huge values started %d recordings", s)
	}
	if s, _ := runEngineEvents(t, fuzzEvents(hostileSeed(), 400)); s != 1 {
		// The account records the call; the paths are the runtime's own.
		t.Errorf("the hostile call started %d recordings, want 1", s)
	}
	if s, f := runEngineEvents(t, fuzzEvents(acmeSeed(), 400)); s < 3 || f < 2 {
		t.Errorf("the acme call started %d and finished %d recordings, want at least 3 and 2", s, f)
	}
	if s, f := runEngineEvents(t, fuzzEvents(pciSeed(), 400)); s != 3 || f != 3 {
		t.Errorf("the PCI call started %d and finished %d recordings, want 3 and 3", s, f)
	}
}

// FuzzIntentLog opens arbitrary intent logs (seeded with the shapes a
// crash leaves): opening never fails on a regular file, every intent
// listed is a valid recording of the switch (its path rebuilt from the
// configuration), the rewritten log reads back without a bad line, and a
// second open lists the same intents.
func FuzzIntentLog(f *testing.F) {
	put := func(id, path string) string {
		return `{"put":{"version":1,"switch":"fs1","core_uuid":"","leg":"leg-1","path":"` + path + `","meta":{"recording_id":"` + id + `","call_id":"leg-1","account":"acme","format":"wav","start":"2026-11-21T09:00:00Z"},"masked_from_ms":20}}` + "\n"
	}
	f.Add([]byte(put("r1", "/rec/acme/r1.wav") + put("r2", "/rec/acme/r2.wav") + `{"done":"r2"}` + "\n"))
	f.Add([]byte(put("r1", "/rec/acme/r1.wav") + "{not json\n" + put("../x", "/rec/acme/../x.wav") + `{"done":"r`))
	f.Add([]byte(put("r1", "/etc/passwd") + put("r 2", "/rec/acme/r 2.wav") + `{"put":null}` + "\n\n"))
	sw := SwitchConfig{Name: "fs1", RecordDir: "/rec", LocalDir: "/local"}
	f.Fuzz(func(t *testing.T, data []byte) {
		spool := t.TempDir()
		active := filepath.Join(spool, "active")
		if err := os.MkdirAll(active, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(active, intentLogName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		ids := func() []string {
			in, err := openIntents(spool, quietLogger(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer in.close()
			var out []string
			for _, it := range in.list(sw) {
				m := it.Meta
				want, _ := recordingPaths(sw, m.Account, m.RecordingID, m.Format)
				if !store.ValidName(m.RecordingID) || !store.ValidName(m.Account) || it.Path != want || !eslcmd.ValidUUID(it.Leg) {
					t.Fatalf("invalid intent listed: %+v", it)
				}
				out = append(out, m.RecordingID)
			}
			return out
		}
		first := ids()
		if _, bad, err := readIntentLog(active); err != nil || len(bad) > 0 {
			t.Fatalf("rewritten log: %v %+v", err, bad)
		}
		if diff := cmp.Diff(first, ids()); diff != "" {
			t.Fatalf("second open (-first +second):\n%s", diff)
		}
	})
}
