package fakeswitch

import (
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/recpol/recpol/runtime/eslwire"
)

// Record-Completion-Cause values.
const (
	causeStop     = "success-maxtime" // uuid_record stop, and the limit
	causeHangup   = "success-silence" // the channel hung up
	causeTooShort = "input-too-short" // shorter than RECORD_MIN_SEC: file deleted
	causeEmpty    = "empty-file"      // no samples: file deleted
)

// Recording modes.
const (
	modeAudio = iota
	modeMasked
	modePaused
)

// ToneAmplitude is the peak amplitude of the tone a recording carries.
const ToneAmplitude = 8000

type span struct {
	mode     int
	from, to int64 // virtual ms
}

type recording struct {
	path    string
	ch      *channel
	rate    int
	minSec  int
	vars    []eslwire.Header
	startMS int64
	spans   []span
	masked  bool
	paused  bool
	since   int64
	limit   *action
	created *fileJob // creates the file
	flags   recFlags
	owners  []ownerSpan // the legs it was on, in order
	mp3     bool        // encoded to MP3 (an .mp3 path, an encoder)
}

func (r *recording) mode() int {
	switch {
	case r.paused:
		return modePaused
	case r.masked:
		return modeMasked
	}
	return modeAudio
}

// closeSpan ends the current span at now.
func (r *recording) closeSpan(now int64) {
	if now > r.since {
		r.spans = append(r.spans, span{mode: r.mode(), from: r.since, to: now})
	}
	r.since = now
}

// ToneHz is the frequency of the tone recorded for the leg uuid: between
// 300 and 3250 Hz in steps of 50 Hz, derived from the uuid, so a test can
// tell which leg a file recorded.
func ToneHz(uuid string) float64 {
	h := fnv.New32a()
	h.Write([]byte(uuid))
	return float64(300 + 50*(h.Sum32()%60))
}

// recordPathOK checks a path for uuid_record start: absolute, clean, under
// the recordings directory, with a .wav or .mp3 extension.
func (s *Server) recordPathOK(p string) error {
	if s.cfg.RecordingsDir == "" {
		return fmt.Errorf("no recordings directory configured")
	}
	if !filepath.IsAbs(p) {
		return fmt.Errorf("path %q is not absolute", p)
	}
	if filepath.Clean(p) != p {
		return fmt.Errorf("path %q is not clean", p)
	}
	rel, err := filepath.Rel(s.cfg.RecordingsDir, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("path %q is outside the recordings directory %s", p, s.cfg.RecordingsDir)
	}
	switch strings.ToLower(filepath.Ext(p)) {
	case ".wav", ".mp3":
	default:
		return fmt.Errorf("path %q: only .wav and .mp3 are recorded", p)
	}
	return nil
}

// startRecording starts recording ch to path. It returns the reply body and
// the events to fire after the reply. Callers hold s.mu.
func (s *Server) startRecording(ch *channel, path string, limitSec int, vars []eslwire.Header, x *apiCall) (string, func()) {
	rec := x.rec
	for _, r := range ch.recordings {
		if r.path == path {
			return "+OK Success\n", nil
		}
	}
	if err := s.recordPathOK(path); err != nil {
		rec.Note = err.Error()
		s.log.Info("recording refused", "uuid", ch.uuid, "err", err)
		return "-ERR Cannot record session!\n", nil
	}
	isMP3 := strings.EqualFold(filepath.Ext(path), ".mp3")
	if isMP3 && !s.mp3OK() {
		// switch_core_file_open finds no file interface for "mp3"
		// without mod_shout: the start fails with no file and no
		// RECORD_START (probe-recording-vars.txt, 1.10.12).
		rec.Note = "no mod_shout: .mp3 cannot be recorded"
		s.log.Info("recording refused", "uuid", ch.uuid, "err", rec.Note)
		return "-ERR Cannot record session!\n", nil
	}
	r := &recording{path: path, ch: ch, rate: 8000, vars: vars, startMS: s.now, since: s.now, mp3: isMP3 && s.lame != "",
		owners: []ownerSpan{{ch: ch, from: s.now}}}
	// The file is created off the lock, as the switch's media thread
	// does, before any client is told RECORD_START.
	log := s.log
	r.created = s.fileJob(nil, func() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			log.Error("recording not created", "path", path, "err", err)
			return
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			log.Error("recording not created", "path", path, "err", err)
			return
		}
		f.Close()
	})
	lookup := func(name string) (string, bool) {
		if v := getHeader(vars, name); v != "" {
			return v, true
		}
		return ch.getVar(name)
	}
	if v, ok := lookup("record_sample_rate"); ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 8000 && n <= 192000 {
			r.rate = n
		}
	}
	r.flags = recordFlags(lookup)
	if v, ok := lookup("RECORD_MIN_SEC"); ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			r.minSec = n
		}
	}
	ch.recordings = append(ch.recordings, r)
	if limitSec > 0 {
		r.limit = s.schedule(s.now+int64(limitSec)*1000, true, func() {
			r.limit = nil
			s.stopRecording(r, causeStop)
		})
	}
	s.log.Info("recording started", "uuid", ch.uuid, "path", path, "rate", r.rate, "limit", limitSec)
	// RECORD_START fires while the start runs: before a bgapi's
	// BACKGROUND_JOB (SPEC 5: 21 of 21 starts on the real 1.10.12), after
	// an api's reply. It waits for the file, and so does the job.
	x.holdJob, x.holdKey = r.created, callKey(ch)
	x.during = append(x.during, func() {
		trailer := []eslwire.Header{{Name: "Record-File-Path", Value: path}}
		for _, v := range vars {
			trailer = append(trailer, eslwire.Header{Name: "Recording-Variable-" + v.Name, Value: v.Value})
		}
		s.publishAfter(s.channelEvent("RECORD_START", ch, "switch_ivr_async.c", "record_callback", 1481, nil, trailer), r.created)
	})
	return "+OK Success\n", nil
}

