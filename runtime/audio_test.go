package runtime

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"

	"github.com/recpol/recpol/callstate"
	"github.com/recpol/recpol/fakeswitch"
	"github.com/recpol/recpol/runtime/store"
	"github.com/recpol/recpol/scenario"
)

// wavChannels reads a 16-bit PCM WAV's samples per channel.
func wavChannels(t *testing.T, path string) (rate int, chans [][]int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 44 || string(b[0:4]) != "RIFF" {
		t.Fatalf("%s is not a WAV file", path)
	}
	nch := int(binary.LittleEndian.Uint16(b[22:24]))
	rate = int(binary.LittleEndian.Uint32(b[24:28]))
	s := wavSamples(t, path)
	chans = make([][]int, nch)
	for i, v := range s {
		chans[i%nch] = append(chans[i%nch], int(v))
	}
	return rate, chans
}

// level is the amplitude of hz in [fromMS, toMS) of one channel.
func level(ch []int, rate int, fromMS, toMS int, hz float64) float64 {
	a, b := fromMS*rate/1000, min(toMS*rate/1000, len(ch))
	if a >= b {
		return 0
	}
	return fakeswitch.ToneLevel(ch[a:b], rate, hz)
}

// bridgedCall is a customer (offnet) calling device d1 of acme.
func bridgedCall(id string, hangupMS int64) scenario.Call {
	return scenario.Call{ID: id, Legs: []scenario.Leg{
		{Name: "a", UUID: "a0000000-0000-4000-8000-" + id, CallerIDNumber: "+15550001111", DestinationNumber: "2002",
			Variables: map[string]string{"recpol_account": "acme", "recpol_network": "offnet"}},
		{Name: "b", UUID: "b0000000-0000-4000-8000-" + id, Parent: "a", DestinationNumber: "d1",
			Variables: map[string]string{"recpol_account": "acme", "recpol_device": "d1", "recpol_network": "onnet"}},
	}, Steps: []scenario.Step{
		{AtMS: 0, Do: "create", Leg: "a"}, {AtMS: 10, Do: "create", Leg: "b"},
		{AtMS: 100, Do: "answer", Leg: "b"}, {AtMS: 100, Do: "answer", Leg: "a"}, {AtMS: 100, Do: "bridge", Leg: "a", Other: "b"},
		{AtMS: hangupMS, Do: "hangup", Leg: "a"}}}
}

// audioHarness runs a runtime on policy (one file) beside a fake switch
// configured by cfg.
func audioHarness(t *testing.T, policy string, cfg fakeswitch.Config) *harness {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.cue"), []byte("package recpol\n"+policy), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(t.TempDir(), "fs-recordings")
	cfg.Password, cfg.RecordingsDir, cfg.Quiet = "ClueCon", rec, 100*time.Millisecond
	cfg.Epoch = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	srv := fakeswitch.New(cfg)
	ln := listenLoopback(t)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return startHarnessOpts(t, dir, harnessOpts{srv: srv, rec: rec, addr: ln.Addr().String()})
}

// storedOne plays call and returns the one recording stored and its file.
func storedOne(t *testing.T, h *harness, call scenario.Call) (store.Metadata, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.srv.Play(ctx, &scenario.Scenario{Calls: []scenario.Call{call}}); err != nil {
		t.Fatal(err)
	}
	h.waitFinished(t, 1)
	got, err := h.rt.Store.List(store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d recordings stored, want 1", len(got))
	}
	_, path, err := h.rt.Store.Get(got[0].RecordingID)
	if err != nil {
		t.Fatal(err)
	}
	return got[0], path
}

