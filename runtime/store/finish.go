package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/recpol/recpol/internal/readlimit"
	"github.com/recpol/recpol/runtime/catalog"
)

// Journal states.
const (
	stReceived   = "received"   // nothing checked yet (in memory; on disk only from earlier versions)
	stChecked    = "checked"    // duration and sha256 known, destination chosen
	stQuarantine = "quarantine" // failed its checks, on its way to quarantine
	stUpload     = "upload"     // stored, upload due (earlier versions; now a checked journal in pending/)
)

// journal is the durable record of one recording being finished. Once
// stored with a URL it is renamed into pending/ and is the upload's entry.
type journal struct {
	Version int      `json:"version"`
	State   string   `json:"state"`
	Src     string   `json:"src"`
	Dst     string   `json:"dst,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	Meta    Metadata `json:"metadata"`
	// Checked is when the store checked the recording, on the runtime's
	// clock: a failing upload's age counts from it (MaxUploadAge).
	Checked time.Time `json:"checked,omitzero"`
	// at is where the file is when it is not at Src: its place in
	// storage, for a recording a crash interrupted after its move.
	at string
	// sum is the file's sha256, once checkAudio read it.
	sum string
	// listed: the catalog holds the recording (its journal, state
	// finishing, or the recording stored).
	listed bool
	// srcInfo is the Lstat of Src that Finish just made, for check to
	// use instead of its own; srcSeen says that this attempt found the
	// file at Src, a regular file, which moveIn need not look for again
	// (the recording's lock is held throughout). Both hold for one
	// attempt: a retry looks again.
	srcInfo os.FileInfo
	srcSeen bool
	// srcPerm is the permission bits of the file at Src when srcSeen:
	// a file already 0600 is not chmodded after its move.
	srcPerm os.FileMode
	// moved is the directories that this attempt's rename left and
	// entered, whose fsync is owed before the catalog commit (stepAll).
	moved []string
}

// file is the recording's file as it is now: at Src in the spool, or in
// storage already when a crash interrupted an earlier Finish after the
// move.
func (j *journal) file() string {
	if j.at != "" {
		return j.at
	}
	return j.Src
}

// entry is a pending upload, or a journal whose finish failed, scheduled
// for another attempt. A pending upload holds only what scheduling it
// needs: its id, its target, its attempts and times. Its metadata and
// path are read from the catalog when an attempt starts (uploadOf), so a
// backlog of uploads costs under two hundred bytes each, not the
// recordings' metadata (a few KB each: TestPendingUploadHeap). Only a
// recording just finished while fewer than Store.holdMax uploads were
// pending keeps its journal until its first attempt, which then reads
// nothing: the uploads of a store keeping up cost no catalog read.
type entry struct {
	id string
	// j is the journal to resume, or the journal of an upload not yet
	// attempted that holds it (see above); nil for the others.
	j *journal
	// target is the upload's target (targetOf), interned (Store.target).
	target   string
	attempts int
	next     time.Time
	// since is when the upload's retries began counting towards
	// MaxUploadAge: when its recording was checked, or a manual Retry.
	since  time.Time
	upload bool // a pending upload, else a journal to resume
	busy   bool // an attempt is running
	queued bool // in the scheduler's queue, or parked (Store.parked)
}

func (s *Store) journalPath(id string) string {
	return filepath.Join(s.spool, dirJournal, id+".json")
}

// mediaPath is where a recording is stored; sidecarPath its metadata.
func (s *Store) mediaPath(m Metadata) string {
	d := m.Start.UTC()
	name := m.RecordingID
	if m.MediaName != "" {
		name = m.MediaName + "_" + m.RecordingID
	}
	return filepath.Join(s.storage, m.Account, fmt.Sprintf("%04d", d.Year()),
		fmt.Sprintf("%02d", int(d.Month())), fmt.Sprintf("%02d", d.Day()), name+"."+m.Format)
}

// mediaNameStem returns a media_name fit for a file name: without a
// trailing ".mp3" or ".wav", and "" when what is left is not a valid path
// component (the default names are used then).
func mediaNameStem(name string) string {
	for _, ext := range []string{".mp3", ".wav"} {
		if len(name) > len(ext) && strings.EqualFold(name[len(name)-len(ext):], ext) {
			name = name[:len(name)-len(ext)]
			break
		}
	}
	if !ValidName(name) || len(name) > 64 {
		return ""
	}
	return name
}

// sidecarOf is the metadata sidecar of a recording stored at media:
// <recording id>.json beside it, whatever the media file is named (a
// media_name prefixes the media file's name only).
func sidecarOf(media, id string) string {
	return filepath.Join(filepath.Dir(media), id+".json")
}

// checkMeta validates the fields of m that reach a path or a URL and
// normalises Format and Method.
func checkMeta(m Metadata) (Metadata, error) {
	for _, f := range []struct{ name, v string }{
		{"recording id", m.RecordingID}, {"call id", m.CallID}, {"account", m.Account}, {"format", m.Format},
	} {
		if !ValidName(f.v) {
			return m, fmt.Errorf("%s %q: %w", f.name, f.v, ErrInvalid)
		}
	}
	if m.Format != "wav" && m.Format != "mp3" {
		return m, fmt.Errorf("format %q is not wav or mp3: %w", m.Format, ErrInvalid)
	}
	if m.Start.IsZero() {
		return m, fmt.Errorf("recording %s has no start time: %w", m.RecordingID, ErrInvalid)
	}
	m.MediaName = mediaNameStem(m.MediaName)
	switch strings.ToLower(m.Method) {
	case "", "put":
		m.Method = "put"
	case "post":
		m.Method = "post"
	default:
		return m, fmt.Errorf("upload method %q: %w", m.Method, ErrInvalid)
	}
	if m.URL != "" {
		if _, err := parseTarget(m.URL); err != nil {
			return m, fmt.Errorf("recording %s: %w", m.RecordingID, err)
		}
	}
	return m, nil
}

// Finish takes a recording the switch has finished writing to file and
// makes sure it ends up stored (and queued for upload when m.URL is set)
// exactly once. The file is checked and hashed first (reads only), then
// moved into storage (atomically) and entered in the catalog with one
// commit. A crash at any moment leaves the file in the spool or at its
// destination for the caller's next Finish (the caller keeps its own
// record until Finish returns), which takes it from there; calling Finish
// again for the same recording id reports the earlier outcome
// (Result.Duplicate) and leaves file alone when it is already stored.
//
// Format defaults to the file's extension and must match it; DurationMS,
// SampleRate (when zero) and SHA256 are filled in from the file. An error
// wrapping ErrInvalid leaves the file untouched; an error wrapping
// ErrStorageFull or any other error after the checks leaves the file
// where it is with its journal in the catalog (state finishing), and Run
// retries it.
func (s *Store) Finish(m Metadata, file string) (Result, error) {
	o := s.FinishAll([]Item{{Meta: m, File: file}})[0]
	return o.Result, o.Err
}

// Item is one recording handed to FinishAll: its metadata and the file
// the switch wrote.
type Item struct {
	Meta Metadata
	File string
}

// FinishResult is what FinishAll did with one Item: what Finish would have
// returned for it.
type FinishResult struct {
	Result Result
	Err    error
}

// FinishAll finishes the items as Finish finishes each, with every
// guarantee of Finish per item, but together: the files are checked,
// hashed and moved one after the other by the calling goroutine, the
// directories they left and entered are fsynced once each for all of
// them, and their catalog entries are committed with one ApplyEach (one
// transaction, one wait for its commit) instead of one Apply each. It
// returns a FinishResult per item, in order. An item whose recording id an
// earlier item of the call has too is finished after that one's commit
// (a repeated Finish: Result.Duplicate).
func (s *Store) FinishAll(items []Item) []FinishResult {
	out := make([]FinishResult, len(items))
	rest := make([]int, len(items))
	for i := range rest {
		rest[i] = i
	}
	for len(rest) > 0 {
		var round, later []int
		seen := make(map[string]bool, len(rest))
		for _, i := range rest {
			if id := items[i].Meta.RecordingID; seen[id] {
				later = append(later, i)
			} else {
				seen[id] = true
				round = append(round, i)
			}
		}
		s.finishRound(items, round, out)
		rest = later
	}
	return out
}

// finishRound finishes the items at the indices idx, whose recording ids
// differ: each one's lock is taken, in the order of the ids (two rounds
// holding some of the same ids cannot wait for each other), and held
// until its outcome is known.
func (s *Store) finishRound(items []Item, idx []int, out []FinishResult) {
	byID := slices.Clone(idx)
	slices.SortFunc(byID, func(a, b int) int { return strings.Compare(items[a].Meta.RecordingID, items[b].Meta.RecordingID) })
	var unlocks []func()
	defer func() {
		for _, u := range slices.Backward(unlocks) {
			u()
		}
	}()
	for _, i := range byID {
		if id := items[i].Meta.RecordingID; ValidName(id) {
			unlocks = append(unlocks, s.lock(id))
		}
	}
	var js []*journal
	var at []int
	for _, i := range idx {
		j, r, err := s.prepare(items[i].Meta, items[i].File)
		if j == nil {
			out[i] = FinishResult{Result: r, Err: err}
			continue
		}
		js = append(js, j)
		at = append(at, i)
	}
	rs, errs := s.advanceAll(js)
	for k, i := range at {
		out[i] = FinishResult{Result: rs[k], Err: errs[k]}
	}
}

// prepare is Finish up to the journal to advance, the recording's lock
// held by the caller: it returns that journal, or nil and Finish's
// outcome when there is nothing to advance (an invalid item, a
// recording finished before).
func (s *Store) prepare(m Metadata, file string) (*journal, Result, error) {
	m = m.detached()
	ext := strings.TrimPrefix(filepath.Ext(file), ".")
	if m.Format == "" {
		m.Format = ext
	}
	if m.Format != ext {
		return nil, Result{}, fmt.Errorf("format %q does not match file extension %q: %w", m.Format, ext, ErrInvalid)
	}
	m, err := checkMeta(m)
	if err != nil {
		return nil, Result{}, err
	}
	src, err := filepath.Abs(file)
	if err != nil {
		return nil, Result{}, fmt.Errorf("recording %s: %w", m.RecordingID, err)
	}
	id := m.RecordingID

	// A journal file of an earlier release is resumed.
	var j *journal
	if s.legacyJournals {
		jpath := s.journalPath(id)
		j, err = s.readJournal(jpath)
		switch {
		case err == nil:
			return j, Result{}, nil
		case errors.Is(err, errCorruptJournal):
			s.quarantineFile(jpath, err)
		case !errors.Is(err, os.ErrNotExist):
			// Transient (EMFILE, EIO): not corruption; the caller retries.
			return nil, Result{}, fmt.Errorf("recording %s: reading its journal: %w", id, err)
		}
	}
	// A recording whose file is still in the spool starts over: nothing
	// was moved yet, and every step is idempotent. Only when the file has
	// left the spool can this be a repeated Finish, or one whose move a
	// crash interrupted: the catalog says which.
	j = &journal{Version: 1, State: stReceived, Src: src, Meta: m}
	fi, err := os.Lstat(src)
	if err == nil {
		j.srcInfo = fi
	} else {
		if r, ej, ok := s.earlier(id); ok {
			if ej != nil {
				return ej, Result{}, nil
			}
			// A crash right after the commit may have kept its
			// sidecar from being written.
			if r.Outcome == Stored && !exists(sidecarOf(r.Path, id)) {
				s.sidecarDue(id)
				s.queueSidecar(id, r.Path, r.Metadata)
			}
			return nil, r, nil
		}
		s.findMoved(j)
	}
	// Nothing is written before the file is in storage: checking and
	// hashing only read it, and the move is atomic (a rename, or a copy
	// through a temporary file before the source is removed), so a crash
	// leaves the file in the spool or at its destination, where the
	// caller's next Finish finds it.
	return j, Result{}, nil
}

// findMoved looks for the file of a recording that is not in the spool
// and not in the catalog: moved into storage by a Finish that a crash
// stopped before its commit. It is at its destination, which the metadata
// decides, and is checked, hashed and entered there (j.at). The caller's
// metadata may date the recording a little differently from the Finish
// that moved it (the runtime's intent has the time the start was asked
// for, its RECORD_STOP the switch's time of the start): across midnight
// UTC the file is in the day before or after, and is moved from there to
// where this metadata puts it (j.Src).
func (s *Store) findMoved(j *journal) {
	dst := s.mediaPath(j.Meta)
	if regularFile(dst) {
		j.at = dst
		return
	}
	for _, d := range []time.Duration{-24 * time.Hour, 24 * time.Hour} {
		m := j.Meta
		m.Start = m.Start.Add(d)
		if p := s.mediaPath(m); regularFile(p) {
			j.Src = p
			return
		}
	}
}

// regularFile reports whether p is a regular file (not followed if it is
// a symbolic link).
func regularFile(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode().IsRegular()
}

// earlier reports what an earlier Finish of the recording left, from one
// read of the catalog: its journal when a crash interrupted its move into
// storage (state finishing), or its outcome when it is stored or its
// upload pending.
func (s *Store) earlier(id string) (Result, *journal, bool) {
	s.mu.Lock()
	_, queued := s.pending[id]
	s.mu.Unlock()
	// none: nothing usable in the catalog. A recording whose upload is
	// pending is stored all the same: a duplicate, whose metadata the
	// catalog could not give this time.
	none := func() (Result, *journal, bool) {
		if queued {
			return Result{Outcome: Stored, Metadata: Metadata{RecordingID: id}, Queued: true, Duplicate: true}, nil, true
		}
		return Result{}, nil, false
	}
	cr, err := s.cat.Get(context.Background(), id)
	if err != nil {
		return none()
	}
	switch cr.State {
	case catalog.StateFinishing:
		j, err := s.checkJournal(cr.Doc, id)
		if err != nil {
			s.log.Error("a recording's journal in the catalog cannot be used", "recording_id", id, "error", err.Error())
			return none()
		}
		j.listed = true
		return Result{}, j, true
	case catalog.StateStored, catalog.StateUploaded, catalog.StateDead:
		r, err := fromRow(cr)
		if err != nil {
			return none()
		}
		return Result{Outcome: Stored, Path: r.Path, Metadata: r.Metadata, Queued: queued, Duplicate: true}, nil, true
	}
	return none()
}

// putJournal records a recording whose finish failed, or that is on its
// way to the quarantine, in the catalog, state finishing, the journal as
// the row's document: where the file comes from and goes to, and the
// metadata so far. One group-committed transaction replaces a journal
// file (create, write, fsync, rename, fsync of the directory, and later
// its removal).
func (s *Store) putJournal(j *journal) error {
	doc, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("recording %s: journal: %w", j.Meta.RecordingID, err)
	}
	r, err := row(j.Meta, j.Dst, catalog.StateFinishing)
	if err != nil {
		return err
	}
	r.Doc = doc
	if err := s.cat.Apply(context.Background(), catalog.PutRecording(r)); err != nil {
		return fmt.Errorf("recording %s: journal: %w", j.Meta.RecordingID, err)
	}
	return nil
}

// journalOf returns the journal of a recording the catalog has in state
// finishing, checked as a journal file would be.
func (s *Store) journalOf(id string) (*journal, bool) {
	_, j, ok := s.earlier(id)
	return j, ok && j != nil
}

// removeLegacyJournal removes the journal file of an earlier release, if
// the recording had one.
func (s *Store) removeLegacyJournal(id string) error {
	if !s.legacyJournals {
		return nil
	}
	err := os.Remove(s.journalPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.dirs.sync(filepath.Join(s.spool, dirJournal))
}

func (s *Store) writeJournal(path string, j *journal) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return s.dirs.writeFileAtomic(path, b)
}

// readJournal reads and checks a journal or pending entry. A journal is
// trusted only as far as it is consistent: its ids pass the same checks as
// Finish's and its destination is recomputed, not followed.
func (s *Store) readJournal(path string) (*journal, error) {
	b, err := readlimit.File(path, maxJournalBytes)
	if errors.Is(err, readlimit.ErrTooLarge) {
		return nil, fmt.Errorf("%w: %w", errCorruptJournal, err)
	}
	if err != nil {
		return nil, err
	}
	return s.checkJournal(b, strings.TrimSuffix(filepath.Base(path), ".json"))
}

// Size limits of the store's small files: a journal or a sidecar larger
// than these is corrupt (they hold one recording's metadata, a few KB).
const (
	maxJournalBytes = 1 << 20
	maxSidecarBytes = 1 << 20
)

// errCorruptJournal marks a journal whose content is wrong: it is
// quarantined. Any other error reading one (too many open files, a full or
// read-only disk) is transient: the journal stays and is read again.
var errCorruptJournal = errors.New("corrupt journal")

// checkJournal decodes and checks a journal of recording id.
func (s *Store) checkJournal(b []byte, id string) (*journal, error) {
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("%w: %w", errCorruptJournal, err)
	}
	if j.Version != 1 {
		return nil, fmt.Errorf("%w: version %d", errCorruptJournal, j.Version)
	}
	if _, err := checkMeta(j.Meta); err != nil {
		return nil, fmt.Errorf("%w: %w", errCorruptJournal, err)
	}
	if id != j.Meta.RecordingID {
		return nil, fmt.Errorf("%w: recording id does not match its name", errCorruptJournal)
	}
	if !filepath.IsAbs(j.Src) {
		return nil, fmt.Errorf("%w: source path is not absolute", errCorruptJournal)
	}
	switch j.State {
	case stReceived:
	case stChecked, stUpload:
		if j.Dst != s.mediaPath(j.Meta) || len(j.Meta.SHA256) != 64 {
			return nil, fmt.Errorf("%w: destination or sha256 inconsistent", errCorruptJournal)
		}
	case stQuarantine:
		if filepath.Dir(j.Dst) != filepath.Join(s.spool, dirQuarantine) {
			return nil, fmt.Errorf("%w: quarantine path outside the quarantine", errCorruptJournal)
		}
	default:
		return nil, fmt.Errorf("%w: state %q", errCorruptJournal, j.State)
	}
	return &j, nil
}

// quarantineFile moves a journal or pending entry that cannot be trusted to
// the quarantine directory and says so. The recording it named, if any, is
// left where it is.
func (s *Store) quarantineFile(path string, cause error) {
	dst := s.quarantineName(fmt.Sprintf("%s.%d", filepath.Base(path), s.cfg.Now().UnixNano()), ".corrupt")
	err := renameFile(path, dst)
	if err == nil {
		s.dirs.sync(filepath.Dir(path))
		s.dirs.sync(filepath.Dir(dst))
	}
	s.log.Error("journal quarantined", "journal", path, "quarantine", dst, "cause", cause.Error(), "move_error", errString(err))
	s.emit(Event{Kind: EventJournalQuarantined, RecordingID: strings.TrimSuffix(filepath.Base(path), ".json"), Reason: cause.Error()})
}

// quarantineName returns a path in the quarantine directory that nothing
// occupies yet (nor its ".json" companion): earlier evidence is never
// overwritten.
func (s *Store) quarantineName(base, ext string) string {
	dir := filepath.Join(s.spool, dirQuarantine)
	p := filepath.Join(dir, base+ext)
	for n := 1; exists(p) || exists(p+".json"); n++ {
		p = filepath.Join(dir, fmt.Sprintf("%s-%d%s", base, n, ext))
	}
	return p
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// advance runs a journal to its end and remembers a failure so that Run
// retries it.
func (s *Store) advance(j *journal) (Result, error) {
	rs, errs := s.advanceAll([]*journal{j})
	return rs[0], errs[0]
}

// advanceAll runs journals of distinct recordings, whose locks the
// caller holds, to their ends together (stepAll), and remembers each
// failure so that Run retries it.
func (s *Store) advanceAll(js []*journal) ([]Result, []error) {
	rs, errs := s.stepAll(js)
	failed := false
	for i, j := range js {
		failed = s.settle(j, errs[i]) || failed
	}
	if failed {
		s.kick()
	}
	return rs, errs
}

// settle records the end of one attempt at a journal: a failure is
// listed in the catalog and scheduled for a retry (it reports true), a
// success forgets an earlier failure.
func (s *Store) settle(j *journal, err error) bool {
	id := j.Meta.RecordingID
	failed := err != nil && !errors.Is(err, errCrash)
	if failed && j.State == stChecked && !j.listed {
		// A finish that fails (storage full, the catalog unreachable)
		// is listed, state finishing, until it is retried: searches
		// show it, and the next Open resumes it. The one commit is
		// spent on failures only.
		if perr := s.putJournal(j); perr != nil {
			s.log.Warn("the catalog could not list a recording whose finish failed", "recording_id", id, "error", perr.Error())
		} else {
			j.listed = true
		}
	}
	s.mu.Lock()
	if failed {
		e := s.stuck[id]
		if e == nil {
			e = &entry{id: id}
			s.stuck[id] = e
		}
		e.j = j
		e.attempts++
		now := s.cfg.Now()
		e.next = now.Add(s.backoff(e.attempts))
		e.busy = false
		s.schedule(e, now)
	} else {
		delete(s.stuck, id)
	}
	s.mu.Unlock()
	if failed {
		s.log.Error("recording not stored yet", "recording_id", id, "state", j.State, "error", err.Error())
	}
	return failed
}

// stepAll runs the state machine of each journal (step), the catalog
// commits of those that reach storage shared: their files are moved
// first, the directories of the moves fsynced once each, and their
// entries committed in one ApplyEach.
func (s *Store) stepAll(js []*journal) ([]Result, []error) {
	rs, errs := make([]Result, len(js)), make([]error, len(js))
	ops := make([][]catalog.Op, len(js))
	moves := dirSet{}
	for i, j := range js {
		ops[i], rs[i], errs[i] = s.toStorage(j, moves)
	}
	synced := moves.syncAll(s.dirs)
	for i, j := range js {
		if ops[i] == nil {
			continue
		}
		if err := synced.errOf(j.moved); err != nil {
			ops[i], errs[i] = nil, s.storageErr(j, "move", err)
			continue
		}
		if s.hook("moved") {
			ops[i], errs[i] = nil, errCrash
			continue
		}
		// The sidecar is owed from the commit on: a crash before the
		// lane writes it leaves the mark for the next Open.
		s.sidecarDue(j.Meta.RecordingID)
	}
	cerrs := s.cat.ApplyEach(context.Background(), ops...)
	for i, j := range js {
		if ops[i] == nil {
			continue
		}
		if cerrs[i] != nil {
			errs[i] = fmt.Errorf("recording %s: catalog: %w", j.Meta.RecordingID, cerrs[i])
			continue
		}
		rs[i], errs[i] = s.committed(j)
	}
	return rs, errs
}

// toStorage is a journal's state machine up to its catalog entry: it
// returns the entry's ops once the file is in storage (the fsyncs of
// the move's directories left to moves), or none and the journal's
// outcome when it ended before (discarded, quarantined, failed). Every
// transition is written to the journal before the action it announces,
// and every action is idempotent, so a journal can be rerun from any
// state after a crash.
func (s *Store) toStorage(j *journal, moves dirSet) ([]catalog.Op, Result, error) {
	id := j.Meta.RecordingID
	switch j.State {
	case stReceived:
		if done, r, err := s.check(j); done || err != nil {
			return nil, r, err
		}
		sum := j.sum
		if sum == "" {
			var err error
			if sum, err = fileSHA256(j.file()); err != nil {
				return nil, Result{}, fmt.Errorf("recording %s: %w", id, err)
			}
		}
		j.Meta.SHA256 = sum
		if s.hook("hashed") {
			return nil, Result{}, errCrash
		}
		// The journal stays in memory (Run retries it from there when a
		// step fails): the move is atomic, the destination follows from
		// the metadata, and the caller's next Finish finds the file at
		// one end of it or the other after a crash.
		j.Dst = s.mediaPath(j.Meta)
		j.State = stChecked
		j.Checked = s.cfg.Now().UTC()
		fallthrough
	case stChecked, stUpload:
		j.moved = j.moved[:0]
		if err := s.moveIn(j); err != nil {
			return nil, Result{}, s.storageErr(j, "move", err)
		}
		for _, d := range j.moved {
			moves[d] = struct{}{}
		}
		// One catalog transaction (shared with the finishes of the same
		// moment) enters the stored recording and, with a URL, its
		// upload: the recording's one commit of its finish.
		r, err := row(j.Meta, j.Dst, catalog.StateStored)
		if err != nil {
			return nil, Result{}, err
		}
		ops := []catalog.Op{catalog.PutRecording(r)}
		if j.Meta.URL != "" {
			ops = append(ops, catalog.EnqueueUpload(id, j.Meta.URL, s.cfg.Now()))
		}
		return ops, Result{}, nil
	case stQuarantine:
		r, err := s.quarantine(j, j.Reason)
		return nil, r, err
	}
	return nil, Result{}, fmt.Errorf("recording %s: unknown journal state %q", id, j.State)
}

// committed ends a journal whose recording the catalog has just entered
// as stored: its sidecar and upload are queued.
func (s *Store) committed(j *journal) (Result, error) {
	id := j.Meta.RecordingID
	j.listed = true
	if s.hook("cataloged") {
		return Result{}, errCrash
	}
	if err := s.removeLegacyJournal(id); err != nil {
		return Result{}, fmt.Errorf("recording %s: journal: %w", id, err)
	}
	// The sidecar is a readable copy of the row just committed,
	// written by the sidecar lane off this path.
	s.queueSidecar(id, j.Dst, j.Meta)
	if j.Meta.URL == "" {
		s.stored(j, false)
		return Result{Outcome: Stored, Path: j.Dst, Metadata: j.Meta}, nil
	}
	s.mu.Lock()
	e := s.newUpload(id, j.Meta.URL, j.Checked)
	if len(s.pending) < s.holdMax {
		e.j = j
	}
	s.pending[id] = e
	s.schedule(e, s.cfg.Now())
	s.mu.Unlock()
	s.kick()
	s.stored(j, true)
	return Result{Outcome: Stored, Path: j.Dst, Metadata: j.Meta, Queued: true}, nil
}

func (s *Store) stored(j *journal, queued bool) {
	s.storageOK(j.Meta.RecordingID)
	// The runtime logs the recording's end at INFO, once, with its
	// outcome; this is the store's detail.
	s.log.Debug("recording stored", "recording_id", j.Meta.RecordingID, "account", j.Meta.Account,
		"path", j.Dst, "duration_ms", j.Meta.DurationMS, "sha256", j.Meta.SHA256, "upload_queued", queued)
	s.emit(Event{Kind: EventStored, RecordingID: j.Meta.RecordingID, Account: j.Meta.Account})
	if m := &j.Meta; len(m.Flags) > 0 {
		s.log.Warn("recording stored with a discrepancy", "recording_id", m.RecordingID, "account", m.Account,
			"flags", strings.Join(m.Flags, ","), "sample_rate", m.SampleRate, "requested_sample_rate", m.RequestedSampleRate,
			"duration_ms", m.DurationMS, "reported_duration_ms", m.ReportedDurationMS)
		s.emit(Event{Kind: EventFlagged, RecordingID: m.RecordingID, Account: m.Account, Reason: strings.Join(m.Flags, ",")})
	}
}

// storageErr wraps a failure to write into storage, marking ENOSPC.
func (s *Store) storageErr(j *journal, what string, err error) error {
	kind := StorageError
	switch {
	case isNoSpace(err):
		kind = StorageFull
	case errors.Is(err, syscall.EROFS):
		kind = StorageReadOnly
	}
	id := j.Meta.RecordingID
	s.faultMu.Lock()
	first := !s.faulted[id]
	s.faulted[id] = true
	if s.fault == nil || s.fault.Kind != kind {
		s.fault = &StorageFault{Kind: kind, Since: s.cfg.Now(), Err: err.Error()}
	}
	s.faultMu.Unlock()
	if first {
		// Counted once per recording, not per retry.
		s.log.Error("storage failing; recording kept in the spool and retried", "recording_id", id, "fault", string(kind),
			"src", j.Src, "error", err.Error())
		s.emit(Event{Kind: EventStorageFull, RecordingID: id, Account: j.Meta.Account, Reason: string(kind) + ": " + err.Error()})
	}
	if kind == StorageFull {
		return fmt.Errorf("recording %s: %s: %w: %w", id, what, ErrStorageFull, err)
	}
	return fmt.Errorf("recording %s: %s: %w", id, what, err)
}

// StorageFaultKind says how storage fails.
type StorageFaultKind string

// The kinds of StorageFault.
const (
	StorageFull     StorageFaultKind = "full"      // ENOSPC, EDQUOT
	StorageReadOnly StorageFaultKind = "read-only" // EROFS
	StorageError    StorageFaultKind = "error"     // anything else moving a file in
)

// StorageFault is a storage failure in force: since the first failure
// of its kind, until a recording is stored again.
type StorageFault struct {
	Kind  StorageFaultKind
	Since time.Time
	Err   string // the last error
}

// Fault returns the storage failure in force, nil when the last attempt
// to store a recording succeeded.
func (s *Store) Fault() *StorageFault {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if s.fault == nil {
		return nil
	}
	f := *s.fault
	return &f
}

// storageOK clears the fault once a recording is stored.
func (s *Store) storageOK(id string) {
	s.faultMu.Lock()
	delete(s.faulted, id)
	if s.fault != nil {
		s.log.Info("storage works again", "fault", string(s.fault.Kind), "since", s.fault.Since)
	}
	s.fault = nil
	s.faultMu.Unlock()
}

// check applies step 1: a missing, empty or too short recording is
// discarded, a broken one quarantined. For a WAV it fills in DurationMS and
// SampleRate. done reports that the journal reached its end.
func (s *Store) check(j *journal) (done bool, r Result, err error) {
	m := &j.Meta
	fi := j.srcInfo
	j.srcInfo = nil
	if fi == nil || j.at != "" {
		fi, err = os.Lstat(j.file())
	}
	if errors.Is(err, os.ErrNotExist) {
		r, err := s.discard(j, "missing file")
		return true, r, err
	}
	if err != nil {
		return false, Result{}, fmt.Errorf("recording %s: %w", m.RecordingID, err)
	}
	if !fi.Mode().IsRegular() {
		r, err := s.quarantine(j, "not a regular file")
		return true, r, err
	}
	if fi.Size() == 0 {
		r, err := s.discard(j, "empty file")
		return true, r, err
	}
	j.srcSeen = j.at == ""
	j.srcPerm = fi.Mode().Perm()
	if m.Format == "wav" || m.Format == "mp3" {
		done, r, err := s.checkAudio(j, fi.Size())
		if done || err != nil {
			return done, r, err
		}
	}
	if m.DurationMS > 0 {
		// Ranges end with the recording; an open one (EndMS -1, a mask
		// still in force when the runtime lost track) ends there too.
		for i := range m.MaskedRanges {
			if rg := &m.MaskedRanges[i]; rg.EndMS < 0 || rg.EndMS > m.DurationMS {
				rg.EndMS = m.DurationMS
			}
		}
	}
	if m.RecordMinSec > 0 && m.DurationMS > 0 && m.DurationMS < int64(m.RecordMinSec)*1000 {
		r, err := s.discard(j, fmt.Sprintf("too short: %d ms < record_min_sec %d", m.DurationMS, m.RecordMinSec))
		return true, r, err
	}
	return false, Result{}, nil
}

// checkAudio reads a WAV or MP3 file (bounded: see inspectWAV and
// inspectMP3) and sets the metadata from it: sample rate, duration,
// channels, and for a WAV the masked spans measured in the file. What
// differs from what was asked is flagged; an unreadable file is
// quarantined, an empty one discarded. size is the file's, from the
// lstat check just made: the file is opened without following a link,
// which the lstat ruled out.
func (s *Store) checkAudio(j *journal, size int64) (done bool, r Result, err error) {
	m := &j.Meta
	f, err := openRaw(j.file(), os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return false, Result{}, fmt.Errorf("recording %s: %w", m.RecordingID, err)
	}
	// One read takes the file's first readBufSize bytes (a recording of
	// a few seconds whole): the header is checked from them and they are
	// the first the hash takes; the rest is read once, into the same
	// buffer, for the hash.
	buf := getReadBuf()
	defer putReadBuf(buf)
	hf, err := readHead(f, *buf)
	container := m.Format
	if err == nil && m.Format == "mp3" && isRIFFAt(hf) {
		// A ".mp3" holding WAV bytes: kept and flagged, never withheld.
		container = "wav"
		if !slices.Contains(m.Flags, FlagFormat) {
			m.Flags = append(m.Flags, FlagFormat)
		}
		m.FileFormat = "wav"
	}
	var info audioInfo
	if err == nil {
		if container == "wav" {
			info, err = inspectWAVAt(hf, size)
		} else {
			info, err = inspectMP3At(hf, size)
		}
	}
	if err == nil {
		// Hashed from the same open file, to its end.
		h := sha256.New()
		h.Write(hf.head)
		if hf.eof {
			j.sum = hex.EncodeToString(h.Sum(nil))
		} else {
			j.sum, err = hashFrom(h, f, int64(len(hf.head)), *buf, j.file())
		}
	}
	f.Close()
	if errors.Is(err, errCorrupt) {
		r, err := s.quarantine(j, err.Error())
		return true, r, err
	}
	if err != nil {
		return false, Result{}, fmt.Errorf("recording %s: %w", m.RecordingID, err)
	}
	if m.SampleRate != 0 && info.rate != m.SampleRate && !slices.Contains(m.Flags, FlagSampleRate) {
		// Stored and flagged, never withheld (SPEC 5).
		m.Flags = append(m.Flags, FlagSampleRate)
		m.RequestedSampleRate = m.SampleRate
	}
	m.SampleRate = info.rate
	m.ChannelCount = info.channels
	if len(m.Channels) > 0 && len(m.Channels) != info.channels && !slices.Contains(m.Flags, FlagChannels) {
		m.Flags = append(m.Flags, FlagChannels)
	}
	if info.samples == 0 {
		r, err := s.discard(j, "empty file: no samples")
		return true, r, err
	}
	fileMS := info.samples * 1000 / int64(info.rate)
	if d := fileMS - m.DurationMS; m.DurationMS > 0 && (d > DurationTolerance.Milliseconds() || -d > DurationTolerance.Milliseconds()) &&
		!slices.Contains(m.Flags, FlagDuration) {
		m.Flags = append(m.Flags, FlagDuration)
		m.ReportedDurationMS = m.DurationMS
	}
	m.DurationMS = fileMS
	if container == "wav" && len(m.MaskedRanges) > 0 && m.ReportedMaskedRanges == nil {
		if err := measureMasks(j.file(), info, m); err != nil {
			return false, Result{}, fmt.Errorf("recording %s: measuring its masked spans: %w", m.RecordingID, err)
		}
	}
	return false, Result{}, nil
}

// maskSearchMS is how far from the span its events give a masked span's
// run of zeros is looked for: a real switch applies a mask 100-300 ms
// from the event's time.
const maskSearchMS = 1000

// measureMasks replaces each masked span the events gave by the run of
// digital zero in the file nearest it, when there is one: the metadata
// then agrees with the audio to the frame. The events' spans are kept in
// ReportedMaskedRanges when any differs.
func measureMasks(path string, info audioInfo, m *Metadata) error {
	runs, err := zeroRuns(path, info, 20)
	if err != nil {
		return err
	}
	measured := make([]Range, len(m.MaskedRanges))
	changed := false
	for i, want := range m.MaskedRanges {
		end := want.EndMS
		if end < 0 || end > m.DurationMS {
			end = m.DurationMS
		}
		measured[i] = Range{StartMS: want.StartMS, EndMS: end}
		if rg, ok := nearestRun(runs, Range{StartMS: want.StartMS, EndMS: end}, maskSearchMS); ok {
			measured[i] = rg
		}
		changed = changed || measured[i] != want
	}
	if changed {
		m.ReportedMaskedRanges = m.MaskedRanges
		m.MaskedRanges = measured
	}
	return nil
}

// discard removes the recording and then its journal.
func (s *Store) discard(j *journal, reason string) (Result, error) {
	id := j.Meta.RecordingID
	if err := s.dirs.removeDurable(j.file()); err != nil {
		return Result{}, fmt.Errorf("recording %s: discard: %w", id, err)
	}
	if err := s.removeLegacyJournal(id); err != nil {
		return Result{}, fmt.Errorf("recording %s: discard: %w", id, err)
	}
	// The catalog keeps the row, discarded (a later entry of its start
	// does not overwrite it).
	if r, err := row(j.Meta, "", catalog.StateDiscarded); err == nil {
		if err := s.cat.Apply(context.Background(), catalog.PutRecording(r)); err != nil {
			s.log.Warn("the catalog could not record a discarded recording", "recording_id", id, "error", err.Error())
		}
	}
	s.log.Debug("recording discarded", "recording_id", id, "account", j.Meta.Account, "reason", reason)
	s.emit(Event{Kind: EventDiscarded, RecordingID: id, Account: j.Meta.Account, Reason: reason})
	return Result{Outcome: Discarded, Reason: reason, Metadata: j.Meta}, nil
}

// quarantine moves the recording to <Spool>/quarantine with the journal,
// reason included, beside it as <name>.json.
func (s *Store) quarantine(j *journal, reason string) (Result, error) {
	id := j.Meta.RecordingID
	if j.State != stQuarantine {
		j.State = stQuarantine
		j.Reason = reason
		j.Dst = s.quarantineName(fmt.Sprintf("%s-%d", id, s.cfg.Now().UnixNano()), "."+j.Meta.Format)
		if err := s.putJournal(j); err != nil {
			return Result{}, fmt.Errorf("recording %s: quarantine: %w", id, err)
		}
		if s.hook("quarantine") {
			return Result{}, errCrash
		}
	}
	if src := j.file(); exists(src) {
		if err := s.moveFile(src, j.Dst, nil); err != nil {
			return Result{}, fmt.Errorf("recording %s: quarantine: %w", id, err)
		}
	}
	if err := s.writeJournal(j.Dst+".json", j); err != nil {
		return Result{}, fmt.Errorf("recording %s: quarantine: %w", id, err)
	}
	// The catalog lists it, quarantined, with the reason: a recording that
	// exists is never out of sight.
	m := j.Meta
	m.QuarantineReason = reason
	r, err := row(m, j.Dst, catalog.StateQuarantined)
	if err == nil {
		err = s.cat.Apply(context.Background(), catalog.PutRecording(r))
	}
	if err != nil {
		return Result{}, fmt.Errorf("recording %s: quarantine: catalog: %w", id, err)
	}
	if err := s.removeLegacyJournal(id); err != nil {
		return Result{}, fmt.Errorf("recording %s: quarantine: %w", id, err)
	}
	s.log.Warn("recording quarantined", "recording_id", id, "account", j.Meta.Account, "reason", reason, "path", j.Dst)
	s.emit(Event{Kind: EventQuarantined, RecordingID: id, Account: j.Meta.Account, Reason: reason})
	return Result{Outcome: Quarantined, Reason: reason, Path: j.Dst, Metadata: j.Meta}, nil
}

// moveFile renames src to dst, or copies and removes it across
// filesystems, and makes both directories durable: at once, or, when
// owed is not nil and the move was a rename, by the caller, to whom the
// directories are added (a copy is made durable at once).
func (s *Store) moveFile(src, dst string, owed *[]string) error {
	err := s.rename(src, dst)
	if errors.Is(err, syscall.EXDEV) {
		if err := s.dirs.copyFile(src, dst); err != nil {
			return err
		}
		if s.hook("copied") {
			return errCrash
		}
		return s.dirs.removeDurable(src)
	}
	if err != nil {
		return err
	}
	if owed != nil {
		*owed = append(*owed, filepath.Dir(dst), filepath.Dir(src))
		return nil
	}
	if err := s.dirs.sync(filepath.Dir(dst)); err != nil {
		return err
	}
	return s.dirs.sync(filepath.Dir(src))
}

// moveIn applies step 2's move: the recording goes from the spool to its
// place in storage, once, mode 0600. The directories whose fsync makes a
// rename durable are added to j.moved, for the caller to fsync.
func (s *Store) moveIn(j *journal) error {
	dir, name := filepath.Dir(j.Dst), filepath.Base(j.Dst)
	if !inside(s.storage, dir) {
		return fmt.Errorf("%s is outside storage: %w", dir, ErrUnsafePath)
	}
	// The directory, when it is there and no link is on its way, is
	// opened at once (one system call); else mkdirSafe creates what is
	// missing, one component at a time, and refuses a link among them.
	d, opened := s.openStorageDir(dir)
	if opened {
		defer d.close()
	} else if err := s.dirs.mkdirSafe(s.storage, dir); err != nil {
		return err
	}
	// The file itself is looked at once, here.
	var dmode os.FileMode
	var derr error
	if opened {
		dmode, derr = d.lstat(name)
	} else {
		var dfi os.FileInfo
		if dfi, derr = os.Lstat(j.Dst); derr == nil {
			dmode = dfi.Mode()
		}
	}
	if derr == nil && dmode&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link: %w", j.Dst, ErrUnsafePath)
	}
	var serr error
	seen := j.srcSeen
	j.srcSeen = false
	if !seen {
		_, serr = os.Lstat(j.Src)
	}
	moved := false
	switch {
	case serr == nil && derr == nil:
		// A copy finished but the source was not removed yet, or the id
		// was already stored with other bytes.
		sum, err := fileSHA256(j.Dst)
		if err != nil {
			return err
		}
		if sum != j.Meta.SHA256 {
			return fmt.Errorf("%s: %w", j.Dst, ErrConflict)
		}
		if err := s.dirs.removeDurable(j.Src); err != nil {
			return err
		}
	case serr == nil:
		if err := s.moveFile(j.Src, j.Dst, &j.moved); err != nil {
			return err
		}
		moved = true
	case errors.Is(serr, os.ErrNotExist) && derr == nil:
		// Moved before a crash.
	case errors.Is(serr, os.ErrNotExist) && errors.Is(derr, os.ErrNotExist):
		return fmt.Errorf("recording file %s vanished before it was stored", j.Src)
	default:
		return errors.Join(serr, derr)
	}
	if seen && moved && j.srcPerm == 0o600 {
		return nil // a rename keeps the mode
	}
	if opened {
		return d.chmod(name, 0o600)
	}
	return os.Chmod(j.Dst, 0o600)
}

// openStorageDir opens dir, a directory below storage, when it exists and
// no component of its path is a symbolic link (see dirfd_linux.go); ok is
// false otherwise, and the caller checks it component by component.
func (s *Store) openStorageDir(dir string) (d dirNoLinks, ok bool) {
	if s.pathDirs {
		return dirNoLinks{}, false
	}
	return openDirNoLinks(dir)
}
