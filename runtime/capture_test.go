package runtime

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/callstate/classify"
	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/runtime/eslwire"
	"github.com/recpol/recpol/table"
)

// captureEvents reads the events of a real FreeSWITCH capture.
func captureEvents(t *testing.T, name string) []*Event {
	t.Helper()
	path := filepath.Join("..", "..", "shared", "esl-captures", "freeswitch-1.10.12", name)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("the captures are not beside the repository (%s)", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var out []*Event
	for {
		fr, err := eslwire.ReadFrame(r)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if fr.Get("Content-Type") != "text/event-plain" {
			continue
		}
		ev, err := eslwire.ParseEventPlain(fr.Body)
		if err != nil {
			t.Fatal(err)
		}
		e := &Event{Name: ev.Name(), Headers: map[string]string{}, Body: ev.Body}
		for _, h := range ev.Headers {
			if _, dup := e.Headers[h.Name]; !dup {
				e.Headers[h.Name] = h.Value
			}
		}
		out = append(out, e)
	}
}

// TestLateVariablesCapture feeds the events of a real FreeSWITCH 1.10.12
// call to the engine: the caller's variables arrive only on the events
// after the dialplan's set (none on its CHANNEL_CREATE), the callee leg
// carries its dial-string variables from its CHANNEL_CREATE, and the far
// side of the callee's loopback carries a copy of them. The engine
// records the caller's leg once its variables are known and the callee's
// leg when it answers, and takes the loopback copy for no new call.
func TestLateVariablesCapture(t *testing.T) {
	res := compiler.Options{}.CompileFiles([]compiler.File{{Name: "p.cue", Data: []byte(`package recpol
accounts: acme: {
	call_recording: account: inbound: onnet: enabled: true
	devices: d1: call_recording: outbound: onnet: enabled: true
	devices: d2: call_recording: inbound: onnet: enabled: true
}`)}})
	if res.Table == nil {
		t.Fatal(res.Diagnostics)
	}
	e := newEngine(SwitchConfig{Name: "fs", RecordDir: "/rec", LocalDir: "/rec"}, Classify{Preset: "recpol"},
		func() *table.Table { return res.Table }, &finishes{}, quietLogger(), nil)
	// The capture's caller and callee are loopback halves standing in for
	// phones (loopback/1001-b, loopback/2002-a): the caller's variables
	// are known from the bridge's CHANNEL_EXECUTE on, the callee's from
	// its CHANNEL_CREATE, but nothing is recorded on a loopback half
	// (SPEC 2.7: loopbacks bow out, and a recording there would end with
	// them).
	caller, callee := "2794f815-0890-4265-a580-0edb67cc65f1", "d7818cea-d333-45e4-9069-7fa665b58645"
	want := map[string]classify.Class{
		caller: {Account: "acme", Device: "d1", Network: table.Onnet},
		callee: {Account: "acme", Device: "d2", Network: table.Onnet},
	}
	var got []string
	classes := map[string]classify.Class{}
	for _, ev := range captureEvents(t, "late_vars_bridge_rx_raw.txt") {
		if id := ev.Get("Unique-ID"); ev.Name == "CHANNEL_HANGUP" && want[id] != (classify.Class{}) {
			// The class the leg had at the end of its call.
			if l := e.m.Leg(id); l != nil {
				if c, ok := l.Class(); ok {
					classes[id] = c
				}
			}
		}
		e.Handle(ev)
		for _, c := range drain(e) {
			if strings.HasPrefix(c, "uuid_record") {
				got = append(got, ev.Name+": "+c)
			}
		}
	}
	if len(got) != 0 {
		t.Errorf("recordings started on loopback halves: %q", got)
	}
	if diff := cmp.Diff(want, classes); diff != "" {
		t.Errorf("classes at hangup (-want +got):\n%s", diff)
	}
}
