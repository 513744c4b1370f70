package runtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/recpol/recpol/runtime/store"
)

// Recording intents make running recordings survive the runtime's death.
// When the engine sends a recording's start it first appends the
// recording's metadata so far to the intent log, <spool>/active/intents.log.
// The intent is done with (a "done" record) only once the store's Finish
// (itself journaled and idempotent) has taken the stopped recording.
// After a restart, and after every reconnection, an intent the engine does
// not follow is finished from the log when its leg no longer exists on the
// switch or the switch restarted (a new Core-UUID); while its leg still
// exists the engine adopts it and finishes it at its RECORD_STOP. So a
// kill -9 at any moment loses no recording: the store's journal turns a
// second Finish of the same recording into a no-op.
//
// A mask or unmask appends the intent again before its command goes out,
// with the masked ranges so far and where a mask still in force began
// (write-ahead: the intent says what the switch is asked to do). A
// recording finished from its intent gets that mask as a range to its end;
// an adopted recording the engine continues is masked again (the command
// may not have reached the switch before the crash) and its ranges go on.
//
// The log is one file opened for appending: each record is one line of
// JSON written with one write, on the command path, without a file to
// create or rename. The last record of a recording is its intent. When
// the log holds more than twice the records it needs, it is rewritten with
// the live intents only (a temporary file renamed over it); it is also
// rewritten when the runtime starts. A line that cannot be read is moved
// to the spool's quarantine; an unfinished last line (a write the process
// did not complete) is dropped: its command was never sent. Intent files
// of earlier versions (<id>.json in the same directory) are taken into the
// log when the runtime starts.
//
// The log is written without fsync: it survives the runtime's crash,
// which is what it guards against; the store's own journal is fsynced.

// intent is one recording the engine asked the switch to start.
type intent struct {
	Version  int            `json:"version"`
	Switch   string         `json:"switch"`
	CoreUUID string         `json:"core_uuid"`
	Leg      string         `json:"leg"`
	Path     string         `json:"path"` // as the switch sees it
	Meta     store.Metadata `json:"meta"`
	// StartTS is RECORD_START's time on the switch's clock (µs), once
	// known.
	StartTS int64 `json:"start_ts,omitempty"`
	// MaskedFromMS is where, in the file, a mask still in force began.
	MaskedFromMS *int64 `json:"masked_from_ms,omitempty"`
}

// logRecord is one line of the intent log: an intent, or the recording
// id of one done with.
type logRecord struct {
	Put  json.RawMessage `json:"put,omitempty"`
	Done string          `json:"done,omitempty"`
}

// intentLogName is the intent log's name in <spool>/active.
const intentLogName = "intents.log"

// compactSlack is how many records beyond twice the live intents the log
// may hold before it is rewritten.
const compactSlack = 4096

// maxIntentLine bounds one record of the log.
const maxIntentLine = 1 << 20

// logFile is the open intent log (an *os.File).
type logFile interface {
	io.Writer
	Truncate(size int64) error
	Close() error
}

// intents is the intent log of one runtime, shared by its switches.
type intents struct {
	dir        string
	quarantine string
	log        *slog.Logger
	onQuar     func()
	// started and refused, when set, tell the catalog of a recording's
	// first intent and of a start the switch refused (Store.Started,
	// Store.Refused); neither blocks.
	started func(store.Metadata)
	refused func(id string)

	// mu is taken after engine.mu, never before it (see engine.mu).
	mu       sync.Mutex
	f        logFile           // the log, open for appending; nil after a failed rewrite
	closed   bool              // the runtime stopped: the log is not written again
	live     map[string][]byte // by recording id: the intent (JSON) of each recording not done with
	records  int               // records in the log
	size     int64             // bytes in the log
	inflight map[string]bool   // recording ids handed to the store, not yet done with
	// finished holds the ids of the last recordingsRemembered intents
	// done with, so that a write the sender built before the recording
	// ended does not bring its intent back.
	finished map[string]bool
	ring     []string // finished ids, a ring of recordingsRemembered
	next     int      // where the ring's next id goes
}

// recordingsRemembered bounds the memory of finished intents: minutes of
// recordings at hundreds of call setups per second.
const recordingsRemembered = 1 << 16

