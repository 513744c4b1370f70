package runtime

import (
	"context"
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

	"github.com/recpol/recpol/runtime/store"
)

// Recording intents make running recordings survive the runtime's death.
// When the engine sends a recording's start it writes the recording's
// metadata so far to <spool>/active/<recording id>.json (write to a
// temporary file, then rename). The intent is removed only once the store's
// Finish (itself journaled and idempotent) has taken the stopped recording.
// After a restart, and after every reconnection, an intent the engine does
// not follow is finished from its file when its leg no longer exists on the
// switch or the switch restarted (a new Core-UUID); while its leg still
// exists the engine adopts it and finishes it at its RECORD_STOP. So a
// kill -9 at any moment loses no recording: the store's journal turns a
// second Finish of the same recording into a no-op.
//
// A mask or unmask rewrites the intent before its command goes out, with
// the masked ranges so far and where a mask still in force began
// (write-ahead: the intent says what the switch is asked to do). A
// recording finished from its intent gets that mask as a range to its end;
// an adopted recording the engine continues is masked again (the command
// may not have reached the switch before the crash) and its ranges go on.
//
// The intent is written without fsync: it survives the runtime's crash,
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

// intents is the directory of recording intents of one runtime.
type intents struct {
	dir        string
	quarantine string
	log        *slog.Logger
	onQuar     func()

	mu       sync.Mutex
	inflight map[string]bool // recording ids handed to the store, not yet removed
	writing  map[string]bool // recording ids whose intent is being written
	written  *sync.Cond      // signalled when a write ends
	// finished holds the ids of the last recordingsRemembered intents
	// removed, so that a write the sender built before the recording
	// ended does not bring its intent back.
	finished map[string]bool
	ring     []string // finished ids, a ring of recordingsRemembered
	next     int      // where the ring's next id goes
}

// recordingsRemembered bounds the memory of finished intents: minutes of
// recordings at hundreds of call setups per second.
const recordingsRemembered = 1 << 16

func openIntents(spool string, log *slog.Logger, onQuarantine func()) (*intents, error) {
	in := &intents{dir: filepath.Join(spool, "active"), quarantine: filepath.Join(spool, "quarantine"),
		log: log, onQuar: onQuarantine, inflight: map[string]bool{}, writing: map[string]bool{}, finished: map[string]bool{}}
	in.written = sync.NewCond(&in.mu)
	for _, d := range []string{in.dir, in.quarantine} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("recording intents: %w", err)
		}
	}
	return in, nil
}

func (in *intents) path(id string) string { return filepath.Join(in.dir, id+".json") }

// write stores an intent atomically (0600).
func (in *intents) write(it *intent) error {
	if !store.ValidName(it.Meta.RecordingID) {
		return fmt.Errorf("recording intent: invalid recording id %q", it.Meta.RecordingID)
	}
	b, err := json.Marshal(it)
	if err != nil {
		return err
	}
	id := it.Meta.RecordingID
	in.mu.Lock()
	if in.inflight[id] || in.finished[id] {
		// Handed to the store already: its intent is done with.
		in.mu.Unlock()
		return nil
	}
	in.writing[id] = true // done waits for this write
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		delete(in.writing, id)
		in.mu.Unlock()
		in.written.Broadcast()
	}()
	final := in.path(id)
	tmp := final + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return err
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

// done removes the intent of a recording the store has taken, after a
// write of it still under way (a write that began before the hand-over
// would otherwise leave the intent behind).
func (in *intents) done(id string) {
	in.mu.Lock()
	for in.writing[id] {
		in.written.Wait()
	}
	in.mu.Unlock()
	if err := os.Remove(in.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		in.log.Error("removing a recording intent failed; it is finished again after a restart (without effect)",
			"recording", id, "error", err)
	}
	in.mu.Lock()
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
	in.mu.Unlock()
}

// forget removes the intent of a recording that never started.
func (in *intents) forget(id string) { in.done(id) }

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

func (in *intents) isInflight(id string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.inflight[id]
}

// list reads the intents of switch sw, oldest name first. An intent that
// cannot be read, or whose content is not a recording of this runtime, is
// moved to <spool>/quarantine with a log line; recovery goes on.
func (in *intents) list(sw SwitchConfig) []*intent {
	ents, err := os.ReadDir(in.dir)
	if err != nil {
		in.log.Error("reading recording intents failed", "dir", in.dir, "error", err)
		return nil
	}
	var out []*intent
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(in.dir, name)
		if strings.HasSuffix(name, ".tmp") {
			// A write the process did not finish: its recording's
			// start was never sent.
			os.Remove(p)
			continue
		}
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		id := strings.TrimSuffix(name, ".json")
		if in.isInflight(id) {
			continue
		}
		it, err := readIntent(p, id, sw)
		if errors.Is(err, errOtherSwitch) {
			continue
		}
		if err != nil {
			in.quarantineFile(p, err)
			continue
		}
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Meta.RecordingID < out[j].Meta.RecordingID })
	return out
}

var errOtherSwitch = errors.New("intent of another switch")

// readIntent reads and checks an intent: everything that reaches a path or
// a command is validated, and the local file is rebuilt from the switch's
// configuration rather than trusted.
func readIntent(p, id string, sw SwitchConfig) (*intent, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if fi.Size() > 1<<20 {
		return nil, fmt.Errorf("%d bytes: too large", fi.Size())
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var it intent
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&it); err != nil {
		return nil, fmt.Errorf("corrupt: %w", err)
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
		return nil, fmt.Errorf("recording id %q in a file named %q", m.RecordingID, id)
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
	return &it, nil
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

// reattach continues an adopted recording when the engine, seeing its
// call again after a restart, decides the same recording (same leg, scope
// and origin): the recording takes the intent's id and path and counts as
// running, so no second start is sent, and masks, stops and its
// RECORD_STOP apply to the file the switch is writing. e.mu is held.
func (e *engine) reattach(r *recording) {
	for p, it := range e.adopted {
		m := it.Meta
		if it.Leg != r.leg.uuid || m.Scope != r.scope || m.Origin != r.origin {
			continue
		}
		delete(e.adopted, p)
		r.id, r.path = m.RecordingID, it.Path
		_, r.local = recordingPaths(e.sw, m.Account, m.RecordingID, m.Format)
		r.state, r.startTS, r.started = recRunning, m.Start.UnixMicro(), m.Start
		if it.StartTS > 0 {
			r.startTS = it.StartTS
		}
		r.settings.Format = m.Format
		r.masks = append([]Range(nil), m.MaskedRanges...)
		e.byPath[r.path] = r
		r.leg.recIDs = append(r.leg.recIDs, r.id)
		// The earlier run may have died between the intent and the
		// start: send the start again. A path the switch records
		// already answers +OK and starts nothing.
		e.send(startCommand(r))
		if it.MaskedFromMS != nil {
			// The earlier run masked the call; its mask may not have
			// reached the switch. Masking again is harmless.
			r.maskFrom = r.startTS + *it.MaskedFromMS*1000
			r.call.masked = true
			e.send(fmt.Sprintf("uuid_record %s mask %s", r.leg.uuid, r.path))
		}
		e.log.Info("continuing a recording of an earlier run", "recording", r.id, "leg", it.Leg, "scope", r.scope)
		return
	}
}
