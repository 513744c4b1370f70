package fakeswitch

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/recpol/recpol/runtime/eslwire"
	"github.com/recpol/recpol/scenario"
)

// TestWritersDoNotWaitForTheSwitch holds the server's lock, as a long
// step of the switch does, and checks that what is queued meanwhile still
// reaches the client: a writer serializes its events and counts what it
// wrote without the lock, and a recording's file job ends without it, so
// its RECORD_STOP is written too. The frames are those Events records,
// in the client's format.
func TestWritersDoNotWaitForTheSwitch(t *testing.T) {
	tests := []struct {
		name   string
		format string // the client's event format
		stop   bool   // a recording stops under the lock
	}{
		{name: "plain events", format: "plain"},
		{name: "json events", format: "json"},
		{name: "record stop", format: "plain", stop: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			srv, addr := startServer(t, Config{RecordingsDir: dir})
			c := dialRaw(t, addr)
			c.login(t, "")
			c.send(t, "event "+tc.format+" ALL")
			if got := c.frame(t).Get("Reply-Text"); got != "+OK event listener enabled "+tc.format {
				t.Fatalf("event: %q", got)
			}
			uuids, err := srv.StartCall(scenario.Call{ID: "c", Legs: []scenario.Leg{{Name: "a"}},
				Steps: []scenario.Step{{AtMS: 0, Do: "create", Leg: "a"}, {AtMS: 100, Do: "answer", Leg: "a"}, {AtMS: 60000, Do: "hangup", Leg: "a"}}})
			if err != nil {
				t.Fatal(err)
			}
			uuid := uuids["a"]
			srv.Step() // CHANNEL_CREATE
			srv.Step() // CHANNEL_ANSWER
			var frames []eslwire.Frame
			for range 2 {
				frames = append(frames, c.frame(t))
			}
			path := filepath.Join(dir, "x.wav")
			if tc.stop {
				c.send(t, "api uuid_record "+uuid+" start "+path)
				if f := c.frame(t); f.Get("Content-Type") != eslwire.TypeAPIResponse || string(f.Body) != "+OK Success\n" {
					t.Fatalf("uuid_record start: %v %q", f.Headers, f.Body)
				}
				frames = append(frames, c.frame(t)) // RECORD_START
			}

			// One event at a time under the lock: the writer must be
			// done with the first, counters included, to write the
			// second. A failure unlocks, for the server to close.
			func() {
				srv.mu.Lock()
				defer srv.mu.Unlock()
				ch := srv.channels[uuid]
				for range 2 {
					srv.publish(srv.channelEvent("CHANNEL_PARK", ch, "switch_ivr.c", "switch_ivr_park", 1002, nil, nil))
					frames = append(frames, c.frame(t))
				}
				if tc.stop {
					srv.stopRecording(ch.recordings[0], causeStop)
					frames = append(frames, c.frame(t))
				}
			}()

			var want []eslwire.Frame
			for _, e := range srv.Events() {
				if tc.format == "json" {
					want = append(want, e.Event.JSONFrame())
				} else {
					want = append(want, e.Event.PlainFrame())
				}
			}
			if diff := cmp.Diff(frameStrings(want), frameStrings(frames)); diff != "" {
				t.Errorf("frames (-Events +written):\n%s", diff)
			}
			if tc.stop {
				if fs := srv.Files(); len(fs) != 1 || fs[0].Path != path || fs[0].Error != "" {
					t.Errorf("files %+v; want %s written", fs, path)
				}
			}
		})
	}
}

// frameStrings returns each frame as written on the wire.
func frameStrings(fs []eslwire.Frame) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f.Bytes())
	}
	return out
}

// TestSweepClosing: the legs whose files are being closed are forgotten
// from the front of their order once all their files are closed, and not
// before: uuid_exists stays true for a leg with a file still open.
func TestSweepClosing(t *testing.T) {
	tests := []struct {
		name    string
		open    []int32 // files still being closed, per leg in order
		wantMap []string
		exists  []bool // closingFiles, per leg
	}{
		{name: "none closed", open: []int32{1, 2}, wantMap: []string{"l0", "l1"}, exists: []bool{true, true}},
		{name: "front closed", open: []int32{0, 1}, wantMap: []string{"l1"}, exists: []bool{false, true}},
		{name: "all closed", open: []int32{0, 0}, wantMap: []string{}, exists: []bool{false, false}},
		{name: "front still open", open: []int32{1, 0}, wantMap: []string{"l0", "l1"}, exists: []bool{true, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{})
			for i, n := range tc.open {
				ch := &channel{uuid: "l" + strconv.Itoa(i)}
				ch.closing.Store(n)
				s.closing[ch.uuid] = ch
				s.closingOrder = append(s.closingOrder, ch)
			}
			s.mu.Lock()
			s.sweepClosing()
			var exists []bool
			for i := range tc.open {
				exists = append(exists, s.closingFiles("l"+strconv.Itoa(i)))
			}
			got := sortedKeys(s.closing)
			s.mu.Unlock()
			if diff := cmp.Diff(tc.wantMap, got); diff != "" {
				t.Errorf("legs kept (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.exists, exists); diff != "" {
				t.Errorf("closingFiles (-want +got):\n%s", diff)
			}
		})
	}
}