// preAnswer puts ch into early media, as switch_channel_pre_answer does,
// unless it is answered or has early media already: CHANNEL_PROGRESS_MEDIA
// fires while the command runs. The leg is listed by PreAnswered. Callers
// hold s.mu.
func (s *Server) preAnswer(ch *channel, x *apiCall) {
	if ch.answered || ch.early || ch.hungup {
		return
	}
	s.markEarly(ch)
	s.preAnswered[ch.uuid] = true
	s.log.Info("a recording pre-answered a leg", "uuid", ch.uuid)
	x.during = append(x.during, func() { s.publishProgressMedia(ch) })
}

// PreAnswered returns the uuids of the legs a uuid_record start put into
// early media (the leg had neither answered nor early media), sorted. A
// client that starts recordings only on legs with media never causes
// one: tests assert it is empty.
func (s *Server) PreAnswered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedKeys(s.preAnswered)
}

// findRecording returns ch's running recording of path.
func findRecording(ch *channel, path string) *recording {
	for _, r := range ch.recordings {
		if r.path == path {
			return r
		}
	}
	return nil
}

// stopRecording stops r: writes the WAV file (or deletes it), sets the
// record_* channel variables and fires RECORD_STOP. Callers hold s.mu.
func (s *Server) stopRecording(r *recording, cause string) {
	ch := r.ch
	for i, x := range ch.recordings {
		if x == r {
			ch.recordings = append(ch.recordings[:i], ch.recordings[i+1:]...)
			break
		}
	}
	s.cancel(r.limit)
	r.closeSpan(s.now)
	samples, masked := r.layout()
	fr := FileRecord{
		Path: r.path, UUID: ch.uuid, CallID: ch.callID, SampleRate: r.rate, Samples: samples,
		DurationMS: int64(samples) * 1000 / int64(r.rate), Masked: masked, Vars: r.vars,
		StartedAt: durMS(r.startMS), StoppedAt: s.nowDur(), ToneHz: float64(r.owners[0].ch.voice), Cause: cause,
		Channels: r.flags.channels(),
	}
	if ch.answered && ch.answeredMS <= r.startMS {
		fr.AnsweredAt = durMS(ch.answeredMS)
	}
	segs := r.segments()
	fr.OtherHz, fr.Announced = heard(segs, r.rate, fr.ToneHz)
	switch {
	case r.minSec > 0 && samples < r.rate*r.minSec:
		fr.Cause, fr.Deleted = causeTooShort, true
	case samples == 0:
		fr.Cause, fr.Deleted = causeEmpty, true
	}
	// The file is written (or deleted) off the lock, before any client
	// is told RECORD_STOP; Files and OnFile see it once it is done.
	if !fr.Deleted {
		fr.Size = wavHeader + 2*int64(samples)*int64(fr.Channels)
	}
	log, onFile, out, lame := s.log, s.cfg.OnFile, fr, s.lame
	// Until its file is closed the leg still exists for uuid_exists, as
	// FreeSWITCH destroys a session only once its media bugs closed
	// their files: a client that finds a leg gone may read its files.
	s.sweepClosing()
	ch.closing.Add(1)
	if s.closing[ch.uuid] != ch {
		s.closing[ch.uuid] = ch
		s.closingOrder = append(s.closingOrder, ch)
	}
	job := s.fileJob(r.created, func() {
		defer ch.closing.Add(-1)
		fr := out // what the job learns stays in its copy
		if fr.Deleted {
			os.Remove(r.path)
			fr.Size = 0
		} else if n, err := writeRecording(r.path, segs, r.rate, r.flags, r.mp3, lame); err != nil {
			log.Error("recording write failed", "path", r.path, "err", err)
			fr.Error = fmt.Errorf("write recording: %w", err).Error()
			fr.Size = 0
		} else {
			fr.Size = n
		}
		if onFile != nil {
			onFile(fr)
		}
		if !s.cfg.NoHistory {
			s.filesMu.Lock()
			s.files = append(s.files, fr)
			s.filesMu.Unlock()
		}
	})
	s.log.Info("recording stopped", "uuid", ch.uuid, "path", r.path, "cause", fr.Cause, "ms", fr.DurationMS)
	ch.setVar("record_file_size", strconv.FormatInt(fr.Size, 10))
	ch.setVar("record_samples", strconv.Itoa(samples))
	ch.setVar("record_seconds", strconv.Itoa(samples/r.rate))
	ch.setVar("record_ms", strconv.FormatInt(fr.DurationMS, 10))
	ch.setVar("record_completion_cause", fr.Cause)
	trailer := []eslwire.Header{{Name: "Record-File-Path", Value: r.path}}
	for _, v := range r.vars {
		trailer = append(trailer, eslwire.Header{Name: "Recording-Variable-" + v.Name, Value: v.Value})
	}
	trailer = append(trailer, eslwire.Header{Name: "Record-Completion-Cause", Value: fr.Cause})
	s.publishAfter(s.channelEvent("RECORD_STOP", ch, "switch_ivr_async.c", "send_record_stop_event", 1240, nil, trailer), job)
}

