package main

import (
	"encoding/binary"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	recpolruntime "github.com/recpol/recpol/runtime"
)

// poisonedWAV returns a 2,048-byte WAV (PCM, 8 kHz, mono, 16-bit) one of
// whose chunks claims a length of about 4 GB: a LIST chunk before the data
// (chunk "LIST"), or the data chunk itself (chunk "data").
func poisonedWAV(chunk string) []byte {
	const size = 2048
	b := make([]byte, 0, size)
	le32 := func(v uint32) { b = binary.LittleEndian.AppendUint32(b, v) }
	le16 := func(v uint16) { b = binary.LittleEndian.AppendUint16(b, v) }
	b = append(b, "RIFF"...)
	le32(size - 8)
	b = append(b, "WAVEfmt "...)
	le32(16)
	le16(1)    // PCM
	le16(1)    // mono
	le32(8000) // Hz
	le32(16000)
	le16(2)
	le16(16)
	b = append(b, chunk...)
	le32(0xFFFFFFF0) // 4 GB, in a 2 KB file
	for i := 0; len(b) < size; i++ {
		b = append(b, byte(i*37))
	}
	return b
}

// wavResult is what the poisoned-WAV check measured.
type wavResult struct {
	files          map[string]string // poisoned file -> its chunk
	peakKB         []int64           // each runtime process's peak RSS, in start order
	quarantineLogs map[string]int    // "recording quarantined" lines by poisoned recording id
	quarantineDir  []string          // files in the quarantine directory at the end
	relogged       int               // quarantine lines after the second restart
	aliveAfter     bool              // the runtime that quarantined them still answered /healthz
	placed, stored int               // calls placed after the quarantine, recordings stored
	recoverTook    time.Duration     // restart to both files quarantined
	err            string
}

func (r *wavResult) maxPeakKB() int64 {
	var m int64
	for _, p := range r.peakKB {
		m = max(m, p)
	}
	return m
}

// onceEach reports whether every poisoned recording was quarantined by
// exactly one log line, with one media file in the quarantine directory,
// and none again after the second restart.
func (r *wavResult) onceEach() bool {
	if len(r.files) == 0 || r.relogged != 0 {
		return false
	}
	for p := range r.files {
		id := strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
		if r.quarantineLogs[id] != 1 {
			return false
		}
		media := 0
		for _, q := range r.quarantineDir {
			if strings.HasPrefix(q, id) && strings.HasSuffix(q, ".wav") {
				media++
			}
		}
		if media != 1 {
			return false
		}
	}
	return true
}

// quarantinedMedia counts the recordings (.wav files) in the quarantine
// directory.
func (r *wavResult) quarantinedMedia() int {
	n := 0
	for _, q := range r.quarantineDir {
		if strings.HasSuffix(q, ".wav") {
			n++
		}
	}
	return n
}

func (r *wavResult) goals() []goal {
	var ql []string
	for p, c := range r.files {
		id := strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
		ql = append(ql, fmt.Sprintf("%s chunk: %d", c, r.quarantineLogs[id]))
	}
	sort.Strings(ql)
	peaks := make([]string, len(r.peakKB))
	for i, p := range r.peakKB {
		peaks[i] = fmt.Sprintf("%d", p/1024)
	}
	return []goal{
		{"runtime peak RSS (every process: before the kill, the recovery, the restart after)",
			fmt.Sprintf("%d MiB (%s MiB)", r.maxPeakKB()/1024, strings.Join(peaks, ", ")), "< 200 MB",
			r.maxPeakKB() > 0 && r.maxPeakKB()<<10 < 200<<20},
		{"quarantined once", fmt.Sprintf("`recording quarantined` lines per file: %s; in quarantine/: %d recordings (%d files: each .wav and its journal); lines after a second restart: %d",
			strings.Join(ql, ", "), r.quarantinedMedia(), len(r.quarantineDir), r.relogged), "1 each, 0 after a restart", r.onceEach()},
		{"keeps running", fmt.Sprintf("/healthz 200 after the recovery: %v (recovery took %s)", r.aliveAfter, r.recoverTook.Round(10*time.Millisecond)),
			"up", r.aliveAfter},
		{"keeps recording", fmt.Sprintf("%d of %d calls placed after it stored", r.stored, r.placed), "all",
			r.placed > 0 && r.stored == r.placed},
	}
}

// checkWAV: two calls are recording when the runtime is killed with
// SIGKILL; once the switch has written their files, each is replaced by a
// 2 KB poisoned WAV (one a LIST chunk of 4 GB, one a data chunk of 4 GB);
// the runtime is started again and its start-up recovery finishes both
// from their files. Then calls are placed and must be stored, and the
// runtime is restarted once more: the files must not be looked at again.
func checkWAV(bin, launcher string, keep bool) *wavResult {
	res := &wavResult{files: map[string]string{}, quarantineLogs: map[string]int{}}
	if err := runWAV(bin, launcher, keep, res); err != nil {
		res.err = err.Error()
		log.Printf("wav: %v", err)
	}
	return res
}