// openIntents opens the intent log of a spool: it reads the log, takes in
// the intent files of earlier versions, quarantines what cannot be read,
// and rewrites the log with the live intents.
func openIntents(spool string, log *slog.Logger, onQuarantine func()) (*intents, error) {
	in := &intents{dir: filepath.Join(spool, "active"), quarantine: filepath.Join(spool, "quarantine"),
		log: log, onQuar: onQuarantine, inflight: map[string]bool{}, finished: map[string]bool{}}
	for _, d := range []string{in.dir, in.quarantine} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("recording intents: %w", err)
		}
	}
	logPath := filepath.Join(in.dir, intentLogName)
	live, bad, err := readIntentLog(in.dir)
	if errors.Is(err, errNotRegular) {
		// A link or a directory in the log's place: set aside, not
		// followed, and the runtime starts with an empty log.
		in.quarantineFile(logPath, err)
		live, bad, err = map[string][]byte{}, nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("recording intents: %w", err)
	}
	in.live = live
	for i, b := range bad {
		in.quarantineData(fmt.Sprintf("%s-%d", intentLogName, i), b.data, b.err)
	}
	legacy, err := in.takeLegacy()
	if err != nil {
		return nil, fmt.Errorf("recording intents: %w", err)
	}
	if err := in.rewrite(); err != nil {
		// A full disk must not keep the runtime from recording: the
		// log stays as it is, appended to, and is rewritten later.
		log.Error("rewriting the recording intent log failed; appending to it as it is", "error", err)
		f, size, oerr := openForAppend(logPath)
		if oerr != nil {
			return nil, fmt.Errorf("recording intents: %w", oerr)
		}
		// Counted as compactSlack records, so that a rewrite is tried
		// again once twice the live intents have been appended.
		in.f, in.size, in.records = f, size, compactSlack
		return in, nil
	}
	for _, p := range legacy {
		os.Remove(p) // in the log now
	}
	return in, nil
}

// openForAppend opens the log as it is for appending, without the
// unfinished last line a crash may have left (the next record would run
// into it), and returns its size.
func openForAppend(p string) (*os.File, int64, error) {
	data, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, 0, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, err
	}
	size := int64(bytes.LastIndexByte(data, '\n') + 1)
	if size < int64(len(data)) {
		if err := f.Truncate(size); err != nil {
			f.Close()
			return nil, 0, err
		}
	}
	return f, size, nil
}

var errNotRegular = errors.New("not a regular file")

// badRecord is a line of the log that could not be read.
type badRecord struct {
	data []byte
	err  error
}

// readIntentLog reads the intent log in dir: the live intents by
// recording id, and the lines that cannot be read. A missing log is
// empty; a log that is not a regular file is an error.
func readIntentLog(dir string) (map[string][]byte, []badRecord, error) {
	live := map[string][]byte{}
	p := filepath.Join(dir, intentLogName)
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return live, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: %w", p, errNotRegular)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, nil, err
	}
	var bad []badRecord
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			// The last write did not complete: its command was never
			// sent.
			break
		}
		line := data[:i]
		data = data[i+1:]
		if len(line) == 0 {
			continue
		}
		id, put, err := parseLogRecord(line)
		if err != nil {
			bad = append(bad, badRecord{append([]byte(nil), line...), err})
			continue
		}
		if put == nil {
			delete(live, id)
		} else {
			live[id] = put
		}
	}
	return live, bad, nil
}

// parseLogRecord reads one line of the log: the recording id, and its
// intent (nil: done with).
func parseLogRecord(line []byte) (string, []byte, error) {
	if len(line) > maxIntentLine {
		return "", nil, fmt.Errorf("%d bytes: too large", len(line))
	}
	var rec logRecord
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return "", nil, fmt.Errorf("corrupt: %w", err)
	}
	switch {
	case rec.Done != "" && rec.Put == nil:
		if !store.ValidName(rec.Done) {
			return "", nil, fmt.Errorf("invalid recording id %q", rec.Done)
		}
		return rec.Done, nil, nil
	case rec.Done == "" && rec.Put != nil:
		var it struct {
			Meta struct {
				RecordingID string `json:"recording_id"`
			} `json:"meta"`
		}
		if err := json.Unmarshal(rec.Put, &it); err != nil {
			return "", nil, fmt.Errorf("corrupt: %w", err)
		}
		if !store.ValidName(it.Meta.RecordingID) {
			return "", nil, fmt.Errorf("invalid recording id %q", it.Meta.RecordingID)
		}
		return it.Meta.RecordingID, []byte(rec.Put), nil
	}
	return "", nil, errors.New("neither an intent nor a recording done with")
}