// TestStereoAnnounced: an account recording in stereo with a consent
// beep. The stored file has two channels, the caller's voice left and the
// callee's right (the metadata says so), the beep at its start, and the
// metadata says when it was played.
func TestStereoAnnounced(t *testing.T) {
	h := audioHarness(t, `defaults: {format: "wav", record_sample_rate: 8000}
accounts: acme: {
	call_recording: account: inbound: offnet: {enabled: true, stereo: true, announce: "tone"}
	devices: d1: {}
}
`, fakeswitch.Config{})
	m, path := storedOne(t, h, bridgedCall("000000000002", 6000))
	if n := countCommands(h.srv, "uuid_broadcast "); n != 1 {
		t.Errorf("%d uuid_broadcast commands, want 1", n)
	}
	if diff := cmp.Diff([]string{"caller", "callee"}, m.Channels); diff != "" {
		t.Errorf("channels (-want +got):\n%s", diff)
	}
	if m.ChannelCount != 2 || m.AnnouncedAt == nil || m.Announce != "tone_stream://%(500,0,1000)" || len(m.Flags) != 0 {
		t.Errorf("metadata: %d channels, announced %v %q, flags %v", m.ChannelCount, m.AnnouncedAt, m.Announce, m.Flags)
	}
	rate, ch := wavChannels(t, path)
	if len(ch) != 2 {
		t.Fatalf("%d channels in the file, want 2", len(ch))
	}
	caller, callee := voices(t, h)
	if caller == 0 || callee == 0 || caller == callee {
		t.Fatalf("voices %v and %v", caller, callee)
	}
	// The beep (1000 Hz, 500 ms) is heard on the leg: its write side,
	// the right channel, at the file's start.
	if l := level(ch[1], rate, 50, 400, 1000); l < 1000 {
		t.Errorf("no announcement at the start of the right channel (1000 Hz level %.0f)", l)
	}
	for _, c := range []struct {
		name       string
		ch         []int
		want, not  float64
		wantLevels string
	}{
		{"left", ch[0], caller, callee, "the caller"},
		{"right", ch[1], callee, caller, "the callee"},
	} {
		if l, o := level(c.ch, rate, 1500, 4500, c.want), level(c.ch, rate, 1500, 4500, c.not); l < 1000 || o > l/10 {
			t.Errorf("%s channel: %s's voice at %.0f, the other's at %.0f; want %s only", c.name, c.wantLevels, l, o, c.wantLevels)
		}
	}
}

// TestRecordCallerOnly: record_caller (RECORD_READ_ONLY) keeps only the
// caller's voice, mono, though the call is bridged.
func TestRecordCallerOnly(t *testing.T) {
	h := audioHarness(t, `defaults: {format: "wav", record_sample_rate: 8000}
accounts: acme: {
	devices: d1: {}
	callflows: sales: {
		numbers: ["2002"]
		actions: [{module: "record_caller", data: {time_limit: 600}}]
	}
}
`, fakeswitch.Config{})
	call := bridgedCall("000000000001", 6000)
	m, path := storedOne(t, h, call)
	rate, ch := wavChannels(t, path)
	if len(ch) != 1 || m.ChannelCount != 1 || m.Channels != nil {
		t.Fatalf("%d channels (metadata %d, %v), want mono", len(ch), m.ChannelCount, m.Channels)
	}
	// Each party's voice is its leg's tone (distinct for these uuids).
	caller, callee := fakeswitch.ToneHz(call.Legs[0].UUID), fakeswitch.ToneHz(call.Legs[1].UUID)
	if caller == callee {
		t.Fatalf("the two legs share the voice %v Hz: pick other uuids", caller)
	}
	if l, o := level(ch[0], rate, 1500, 4500, caller), level(ch[0], rate, 1500, 4500, callee); l < 1000 || o > l/10 {
		t.Errorf("caller's voice at %.0f, callee's at %.0f: want the caller only", l, o)
	}
}

