package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// zeroRunsRef is zeroRuns as it was written first, a frame at a time
// through a bufio.Reader: the reference TestZeroRunsChunked compares the
// chunked one with.
func zeroRunsRef(path string, info audioInfo, minMS int64) ([]Range, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(io.NewSectionReader(f, info.dataOff, info.dataLen), 64<<10)
	frame := make([]byte, info.channels*info.bytesPerSample)
	zero := byte(0)
	if info.bytesPerSample == 1 {
		zero = 0x80
	}
	var out []Range
	runStart := int64(-1)
	minFrames := minMS * int64(info.rate) / 1000
	ms := func(frames int64) int64 { return frames * 1000 / int64(info.rate) }
	var i int64
	for ; i < info.samples; i++ {
		if _, err := io.ReadFull(r, frame); err != nil {
			return nil, fmt.Errorf("reading samples: %w", err)
		}
		silent := true
		for _, b := range frame {
			if b != zero {
				silent = false
				break
			}
		}
		switch {
		case silent && runStart < 0:
			runStart = i
		case !silent && runStart >= 0:
			if i-runStart >= minFrames {
				out = append(out, Range{StartMS: ms(runStart), EndMS: ms(i)})
			}
			runStart = -1
		}
	}
	if runStart >= 0 && i-runStart >= minFrames {
		out = append(out, Range{StartMS: ms(runStart), EndMS: ms(i)})
	}
	return out, nil
}

// TestZeroRunsChunked: zeroRuns, which reads the samples in chunks of
// whole frames, finds the runs the frame-at-a-time reference finds, for
// frames of 1 to 8 bytes (none of them dividing the chunk but 1, 2, 4
// and 8), runs across chunk boundaries, at the start and at the end, and
// fails as it does on a file cut short; frames larger than its buffer are
// read one at a time.
func TestZeroRunsChunked(t *testing.T) {
	t.Parallel()
	const rate = 8000
	tests := []struct {
		name          string
		channels, bps int
		frames        int
		zeros         [][2]int // runs of zero frames [from, to)
		cut           int      // bytes cut from the end of the file
	}{
		{name: "mono 16-bit, no zeros", channels: 1, bps: 2, frames: 50000},
		{name: "mono 16-bit, runs across chunks", channels: 1, bps: 2, frames: 100000,
			zeros: [][2]int{{0, 400}, {32700, 32900}, {65000, 66000}, {99000, 100000}}},
		{name: "stereo 24-bit", channels: 2, bps: 3, frames: 40000,
			zeros: [][2]int{{10900, 11100}, {21800, 22000}, {30000, 30200}}},
		{name: "mono 8-bit", channels: 1, bps: 1, frames: 140000,
			zeros: [][2]int{{65500, 65700}, {131000, 131100}}},
		{name: "stereo 32-bit", channels: 2, bps: 4, frames: 20000,
			zeros: [][2]int{{8100, 8300}, {19900, 20000}}},
		{name: "short runs only", channels: 1, bps: 2, frames: 9000,
			zeros: [][2]int{{100, 110}, {5000, 5100}}},
		{name: "cut short", channels: 1, bps: 2, frames: 70000, zeros: [][2]int{{100, 400}}, cut: 1001},
		// 68,000-byte frames, larger than the read buffer: one a read.
		{name: "frames larger than the buffer", channels: 17000, bps: 4, frames: 200, zeros: [][2]int{{20, 190}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			zero := byte(0)
			if tc.bps == 1 {
				zero = 0x80
			}
			frameSize := tc.channels * tc.bps
			const hdr = 44
			b := make([]byte, hdr+tc.frames*frameSize)
			rng := rand.New(rand.NewPCG(1, uint64(tc.frames)))
			for i := hdr; i < len(b); i++ {
				b[i] = byte(rng.IntN(256))
			}
			// One byte of each frame is never zero outside the runs.
			for fr := range tc.frames {
				b[hdr+fr*frameSize+rng.IntN(frameSize)] = zero + 1
			}
			for _, z := range tc.zeros {
				for i := hdr + z[0]*frameSize; i < hdr+z[1]*frameSize; i++ {
					b[i] = zero
				}
			}
			info := audioInfo{rate: rate, channels: tc.channels, bytesPerSample: tc.bps,
				samples: int64(tc.frames), dataOff: hdr, dataLen: int64(tc.frames * frameSize)}
			p := filepath.Join(t.TempDir(), "z.wav")
			if err := os.WriteFile(p, b[:len(b)-tc.cut], 0o600); err != nil {
				t.Fatal(err)
			}
			want, werr := zeroRunsRef(p, info, 20)
			got, gerr := zeroRuns(p, info, 20)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("runs (-reference +chunked):\n%s", diff)
			}
			if (werr == nil) != (gerr == nil) || (werr != nil && !errors.Is(gerr, io.ErrUnexpectedEOF)) {
				t.Errorf("error %v, reference %v", gerr, werr)
			}
			if tc.cut == 0 && len(tc.zeros) > 0 && tc.name != "short runs only" && len(got) == 0 {
				t.Error("no runs found: the test finds nothing")
			}
		})
	}
}

// BenchmarkZeroRuns looks for the runs of zeros in 30 s of 8 kHz mono,
// as measureMasks does for a recording with a masked span.
func BenchmarkZeroRuns(b *testing.B) {
	const rate, frames = 8000, 8000 * 30
	data := make([]byte, 44+frames*2)
	for i := 44; i < len(data); i += 2 {
		data[i] = 1
	}
	p := filepath.Join(b.TempDir(), "z.wav")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		b.Fatal(err)
	}
	info := audioInfo{rate: rate, channels: 1, bytesPerSample: 2, samples: frames, dataOff: 44, dataLen: frames * 2}
	for _, impl := range []struct {
		name string
		f    func(string, audioInfo, int64) ([]Range, error)
	}{{"chunked", zeroRuns}, {"frame-at-a-time", zeroRunsRef}} {
		b.Run(impl.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := impl.f(p, info, 20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
