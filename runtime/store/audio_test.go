package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// pcmWAV builds a 16-bit PCM WAV: channels interleaved, each sample from
// f(channel, frame); extra chunks go before the data chunk.
func pcmWAVn(rate, channels, frames int, extra []byte, f func(ch, i int) int16) []byte {
	data := make([]byte, 0, frames*channels*2)
	for i := range frames {
		for ch := range channels {
			data = binary.LittleEndian.AppendUint16(data, uint16(f(ch, i)))
		}
	}
	b := []byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00")
	b = binary.LittleEndian.AppendUint16(b, uint16(channels))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate*channels*2))
	b = binary.LittleEndian.AppendUint16(b, uint16(channels*2))
	b = binary.LittleEndian.AppendUint16(b, 16)
	b = append(b, extra...)
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	binary.LittleEndian.PutUint32(b[4:8], uint32(len(b)-8))
	return b
}

func tone(hz, rate int) func(ch, i int) int16 {
	return func(ch, i int) int16 { return int16(8000 * math.Sin(2*math.Pi*float64(hz)*float64(i)/float64(rate))) }
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestInspectWAV: the bounded reader takes real files and refuses broken
// ones without allocating from their lengths.
func TestInspectWAV(t *testing.T) {
	// A LIST chunk claiming 4 GB in a 2 KB file (issue 20's poisoned WAV).
	poisoned := pcmWAVn(8000, 1, 800, []byte("LIST\xfe\xff\xff\xffINFO"), tone(440, 8000))
	tests := []struct {
		name    string
		b       []byte
		want    audioInfo
		corrupt bool
	}{
		{"mono 8 kHz", pcmWAVn(8000, 1, 8000, nil, tone(440, 8000)), audioInfo{rate: 8000, channels: 1, samples: 8000, dataOff: 44, dataLen: 16000, bytesPerSample: 2}, false},
		{"stereo 16 kHz", pcmWAVn(16000, 2, 1600, nil, tone(440, 16000)), audioInfo{rate: 16000, channels: 2, samples: 1600, dataOff: 44, dataLen: 6400, bytesPerSample: 2}, false},
		{"a LIST chunk before the data", pcmWAVn(8000, 1, 80, []byte("LIST\x04\x00\x00\x00INFO"), tone(440, 8000)), audioInfo{rate: 8000, channels: 1, samples: 80, dataOff: 56, dataLen: 160, bytesPerSample: 2}, false},
		{"a LIST chunk claiming 4 GB", poisoned, audioInfo{}, true},
		{"a data chunk longer than the file", pcmWAVn(8000, 1, 80, nil, tone(440, 8000))[:100], audioInfo{}, true},
		{"not RIFF", []byte("ID3\x04\x00\x00\x00\x00\x00\x00 mp3 bytes"), audioInfo{}, true},
		{"no fmt chunk", []byte("RIFF\x0c\x00\x00\x00WAVEdata\x00\x00\x00\x00"), audioInfo{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inspectWAV(writeFile(t, "f.wav", tt.b))
			if tt.corrupt {
				if !errors.Is(err, errCorrupt) {
					t.Fatalf("err = %v, want errCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got, cmp.AllowUnexported(audioInfo{})); d != "" {
				t.Errorf("-want +got:\n%s", d)
			}
		})
	}
}

// TestZeroRunsAndMasks: the masked spans written to the metadata are the
// file's runs of digital zero nearest the events' spans, on every channel.
func TestZeroRunsAndMasks(t *testing.T) {
	const rate = 8000
	ms := func(n int) int { return n * rate / 1000 }
	// 3 s of stereo; zeros on both channels from 1480 to 2000 ms; a zero
	// run on the left channel only from 500 to 700 ms (not a mask).
	f := func(ch, i int) int16 {
		if i >= ms(1480) && i < ms(2000) {
			return 0
		}
		if ch == 0 && i >= ms(500) && i < ms(700) {
			return 0
		}
		return tone(300+200*ch, rate)(ch, i) | 1 // never exactly zero
	}
	p := writeFile(t, "m.wav", pcmWAVn(rate, 2, ms(3000), nil, f))
	info, err := inspectWAV(p)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := zeroRuns(p, info, 20)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]Range{{StartMS: 1480, EndMS: 2000}}, runs); d != "" {
		t.Errorf("zero runs -want +got:\n%s", d)
	}
	m := Metadata{DurationMS: 3000, MaskedRanges: []Range{{StartMS: 1740, EndMS: 2100}}}
	if err := measureMasks(p, info, &m); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]Range{{StartMS: 1480, EndMS: 2000}}, m.MaskedRanges); d != "" {
		t.Errorf("masked ranges -want +got:\n%s", d)
	}
	if d := cmp.Diff([]Range{{StartMS: 1740, EndMS: 2100}}, m.ReportedMaskedRanges); d != "" {
		t.Errorf("reported ranges -want +got:\n%s", d)
	}
	// No zeros near a span: the events' span stays, and nothing is kept
	// as reported.
	m = Metadata{DurationMS: 3000, MaskedRanges: []Range{{StartMS: 100, EndMS: 200}}}
	p2 := writeFile(t, "n.wav", pcmWAVn(rate, 1, ms(3000), nil, func(ch, i int) int16 { return 1000 }))
	info2, _ := inspectWAV(p2)
	if err := measureMasks(p2, info2, &m); err != nil {
		t.Fatal(err)
	}
	if m.ReportedMaskedRanges != nil || m.MaskedRanges[0] != (Range{StartMS: 100, EndMS: 200}) {
		t.Errorf("without zeros: %+v", m)
	}
}

