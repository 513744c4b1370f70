package fakeswitch

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/recpol/recpol/runtime/eslwire"
	"github.com/recpol/recpol/scenario"
)

// capturesDir returns ../shared/esl-captures beside the repository root,
// or skips the test when it is absent.
func capturesDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root (go.mod) not found")
		}
		dir = parent
	}
	c := filepath.Join(dir, "..", "shared", "esl-captures")
	if _, err := os.Stat(c); err != nil {
		t.Skipf("captures not found at %s (the shared directory beside the repository): %v", c, err)
	}
	return c
}

// readAll reads every frame of a stream.
func readAll(t *testing.T, data []byte) []eslwire.Frame {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(data))
	var out []eslwire.Frame
	for {
		f, err := eslwire.ReadFrame(r)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("frame %d: %v", len(out)+1, err)
		}
		out = append(out, f)
	}
}

// TestCapturesRoundTrip reads the real FreeSWITCH 1.10.12 streams with the
// codec and checks that writing the frames and events back gives the same
// bytes: framing, header order, URL encoding and _undef_ rules are the
// switch's.
func TestCapturesRoundTrip(t *testing.T) {
	dir := filepath.Join(capturesDir(t), "freeswitch-1.10.12")
	files, err := filepath.Glob(filepath.Join(dir, "*_rx_raw.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures in %s: %v", dir, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			frames := readAll(t, data)
			var again []byte
			events := 0
			for i, f := range frames {
				again = eslwire.AppendFrame(again, f)
				switch f.Get("Content-Type") {
				case eslwire.TypeEventPlain:
					if got := headerNames(f.Headers); !cmp.Equal(got, []string{"Content-Length", "Content-Type"}) {
						t.Errorf("frame %d: event frame headers %v", i, got)
					}
					ev, err := eslwire.ParseEventPlain(f.Body)
					if err != nil {
						t.Fatalf("frame %d: %v", i, err)
					}
					if diff := cmp.Diff(string(f.Body), string(ev.MarshalPlain())); diff != "" {
						t.Errorf("frame %d (%s) does not re-encode to the same bytes (-capture +codec):\n%s", i, ev.Name(), diff)
					}
					events++
				case eslwire.TypeAPIResponse:
					if got := headerNames(f.Headers); !cmp.Equal(got, []string{"Content-Type", "Content-Length"}) {
						t.Errorf("frame %d: api/response headers %v", i, got)
					}
				}
			}
			if !bytes.Equal(again, data) {
				t.Errorf("frames do not write back to the captured bytes")
			}
			if events == 0 && !strings.Contains(file, "noevents") {
				t.Errorf("no events read")
			}
		})
	}
}

func headerNames(hs []eslwire.Header) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Name
	}
	return out
}

// TestCapturesDecodedValues checks decoded values of real events.
func TestCapturesDecodedValues(t *testing.T) {
	dir := filepath.Join(capturesDir(t), "freeswitch-1.10.12")
	tests := []struct {
		file string
		want map[string]string
		body string
	}{
		{"main_events/046_RECORD_START.txt", map[string]string{
			"Event-Name":                        "RECORD_START",
			"Record-File-Path":                  "/var/spool/fsrec/test.wav",
			"FreeSWITCH-IPv6":                   "fd00::2",
			"variable_current_application_data": "tone_stream://%(1000,0,440);loops=-1",
			"Caller-Caller-ID-Name":             "Outbound Call",
		}, ""},
		{"main_events/107_RECORD_STOP.txt", map[string]string{
			"Record-Completion-Cause": "success-silence",
			"variable_record_ms":      "8260",
			"variable_record_samples": "66080",
		}, ""},
		{"main_events/097_BACKGROUND_JOB.txt", map[string]string{
			"Job-Command":     "uuid_record",
			"Job-Command-Arg": "6dd02bd0-a3a9-47ed-9d4d-e288aabae4ca mask /var/spool/fsrec/test.wav",
		}, "+OK Success\n"},
		{"main_events/057_DTMF.txt", map[string]string{"DTMF-Digit": "7", "DTMF-Duration": "2000", "DTMF-Source": "APP"}, ""},
		{"limit_events/098_RECORD_STOP.txt", map[string]string{"Recording-Variable-foo": "bar", "Recording-Variable-baz": "qux"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			frames := readAll(t, data)
			if len(frames) != 1 {
				t.Fatalf("%d frames, want 1", len(frames))
			}
			ev, err := eslwire.ParseEventPlain(frames[0].Body)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for k := range tt.want {
				got[k] = ev.Get(k)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
			if ev.Body != tt.body {
				t.Errorf("body %q, want %q", ev.Body, tt.body)
			}
		})
	}
}

// TestOlderCaptures parses the frames published by other projects.
func TestOlderCaptures(t *testing.T) {
	dir := capturesDir(t)
	tests := []struct {
		file   string
		events int
	}{
		{"DERIVED_cgrates-fsock_test_data_cleaned_45frames.txt", 45},
		{"DERIVED_cgrates-cgrates_hangupEv_framed_as_text-event-plain.txt", 1},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, f := range readAll(t, data) {
				if f.Get("Content-Type") != eslwire.TypeEventPlain {
					continue
				}
				if _, err := eslwire.ParseEventPlain(f.Body); err != nil {
					t.Fatalf("event %d: %v", n, err)
				}
				n++
			}
			if n != tt.events {
				t.Errorf("%d events, want %d", n, tt.events)
			}
		})
	}
}