// TestMP3Capability: a switch without mod_shout gets WAV recordings of a
// policy that asks for mp3, flagged format_requested; one with it (and
// the lame encoder here) gets real MP3, read by the store's frame check
// and served as audio/mpeg.
func TestMP3Capability(t *testing.T) {
	const policy = `defaults: record_sample_rate: 8000
accounts: acme: {
	call_recording: account: inbound: offnet: enabled: true
	devices: d1: {}
}
`
	t.Run("no mod_shout", func(t *testing.T) {
		h := audioHarness(t, policy, fakeswitch.Config{MP3: fakeswitch.MP3Off})
		m, path := storedOne(t, h, bridgedCall("000000000003", 4000))
		if m.Format != "wav" || m.FormatRequested != "mp3" || !strings.HasSuffix(path, ".wav") || len(m.Flags) != 0 {
			t.Errorf("stored %s as %s (requested %q, flags %v), want wav with format_requested mp3", path, m.Format, m.FormatRequested, m.Flags)
		}
		if got := gaugeValue(h.rt.Metrics.SwitchMP3.WithLabelValues(h.rt.switches[0].cfg.Name)); got != 0 {
			t.Errorf("recpol_switch_mp3 = %v, want 0", got)
		}
	})
	t.Run("real mp3", func(t *testing.T) {
		if _, err := exec.LookPath("lame"); err != nil {
			t.Skip("lame not installed: the fake switch cannot write real MP3")
		}
		h := audioHarness(t, policy, fakeswitch.Config{MP3: fakeswitch.MP3Auto})
		m, path := storedOne(t, h, bridgedCall("000000000004", 4000))
		if m.Format != "mp3" || m.FormatRequested != "" || m.ContentType() != "audio/mpeg" || len(m.Flags) != 0 || !strings.HasSuffix(path, ".mp3") {
			t.Errorf("stored %s as %s (%s, flags %v), want a real mp3", path, m.Format, m.ContentType(), m.Flags)
		}
		if m.DurationMS < 3500 || m.DurationMS > 4200 || m.SampleRate != 8000 {
			t.Errorf("mp3 read as %d ms at %d Hz, want about 3.9 s at 8 kHz", m.DurationMS, m.SampleRate)
		}
		if got := gaugeValue(h.rt.Metrics.SwitchMP3.WithLabelValues(h.rt.switches[0].cfg.Name)); got != 1 {
			t.Errorf("recpol_switch_mp3 = %v, want 1", got)
		}
	})
}

func gaugeValue(g interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// voices are the voices of the one file's recorded leg and of the other
// party it heard.
func voices(t *testing.T, h *harness) (own, other float64) {
	t.Helper()
	files := h.srv.Files()
	if len(files) != 1 || len(files[0].OtherHz) != 1 {
		t.Fatalf("files %+v, want one that heard one other party", files)
	}
	return files[0].ToneHz, files[0].OtherHz[0]
}

// TestMasksAgreeWithTheFile: a call masked mid-call by the agent's *72
// and unmasked by *73, recorded in stereo WAV and in MP3. The metadata's
// masked spans are the file's: for the WAV the store measures the run of
// digital zero (on both channels), for the MP3 the runtime takes the
// switch's own times of the mask and unmask (their BACKGROUND_JOBs).
func TestMasksAgreeWithTheFile(t *testing.T) {
	for _, tc := range []struct {
		name, format string
		mp3          fakeswitch.MP3Support
	}{
		{"stereo wav", `format: "wav", stereo: true`, fakeswitch.MP3Stub},
		{"mp3", `format: "mp3"`, fakeswitch.MP3Auto},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mp3 == fakeswitch.MP3Auto {
				if _, err := exec.LookPath("lame"); err != nil {
					t.Skip("lame not installed: the fake switch cannot write real MP3")
				}
			}
			h := audioHarness(t, `defaults: record_sample_rate: 8000
accounts: acme: {
	call_recording: account: inbound: offnet: {enabled: true, `+tc.format+`}
	devices: d1: {}
	metaflows: numbers: {
		"72": {module: "record_call", data: action: "mask"}
		"73": {module: "record_call", data: action: "unmask"}
	}
}
`, fakeswitch.Config{MP3: tc.mp3})
			call := bridgedCall("00000000000"+map[string]string{"stereo wav": "5", "mp3": "6"}[tc.name], 6000)
			hangup := call.Steps[len(call.Steps)-1]
			call.Steps = append(call.Steps[:len(call.Steps)-1],
				scenario.Step{AtMS: 2000, Do: "dtmf", Leg: "b", Digits: "*72"},
				scenario.Step{AtMS: 3500, Do: "dtmf", Leg: "b", Digits: "*73"}, hangup)
			m, path := storedOne(t, h, call)
			files := h.srv.Files()
			if len(files) != 1 || len(files[0].Masked) != 1 {
				t.Fatalf("the switch's files %+v, want one masked once", files)
			}
			f := files[0]
			want := []store.Range{{StartMS: f.Masked[0].FromMS, EndMS: f.Masked[0].ToMS}}
			if diff := cmp.Diff(want, m.MaskedRanges); diff != "" {
				t.Errorf("masked ranges, the file's (-) and the metadata's (+):\n%s", diff)
			}
			if tc.mp3 != fakeswitch.MP3Auto {
				rate, ch := wavChannels(t, path)
				for i, c := range ch {
					for k := want[0].StartMS * int64(rate) / 1000; k < want[0].EndMS*int64(rate)/1000 && k < int64(len(c)); k++ {
						if c[k] != 0 {
							t.Fatalf("channel %d: sample %d in the masked span is %d", i, k, c[k])
						}
					}
				}
			}
		})
	}
}