// mp3Frame builds one layer III frame of the given header bytes, padded
// to its length.
func mp3Frames(t *testing.T, hdr [4]byte, n int) []byte {
	t.Helper()
	h, ok := parseMP3Header(hdr[:])
	if !ok {
		t.Fatalf("bad test header % x", hdr)
	}
	var b []byte
	for range n {
		fr := make([]byte, h.length)
		copy(fr, hdr[:])
		b = append(b, fr...)
	}
	return b
}

// TestInspectMP3: frames are walked, versions 1, 2 and 2.5 (FreeSWITCH's
// 8 kHz), with their tags; a broken chain is corrupt.
func TestInspectMP3(t *testing.T) {
	v25mono8k := [4]byte{0xFF, 0xE2, 0x28, 0xC0}   // MPEG 2.5, 16 kbps, 8 kHz, mono: 144 bytes, 576 samples
	v2stereo16k := [4]byte{0xFF, 0xF2, 0x48, 0x00} // MPEG 2, 32 kbps, 16 kHz, stereo
	v1mono44k := [4]byte{0xFF, 0xFB, 0x90, 0xC0}   // MPEG 1, 128 kbps, 44.1 kHz, mono
	id3 := append([]byte("ID3\x04\x00\x00\x00\x00\x01\x00"), make([]byte, 128)...)
	tests := []struct {
		name    string
		b       []byte
		want    audioInfo
		corrupt bool
	}{
		{"MPEG 2.5 8 kHz mono", mp3Frames(t, v25mono8k, 100), audioInfo{rate: 8000, channels: 1, samples: 57600}, false},
		{"MPEG 2 16 kHz stereo, ID3v2 and ID3v1 tags", append(append(id3, mp3Frames(t, v2stereo16k, 10)...), append([]byte("TAG"), make([]byte, 125)...)...),
			audioInfo{rate: 16000, channels: 2, samples: 5760}, false},
		{"MPEG 1 44.1 kHz, last frame cut short", mp3Frames(t, v1mono44k, 10)[:4000], audioInfo{rate: 44100, channels: 1, samples: 1152 * 9}, false},
		{"WAV bytes", pcmWAVn(8000, 1, 80, nil, tone(440, 8000)), audioInfo{}, true},
		{"junk between frames", append(append(mp3Frames(t, v25mono8k, 3), "junkjunk"...), mp3Frames(t, v25mono8k, 3)...), audioInfo{}, true},
		{"a sample rate change", append(mp3Frames(t, v25mono8k, 3), mp3Frames(t, v2stereo16k, 3)...), audioInfo{}, true},
		{"an ID3 tag claiming 256 MB", []byte("ID3\x04\x00\x00\x7f\x7f\x7f\x7f"), audioInfo{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inspectMP3(writeFile(t, "f.mp3", tt.b))
			if tt.corrupt {
				if !errors.Is(err, errCorrupt) {
					t.Fatalf("err = %v, want errCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got, cmp.AllowUnexported(audioInfo{})); d != "" {
				t.Errorf("-want +got:\n%s", d)
			}
		})
	}
}

// TestInspectMP3Lame: real files from the LAME encoder (the encoder
// FreeSWITCH's mod_shout uses), mono 8 kHz and stereo 16 kHz: readable,
// with the duration and rate they were made with. Skipped without lame.
func TestInspectMP3Lame(t *testing.T) {
	lame, err := exec.LookPath("lame")
	if err != nil {
		t.Skip("lame not installed")
	}
	for _, tc := range []struct {
		rate, channels int
		args           []string
	}{
		{8000, 1, []string{"-b", "16"}},
		{16000, 2, []string{"-b", "32"}},
	} {
		wav := writeFile(t, "in.wav", pcmWAVn(tc.rate, tc.channels, tc.rate*3, nil, tone(440, tc.rate)))
		out := filepath.Join(t.TempDir(), "out.mp3")
		args := append([]string{"--quiet", "--resample", map[int]string{8000: "8", 16000: "16"}[tc.rate]}, tc.args...)
		if b, err := exec.Command(lame, append(args, wav, out)...).CombinedOutput(); err != nil {
			t.Fatalf("lame: %v: %s", err, b)
		}
		info, err := inspectMP3(out)
		if err != nil {
			t.Fatalf("%d Hz: %v", tc.rate, err)
		}
		ms := info.samples * 1000 / int64(info.rate)
		if info.rate != tc.rate || info.channels != tc.channels || ms < 2900 || ms > 3200 {
			t.Errorf("%d Hz x%d: got rate %d, %d channels, %d ms", tc.rate, tc.channels, info.rate, info.channels, ms)
		}
	}
}

// v25mono8kHeader is an MPEG 2.5 layer III header, 16 kbps, 8 kHz, mono:
// what FreeSWITCH's mod_shout writes for an 8 kHz recording (144-byte
// frames of 576 samples, 72 ms).
var v25mono8kHeader = [4]byte{0xFF, 0xE2, 0x28, 0xC0}

// writeMP3 writes frames 8 kHz MP3 frames (72 ms each) to path.
func writeMP3(t *testing.T, path string, frames int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, mp3Frames(t, v25mono8kHeader, frames), 0o644); err != nil {
		t.Fatal(err)
	}
}

// FuzzInspectAudio: any bytes under a .wav or .mp3 name are read without
// a panic and without allocating from a length field (the readers use
// fixed buffers), and what they accept is consistent.
func FuzzInspectAudio(f *testing.F) {
	f.Add(pcmWAVn(8000, 1, 80, nil, tone(440, 8000)), false)
	f.Add(pcmWAVn(8000, 2, 80, []byte("LIST\xfe\xff\xff\xffINFO"), tone(440, 8000)), false)
	hdr := []byte{0xFF, 0xE2, 0x28, 0xC0}
	fr := make([]byte, 144)
	copy(fr, hdr)
	f.Add(append(append([]byte{}, fr...), fr...), true)
	f.Add([]byte("ID3\x04\x00\x00\x00\x00\x00\x10"), true)
	f.Fuzz(func(t *testing.T, b []byte, mp3 bool) {
		name := "f.wav"
		inspect := inspectWAV
		if mp3 {
			name, inspect = "f.mp3", inspectMP3
		}
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		info, err := inspect(p)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("an error that is not errCorrupt: %v", err)
			}
			return
		}
		if info.rate <= 0 || info.channels <= 0 || info.samples < 0 {
			t.Fatalf("accepted with %+v", info)
		}
		if !mp3 {
			if info.dataOff+info.dataLen > int64(len(b)) {
				t.Fatalf("data chunk past the file: %+v in %d bytes", info, len(b))
			}
			if _, err := zeroRuns(p, info, 1); err != nil {
				t.Fatalf("zeroRuns of an accepted file: %v", err)
			}
		}
	})
}