// takeLegacy takes the intent files of earlier versions (<id>.json) into
// the live intents and returns their paths; files that cannot be read are
// quarantined, unfinished writes (.tmp) removed.
func (in *intents) takeLegacy() ([]string, error) {
	ents, err := os.ReadDir(in.dir)
	if err != nil {
		return nil, err
	}
	var taken []string
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(in.dir, name)
		switch {
		case strings.HasSuffix(name, ".tmp"):
			os.Remove(p) // a write the process did not finish
		case strings.HasSuffix(name, ".json"):
			b, err := readLegacy(p, strings.TrimSuffix(name, ".json"))
			if err != nil {
				in.quarantineFile(p, err)
				continue
			}
			in.live[strings.TrimSuffix(name, ".json")] = b
			taken = append(taken, p)
		}
	}
	return taken, nil
}

// readLegacy reads an intent file of an earlier version.
func readLegacy(p, id string) ([]byte, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if fi.Size() > maxIntentLine {
		return nil, fmt.Errorf("%d bytes: too large", fi.Size())
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	it, err := decodeIntent(b)
	if err != nil {
		return nil, err
	}
	if it.Meta.RecordingID != id || !store.ValidName(id) {
		return nil, fmt.Errorf("recording id %q in a file named %q", it.Meta.RecordingID, id)
	}
	var c bytes.Buffer // one line in the log
	if err := json.Compact(&c, b); err != nil {
		return nil, fmt.Errorf("corrupt: %w", err)
	}
	return c.Bytes(), nil
}

// rewrite writes the log anew with the live intents only and opens it
// for appending. in.mu is held, or in is not shared yet.
func (in *intents) rewrite() error {
	p := filepath.Join(in.dir, intentLogName)
	tmp := p + ".tmp"
	// A stale temporary file is removed, not truncated: O_EXCL does not
	// follow a link planted in its place.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rewriting the intent log: %w", err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("rewriting the intent log: %w", err)
	}
	w := bufio.NewWriterSize(f, 256<<10)
	var size int64
	for _, b := range in.live {
		n, _ := w.Write(logLine(b))
		size += int64(n)
	}
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rewriting the intent log: %w", err)
	}
	nf, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening the intent log: %w", err)
	}
	if in.f != nil {
		in.f.Close()
	}
	in.f, in.size, in.records = nf, size, len(in.live)
	return nil
}

// logLine is the log's record of an intent (JSON).
func logLine(put []byte) []byte {
	b := make([]byte, 0, len(put)+10)
	b = append(b, `{"put":`...)
	b = append(b, put...)
	return append(b, "}\n"...)
}

// appendLocked appends one record to the log. in.mu is held.
func (in *intents) appendLocked(line []byte) error {
	if in.closed {
		return errIntentsClosed
	}
	if in.f == nil {
		if err := in.rewrite(); err != nil {
			return err
		}
	}
	n, err := in.f.Write(line)
	if err != nil {
		// A part written (a full disk) would run into the next record:
		// cut it off, or rewrite the log before the next one.
		if n > 0 {
			if terr := in.f.Truncate(in.size); terr != nil {
				in.f.Close()
				in.f = nil
			}
		}
		return fmt.Errorf("appending to the intent log: %w", err)
	}
	in.size += int64(n)
	in.records++
	return nil
}

// compactLocked rewrites the log when it holds more than twice the
// records it needs; in.live must hold every record appended. in.mu is
// held.
func (in *intents) compactLocked() {
	if in.closed || in.records <= 2*len(in.live)+compactSlack {
		return
	}
	if err := in.rewrite(); err != nil {
		// The log stays as it is, read right after a crash; the next
		// record tries again.
		in.log.Error("rewriting the recording intent log failed", "error", err)
	}
}

var errIntentsClosed = errors.New("the intent log is closed: the runtime stopped")

// close closes the log; it is not written again.
func (in *intents) close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closed = true
	if in.f != nil {
		in.f.Close()
		in.f = nil
	}
}

// write appends an intent to the log (0600), unless its recording was
// handed to the store already.
func (in *intents) write(it *intent) error {
	id := it.Meta.RecordingID
	if !store.ValidName(id) {
		return fmt.Errorf("recording intent: invalid recording id %q", id)
	}
	b, err := json.Marshal(it)
	if err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.inflight[id] || in.finished[id] {
		return nil // its intent is done with
	}
	if err := in.appendLocked(logLine(b)); err != nil {
		return err
	}
	_, known := in.live[id]
	in.live[id] = b
	in.compactLocked()
	if !known && in.started != nil {
		in.started(it.Meta) // the catalog lists it, active (never blocks)
	}
	return nil
}

