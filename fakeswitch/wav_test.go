package fakeswitch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// wavBytesWhole is wavBytes as it was before the streaming writer,
// verbatim: a canonical 44-byte-header PCM WAV file of the samples.
func wavBytesWhole(samples []int16, rate, nch int) []byte {
	n := len(samples)
	b := make([]byte, wavHeader, wavHeader+2*n)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], uint16(nch))
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(2*rate*nch))
	binary.LittleEndian.PutUint16(b[32:], uint16(2*nch))
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*n))
	for _, v := range samples {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b
}

// writeWhole writes a recording as the fake switch did before the
// streaming writer: the whole sample slice (from pcmPerSample, the
// reference the switch's samples were first checked against), then the
// whole WAV file in memory, then the file. The reference writeWAVFile
// must equal byte for byte.
func writeWhole(path string, segs []segment, rate int, f recFlags) (int64, error) {
	b := wavBytesWhole(pcmPerSample(segs, rate, f), rate, f.channels())
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return 0, err
	}
	return int64(len(b)), nil
}

// TestWriteWAVFileEqualsWhole: the streaming writer writes the same bytes
// as the whole-buffer construction, and reports their number, for
// recordings of every kind: masked, stereo, swapped, read or write only,
// announcements, several rates, segments across chunk boundaries.
func TestWriteWAVFileEqualsWhole(t *testing.T) {
	talk := func(n int) segment { return segment{n: n, read: []voice{440}, write: []voice{700}} }
	mask := func(n int) segment { return segment{n: n, masked: true} }
	both := recFlags{read: true, write: true}
	// Enough voices at full amplitude clip.
	loud := []voice{300, 350, 400, 450, 500}
	for _, tt := range []struct {
		name string
		segs []segment
		rate int
		f    recFlags
	}{
		{"mono", []segment{talk(8000)}, 8000, both},
		{"mono masked", []segment{talk(8000), mask(8000), talk(8000)}, 8000, both},
		{"masked only", []segment{mask(3000)}, 8000, both},
		{"no samples", nil, 8000, both},
		{"stereo", []segment{talk(8000), mask(4000), talk(5000)}, 8000, recFlags{read: true, write: true, stereo: true}},
		{"stereo swapped", []segment{talk(8000), mask(4000), talk(5000)}, 8000, recFlags{read: true, write: true, stereo: true, swap: true}},
		{"read only", []segment{{n: 7000, read: []voice{440}}, mask(100), {n: 3, read: []voice{440}}}, 8000, recFlags{read: true}},
		{"write only", []segment{{n: 7000, write: []voice{700}}, {n: 9000, write: []voice{AnnounceHz}, announce: true}}, 8000, recFlags{write: true}},
		{"write only stereo", []segment{{n: 7000, write: []voice{700}}}, 8000, recFlags{write: true, stereo: true}},
		{"silence between bridges", []segment{{n: 4000, read: []voice{440}}, talk(4000), {n: 4000, read: []voice{440}}}, 8000, both},
		{"clipped", []segment{{n: 20000, read: loud, write: loud}}, 8000, both},
		{"clipped stereo", []segment{{n: 20000, read: loud, write: loud}}, 16000, recFlags{read: true, write: true, stereo: true}},
		{"16 kHz", []segment{talk(16000), mask(16000), talk(1)}, 16000, both},
		{"44.1 kHz stereo", []segment{talk(44100), mask(7), talk(44100)}, 44100, recFlags{read: true, write: true, stereo: true}},
		{"48 kHz swapped", []segment{talk(48000), talk(48000)}, 48000, recFlags{read: true, write: true, stereo: true, swap: true}},
		// A segment ending exactly at a chunk's end, and one ending a
		// sample past it.
		{"chunk edge", []segment{talk(pcmChunk), mask(pcmChunk), talk(pcmChunk + 1)}, 8000, both},
		{"chunk edge stereo", []segment{talk(pcmChunk / 2), talk(pcmChunk/2 + 1), mask(1)}, 8000, recFlags{read: true, write: true, stereo: true}},
		{"empty segments", []segment{talk(0), talk(100), mask(0), talk(5)}, 8000, both},
		{"many short segments", shortSegs(500), 8000, recFlags{read: true, write: true, stereo: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			wantPath, gotPath := filepath.Join(dir, "want.wav"), filepath.Join(dir, "got.wav")
			wantN, err := writeWhole(wantPath, tt.segs, tt.rate, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			// The file is truncated: a longer file there before does not
			// leave its tail.
			if err := os.WriteFile(gotPath, bytes.Repeat([]byte{1}, int(wantN)+100), 0o644); err != nil {
				t.Fatal(err)
			}
			gotN, err := writeWAVFile(gotPath, tt.segs, tt.rate, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(wantPath)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(gotPath)
			if err != nil {
				t.Fatal(err)
			}
			if gotN != wantN || int64(len(got)) != gotN {
				t.Errorf("size: writeWAVFile reports %d and wrote %d bytes, want %d", gotN, len(got), wantN)
			}
			if !bytes.Equal(got, want) {
				i := 0
				for i < min(len(got), len(want)) && got[i] == want[i] {
					i++
				}
				t.Fatalf("writeWAVFile's file differs from the whole-buffer construction from byte %d (of %d, want %d)", i, len(got), len(want))
			}
			// pcm and wavBytes, now over the generator, still equal the
			// whole-buffer construction.
			if diff := cmp.Diff(want, wavBytes(pcm(tt.segs, tt.rate, tt.f), tt.rate, tt.f.channels())); diff != "" {
				t.Errorf("wavBytes(pcm(...)) differs (-want +got):\n%s", diff)
			}
		})
	}
}

// shortSegs returns n short segments of changing voices, some masked.
func shortSegs(n int) []segment {
	hz := []voice{300, 440, 700, 1000, 1234}
	var segs []segment
	for i := range n {
		segs = append(segs, segment{n: 1 + i%97, masked: i%7 == 0, read: hz[:i%4], write: hz[i%3 : i%3+2]})
	}
	return segs
}

// failWriter fails its writes after ok bytes.
type failWriter struct{ ok int }

var errDiskFull = errors.New("disk full")

func (w *failWriter) Write(b []byte) (int, error) {
	if len(b) > w.ok {
		n := w.ok
		w.ok = 0
		return n, errDiskFull
	}
	w.ok -= len(b)
	return len(b), nil
}

// TestWritePCMError: a failing write ends writePCM with its error and the
// bytes written; the MP3 input, headerless, is the WAV file's data.
func TestWritePCMError(t *testing.T) {
	segs := []segment{{n: 3 * pcmChunk, read: []voice{440}, write: []voice{700}}}
	f := recFlags{read: true, write: true}
	for _, tt := range []struct {
		name string
		ok   int
	}{{"in the first chunk", 10}, {"in a later chunk", wavHeader + 2*pcmChunk + 5}} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := writePCM(&failWriter{ok: tt.ok}, segs, 8000, f, true)
			if !errors.Is(err, errDiskFull) || n != int64(tt.ok) {
				t.Fatalf("writePCM = %d, %v; want %d, %v", n, err, tt.ok, errDiskFull)
			}
		})
	}
	var raw bytes.Buffer
	if _, err := writePCM(&raw, segs, 8000, f, false); err != nil {
		t.Fatal(err)
	}
	whole := wavBytesWhole(pcmPerSample(segs, 8000, f), 8000, 1)
	if !bytes.Equal(raw.Bytes(), whole[wavHeader:]) {
		t.Fatal("the headerless PCM is not the WAV file's data")
	}
}

// benchSegs is a 30 s two-voice mono recording at 8 kHz with a masked
// stretch, about a soak call's.
var benchSegs = []segment{
	{n: 80000, read: []voice{440}, write: []voice{700}},
	{n: 40000, masked: true},
	{n: 120000, read: []voice{440}, write: []voice{700}},
}

// BenchmarkWriteRecording writes benchSegs to a file: the whole-buffer
// reference (samples looked up one by one) against the streaming writer.
func BenchmarkWriteRecording(b *testing.B) {
	f := recFlags{read: true, write: true}
	for _, bc := range []struct {
		name string
		fn   func(string, []segment, int, recFlags) (int64, error)
	}{{"whole", writeWhole}, {"stream", writeWAVFile}} {
		b.Run(bc.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "r.wav")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.fn(path, benchSegs, 8000, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
