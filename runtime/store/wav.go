package store

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/go-audio/wav"
)

// wavInfo is what the checks need from a WAV file.
type wavInfo struct {
	rate    int
	samples int64 // per channel
}

// errCorrupt marks a file that is not a usable PCM WAV.
var errCorrupt = errors.New("not a readable PCM WAV")

// inspectWAV reads a WAV file's headers with go-audio/wav and checks that
// it is PCM and that its data chunk is really there.
func inspectWAV(path string) (wavInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return wavInfo{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return wavInfo{}, err
	}
	d := wav.NewDecoder(f)
	d.ReadInfo()
	if err := d.Err(); err != nil {
		return wavInfo{}, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if d.NumChans < 1 || d.SampleRate == 0 {
		return wavInfo{}, fmt.Errorf("%w: no format chunk", errCorrupt)
	}
	if d.WavAudioFormat != 1 {
		return wavInfo{}, fmt.Errorf("%w: audio format %d is not PCM", errCorrupt, d.WavAudioFormat)
	}
	switch d.BitDepth {
	case 8, 16, 24, 32:
	default:
		return wavInfo{}, fmt.Errorf("%w: %d bits per sample", errCorrupt, d.BitDepth)
	}
	if err := d.FwdToPCM(); err != nil {
		return wavInfo{}, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	pos, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return wavInfo{}, err
	}
	if d.PCMSize < 0 || pos+int64(d.PCMSize) > fi.Size() {
		return wavInfo{}, fmt.Errorf("%w: data chunk of %d bytes at %d in a %d-byte file", errCorrupt, d.PCMSize, pos, fi.Size())
	}
	frame := int64(d.NumChans) * int64(d.BitDepth/8)
	return wavInfo{rate: int(d.SampleRate), samples: int64(d.PCMSize) / frame}, nil
}