// claim marks a recording as handed to the store, so that it is handed
// over once: it reports false when it already was.
func (in *intents) claim(id string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.inflight[id] || in.finished[id] {
		return false
	}
	in.inflight[id] = true
	return true
}

// done records that the store has taken a recording: its intent is done
// with. A write of the intent that comes later is ignored.
func (in *intents) done(id string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if err := in.dropLocked(id); err != nil {
		in.log.Error("recording an intent done with failed; it is finished again after a restart (without effect)",
			"recording", id, "error", err)
	}
	delete(in.inflight, id)
	if !in.finished[id] {
		if in.ring == nil {
			in.ring = make([]string, recordingsRemembered)
		}
		if old := in.ring[in.next]; old != "" {
			delete(in.finished, old)
		}
		in.ring[in.next] = id
		in.next = (in.next + 1) % len(in.ring)
		in.finished[id] = true
	}
}

// dropLocked appends that a recording's intent is done with and forgets
// it; an id without a live intent writes nothing. in.mu is held.
func (in *intents) dropLocked(id string) error {
	if _, ok := in.live[id]; !ok {
		return nil
	}
	line, _ := json.Marshal(logRecord{Done: id})
	err := in.appendLocked(append(line, '\n'))
	delete(in.live, id)
	in.compactLocked()
	return err
}

// forget removes the intent of a recording that never started.
func (in *intents) forget(id string) {
	in.done(id)
	if in.refused != nil {
		in.refused(id)
	}
}

// recoverIntents runs after every (re)connection, once the recordings the
// engine follows are reconciled: every intent the engine does not follow
// belongs to an earlier run of the runtime (or its RECORD_STOP was lost).
// When its leg is gone, or the switch restarted since it was written, it is
// finished from its file; otherwise the engine adopts it and finishes it at
// its RECORD_STOP or its leg's hangup.
func (e *engine) recoverIntents(ctx context.Context, c APICommander, coreUUID string) {
	if e.intents == nil {
		return
	}
	for _, it := range e.intents.list(e.sw) {
		e.mu.Lock()
		live := e.byPath[it.Path] != nil
		e.mu.Unlock()
		if live {
			continue
		}
		gone := it.CoreUUID != "" && coreUUID != "" && it.CoreUUID != coreUUID
		if !gone {
			res, err := c.API(ctx, "uuid_exists "+it.Leg)
			if err != nil {
				continue // the next connection tries again
			}
			gone = strings.TrimSpace(res) == "false"
		}
		e.mu.Lock()
		if gone {
			delete(e.adopted, it.Path)
			e.log.Warn("finishing the recording of an earlier run from its file", "recording", it.Meta.RecordingID, "leg", it.Leg)
			e.finishIntent(it, 0, "recovered")
		} else if e.adopted[it.Path] == nil {
			e.log.Info("adopting a recording of an earlier run: its leg is still up", "recording", it.Meta.RecordingID, "leg", it.Leg)
			e.adopted[it.Path] = it
		}
		e.mu.Unlock()
	}
}

// finishIntent hands the recording of an intent to the store. e.mu is held.
func (e *engine) finishIntent(it *intent, durMS int64, cause string) {
	id := it.Meta.RecordingID
	if !e.intents.claim(id) {
		return
	}
	m := it.Meta
	m.DurationMS = durMS
	m.MaskedRanges = append([]Range{}, m.MaskedRanges...)
	if it.MaskedFromMS != nil {
		// Masked to the end: the store closes an open range (-1) at the
		// duration it reads from the file.
		end := int64(-1)
		if durMS > 0 {
			end = durMS
		}
		m.MaskedRanges = append(m.MaskedRanges, Range{StartMS: *it.MaskedFromMS, EndMS: end})
	}
	_, local := recordingPaths(e.sw, m.Account, id, m.Format)
	in := e.intents
	e.obs("recovered")
	e.fin.Finish(Finished{Meta: m, LocalPath: local, Cause: cause, Done: func() { in.done(id) }})
}

// adoptedLegGone finishes the adopted recordings of a leg that hung up
// without their RECORD_STOP (a start that never took effect). e.mu is held.
func (e *engine) adoptedLegGone(leg string) {
	for p, it := range e.adopted {
		if it.Leg == leg {
			delete(e.adopted, p)
			e.finishIntent(it, 0, "leg gone")
		}
	}
}

