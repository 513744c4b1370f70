package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// audioInfo is what the checks need from a recording file.
type audioInfo struct {
	rate     int
	channels int
	samples  int64 // per channel
	// WAV only: the PCM data's offset and size in the file, and the
	// bytes per sample of one channel.
	dataOff, dataLen int64
	bytesPerSample   int
}

// errCorrupt marks a file that is not a usable recording.
var errCorrupt = errors.New("not a readable recording")

// maxWAVChunks bounds the chunks read before the data chunk: a file of
// many tiny chunks is refused rather than walked for ever.
const maxWAVChunks = 64

// inspectWAV reads a WAV file's RIFF chunks and checks that it is PCM and
// that its data chunk is really there. It is bounded: a chunk's length is
// never allocated, only compared with the file's size and skipped (a
// 2 KB file whose LIST chunk claims 4 GB costs a seek), the fmt chunk is
// read into a fixed buffer, and at most maxWAVChunks chunks are read.
func inspectWAV(path string) (audioInfo, error) {
	f, size, err := openAudio(path)
	if err != nil {
		return audioInfo{}, err
	}
	defer f.Close()
	return inspectWAVAt(f, size)
}

// openAudio opens a recording file and returns its size.
func openAudio(path string) (*rawFile, int64, error) {
	f, err := openRaw(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, 0, err
	}
	size, err := f.size()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, size, nil
}

// headFile is a recording file whose first bytes are in head (the whole
// file when eof): the reads that check its header are served from them,
// without a system call.
type headFile struct {
	f    io.ReaderAt
	head []byte
	eof  bool
}

// readHead reads the first len(buf) bytes of f into buf.
func readHead(f io.ReaderAt, buf []byte) (*headFile, error) {
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return &headFile{f: f, head: buf[:n], eof: err != nil}, nil
}

// ReadAt reads from head, and from the file past it.
func (h *headFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at %d: %w", off, errCorrupt)
	}
	if off < int64(len(h.head)) {
		n := copy(p, h.head[off:])
		if n == len(p) {
			return n, nil
		}
		if h.eof {
			return n, io.EOF
		}
		m, err := h.f.ReadAt(p[n:], off+int64(n))
		return n + m, err
	}
	if h.eof {
		return 0, io.EOF
	}
	return h.f.ReadAt(p, off)
}

// isRIFFAt reports whether a file starts as a RIFF WAVE file.
func isRIFFAt(f io.ReaderAt) bool {
	var hdr [12]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return false
	}
	return string(hdr[0:4]) == "RIFF" && string(hdr[8:12]) == "WAVE"
}

// inspectWAVAt is inspectWAV of an open file of size bytes.
func inspectWAVAt(f io.ReaderAt, size int64) (audioInfo, error) {
	if size < 12 {
		return audioInfo{}, fmt.Errorf("%w: no RIFF header", errCorrupt)
	}
	if !isRIFFAt(f) {
		return audioInfo{}, fmt.Errorf("%w: not a RIFF WAVE file", errCorrupt)
	}
	var info audioInfo
	var bits, format int
	haveFmt := false
	off := int64(12)
	for n := 0; ; n++ {
		if n == maxWAVChunks {
			return audioInfo{}, fmt.Errorf("%w: more than %d chunks before the data", errCorrupt, maxWAVChunks)
		}
		var ch [8]byte
		if _, err := f.ReadAt(ch[:], off); err != nil {
			return audioInfo{}, fmt.Errorf("%w: no data chunk", errCorrupt)
		}
		id, clen := string(ch[0:4]), int64(binary.LittleEndian.Uint32(ch[4:8]))
		body := off + 8
		switch id {
		case "fmt ":
			if clen < 16 || body+16 > size {
				return audioInfo{}, fmt.Errorf("%w: a fmt chunk of %d bytes", errCorrupt, clen)
			}
			var b [16]byte
			if _, err := f.ReadAt(b[:], body); err != nil {
				return audioInfo{}, fmt.Errorf("%w: fmt chunk: %v", errCorrupt, err)
			}
			format = int(binary.LittleEndian.Uint16(b[0:2]))
			info.channels = int(binary.LittleEndian.Uint16(b[2:4]))
			info.rate = int(binary.LittleEndian.Uint32(b[4:8]))
			bits = int(binary.LittleEndian.Uint16(b[14:16]))
			haveFmt = true
		case "data":
			if !haveFmt || info.channels < 1 || info.rate == 0 {
				return audioInfo{}, fmt.Errorf("%w: no format chunk", errCorrupt)
			}
			if format != 1 && format != 0xFFFE {
				return audioInfo{}, fmt.Errorf("%w: audio format %d is not PCM", errCorrupt, format)
			}
			switch bits {
			case 8, 16, 24, 32:
			default:
				return audioInfo{}, fmt.Errorf("%w: %d bits per sample", errCorrupt, bits)
			}
			if body+clen > size {
				return audioInfo{}, fmt.Errorf("%w: data chunk of %d bytes at %d in a %d-byte file", errCorrupt, clen, body, size)
			}
			info.bytesPerSample = bits / 8
			info.dataOff, info.dataLen = body, clen
			info.samples = clen / int64(info.channels*info.bytesPerSample)
			return info, nil
		}
		// Chunks are padded to an even length.
		next := body + clen + clen&1
		if next > size {
			return audioInfo{}, fmt.Errorf("%w: a %q chunk of %d bytes at %d in a %d-byte file", errCorrupt, id, clen, off, size)
		}
		off = next
	}
}

