package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/recpol/recpol/runtime/eslcmd"
	"github.com/recpol/recpol/runtime/intentlog"
	"github.com/recpol/recpol/runtime/store"
)

// Recording intents make running recordings survive the runtime's death.
// When the engine sends a recording's start it first puts the recording's
// metadata so far in the intent log, <spool>/active/intents.log (package
// intentlog, which states the log's durability rules), keyed by recording
// id. The intent is done with only once the store's Finish (itself
// journaled and idempotent) has taken the stopped recording. After a
// restart, and after every reconnection, an intent the engine does not
// follow is finished from the log when its leg no longer exists on the
// switch or the switch restarted (a new Core-UUID); while its leg still
// exists the engine adopts it and finishes it at its RECORD_STOP (see
// recover.go). So a kill -9 at any moment loses no recording: the store's
// journal turns a second Finish of the same recording into a no-op.
//
// A mask or unmask puts the intent again before its command goes out,
// with the masked ranges so far and where a mask still in force began
// (write-ahead: the intent says what the switch is asked to do). A
// recording finished from its intent gets that mask as a range to its end;
// an adopted recording the engine continues is masked again (the command
// may not have reached the switch before the crash) and its ranges go on.
//
// A line of the log that cannot be read, or an intent that is not a
// recording of this runtime, is moved to the spool's quarantine. Intent
// files of earlier versions (<id>.json in the same directory) are taken
// into the log when the runtime starts.

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

// intentLogName is the intent log's name in <spool>/active.
const intentLogName = "intents.log"

// intentKey is an intent's key in the log: its recording id.
func intentKey(b []byte) (string, error) {
	var it struct {
		Meta struct {
			RecordingID string `json:"recording_id"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(b, &it); err != nil {
		return "", err
	}
	return it.Meta.RecordingID, nil
}

// intentLogOptions key the intent log by recording id.
func intentLogOptions() intentlog.Options {
	return intentlog.Options{Key: intentKey, ValidKey: store.ValidName}
}

// intents is the intent log of one runtime, shared by its switches, and
// the recordings handed to the store.
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

	// mu is taken after engine.mu, never before it (see engine.mu); the
	// store's activeMu (in started) and the log's own lock after it.
	mu       sync.Mutex
	l        *intentlog.Log
	inflight map[string]bool // recording ids handed to the store, not yet done with
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

// openIntents opens the intent log of a spool: it reads the log
// (quarantining what cannot be read) and rewrites it with the live
// intents, then takes in the intent files of earlier versions. Something
// other than a file in the log's place is set aside in the quarantine,
// not followed, and the runtime starts with an empty log.
func openIntents(spool string, log *slog.Logger, onQuarantine func()) (*intents, error) {
	in := &intents{dir: filepath.Join(spool, "active"), quarantine: filepath.Join(spool, "quarantine"),
		log: log, onQuar: onQuarantine, inflight: map[string]bool{}, finished: map[string]bool{}}
	for _, d := range []string{in.dir, in.quarantine} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("recording intents: %w", err)
		}
	}
	logPath := filepath.Join(in.dir, intentLogName)
	opts := intentLogOptions()
	opts.Logger = log
	bad := 0
	opts.Corrupt = func(line []byte, err error) {
		in.quarantineData(fmt.Sprintf("%s-%d", intentLogName, bad), line, err)
		bad++
	}
	l, err := intentlog.Open(logPath, opts)
	if errors.Is(err, intentlog.ErrNotRegular) {
		in.quarantineFile(logPath, err)
		l, err = intentlog.Open(logPath, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("recording intents: %w", err)
	}
	in.l = l
	if err := in.takeLegacy(); err != nil {
		l.Close()
		return nil, fmt.Errorf("recording intents: %w", err)
	}
	return in, nil
}

// takeLegacy takes the intent files of earlier versions (<id>.json) into
// the log and removes them; files that cannot be read are quarantined,
// unfinished writes (.tmp) removed. A file the log could not take stays
// for the next run.
func (in *intents) takeLegacy() error {
	ents, err := os.ReadDir(in.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(in.dir, name)
		switch {
		case strings.HasSuffix(name, ".tmp"):
			os.Remove(p) // a write the process did not finish
		case strings.HasSuffix(name, ".json"):
			id := strings.TrimSuffix(name, ".json")
			b, err := readLegacy(p, id)
			if err != nil {
				in.quarantineFile(p, err)
				continue
			}
			if err := in.l.Put(id, b); err != nil {
				in.log.Error("taking an intent file of an earlier version into the log failed; it is tried again at the next start",
					"intent", p, "error", err)
				continue
			}
			os.Remove(p) // in the log now
		}
	}
	return nil
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
	if fi.Size() > intentlog.MaxRecord {
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

// close closes the log; it is not written again.
func (in *intents) close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if err := in.l.Close(); err != nil {
		in.log.Error("closing the recording intent log", "error", err)
	}
}

// write puts an intent in the log, unless its recording was handed to
// the store already.
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
	_, known := in.l.Get(id)
	if err := in.l.Put(id, b); err != nil {
		return err
	}
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
	if err := in.l.Done(id); err != nil {
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

// forget removes the intent of a recording that never started.
func (in *intents) forget(id string) {
	in.done(id)
	if in.refused != nil {
		in.refused(id)
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
	for id, b := range in.l.Live() {
		if in.inflight[id] {
			continue
		}
		it, err := checkIntent(b, id, sw)
		if errors.Is(err, errOtherSwitch) {
			continue
		}
		if err != nil {
			in.quarantineData(id, putRecord(b), err)
			if err := in.l.Done(id); err != nil {
				in.log.Error("recording a quarantined intent failed", "recording", id, "error", err)
			}
			continue
		}
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Meta.RecordingID < out[j].Meta.RecordingID })
	return out
}

// putRecord is an intent as its line in the log, for the quarantine.
func putRecord(b []byte) []byte {
	return append(append([]byte(`{"put":`), b...), "}\n"...)
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
	case !eslcmd.ValidUUID(it.Leg) || m.CallID != it.Leg:
		return nil, fmt.Errorf("invalid leg %q", it.Leg)
	case !validID(m.Account) || !store.ValidName(m.Account):
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

// readIntentLog reads the intent log in dir without writing it: the live
// intents by recording id, and the lines that cannot be read.
func readIntentLog(dir string) (map[string][]byte, []intentlog.Bad, error) {
	return intentlog.Read(filepath.Join(dir, intentLogName), intentLogOptions())
}