// closingFiles reports whether a recording file of the leg uuid is still
// being closed. Callers hold s.mu.
func (s *Server) closingFiles(uuid string) bool {
	ch := s.closing[uuid]
	return ch != nil && ch.closing.Load() > 0
}

// sweepClosing forgets the legs at the front of closingOrder whose files
// are all closed. Callers hold s.mu.
func (s *Server) sweepClosing() {
	for len(s.closingOrder) > 0 && s.closingOrder[0].closing.Load() == 0 {
		ch := s.closingOrder[0]
		if s.closing[ch.uuid] == ch {
			delete(s.closing, ch.uuid)
		}
		s.closingOrder[0] = nil
		s.closingOrder = s.closingOrder[1:]
	}
}

// samplesAt is the number of samples in ms milliseconds of audio.
func (r *recording) samplesAt(ms int64) int {
	return int(ms * int64(r.rate) / 1000)
}

// layout returns the number of samples the file holds and its masked spans
// in file time.
func (r *recording) layout() (int, []Span) {
	var fileMS int64
	var masked []Span
	for _, sp := range r.spans {
		if sp.mode == modePaused {
			continue
		}
		d := sp.to - sp.from
		if sp.mode == modeMasked {
			if n := len(masked); n > 0 && masked[n-1].ToMS == fileMS {
				masked[n-1].ToMS += d
			} else {
				masked = append(masked, Span{FromMS: fileMS, ToMS: fileMS + d})
			}
		}
		fileMS += d
	}
	return r.samplesAt(fileMS), masked
}

// wavHeader is the size of the canonical WAV header the files carry.
const wavHeader = 44

// toneTable returns the samples of the tone over one whole period: at most
// rate samples, rate/gcd(rate, hz) of them.
func toneTable(hz float64, rate int) []int {
	n := rate / gcd(rate, int(hz))
	t := make([]int, n)
	for j := range t {
		t[j] = int(math.Round(ToneAmplitude * math.Sin(2*math.Pi*hz*float64(j)/float64(rate))))
	}
	return t
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// fileJob is file work of a recording, done off the server's lock by a
// goroutine of its own: a disk that stalls holds up that recording's
// call's events, not the switch. A client's writer holds the frame queued
// after the job, and the later frames of its call, until the job is done.
type fileJob struct {
	once sync.Once
	fn   func()
	done chan struct{} // closed when fn has run
}

// fileJob starts fn once after (nil: nothing) is done.
func (s *Server) fileJob(after *fileJob, fn func()) *fileJob {
	j := &fileJob{done: make(chan struct{})}
	j.fn = func() {
		after.wait()
		fn()
		close(j.done)
	}
	s.jobsLeft.Add(1)
	go func() {
		j.wait()
		// j.done is closed before tickWanted is read: a writer that
		// asked for the tick after this read finds the job done.
		if s.tickWanted.Load() {
			s.jobsMu.Lock()
			if s.tickWanted.Load() {
				close(s.jobsTick)
				s.jobsTick = make(chan struct{})
				s.tickWanted.Store(false)
			}
			s.jobsMu.Unlock()
		}
		if s.jobsLeft.Add(-1) == 0 {
			s.jobsMu.Lock()
			s.jobsDone.Broadcast()
			s.jobsMu.Unlock()
		}
	}()
	return j
}

// waitFileJobs returns once no file job is left (jobs started meanwhile
// included).
func (s *Server) waitFileJobs() {
	s.jobsMu.Lock()
	for s.jobsLeft.Load() > 0 {
		s.jobsDone.Wait()
	}
	s.jobsMu.Unlock()
}

// wait does the job unless it is done or being done, and returns once it
// is done. A nil job is done.
func (j *fileJob) wait() {
	if j != nil {
		j.once.Do(j.fn)
	}
}

// finished reports whether the job is done. A nil job is.
func (j *fileJob) finished() bool {
	if j == nil {
		return true
	}
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// jobEnded returns a channel closed when the next file job ends. Ask
// before checking whether the jobs waited for are done.
func (s *Server) jobEnded() <-chan struct{} {
	s.jobsMu.Lock()
	defer s.jobsMu.Unlock()
	s.tickWanted.Store(true)
	return s.jobsTick
}
