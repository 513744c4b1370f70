package fakeswitch

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
)

// MP3 recordings. FreeSWITCH writes an .mp3 through mod_shout, which
// encodes with LAME (src/mod/formats/mod_shout/mod_shout.c, shout_file_open:
// lame_set_brate 16 kbps per 8 kHz per channel, the input's sample rate
// out, MONO or STEREO, quality 2). The fake switch does the same with the
// Debian `lame` tool when it finds one (Config.MP3 MP3Auto): no pure-Go
// MP3 encoder in the module proxy is both well kept and able to write the
// 8 and 16 kHz (MPEG-2 and 2.5) files a telephony recording needs.
// Without an encoder (or with MP3Off) it is a FreeSWITCH without
// mod_shout: `module_exists mod_shout` answers false and a start of an
// .mp3 path `-ERR Cannot record session!`. MP3Stub, the default, writes
// WAV bytes under the .mp3 name.

// findLame returns the lame command the server encodes with, "" for none.
func findLame(cfg Config) string {
	if cfg.MP3 != MP3Auto {
		return ""
	}
	name := cfg.LamePath
	if name == "" {
		name = "lame"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return p
}

// mp3OK reports whether the switch can record .mp3 (has "mod_shout").
func (s *Server) mp3OK() bool { return s.cfg.MP3 == MP3Stub || s.lame != "" }

// MP3 reports whether the server records .mp3 paths (what `api
// module_exists mod_shout` answers) and whether the files are real MP3
// (false: WAV bytes, MP3Stub).
func (s *Server) MP3() (records, real bool) { return s.mp3OK(), s.lame != "" }

// writeRecording writes the recording of segs to path as a WAV file,
// generated a chunk at a time, or as an MP3 encoded by lame when mp3 is
// set, and returns the file's size.
func writeRecording(path string, segs []segment, rate int, f recFlags, mp3 bool, lame string) (int64, error) {
	if !mp3 {
		return writeWAVFile(path, segs, rate, f)
	}
	b, err := encodeMP3(lame, segs, rate, f)
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return 0, err
	}
	return int64(len(b)), nil
}

// writeWAVFile writes the recording of segs to path (created or
// truncated, as os.WriteFile does) as a WAV file, a chunk at a time, and
// returns its size.
func writeWAVFile(path string, segs []segment, rate int, f recFlags) (int64, error) {
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	n, err := writePCM(file, segs, rate, f, true)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err // an *os.PathError: it names the file
	}
	return n, nil
}

// encodeMP3 encodes the recording of segs with lame as mod_shout
// configures LAME. lame reads the whole recording's PCM from memory.
func encodeMP3(lame string, segs []segment, rate int, f recFlags) ([]byte, error) {
	if lame == "" {
		return nil, fmt.Errorf("no mp3 encoder")
	}
	nch := f.channels()
	mode := "m"
	if nch == 2 {
		mode = "s"
	}
	khz := strconv.FormatFloat(float64(rate)/1000, 'f', -1, 64)
	cmd := exec.Command(lame, "--quiet", "-r", "-s", khz, "--bitwidth", "16", "--signed", "--little-endian",
		"-m", mode, "--cbr", "-b", strconv.Itoa(16*(rate/8000)*nch), "--resample", khz, "-q", "2", "-", "-")
	var in bytes.Buffer
	in.Grow(2 * pcmLen(segs, f))
	if _, err := writePCM(&in, segs, rate, f, false); err != nil {
		return nil, fmt.Errorf("mp3 input: %w", err)
	}
	cmd.Stdin = &in
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("lame: %w: %s", err, bytes.TrimSpace(errb.Bytes()))
	}
	return out.Bytes(), nil
}
