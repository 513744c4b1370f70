package fakeswitch

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// window is a stretch of one channel of a recording and what it must
// hold: the voices named in want at full level and the others of the call
// absent, or exact zeros.
type window struct {
	ch       int   // channel: 0 left (or mono), 1 right
	from, to int64 // ms of file time
	want     []string
	zero     bool
}

// audioCmd is an api command at a time after the call's bridge (1010 ms);
// A, B and PATH are replaced by the caller's and callee's uuids and the
// recording's path.
type audioCmd struct {
	afterMS int64
	line    string
}

// TestWhatRecordingsHear plays the two-leg call (caller "a" bridged to
// callee "b1" at 1010 ms), records with each mode and checks the WAV
// file's channels by frequency (Goertzel on 100 ms windows): the read
// side is the leg's own party, the write side the party bridged to it.
func TestWhatRecordingsHear(t *testing.T) {
	tests := []struct {
		name     string
		startAt  int64 // virtual ms of the first command
		cmds     []audioCmd
		channels int
		announce []Span
		windows  []window
	}{
		{
			name: "mono after the bridge has both parties", startAt: 1100,
			cmds:     []audioCmd{{0, "uuid_record A start PATH"}, {2000, "uuid_record A stop PATH"}},
			channels: 1,
			windows:  []window{{ch: 0, from: 0, to: 2000, want: []string{"A", "B"}}},
		},
		{
			name: "mono before the bridge has only the leg's party", startAt: 200,
			cmds:     []audioCmd{{0, "uuid_record A start PATH"}, {2000, "uuid_record A stop PATH"}},
			channels: 1,
			windows: []window{
				{ch: 0, from: 0, to: 800, want: []string{"A"}},
				{ch: 0, from: 900, to: 2000, want: []string{"A", "B"}},
			},
		},
		{
			name: "stereo: read (caller) left, write (callee) right", startAt: 1100,
			cmds:     []audioCmd{{0, "uuid_record A start PATH 0 {RECORD_STEREO=true}"}, {2000, "uuid_record A stop PATH"}},
			channels: 2,
			windows: []window{
				{ch: 0, from: 0, to: 2000, want: []string{"A"}},
				{ch: 1, from: 0, to: 2000, want: []string{"B"}},
			},
		},
		{
			name: "stereo on the callee's leg: callee left, caller right", startAt: 1100,
			cmds:     []audioCmd{{0, "uuid_record B start PATH 0 {RECORD_STEREO=true}"}, {2000, "uuid_record B stop PATH"}},
			channels: 2,
			windows: []window{
				{ch: 0, from: 0, to: 2000, want: []string{"B"}},
				{ch: 1, from: 0, to: 2000, want: []string{"A"}},
			},
		},
		{
			name: "stereo swap: write left, read right", startAt: 1100,
			cmds:     []audioCmd{{0, "uuid_setvar A RECORD_STEREO_SWAP true"}, {0, "uuid_record A start PATH"}, {2000, "uuid_record A stop PATH"}},
			channels: 2,
			windows: []window{
				{ch: 0, from: 0, to: 2000, want: []string{"B"}},
				{ch: 1, from: 0, to: 2000, want: []string{"A"}},
			},
		},
		{
			name: "RECORD_READ_ONLY: only the leg's own party", startAt: 1100,
			cmds:     []audioCmd{{0, "uuid_record A start PATH 0 {RECORD_READ_ONLY=true}"}, {2000, "uuid_record A stop PATH"}},
			channels: 1,
			windows:  []window{{ch: 0, from: 0, to: 2000, want: []string{"A"}}},
		},
		{
			name: "RECORD_READ_ONLY as a channel variable", startAt: 1100,
			cmds:     []audioCmd{{0, "uuid_setvar A RECORD_READ_ONLY true"}, {0, "uuid_record A start PATH"}, {2000, "uuid_record A stop PATH"}},
			channels: 1,
			windows:  []window{{ch: 0, from: 0, to: 2000, want: []string{"A"}}},
		},
		{
			name: "RECORD_WRITE_ONLY: only the other party", startAt: 1100,
			cmds:     []audioCmd{{0, "uuid_record A start PATH 0 {RECORD_WRITE_ONLY=true}"}, {2000, "uuid_record A stop PATH"}},
			channels: 1,
			windows:  []window{{ch: 0, from: 0, to: 2000, want: []string{"B"}}},
		},
		{
			name: "read only and stereo: the right channel is zero", startAt: 1100,
			cmds:     []audioCmd{{0, "uuid_record A start PATH 0 {RECORD_READ_ONLY=true,RECORD_STEREO=true}"}, {1000, "uuid_record A stop PATH"}},
			channels: 2,
			windows: []window{
				{ch: 0, from: 0, to: 1000, want: []string{"A"}},
				{ch: 1, from: 0, to: 1000, zero: true},
			},
		},
		{
			name: "a mask is zeros on both channels, a pause leaves time out", startAt: 1100,
			cmds: []audioCmd{{0, "uuid_record A start PATH 0 {RECORD_STEREO=true}"}, {1000, "uuid_record A mask PATH"},
				{1000, "uuid_record A pause PATH"}, {5000, "uuid_record A resume PATH"}, {500, "uuid_record A unmask PATH"},
				{1000, "uuid_record A stop PATH"}},
			channels: 2,
			windows: []window{
				{ch: 0, from: 0, to: 1000, want: []string{"A"}},
				{ch: 1, from: 0, to: 1000, want: []string{"B"}},
				{ch: 0, from: 1000, to: 2500, zero: true},
				{ch: 1, from: 1000, to: 2500, zero: true},
				{ch: 0, from: 2500, to: 3500, want: []string{"A"}},
				{ch: 1, from: 2500, to: 3500, want: []string{"B"}},
			},
		},
		{
			name: "an announcement to both legs opens the file", startAt: 1100,
			cmds: []audioCmd{{0, "uuid_broadcast A /sounds/recording_notice.wav both"}, {0, "uuid_record A start PATH"},
				{3000, "uuid_record A stop PATH"}},
			channels: 1,
			announce: []Span{{0, AnnounceMS}},
			windows: []window{
				{ch: 0, from: 0, to: AnnounceMS, want: []string{"A", "ANN"}},
				{ch: 0, from: AnnounceMS, to: 3000, want: []string{"A", "B"}},
			},
		},
		{
			name: "an announcement to the b-leg is not on the a-leg's write side", startAt: 1100,
			cmds: []audioCmd{{0, "uuid_broadcast A /sounds/recording_notice.wav bleg"}, {0, "uuid_record A start PATH"},
				{1000, "uuid_record A stop PATH"}},
			channels: 1,
			windows:  []window{{ch: 0, from: 0, to: 1000, want: []string{"A", "B"}}},
		},
		{
			name: "a tone_stream beep, in stereo on the write side", startAt: 1100,
			cmds: []audioCmd{{0, "uuid_record B start PATH 0 {RECORD_STEREO=true}"}, {0, "uuid_broadcast B tone_stream://%(500,500,3700);loops=2 aleg"},
				{3000, "uuid_record B stop PATH"}},
			channels: 2,
			announce: []Span{{0, 2000}},
			windows: []window{
				{ch: 0, from: 0, to: 3000, want: []string{"B"}},
				{ch: 1, from: 0, to: 500, want: []string{"BEEP"}},
				{ch: 1, from: 500, to: 1000, zero: true},
				{ch: 1, from: 1000, to: 1500, want: []string{"BEEP"}},
				{ch: 1, from: 2000, to: 3000, want: []string{"A"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, addr := startServer(t, Config{})
			uuids, err := srv.StartCall(twoLegCall("hear", 30000))
			if err != nil {
				t.Fatal(err)
			}
			srv.Advance(time.Duration(tt.startAt) * time.Millisecond)
			a, b := uuids["a"], uuids["b1"]
			hzA, _ := srv.VoiceHz(a)
			hzB, _ := srv.VoiceHz(b)
			voices := map[string]float64{"A": hzA, "B": hzB, "ANN": AnnounceHz, "BEEP": 3700}
			path := filepath.Join(srv.cfg.RecordingsDir, "hear.wav")
			c := dialRaw(t, addr)
			c.login(t, "")
			for _, cm := range tt.cmds {
				srv.Advance(time.Duration(cm.afterMS) * time.Millisecond)
				line := strings.NewReplacer("A ", a+" ", "B ", b+" ", "PATH", path).Replace(cm.line)
				if got := c.api(t, line); !strings.HasPrefix(got, "+OK") {
					t.Fatalf("%s: %q", cm.line, got)
				}
			}
			srv.RunUntilIdle()
			files := srv.Files()
			if len(files) != 1 {
				t.Fatalf("%d files: %+v", len(files), files)
			}
			if f := files[0]; f.Channels != tt.channels || !cmp.Equal(f.Announced, tt.announce) {
				t.Errorf("file: %d channels, announced %v; want %d, %v", f.Channels, f.Announced, tt.channels, tt.announce)
			}
			rate, chans := readWAVChannels(t, path)
			if len(chans) != tt.channels {
				t.Fatalf("%d channels in the WAV, want %d", len(chans), tt.channels)
			}
			for _, w := range tt.windows {
				checkWindow(t, chans[w.ch], rate, w, voices)
			}
		})
	}
}

// checkWindow checks one window of a channel, 100 ms at a time.
func checkWindow(t *testing.T, samples []int, rate int, w window, voices map[string]float64) {
	t.Helper()
	at := func(ms int64) int { return int(ms * int64(rate) / 1000) }
	if at(w.to) > len(samples) {
		t.Fatalf("window %+v past the file's %d samples", w, len(samples))
	}
	if w.zero {
		for i := at(w.from); i < at(w.to); i++ {
			if samples[i] != 0 {
				t.Errorf("channel %d, %d-%d ms: sample %d is %d, want exact zero", w.ch, w.from, w.to, i, samples[i])
				return
			}
		}
		return
	}
	want := map[string]bool{}
	for _, v := range w.want {
		want[v] = true
	}
	for ms := w.from; ms+100 <= w.to; ms += 100 {
		seg := samples[at(ms):at(ms+100)]
		for name, hz := range voices {
			level := ToneLevel(seg, rate, hz)
			switch {
			case want[name] && (level < 0.9*ToneAmplitude || level > 1.1*ToneAmplitude):
				t.Errorf("channel %d at %d ms: %s (%.0f Hz) at %.0f, want %d", w.ch, ms, name, hz, level, ToneAmplitude)
				return
			case !want[name] && level > 200:
				t.Errorf("channel %d at %d ms: %s (%.0f Hz) heard at %.0f, want absent", w.ch, ms, name, hz, level)
				return
			}
		}
	}
}

// TestMP3 checks the kinds of switch: without mod_shout (MP3Off, or
// MP3Auto with no encoder) module_exists says false and an .mp3 start is
// refused with no RECORD_START; with it (MP3Auto), a real MP3 file (frames
// lame can decode) carries the parties, mono and stereo; MP3Stub writes
// WAV bytes.
func TestMP3(t *testing.T) {
	for _, tt := range []struct {
		name     string
		cfg      Config
		mod      string // module_exists mod_shout
		start    string // the .mp3 start's reply
		wavBytes bool   // the .mp3 holds WAV bytes
	}{
		{"MP3Off", Config{MP3: MP3Off}, "false", "-ERR Cannot record session!\n", false},
		{"MP3Auto without an encoder", Config{MP3: MP3Auto, LamePath: "/nonexistent/lame"}, "false", "-ERR Cannot record session!\n", false},
		{"MP3Stub", Config{}, "true", "+OK Success\n", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, addr := startServer(t, tt.cfg)
			uuids, err := srv.StartCall(twoLegCall("nomp3", 5000))
			if err != nil {
				t.Fatal(err)
			}
			srv.Advance(1100 * time.Millisecond)
			c := dialRaw(t, addr)
			c.login(t, "RECORD_START")
			mp3 := filepath.Join(srv.cfg.RecordingsDir, "x.mp3")
			wavPath := filepath.Join(srv.cfg.RecordingsDir, "x.wav")
			got := []string{
				c.api(t, "module_exists mod_shout"),
				c.api(t, "module_exists mod_sndfile"),
				c.api(t, "uuid_record "+uuids["a"]+" start "+mp3+" 60"),
			}
			var started []string
			if tt.wavBytes {
				started = append(started, c.nextEvent(t).Get("Record-File-Path"))
			}
			got = append(got, c.api(t, "uuid_record "+uuids["a"]+" start "+wavPath+" 60"))
			started = append(started, c.nextEvent(t).Get("Record-File-Path"))
			want := []string{tt.mod, "true", tt.start, "+OK Success\n"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("replies (-want +got):\n%s", diff)
			}
			wantStarted := []string{wavPath}
			if tt.wavBytes {
				wantStarted = []string{mp3, wavPath}
			}
			if diff := cmp.Diff(wantStarted, started); diff != "" {
				t.Errorf("RECORD_STARTs (-want +got):\n%s", diff)
			}
			srv.RunUntilIdle()
			srv.Files()
			b, err := os.ReadFile(mp3)
			switch {
			case !tt.wavBytes && !os.IsNotExist(err):
				t.Errorf("x.mp3: %v, want no file", err)
			case tt.wavBytes && !bytes.HasPrefix(b, []byte("RIFF")):
				t.Errorf("x.mp3: %v, % x; want WAV bytes", err, b[:min(4, len(b))])
			}
		})
	}
	lame, err := exec.LookPath("lame")
	if err != nil {
		t.Skip("no lame on PATH: the fake switch has no MP3 encoder here (CI installs it)")
	}
	for _, stereo := range []bool{false, true} {
		name := map[bool]string{false: "mono", true: "stereo"}[stereo]
		t.Run("real mp3 "+name, func(t *testing.T) {
			srv, addr := startServer(t, Config{MP3: MP3Auto})
			if records, real := srv.MP3(); !records || !real {
				t.Fatal("lame is on PATH but the server has no MP3")
			}
			uuids, err := srv.StartCall(twoLegCall("mp3", 10000))
			if err != nil {
				t.Fatal(err)
			}
			srv.Advance(1100 * time.Millisecond)
			a, b := uuids["a"], uuids["b1"]
			hzA, _ := srv.VoiceHz(a)
			hzB, _ := srv.VoiceHz(b)
			c := dialRaw(t, addr)
			c.login(t, "RECORD_STOP")
			if got := c.api(t, "module_exists mod_shout"); got != "true" {
				t.Errorf("module_exists mod_shout: %q", got)
			}
			path := filepath.Join(srv.cfg.RecordingsDir, "call.mp3")
			vars := map[bool]string{false: "", true: " 0 {RECORD_STEREO=true}"}[stereo]
			if got := c.api(t, "uuid_record "+a+" start "+path+vars); got != "+OK Success\n" {
				t.Fatalf("start: %q", got)
			}
			srv.Advance(3000 * time.Millisecond)
			c.api(t, "uuid_record "+a+" stop "+path)
			if ev := c.nextEvent(t); ev.Get("Event-Name") != "RECORD_STOP" {
				t.Fatalf("%s, want RECORD_STOP", ev.Get("Event-Name"))
			}
			files := srv.Files()
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != 1 || files[0].Size != int64(len(raw)) {
				t.Errorf("files %+v, file of %d bytes", files, len(raw))
			}
			if bytes.HasPrefix(raw, []byte("RIFF")) || len(raw) < 2 || raw[0] != 0xFF || raw[1]&0xE0 != 0xE0 {
				t.Fatalf("call.mp3 does not start with an MPEG frame sync: % x", raw[:min(8, len(raw))])
			}
			out := filepath.Join(t.TempDir(), "decoded.wav")
			if msg, err := exec.Command(lame, "--quiet", "--decode", path, out).CombinedOutput(); err != nil {
				t.Fatalf("lame --decode: %v: %s", err, msg)
			}
			rate, chans := readWAVChannels(t, out)
			if rate != 8000 || len(chans) != map[bool]int{false: 1, true: 2}[stereo] {
				t.Fatalf("decoded: %d Hz, %d channels", rate, len(chans))
			}
			// The decoder's delay shifts the audio by a few ms: look
			// inside the file, with the codec's loss allowed for.
			if d := len(chans[0]) * 1000 / rate; d < 3000 || d > 3300 {
				t.Errorf("decoded %d ms, want 3000 and the codec's padding", d)
			}
			checks := map[bool][][]float64{false: {{hzA, hzB}}, true: {{hzA}, {hzB}}}[stereo]
			for ch, want := range checks {
				seg := chans[ch][800:1600]
				for _, hz := range []float64{hzA, hzB} {
					level := ToneLevel(seg, rate, hz)
					heard := level > ToneAmplitude/2
					if heard != contains(want, hz) {
						t.Errorf("channel %d: %.0f Hz at level %.0f, want heard=%v", ch, hz, level, contains(want, hz))
					}
				}
			}
		})
	}
}

func contains(s []float64, v float64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