// TestJournalErrorsTransientOrCorrupt: only a journal whose content is
// wrong is corrupt (and quarantined); an error reading it (here: a
// directory in its place, as EMFILE or EIO would be) is not.
func TestJournalErrorsTransientOrCorrupt(t *testing.T) {
	e := newEnv(t)
	s := e.open(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "r1.json")
	if err := os.WriteFile(garbage, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "r2.json")
	if err := os.Mkdir(unreadable, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.readJournal(garbage); !errors.Is(err, errCorruptJournal) {
		t.Errorf("garbage: %v, want errCorruptJournal", err)
	}
	if _, err := s.readJournal(unreadable); err == nil || errors.Is(err, errCorruptJournal) {
		t.Errorf("a read error: %v, want a transient error", err)
	}
}

// FuzzCheckJournal: any bytes as a journal are accepted or refused as
// corrupt (and only as corrupt: quarantined, never a panic), and an
// accepted one names its recording and an absolute source.
func FuzzCheckJournal(f *testing.F) {
	e := newEnv(f)
	s := e.open(f)
	good, err := json.Marshal(journal{Version: 1, State: stReceived, Src: "/spool/rec/r1.wav", Meta: meta("r1")})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":1,"state":"checked","src":"/x","meta":{"recording_id":"r1"}}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := s.checkJournal(b, "r1")
		if err != nil {
			if !errors.Is(err, errCorruptJournal) {
				t.Fatalf("an error that is not errCorruptJournal: %v", err)
			}
			return
		}
		if j.Meta.RecordingID != "r1" || !filepath.IsAbs(j.Src) {
			t.Fatalf("accepted %+v", j)
		}
	})
}