// zeroRuns returns the runs of frames of exact digital zero on every
// channel of a WAV file, at least minMS long, in milliseconds from the
// start of the file. It streams the data (a fixed buffer).
func zeroRuns(path string, info audioInfo, minMS int64) ([]Range, error) {
	if info.bytesPerSample == 0 || info.rate == 0 || info.channels < 1 {
		return nil, nil
	}
	f, err := openRaw(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	frameSize := info.channels * info.bytesPerSample
	buf := getReadBuf()
	defer putReadBuf(buf)
	// Whole frames a read: the data is read in chunks of the buffer's
	// size and each frame looked at in place.
	chunk := (*buf)[:len(*buf)/frameSize*frameSize]
	if len(chunk) == 0 {
		// A frame larger than the buffer (a header's thousands of
		// channels): nothing to look at without a sample, else one
		// frame a read, which the data chunk holds at least once, so
		// that the buffer is bounded by the file's size.
		if info.samples <= 0 {
			return nil, nil
		}
		chunk = make([]byte, frameSize)
	}
	// 8-bit PCM is unsigned: its zero is 0x80.
	zero := byte(0)
	if info.bytesPerSample == 1 {
		zero = 0x80
	}
	var out []Range
	runStart := int64(-1)
	minFrames := minMS * int64(info.rate) / 1000
	ms := func(frames int64) int64 { return frames * 1000 / int64(info.rate) }
	var i int64
	off := info.dataOff
	for i < info.samples {
		want := min(int64(len(chunk)/frameSize), info.samples-i) * int64(frameSize)
		n, err := f.ReadAt(chunk[:want], off)
		if int64(n) < want {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("reading samples: %w", err)
		}
		off += want
		for p := 0; p < int(want); p += frameSize {
			silent := true
			for _, b := range chunk[p : p+frameSize] {
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
			i++
		}
	}
	if runStart >= 0 && i-runStart >= minFrames {
		out = append(out, Range{StartMS: ms(runStart), EndMS: ms(i)})
	}
	return out, nil
}

// nearestRun returns the run that overlaps want the most, or failing
// that the closest one, and whether any run is within maxOff of it.
func nearestRun(runs []Range, want Range, maxOff int64) (Range, bool) {
	best, bestScore, found := Range{}, int64(-1<<62), false
	for _, rg := range runs {
		overlap := min(rg.EndMS, want.EndMS) - max(rg.StartMS, want.StartMS)
		var score int64
		if overlap > 0 {
			score = overlap
		} else {
			score = overlap // negative: the gap between them
			if -overlap > maxOff {
				continue
			}
		}
		if score > bestScore {
			best, bestScore, found = rg, score, true
		}
	}
	return best, found
}