func runWAV(bin, launcher string, keep bool, res *wavResult) error {
	e, err := newEnv(bin, launcher, envOpts{name: "wav", realtime: true, history: true}, keep)
	if err != nil {
		return err
	}
	defer func() {
		e.close()
		res.peakKB = nil
		for _, ch := range e.exited {
			u := <-ch
			ch <- u
			res.peakKB = append(res.peakKB, u.PeakRSS>>10)
		}
	}()
	if err := e.start(60 * time.Second); err != nil {
		return err
	}
	for i := range 2 {
		if _, err := e.sw.StartCall(call(fmt.Sprintf("poison-%d", i), 4000)); err != nil {
			return err
		}
	}
	// Both recordings running, and their intents written.
	if !waitFor(20*time.Second, func() bool {
		n := 0
		for _, c := range e.sw.Commands() {
			if f := strings.Fields(c.Line); len(f) > 4 && f[3] == "start" {
				n++
			}
		}
		its, _ := recpolruntime.PendingIntents(e.spool)
		return n >= 2 && its >= 2
	}) {
		return fmt.Errorf("the two recordings did not start")
	}
	time.Sleep(300 * time.Millisecond)
	log.Printf("wav: two recordings running; kill -9 of the runtime")
	e.sigkill()
	if !waitFor(30*time.Second, func() bool { return e.sw.Pending() == 0 && e.produced() == 2 }) {
		return fmt.Errorf("the switch did not write the two files (%d)", e.produced())
	}
	e.sw.Files() // waits for the file work in progress
	e.filesMu.Lock()
	chunks := []string{"LIST", "data"}
	i := 0
	for p := range e.files {
		res.files[p] = chunks[i%2]
		i++
	}
	e.filesMu.Unlock()
	for p, c := range res.files {
		if err := os.WriteFile(p, poisonedWAV(c), 0o600); err != nil {
			return err
		}
		log.Printf("wav: %s is now 2,048 bytes whose %s chunk claims 4 GB", filepath.Base(p), c)
	}
	// The recovery.
	t0 := time.Now()
	if err := e.start(60 * time.Second); err != nil {
		return err
	}
	ids := map[string]bool{}
	for p := range res.files {
		ids[strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))] = true
	}
	countLogs := func() int {
		n := 0
		for k := range res.quarantineLogs {
			delete(res.quarantineLogs, k)
		}
		for _, l := range e.logLines("recording quarantined") {
			for id := range ids {
				if strings.Contains(l, id) {
					res.quarantineLogs[id]++
					n++
				}
			}
		}
		return n
	}
	if !waitFor(60*time.Second, func() bool { return countLogs() >= 2 }) {
		log.Printf("wav: %d of 2 poisoned files quarantined after 60 s", countLogs())
	}
	res.recoverTook = time.Since(t0)
	time.Sleep(2 * time.Second) // a second quarantine, if any, would follow
	countLogs()
	code, _, _ := e.healthz(10 * time.Second)
	res.aliveAfter = e.running() && code == http.StatusOK
	log.Printf("wav: quarantine lines %v, /healthz %d, RSS now %d MiB", res.quarantineLogs, code, e.rssKB()/1024)

	// It keeps recording: calls placed now are stored, across a restart.
	place := func(prefix string, n int) error {
		before := e.stored()
		for i := range n {
			if _, err := e.sw.StartCall(call(fmt.Sprintf("%s-%d", prefix, i), 2500)); err != nil {
				return err
			}
		}
		res.placed += n
		waitFor(60*time.Second, func() bool { return e.stored() >= before+n })
		res.stored += e.stored() - before
		return nil
	}
	if err := place("after", 10); err != nil {
		return err
	}
	before := countLogs()
	e.stop()
	if err := e.start(60 * time.Second); err != nil {
		return err
	}
	time.Sleep(6 * time.Second) // the recovery and a recheck round
	if err := place("after-restart", 10); err != nil {
		return err
	}
	res.relogged = countLogs() - before
	res.quarantineDir = e.quarantined()
	log.Printf("wav: after: %d of %d calls stored; quarantine/ holds %v; %d quarantine lines after the restart",
		res.stored, res.placed, res.quarantineDir, res.relogged)
	e.stop()
	return nil
}

func (r *wavResult) notes() []string {
	return []string{
		"How: two calls recording when the runtime is killed with SIGKILL; once the switch has written their files, each is replaced by 2,048 bytes (a PCM header, then a `LIST` chunk of 0xFFFFFFF0 bytes in one, a `data` chunk of 0xFFFFFFF0 bytes in the other); the runtime is started again and its start-up recovery (the recording intents of the earlier run, whose legs are gone) finishes both from their files. Then 10 calls, a restart (SIGTERM), 10 calls more.",
		"Counted: `recording quarantined` log lines naming each file's recording id, and the media files in `<spool>/store/quarantine/`.",
	}
}
