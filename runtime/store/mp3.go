package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// inspectMP3 walks an MP3 file's frames and checks that they chain from
// the first to the last: each frame header valid (MPEG 1, 2 or 2.5, layer
// III, a known bitrate and sample rate) and of the same version and
// sample rate as the first, each next header where the previous frame's
// length says. It returns the sample rate, the channels and the samples
// per channel (frames x samples per frame; a LAME/Xing info frame is not
// audio and is not counted).
//
// The frames are walked rather than decoded: FreeSWITCH's mod_shout writes
// 8 kHz recordings as MPEG 2.5 (src/mod/formats/mod_shout/mod_shout.c,
// shout_file_open, lame_set_out_samplerate to the channel's rate), which
// the Go decoders at hand refuse (github.com/hajimehoshi/go-mp3 v0.3.4:
// "MPEG version 2.5 is not supported"); the headers alone say whether the
// file is whole, how long it is and at what rate. Bounded: an ID3v2 tag
// is skipped by its declared size (never allocated), a frame is at most
// 2,881 bytes, and at most 16 KB of leading junk is searched for the
// first frame.
func inspectMP3(path string) (audioInfo, error) {
	f, size, err := openAudio(path)
	if err != nil {
		return audioInfo{}, err
	}
	defer f.Close()
	return inspectMP3At(f, size)
}

// inspectMP3At is inspectMP3 of an open file of size bytes.
func inspectMP3At(f io.ReaderAt, size int64) (audioInfo, error) {
	off := int64(0)
	var b [10]byte
	if n, _ := f.ReadAt(b[:], 0); n == 10 && string(b[0:3]) == "ID3" {
		// ID3v2: a 10-byte header, a synchsafe size, and a footer of 10
		// more when flag 0x10 is set.
		tag := int64(b[6]&0x7f)<<21 | int64(b[7]&0x7f)<<14 | int64(b[8]&0x7f)<<7 | int64(b[9]&0x7f)
		off = 10 + tag
		if b[5]&0x10 != 0 {
			off += 10
		}
		if off > size {
			return audioInfo{}, fmt.Errorf("%w: an ID3 tag of %d bytes in a %d-byte file", errCorrupt, tag, size)
		}
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, off, size-off), 32<<10)
	// The first frame: a valid header whose next header is valid too.
	var first mp3Header
	skipped := 0
	for {
		h, ok, err := peekMP3Header(r)
		if err != nil {
			return audioInfo{}, fmt.Errorf("%w: no MPEG audio frame", errCorrupt)
		}
		if ok {
			first = h
			break
		}
		if skipped++; skipped > 16<<10 {
			return audioInfo{}, fmt.Errorf("%w: no MPEG audio frame in the first 16 KB", errCorrupt)
		}
		if _, err := r.Discard(1); err != nil {
			return audioInfo{}, fmt.Errorf("%w: no MPEG audio frame", errCorrupt)
		}
	}
	info := audioInfo{rate: first.rate, channels: first.channels}
	frame := make([]byte, 2881)
	for n := 0; ; n++ {
		h, ok, err := peekMP3Header(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return audioInfo{}, err
		}
		if !ok {
			if tail, _ := r.Peek(3); string(tail) == "TAG" || string(tail) == "APE" || string(tail) == "LYR" {
				break // ID3v1, APE or Lyrics3 tags end the audio
			}
			return audioInfo{}, fmt.Errorf("%w: frame %d is not an MPEG audio frame", errCorrupt, n+1)
		}
		if h.version != first.version || h.rate != first.rate {
			return audioInfo{}, fmt.Errorf("%w: frame %d changes the MPEG version or sample rate", errCorrupt, n+1)
		}
		got, err := io.ReadFull(r, frame[:h.length])
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			break // a last frame cut short: the recording stopped mid-frame
		}
		if err != nil {
			return audioInfo{}, err
		}
		if n == 0 && isInfoFrame(frame[:got], h) {
			continue
		}
		info.samples += int64(h.samples)
	}
	if info.samples == 0 {
		return audioInfo{}, fmt.Errorf("%w: no MPEG audio frame", errCorrupt)
	}
	return info, nil
}

// mp3Header is a layer III frame header.
type mp3Header struct {
	version  int // 1, 2, or 25 for 2.5
	rate     int
	channels int
	length   int // bytes of the frame, header included
	samples  int // per channel
}

var (
	mp3Bitrates1  = [16]int{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, -1}
	mp3Bitrates2  = [16]int{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, -1}
	mp3SampleRate = map[int][3]int{1: {44100, 48000, 32000}, 2: {22050, 24000, 16000}, 25: {11025, 12000, 8000}}
)

// peekMP3Header reads the header at the reader's position without
// consuming it; ok is false when it is not a valid layer III header.
func peekMP3Header(r *bufio.Reader) (mp3Header, bool, error) {
	b, err := r.Peek(4)
	if len(b) < 4 {
		if err == nil {
			err = io.EOF
		}
		if len(b) == 0 || errors.Is(err, io.EOF) {
			return mp3Header{}, false, io.EOF
		}
		return mp3Header{}, false, err
	}
	h, ok := parseMP3Header(b)
	return h, ok, nil
}

func parseMP3Header(b []byte) (mp3Header, bool) {
	if b[0] != 0xFF || b[1]&0xE0 != 0xE0 {
		return mp3Header{}, false
	}
	var h mp3Header
	switch (b[1] >> 3) & 3 {
	case 0:
		h.version = 25
	case 2:
		h.version = 2
	case 3:
		h.version = 1
	default:
		return mp3Header{}, false
	}
	if (b[1]>>1)&3 != 1 { // layer III
		return mp3Header{}, false
	}
	bi, ri := int(b[2]>>4), int((b[2]>>2)&3)
	if bi == 0 || bi == 15 || ri == 3 {
		return mp3Header{}, false // free format and reserved values
	}
	h.rate = mp3SampleRate[h.version][ri]
	pad := int((b[2] >> 1) & 1)
	h.channels = 2
	if b[3]>>6 == 3 {
		h.channels = 1
	}
	if h.version == 1 {
		h.samples = 1152
		h.length = 144*mp3Bitrates1[bi]*1000/h.rate + pad
	} else {
		h.samples = 576
		h.length = 72*mp3Bitrates2[bi]*1000/h.rate + pad
	}
	return h, h.length > 4
}

// isInfoFrame reports whether a frame is a Xing/LAME "Info" or "Xing"
// header frame (no audio): its tag follows the side information.
func isInfoFrame(frame []byte, h mp3Header) bool {
	side := 17 // MPEG 1 mono
	switch {
	case h.version == 1 && h.channels == 2:
		side = 32
	case h.version != 1 && h.channels == 1:
		side = 9
	case h.version != 1:
		side = 17
	}
	at := 4 + side
	if len(frame) < at+4 {
		return false
	}
	tag := string(frame[at : at+4])
	return tag == "Xing" || tag == "Info"
}
