package fakeswitch

import (
	"encoding/binary"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// What a recording hears.
//
// Every leg has a party: the endpoint at the far end of the leg's channel
// (the caller's phone for the caller's leg, the callee's phone for the
// callee's leg). The fake party speaks a sine tone of its own, the leg's
// voice (VoiceHz; ToneHz(uuid) unless another leg of the call has that
// tone already, then the next free 50 Hz step).
//
// From a leg's point of view, as FreeSWITCH's media bugs see it
// (src/switch_core_media_bug.c, switch_core_media_bug_read, signalwire/
// freeswitch):
//
//   - read is what the leg's channel receives from its own endpoint: that
//     leg's party speaking (SMBF_READ_STREAM);
//   - write is what the channel sends to its endpoint: the parties bridged
//     to the leg (the other party of a two-party call), and any
//     announcement played to the leg (SMBF_WRITE_STREAM). Before the
//     bridge and after it ends the write side is silent.
//
// The half of a loopback pair is not an endpoint: what it reads is what
// its other half is sent, so a recording on either half hears the parties
// beyond the loopback.
//
// A recording's flags are chosen as switch_ivr_record_session(_event)
// (src/switch_ivr_async.c) chooses them: SMBF_READ_STREAM |
// SMBF_WRITE_STREAM by default; RECORD_WRITE_ONLY=true clears the read
// stream, then RECORD_READ_ONLY=true clears the write stream (so with
// both, read only); RECORD_STEREO=true (SMBF_STEREO) makes a 2-channel
// file, RECORD_STEREO_SWAP=true swaps its channels. The variables are
// looked up as that function's get_recording_var does in 1.10: the
// recording's own {k=v} variables first, then the channel's.
//
// switch_core_media_bug_read mixes the two streams: mono is the sum of
// read and write clipped to 16 bits (z = w + r, switch_normalize_to_16bit),
// stereo puts read on the left and write on the right (write left, read
// right with SMBF_STEREO_SWAP), a stream the bug does not take being zero.
// record_callback (src/switch_ivr_async.c) writes null_data, exact
// zeros on every channel, while the bug has SMBF_MASK (uuid_record mask),
// and a paused bug writes nothing: the time is left out of the file.

// AnnounceHz is the tone of an announcement played from a media file by
// uuid_broadcast: outside the voices' 300-3250 Hz range, so a test can
// tell it from every party.
const AnnounceHz = 3500

// AnnounceMS is how long an announcement from a media file plays.
const AnnounceMS = 2000

// voice is one sine tone.
type voice float64

// partnerSpan is a time a leg was bridged to partner, in virtual ms; to is
// -1 while the bridge lasts.
type partnerSpan struct {
	partner  *channel
	from, to int64
}

// announcement is an announcement playing to a leg: its tone bursts over
// virtual time.
type announcement struct {
	path     string
	from, to int64
	bursts   []burst // relative to from
}

// burst is a span of tone within an announcement, in ms from its start.
type burst struct {
	from, to int64
	hz       []voice
}

// ownerSpan is a time a recording was on a leg: from a time on, until the
// next owner (a recording moves with recording_follow_transfer).
type ownerSpan struct {
	ch   *channel
	from int64
}

// recFlags are the streams a recording takes, as its media bug's flags.
type recFlags struct {
	read, write, stereo, swap bool
}

// recordFlags returns the flags of a recording with variables vars on ch,
// as switch_ivr_record_session_event sets them (see above).
func recordFlags(lookup func(string) (string, bool)) recFlags {
	f := recFlags{read: true, write: true}
	on := func(name string) bool { v, ok := lookup(name); return ok && switchTrue(v) }
	if on("RECORD_WRITE_ONLY") {
		f.read, f.write = false, true
	}
	if on("RECORD_READ_ONLY") {
		f.write, f.read = false, true
	}
	if on("RECORD_STEREO") {
		f.stereo, f.swap = true, false
	}
	if on("RECORD_STEREO_SWAP") {
		f.stereo, f.swap = true, true
	}
	return f
}

// switchTrue is FreeSWITCH's switch_true (src/include/switch_utils.h):
// "yes", "on", "true", "t", "enabled", "active", "allow" in any case, or a
// non-zero number.
func switchTrue(v string) bool {
	switch strings.ToLower(v) {
	case "yes", "on", "true", "t", "enabled", "active", "allow":
		return true
	}
	n, err := strconv.Atoi(v)
	return err == nil && n != 0
}

// channels is the number of channels of the file.
func (f recFlags) channels() int {
	if f.stereo {
		return 2
	}
	return 1
}

// segment is a stretch of a recording's file over which what it hears does
// not change.
type segment struct {
	n        int  // samples (per channel)
	masked   bool // exact zeros
	read     []voice
	write    []voice
	announce bool // write is an announcement
}

// readVoices returns the voices ch reads at virtual time t. Callers hold
// s.mu.
func readVoices(ch *channel, t int64, depth int) []voice {
	if ch.loopPeer != nil {
		if depth > 4 {
			return nil
		}
		return bridgedVoices(ch.loopPeer, t, depth+1)
	}
	return []voice{ch.voice}
}

// bridgedVoices returns the voices of the legs bridged to ch at t.
func bridgedVoices(ch *channel, t int64, depth int) []voice {
	var out []voice
	for _, p := range ch.partners {
		if p.from <= t && (p.to < 0 || t < p.to) {
			out = append(out, readVoices(p.partner, t, depth)...)
		}
	}
	return out
}

// writeVoices returns what ch is sent at t: an announcement playing to it
// (announce true), else the voices of the legs bridged to it. A leg that
// plays an announcement (the playback application that uuid_broadcast
// runs on it, switch_ivr_broadcast in src/switch_ivr.c) is sent the
// announcement instead of the bridge's audio while it plays.
func writeVoices(ch *channel, t int64) (vs []voice, announce bool) {
	for _, a := range ch.announcements {
		if a.from <= t && t < a.to {
			for _, b := range a.bursts {
				if a.from+b.from <= t && t < a.from+b.to {
					return b.hz, true
				}
			}
			return nil, true // between bursts: silence
		}
	}
	return bridgedVoices(ch, t, 0), false
}

// breakpoints adds to set the virtual times at which what ch hears may
// change: its bridges, its announcements, and those of the legs it hears
// through.
func breakpoints(ch *channel, set map[int64]bool, seen map[*channel]bool) {
	if ch == nil || seen[ch] {
		return
	}
	seen[ch] = true
	for _, p := range ch.partners {
		set[p.from] = true
		if p.to >= 0 {
			set[p.to] = true
		}
		breakpoints(p.partner, set, seen)
	}
	for _, a := range ch.announcements {
		set[a.from], set[a.to] = true, true
		for _, b := range a.bursts {
			set[a.from+b.from], set[a.from+b.to] = true, true
		}
	}
	breakpoints(ch.loopPeer, set, seen)
}

// segments returns the stretches of r's file in order, with what each
// hears. Callers hold s.mu; the result is r's audio, independent of later
// changes to the call.
func (r *recording) segments() []segment {
	set := map[int64]bool{}
	seen := map[*channel]bool{}
	for _, o := range r.owners {
		set[o.from] = true
		breakpoints(o.ch, set, seen)
	}
	times := make([]int64, 0, len(set))
	for t := range set {
		times = append(times, t)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	owner := func(t int64) *channel {
		ch := r.owners[0].ch
		for _, o := range r.owners {
			if o.from <= t {
				ch = o.ch
			}
		}
		return ch
	}
	var out []segment
	var fileMS int64
	for _, sp := range r.spans {
		if sp.mode == modePaused {
			continue
		}
		cuts := []int64{sp.from}
		for _, t := range times {
			if t > sp.from && t < sp.to {
				cuts = append(cuts, t)
			}
		}
		cuts = append(cuts, sp.to)
		for i := 0; i+1 < len(cuts); i++ {
			from, to := cuts[i], cuts[i+1]
			n := r.samplesAt(fileMS+to-sp.from) - r.samplesAt(fileMS+from-sp.from)
			seg := segment{n: n, masked: sp.mode == modeMasked}
			if !seg.masked {
				ch := owner(from)
				if r.flags.read {
					seg.read = readVoices(ch, from, 0)
				}
				if r.flags.write {
					seg.write, seg.announce = writeVoices(ch, from)
				}
			}
			if n > 0 {
				out = append(out, seg)
			}
		}
		fileMS += sp.to - sp.from
	}
	return out
}

// pcm returns the recording's interleaved 16-bit samples built from segs,
// as switch_core_media_bug_read and record_callback build them: all of
// pcmGen's samples in one slice.
func pcm(segs []segment, rate int, f recFlags) []int16 {
	out := make([]int16, pcmLen(segs, f))
	newPCMGen(segs, rate, f).fill(out)
	return out
}

// pcmLen is the number of interleaved samples of a recording of segs.
func pcmLen(segs []segment, f recFlags) int {
	total := 0
	for _, s := range segs {
		total += s.n
	}
	return total * f.channels()
}

// pcmGen generates a recording's interleaved 16-bit samples from its
// segments, as switch_core_media_bug_read and record_callback build them,
// a buffer at a time: a recording is written without holding all of its
// samples.
type pcmGen struct {
	segs   []segment
	rate   int
	f      recFlags
	nch    int
	tables map[voice][]int
	// rts and wts are the tone tables of the current segment's read
	// and write voices; rat[i] and wat[i] the position in table i of
	// the next sample: it steps and wraps instead of taking a remainder
	// per sample.
	rts, wts [][]int
	rat, wat []int
	seg      int // the current segment
	left     int // samples (per channel) of the current segment to come; 0: not entered
	j        int // samples (per channel) generated so far
}

// newPCMGen returns a generator of the samples of segs.
func newPCMGen(segs []segment, rate int, f recFlags) *pcmGen {
	return &pcmGen{segs: segs, rate: rate, f: f, nch: f.channels(), tables: map[voice][]int{}}
}

// resolve returns the tables of vs in buf. The tables of a segment's
// voices are looked up once per segment, not once per sample.
func (g *pcmGen) resolve(vs []voice, buf [][]int) [][]int {
	buf = buf[:0]
	for _, v := range vs {
		t, ok := g.tables[v]
		if !ok {
			t = toneTable(float64(v), g.rate)
			g.tables[v] = t
		}
		buf = append(buf, t)
	}
	return buf
}

// starts returns in at the positions in ts of sample j.
func starts(ts [][]int, j int, at []int) []int {
	at = at[:0]
	for _, t := range ts {
		at = append(at, j%len(t))
	}
	return at
}

// mix returns the sum of the tables' samples at at, and steps at.
func mix(ts [][]int, at []int) int {
	z := 0
	for i, t := range ts {
		z += t[at[i]]
		if at[i]++; at[i] == len(t) {
			at[i] = 0
		}
	}
	return z
}

// fill writes the next samples to dst, whole frames (a sample of every
// channel) only, and returns how many it wrote: 0 once all are written
// (or dst holds no whole frame).
func (g *pcmGen) fill(dst []int16) int {
	k := 0
	for g.seg < len(g.segs) && len(dst)-k >= g.nch {
		s := &g.segs[g.seg]
		if g.left == 0 {
			g.left = s.n
			if !s.masked {
				g.rts, g.wts = g.resolve(s.read, g.rts), g.resolve(s.write, g.wts)
				g.rat, g.wat = starts(g.rts, g.j, g.rat), starts(g.wts, g.j, g.wat)
			}
		}
		n := min(g.left, (len(dst)-k)/g.nch)
		out := dst[k : k+n*g.nch]
		switch {
		case s.masked:
			clear(out)
		case g.f.stereo:
			for i := 0; i < len(out); i += 2 {
				l, rt := mix(g.rts, g.rat), mix(g.wts, g.wat)
				if g.f.swap {
					l, rt = rt, l
				}
				out[i], out[i+1] = clip16(l), clip16(rt)
			}
		default:
			for i := range out {
				out[i] = clip16(mix(g.rts, g.rat) + mix(g.wts, g.wat))
			}
		}
		k += len(out)
		g.j += n
		if g.left -= n; g.left == 0 {
			g.seg++
		}
	}
	return k
}

// clip16 is switch_normalize_to_16bit.
func clip16(z int) int16 {
	return int16(max(min(z, math.MaxInt16), math.MinInt16))
}

// wavBytes returns a canonical 44-byte-header PCM WAV file of the
// interleaved samples.
func wavBytes(samples []int16, rate, nch int) []byte {
	b := make([]byte, 0, wavHeader+2*len(samples))
	b = appendWAVHeader(b, len(samples), rate, nch)
	return appendPCM(b, samples)
}

// appendWAVHeader appends to b the canonical 44-byte header of a PCM WAV
// file of n interleaved samples.
func appendWAVHeader(b []byte, n, rate, nch int) []byte {
	b = append(b, "RIFF"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(36+2*n))
	b = append(b, "WAVEfmt "...)
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, 1) // PCM
	b = binary.LittleEndian.AppendUint16(b, uint16(nch))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate))
	b = binary.LittleEndian.AppendUint32(b, uint32(2*rate*nch))
	b = binary.LittleEndian.AppendUint16(b, uint16(2*nch))
	b = binary.LittleEndian.AppendUint16(b, 16)
	b = append(b, "data"...)
	return binary.LittleEndian.AppendUint32(b, uint32(2*n))
}