// list returns the live intents of switch sw, by recording id, except
// those handed to the store. An intent whose content is not a recording
// of this runtime is moved to <spool>/quarantine with a log line and done
// with; recovery goes on.
func (in *intents) list(sw SwitchConfig) []*intent {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []*intent
	for id, b := range in.live {
		if in.inflight[id] {
			continue
		}
		it, err := checkIntent(b, id, sw)
		if errors.Is(err, errOtherSwitch) {
			continue
		}
		if err != nil {
			in.quarantineData(id, logLine(b), err)
			if err := in.dropLocked(id); err != nil {
				in.log.Error("recording a quarantined intent failed", "recording", id, "error", err)
			}
			continue
		}
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Meta.RecordingID < out[j].Meta.RecordingID })
	return out
}

var errOtherSwitch = errors.New("intent of another switch")

// decodeIntent decodes an intent strictly (no unknown field).
func decodeIntent(b []byte) (*intent, error) {
	var it intent
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&it); err != nil {
		return nil, fmt.Errorf("corrupt: %w", err)
	}
	return &it, nil
}

// checkIntent decodes and checks the intent of recording id: everything
// that reaches a path or a command is validated, and the local file is
// rebuilt from the switch's configuration rather than trusted.
func checkIntent(b []byte, id string, sw SwitchConfig) (*intent, error) {
	it, err := decodeIntent(b)
	if err != nil {
		return nil, err
	}
	if it.Switch != sw.Name {
		if it.Switch == "" {
			return nil, errors.New("no switch")
		}
		return nil, errOtherSwitch
	}
	m := it.Meta
	switch {
	case it.Version != 1:
		return nil, fmt.Errorf("version %d", it.Version)
	case m.RecordingID != id || !store.ValidName(id):
		return nil, fmt.Errorf("recording id %q in the intent of %q", m.RecordingID, id)
	case !uuidRE.MatchString(it.Leg) || m.CallID != it.Leg:
		return nil, fmt.Errorf("invalid leg %q", it.Leg)
	case !idRE.MatchString(m.Account) || !store.ValidName(m.Account):
		return nil, fmt.Errorf("invalid account %q", m.Account)
	case m.Format != "wav" && m.Format != "mp3":
		return nil, fmt.Errorf("invalid format %q", m.Format)
	case m.Start.IsZero():
		return nil, errors.New("no start time")
	}
	want, _ := recordingPaths(sw, m.Account, id, m.Format)
	if it.Path != want {
		return nil, fmt.Errorf("path %q is not the recording's path %q", it.Path, want)
	}
	return it, nil
}

// recordingPaths returns where the switch records a recording and where
// this runtime reads it.
func recordingPaths(sw SwitchConfig, account, id, ext string) (switchPath, local string) {
	name := id + "." + ext
	return path.Join(filepath.ToSlash(sw.RecordDir), account, name), filepath.Join(sw.LocalDir, account, name)
}

func (in *intents) quarantineFile(p string, cause error) {
	dst := filepath.Join(in.quarantine, fmt.Sprintf("intent-%d-%s", time.Now().UnixNano(), filepath.Base(p)))
	if err := os.Rename(p, dst); err != nil {
		in.log.Error("quarantining a recording intent failed; removing it", "intent", p, "error", err)
		os.Remove(p)
	}
	in.log.Error("corrupt recording intent quarantined", "intent", p, "quarantined_as", dst, "error", cause)
	if in.onQuar != nil {
		in.onQuar()
	}
}

// quarantineData moves a record of the log that cannot be used to
// <spool>/quarantine (0600), named after what it is (a recording id, a
// line of the log).
func (in *intents) quarantineData(name string, data []byte, cause error) {
	if !store.ValidName(name) {
		name = "record"
	}
	dst := filepath.Join(in.quarantine, fmt.Sprintf("intent-%d-%s", time.Now().UnixNano(), name))
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		in.log.Error("quarantining a recording intent failed; dropping it", "intent", name, "error", err)
	}
	in.log.Error("corrupt recording intent quarantined", "intent", name, "quarantined_as", dst, "error", cause)
	if in.onQuar != nil {
		in.onQuar()
	}
}

// PendingIntents reports how many recordings of a spool still have an
// intent: started on a switch and not yet taken by the store. A runtime
// may be appending to the log meanwhile (a record it is writing is not
// counted yet).
func PendingIntents(spool string) (int, error) {
	dir := filepath.Join(spool, "active")
	live, _, err := readIntentLog(dir)
	if err != nil {
		return 0, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return 0, err
	}
	for _, f := range files {
		live[strings.TrimSuffix(filepath.Base(f), ".json")] = nil
	}
	return len(live), nil
}