func TestURLEncode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain-value_1.2/x~y", "plain-value_1.2/x~y"},
		{"a b", "a%20b"},
		{"fd00::2", "fd00%3A%3A2"},
		{"k=v;x", "k%3Dv%3Bx"},
		{"+OK", "%2BOK"},
		{"{a=b,c}", "%7Ba%3Db,c%7D"},
		{"with%20space", "with%20space"}, // an existing %XX is kept
		{"%(1000", "%25(1000"},
		{"%2x", "%252x"},
		{"%ab", "%25ab"}, // lower-case hex is not an existing escape
		{"tab\there", "tab%09here"},
		{"é", "%C3%A9"},
		{"line\nbreak", "line%0Abreak"},
	}
	for _, tt := range tests {
		if got := eslwire.URLEncode(tt.in); got != tt.want {
			t.Errorf("URLEncode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMarshalPlainUndef(t *testing.T) {
	ev := &eslwire.Event{}
	ev.Add("Event-Name", "CUSTOM")
	ev.Add("Empty", "")
	want := "Event-Name: CUSTOM\nEmpty: _undef_\n\n"
	if got := string(ev.MarshalPlain()); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	back, err := eslwire.ParseEventPlain([]byte(want))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ev, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestReadFrameErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"clean end", "", io.EOF},
		{"blank lines only", "\n\n\r\n", io.EOF},
		{"cut in headers", "Content-Type: api/response\n", io.ErrUnexpectedEOF},
		{"cut in body", "Content-Length: 10\n\nabc", io.ErrUnexpectedEOF},
		{"bad length", "Content-Length: x\n\n", eslwire.ErrBadLength},
		{"negative length", "Content-Length: -1\n\n", eslwire.ErrBadLength},
		{"huge length", "Content-Length: 999999999999\n\n", eslwire.ErrBadLength},
		{"no colon", "garbage line\n\n", eslwire.ErrBadHeader},
		{"long line", strings.Repeat("x", eslwire.MaxHeaderLine+10) + "\n\n", eslwire.ErrLineTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := eslwire.ReadFrame(bufio.NewReader(strings.NewReader(tt.in)))
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzReadFrame feeds arbitrary bytes to the frame and event readers: they
// must return errors, never panic, and what they accept must write back
// to an equal frame.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("Content-Type: auth/request\n\n"))
	f.Add([]byte("Content-Length: 5\nContent-Type: text/event-plain\n\nA: b\n\n"))
	f.Add([]byte("Content-Type: api/response\nContent-Length: 3\n\n+OK"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for i := 0; i < 64; i++ {
			fr, err := eslwire.ReadFrame(r)
			if err != nil {
				return
			}
			again, err := eslwire.ReadFrame(bufio.NewReader(bytes.NewReader(fr.Bytes())))
			if err != nil {
				t.Fatalf("re-read of a written frame: %v", err)
			}
			if len(fr.Headers) > 0 && !cmp.Equal(fr.Headers, again.Headers) {
				t.Fatalf("headers changed: %v vs %v", fr.Headers, again.Headers)
			}
			if ev, err := eslwire.ParseEventPlain(fr.Body); err == nil {
				_ = ev.MarshalPlain()
			}
		}
	})
}

// FuzzHandle runs arbitrary command streams through a logged-in client's
// command handling with calls up: nothing may panic, and every command
// gets exactly one reply frame.
func FuzzHandle(f *testing.F) {
	dir := filepath.Join("..", "..", "shared", "esl-captures", "freeswitch-1.10.12")
	for _, name := range []string{"main_ev_tx_raw.txt", "limit_ev_tx_raw.txt", "noevents_plain_tx_raw.txt"} {
		if data, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("api uuid_record uuid-a start /rec/x.wav 5 {RECORD_MIN_SEC=1}\n\napi uuid_record uuid-a mask /rec/x.wav\n\nbgapi uuid_kill uuid-a\n\n"))
	f.Add([]byte("filter delete\n\nevent json ALL\n\nnixevent ALL\n\napi show channels as json\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		srv := New(Config{RecordingsDir: t.TempDir(), Heartbeat: -1})
		_, err := srv.StartCall(scenario.Call{ID: "f",
			Legs: []scenario.Leg{{Name: "a", UUID: "uuid-a"}, {Name: "b", UUID: "uuid-b", Parent: "a"}},
			Steps: []scenario.Step{{Do: "create", Leg: "a"}, {Do: "create", Leg: "b"}, {Do: "answer", Leg: "a"},
				{Do: "bridge", Leg: "a", Other: "b"}, {AtMS: 3000, Do: "hangup", Leg: "b"}}})
		if err != nil {
			t.Fatal(err)
		}
		srv.Advance(time.Millisecond)
		c := &client{s: srv, id: 1, wallNow: time.Now, format: "plain", events: map[string]bool{}, nix: map[string]bool{}, wake: make(chan struct{}, 1), authed: true}
		srv.clients[c] = struct{}{}
		r := bufio.NewReader(bytes.NewReader(data))
		for i := 0; i < 32; i++ {
			cmd, err := eslwire.ReadCommand(r)
			if err != nil {
				break
			}
			before := len(c.queue)
			srv.mu.Lock()
			keep := srv.handle(c, cmd, time.Now())
			srv.mu.Unlock()
			replies := 0
			for _, fr := range c.queue[before:] {
				switch fr.f.Get("Content-Type") {
				case eslwire.TypeCommandReply, eslwire.TypeAPIResponse:
					replies++
				}
			}
			if replies != 1 {
				t.Fatalf("%q: %d replies", cmd.Line, replies)
			}
			if !keep {
				break
			}
			srv.Advance(500 * time.Millisecond)
		}
	})
}