// appendPCM appends the samples to b as 16-bit little-endian PCM.
func appendPCM(b []byte, samples []int16) []byte {
	for _, v := range samples {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b
}

// pcmChunk is how many samples a streaming writer generates at a time.
const pcmChunk = 16 << 10

// pcmBuf is a streaming writer's buffers: the samples of a chunk, and the
// chunk's bytes (with room for the WAV header).
type pcmBuf struct {
	samples [pcmChunk]int16
	bytes   [wavHeader + 2*pcmChunk]byte
}

// pcmBufs are the buffers of the streaming writers, reused from one
// recording to the next.
var pcmBufs = sync.Pool{New: func() any { return new(pcmBuf) }}

// writePCM writes the recording of segs to w, a chunk at a time, as the
// bytes of wavBytes(pcm(segs, rate, f), ...) with the WAV header (wav) or
// as headerless 16-bit little-endian PCM, and returns how many bytes it
// wrote.
func writePCM(w io.Writer, segs []segment, rate int, f recFlags, wav bool) (int64, error) {
	buf := pcmBufs.Get().(*pcmBuf)
	defer pcmBufs.Put(buf)
	b := buf.bytes[:0]
	if wav {
		b = appendWAVHeader(b, pcmLen(segs, f), rate, f.channels())
	}
	// A chunk of whole frames: a stereo frame is not split.
	chunk := buf.samples[:pcmChunk/f.channels()*f.channels()]
	g := newPCMGen(segs, rate, f)
	var written int64
	for {
		n := g.fill(chunk)
		b = appendPCM(b, chunk[:n])
		if len(b) == 0 {
			return written, nil
		}
		m, err := w.Write(b)
		written += int64(m)
		if err != nil {
			return written, err
		}
		b = buf.bytes[:0]
	}
}

// ToneLevel returns the amplitude of the hz component of samples (one
// channel, at rate), by the Goertzel algorithm: about the peak amplitude
// of a sine of that frequency in samples, near zero when there is none.
// Use a window of at least 20 ms (at 50 Hz steps, 100 ms tells the
// voices apart cleanly).
func ToneLevel(samples []int, rate int, hz float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	w := 2 * math.Pi * hz / float64(rate)
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range samples {
		s := float64(x) + coeff*s1 - s2
		s2, s1 = s1, s
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	return 2 * math.Sqrt(math.Max(power, 0)) / float64(len(samples))
}

// parseToneStream returns the bursts of a tone_stream:// path (FreeSWITCH's
// teletone syntax, src/mod/formats/mod_tone_stream: "%(on,off,hz[,hz...])"
// groups separated by ";", then ";loops=N"), and its length; ok is false
// for anything else. An endless stream (loops=-1) plays for AnnounceMS.
func parseToneStream(path string) (bursts []burst, ms int64, ok bool) {
	rest, found := strings.CutPrefix(path, "tone_stream://")
	if !found {
		return nil, 0, false
	}
	loops := 1
	if i := strings.Index(rest, ";loops="); i >= 0 {
		n, err := strconv.Atoi(rest[i+len(";loops="):])
		if err != nil {
			return nil, 0, false
		}
		loops, rest = n, rest[:i]
	}
	var one []burst
	var period int64
	for _, g := range strings.Split(rest, ";") {
		g = strings.TrimSpace(g)
		if !strings.HasPrefix(g, "%(") || !strings.HasSuffix(g, ")") {
			return nil, 0, false
		}
		f := strings.Split(g[2:len(g)-1], ",")
		if len(f) < 3 {
			return nil, 0, false
		}
		on, err1 := strconv.Atoi(f[0])
		off, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil || on < 0 || off < 0 {
			return nil, 0, false
		}
		var hz []voice
		for _, x := range f[2:] {
			v, err := strconv.ParseFloat(x, 64)
			if err != nil || v <= 0 {
				return nil, 0, false
			}
			hz = append(hz, voice(math.Round(v)))
		}
		one = append(one, burst{from: period, to: period + int64(on), hz: hz})
		period += int64(on + off)
	}
	if period == 0 {
		return nil, 0, false
	}
	endless := loops <= 0
	if endless {
		loops = int(AnnounceMS/period) + 1
	}
	for l := 0; l < loops; l++ {
		for _, b := range one {
			bursts = append(bursts, burst{from: b.from + int64(l)*period, to: b.to + int64(l)*period, hz: b.hz})
		}
	}
	ms = int64(loops) * period
	if endless {
		ms = AnnounceMS
	}
	return bursts, ms, true
}

// voiceFor returns the voice of a new leg uuid of a call whose legs so far
// are legs: ToneHz(uuid), or the next 50 Hz step of the 300-3250 Hz range
// that no leg of the call has, so that the parties of a call never share
// a voice.
func voiceFor(uuid string, legs map[string]*channel) voice {
	used := map[voice]bool{}
	for _, l := range legs {
		used[l.voice] = true
	}
	v := voice(ToneHz(uuid))
	for i := 0; i < 60 && used[v]; i++ {
		v += 50
		if v > 3250 {
			v = 300
		}
	}
	return v
}

// VoiceHz returns the frequency of the voice of leg uuid's party, while
// the leg is up.
func (s *Server) VoiceHz(uuid string) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[uuid]
	if ch == nil {
		return 0, false
	}
	return float64(ch.voice), true
}

// heard returns the voices other than own that segs carry (sorted) and
// the spans, in file time, in which an announcement plays.
func heard(segs []segment, rate int, own float64) (others []float64, announced []Span) {
	seen := map[float64]bool{}
	add := func(vs []voice) {
		for _, v := range vs {
			if f := float64(v); f != own && !seen[f] {
				seen[f] = true
				others = append(others, f)
			}
		}
	}
	at := 0
	for _, sg := range segs {
		if !sg.masked {
			add(sg.read)
			if !sg.announce {
				add(sg.write)
			} else {
				from, to := int64(at)*1000/int64(rate), int64(at+sg.n)*1000/int64(rate)
				if n := len(announced); n > 0 && announced[n-1].ToMS == from {
					announced[n-1].ToMS = to
				} else {
					announced = append(announced, Span{FromMS: from, ToMS: to})
				}
			}
		}
		at += sg.n
	}
	sort.Float64s(others)
	return others, announced
}