// TestSwitchMaskRanges: an MP3's masked spans come from the switch's
// times of its masks (µs), against RECORD_START's, and only when every
// mask the events saw has its time.
func TestSwitchMaskRanges(t *testing.T) {
	rec := func(masks ...switchMask) *recording {
		r := &recording{Recording: &callstate.Recording{}, switchMasks: masks}
		r.StartTS = 10_000_000
		return r
	}
	tests := []struct {
		name   string
		r      *recording
		events []callstate.Range
		want   []Range
		ok     bool
	}{
		{"a mask and an unmask, 240 ms after their keys", rec(switchMask{true, 11_740_000}, switchMask{false, 13_240_000}),
			[]callstate.Range{{StartMS: 1500, EndMS: 3000}}, []Range{{StartMS: 1740, EndMS: 3240}}, true},
		{"masked to the end", rec(switchMask{true, 12_000_000}),
			[]callstate.Range{{StartMS: 2000, EndMS: 5000}}, []Range{{StartMS: 2000, EndMS: -1}}, true},
		{"a job that arrived out of order", rec(switchMask{false, 13_000_000}, switchMask{true, 12_000_000}),
			[]callstate.Range{{StartMS: 2000, EndMS: 3000}}, []Range{{StartMS: 2000, EndMS: 3000}}, true},
		{"a mask whose time is missing", rec(switchMask{true, 12_000_000}, switchMask{false, 13_000_000}),
			[]callstate.Range{{StartMS: 2000, EndMS: 3000}, {StartMS: 4000, EndMS: 4500}}, nil, false},
		{"no start time", &recording{Recording: &callstate.Recording{}, switchMasks: []switchMask{{true, 1}}},
			[]callstate.Range{{StartMS: 0, EndMS: 1}}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.r.switchMaskRanges(tt.events)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

// TestMonoHearsBoth: a default (mono) recording of a bridged call holds
// both parties' voices, mixed.
func TestMonoHearsBoth(t *testing.T) {
	h := audioHarness(t, `defaults: {format: "wav", record_sample_rate: 8000}
accounts: acme: {
	call_recording: account: inbound: offnet: enabled: true
	devices: d1: {}
}
`, fakeswitch.Config{})
	call := bridgedCall("000000000007", 6000)
	m, path := storedOne(t, h, call)
	rate, ch := wavChannels(t, path)
	if len(ch) != 1 || m.ChannelCount != 1 {
		t.Fatalf("%d channels, want mono", len(ch))
	}
	caller, callee := fakeswitch.ToneHz(call.Legs[0].UUID), fakeswitch.ToneHz(call.Legs[1].UUID)
	if caller == callee {
		t.Fatalf("the two legs share the voice %v Hz: pick other uuids", caller)
	}
	if l, o := level(ch[0], rate, 1500, 4500, caller), level(ch[0], rate, 1500, 4500, callee); l < 1000 || o < 1000 {
		t.Errorf("caller's voice at %.0f, callee's at %.0f: want both", l, o)
	}
}
