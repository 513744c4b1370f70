package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/recpol/recpol/runtime/catalog"
)

// Errors callers can test for with errors.Is.
var (
	// ErrInvalid reports metadata or an id that cannot be used: a name
	// that would reach a path and fails ValidName, a bad URL or method.
	ErrInvalid = errors.New("invalid recording metadata")
	// ErrUnsafePath reports a destination that is outside Storage or that
	// would be reached through a symbolic link.
	ErrUnsafePath = errors.New("unsafe storage path")
	// ErrStorageFull reports that storage has no space left (ENOSPC). The
	// recording stays in the spool with its journal; Finish can be called
	// again later, and Run retries it.
	ErrStorageFull = errors.New("storage full")
	// ErrNotFound reports a recording id that is not in storage.
	ErrNotFound = errors.New("recording not found")
	// ErrConflict reports a destination that already holds different
	// bytes for the same recording id.
	ErrConflict = errors.New("recording id already stored with different content")
	// ErrHeld reports a recording on legal hold: it is never deleted.
	ErrHeld = errors.New("recording on legal hold")
)

// Config configures a Store.
type Config struct {
	// Storage is where finished files and their metadata go:
	// <Storage>/<account>/<yyyy>/<mm>/<dd>/<recording id>.<ext> and
	// <recording id>.json, dated by the UTC date of Start.
	Storage string
	// Spool is the durable work area: journals of recordings being
	// finished, pending uploads, quarantine.
	Spool string
	// Uploads holds upload credentials by URL prefix; the longest prefix
	// with the same scheme and host wins.
	Uploads []Upload
	// Client sends uploads. Nil: a client with connect, TLS handshake,
	// response header and overall timeouts, verifying certificates, that
	// does not follow redirects (a redirect is retried like a failure, so
	// credentials are never forwarded to another host).
	Client *http.Client
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Backoff bounds the upload retry delay: it starts at Min, doubles per
	// failed attempt up to Max, and is jittered to between half and all of
	// that. Zero values default to 1s and 5m.
	Backoff struct{ Min, Max time.Duration }
	// Workers is the number of concurrent uploads; zero means
	// DefaultWorkers.
	Workers int
	// PerTarget is how many of them may go to one target (scheme and
	// host) at once, so that one slow or trickling target never holds
	// every worker and starves the others' uploads; zero means a quarter
	// of Workers (at least 1).
	PerTarget int
	// MaxUploadAge is how long a failing upload is retried, counted from
	// the end of its recording (or from a manual Retry): past it, the
	// next failure dead-letters it. Zero means DefaultMaxUploadAge. A
	// permanent failure (a 4xx other than 408 and 429, an unusable URL)
	// dead-letters an upload at once.
	MaxUploadAge time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Events, when set, observes outcomes for metrics. It is called
	// synchronously and must not block or call back into the Store.
	Events func(Event)
	// Catalog holds every recording's metadata and state and the upload
	// queue. Nil: an SQLite catalog in <Spool>/catalog.db, opened and
	// closed by the Store.
	Catalog *catalog.Catalog
}

// Upload holds the credentials sent to upload URLs that start with Prefix.
type Upload struct {
	// Prefix is a URL such as "https://store.example.com/recordings/".
	// It matches a target with the same scheme and host whose path starts
	// with Prefix's path.
	Prefix string
	// Headers are set on every request, e.g. Authorization: Bearer ....
	// Values are already resolved secrets and are never logged.
	Headers map[string]string
	// Username and Password, when Username is set, are sent as basic auth.
	Username, Password string
}

// Range is a span of a recording, in milliseconds from the file's start.
// Finish ends a range at the recording's duration when it runs past it or
// is open (EndMS -1: to the end).
type Range struct {
	StartMS int64 `json:"start_ms"`
	EndMS   int64 `json:"end_ms"`
}

// detached returns m with copies of its strings, slices and map: the store
// keeps a recording's metadata (its journal, its pending upload) long
// after Finish returns, and a caller's strings may be slices of a much
// larger buffer (the runtime's are of event-socket frames, 3 KB each),
// which the store would keep alive with them. TestDetached holds it to
// every field.
func (m Metadata) detached() Metadata {
	c := strings.Clone
	for _, p := range []*string{&m.RecordingID, &m.CallID, &m.InteractionID, &m.Account, &m.Endpoint,
		&m.Owner, &m.Scope, &m.Leg, &m.Origin, &m.Direction, &m.From, &m.To, &m.Format,
		&m.PolicyVersion, &m.SHA256, &m.Switch, &m.URL, &m.Method, &m.MediaName, &m.StoppedBy,
		&m.QuarantineReason, &m.Announce, &m.FormatRequested, &m.FileFormat} {
		*p = c(*p)
	}
	m.MaskedRanges = slices.Clone(m.MaskedRanges)
	m.ReportedMaskedRanges = slices.Clone(m.ReportedMaskedRanges)
	if m.Provenance != nil {
		p := make(map[string]string, len(m.Provenance))
		for k, v := range m.Provenance {
			p[c(k)] = c(v)
		}
		m.Provenance = p
	}
	for _, l := range []*[]string{&m.Flags, &m.Channels} {
		if *l != nil {
			out := make([]string, len(*l))
			for i, v := range *l {
				out[i] = c(v)
			}
			*l = out
		}
	}
	if m.AnnouncedAt != nil {
		t := *m.AnnouncedAt
		m.AnnouncedAt = &t
	}
	return m
}

// Metadata describes a recording; it is written as the JSON sidecar.
type Metadata struct {
	RecordingID   string            `json:"recording_id"`
	CallID        string            `json:"call_id"`
	InteractionID string            `json:"interaction_id"`
	Account       string            `json:"account"`
	Endpoint      string            `json:"endpoint,omitempty"`
	Owner         string            `json:"owner,omitempty"`
	Scope         string            `json:"scope,omitempty"`
	Leg           string            `json:"leg,omitempty"`
	Origin        string            `json:"origin,omitempty"`
	Direction     string            `json:"direction,omitempty"`
	From          string            `json:"from"`
	To            string            `json:"to"`
	Start         time.Time         `json:"start"`
	DurationMS    int64             `json:"duration_ms"`
	Format        string            `json:"format"`
	SampleRate    int               `json:"sample_rate"`
	MaskedRanges  []Range           `json:"masked_ranges,omitempty"`
	PolicyVersion string            `json:"policy_version,omitempty"`
	Provenance    map[string]string `json:"provenance,omitempty"`
	SHA256        string            `json:"sha256"`
	Switch        string            `json:"switch,omitempty"`
	// URL is the upload target from the policy; empty keeps the recording
	// locally only.
	URL string `json:"url,omitempty"`
	// Method is "put" (the default) or "post".
	Method string `json:"method,omitempty"`
	// RecordMinSec discards recordings shorter than this many seconds.
	RecordMinSec int `json:"record_min_sec,omitempty"`
	// SameLegRecordings, set by the caller, says the recorded leg carries
	// several recordings of the call; the upload name then includes the
	// recording id.
	SameLegRecordings bool `json:"same_leg_recordings,omitempty"`
	// MediaName is the policy's media_name of a callflow or metaflow
	// recording (KAZOO's "Name of the recording file"): it replaces the
	// default prefixes of the stored file's name (<media_name>_<recording
	// id>) and of the uploaded object's (<media_name>_<call id>), which
	// stay unique per recording and per call. A trailing ".mp3" or ".wav"
	// is dropped (the format gives the extension). A name the store cannot
	// use as a path component is dropped with the default names kept: a
	// recording is never held back for its name.
	MediaName string `json:"media_name,omitempty"`
	// StoppedBy says who stopped the recording before its leg hung up:
	// an API token ("api token ops"), a metaflow code or a callflow.
	StoppedBy string `json:"stopped_by,omitempty"`
	// QuarantineReason says why a recording is in the spool's quarantine
	// (its file could not be read); empty otherwise.
	QuarantineReason string `json:"quarantine_reason,omitempty"`
	// Flags are the discrepancies the store found between the file and
	// what was asked for (FlagSampleRate, FlagDuration). A flagged
	// recording is stored, listed and uploaded like any other: a
	// recording that exists is never withheld (SPEC 5).
	Flags []string `json:"flags,omitempty"`
	// RequestedSampleRate is the sample rate the policy asked for, set when
	// the file's differs (FlagSampleRate); SampleRate is the file's.
	RequestedSampleRate int `json:"requested_sample_rate,omitempty"`
	// ReportedDurationMS is the duration the switch's events gave, set
	// when the file's differs by more than DurationTolerance
	// (FlagDuration); DurationMS is the file's.
	ReportedDurationMS int64 `json:"reported_duration_ms,omitempty"`
	// AnnouncedAt is when the consent announcement (Announce, the media
	// played) was asked of the switch, with the recording's start.
	AnnouncedAt *time.Time `json:"announced_at,omitempty"`
	Announce    string     `json:"announce,omitempty"`
	// ChannelCount is the file's number of channels, read from it.
	ChannelCount int `json:"channel_count,omitempty"`
	// Channels, set by the caller for a stereo recording, says whose
	// voice each channel holds from the recorded leg's point of view
	// (["caller", "callee"]: its own party left, the other right). A file
	// with another channel count is flagged FlagChannels.
	Channels []string `json:"channels,omitempty"`
	// FormatRequested is the format the policy asked for when the switch
	// could not write it and the recording was made in Format instead
	// (mp3 on a switch without mod_shout).
	FormatRequested string `json:"format_requested,omitempty"`
	// FileFormat is the container the file really holds when it is not
	// Format (a ".mp3" holding WAV bytes): flagged FlagFormat, stored,
	// served and uploaded as what it is.
	FileFormat string `json:"file_format,omitempty"`
	// ReportedMaskedRanges are the masked spans the events gave, kept when
	// the store measured others in the file (the runs of digital zero
	// nearest them): MaskedRanges are then the file's.
	ReportedMaskedRanges []Range `json:"reported_masked_ranges,omitempty"`
}

// ContentType is the media type of the recording's file: what it holds
// (FileFormat), else its Format.
func (m *Metadata) ContentType() string {
	f := m.Format
	if m.FileFormat != "" {
		f = m.FileFormat
	}
	if f == "mp3" {
		return "audio/mpeg"
	}
	return "audio/wav"
}

// The flags of a stored recording.
const (
	// FlagSampleRate: the file's sample rate is not the one the policy
	// asked for (a switch or module that ignores record_sample_rate).
	FlagSampleRate = "sample-rate-mismatch"
	// FlagDuration: the file is longer or shorter than the recording's
	// events say, by more than DurationTolerance.
	FlagDuration = "duration-mismatch"
	// FlagChannels: the file's channel count is not the one asked for (a
	// stereo recording written mono).
	FlagChannels = "channels-mismatch"
	// FlagFormat: the file's container is not its format (a ".mp3" that
	// holds WAV bytes).
	FlagFormat = "format-mismatch"
)

// DurationTolerance is how far a file's duration may be from the one its
// events report before it is flagged: a real switch writes the first
// frames up to a few hundred milliseconds after RECORD_START.
const DurationTolerance = 1500 * time.Millisecond

// Outcome is what Finish did with a recording.
type Outcome string

// Outcomes of Finish.
const (
	// Stored: the file and its sidecar are in storage.
	Stored Outcome = "stored"
	// Discarded: missing, empty or too short; the file was removed.
	Discarded Outcome = "discarded"
	// Quarantined: the file failed its checks and was moved to the
	// spool's quarantine directory.
	Quarantined Outcome = "quarantined"
)

// Result is the outcome of Finish.
type Result struct {
	Outcome Outcome
	// Reason says why a recording was discarded or quarantined.
	Reason string
	// Path is the media file in storage (Stored) or quarantine.
	Path string
	// Metadata is the sidecar as written, duration and sha256 filled in.
	Metadata Metadata
	// Queued is true when an upload is pending for the recording.
	Queued bool
	// Duplicate is true when the recording had already been finished by
	// an earlier call; nothing was done this time.
	Duplicate bool
}

// EventKind names an Event.
type EventKind string

// Event kinds.
const (
	EventStored             EventKind = "stored"
	EventDiscarded          EventKind = "discarded"
	EventQuarantined        EventKind = "quarantined"
	EventUploadOK           EventKind = "upload_ok"
	EventUploadFailed       EventKind = "upload_failed"
	EventStorageFull        EventKind = "storage_full"
	EventJournalQuarantined EventKind = "journal_quarantined"
	// EventFlagged comes with EventStored for a recording stored with
	// Metadata.Flags; Reason lists them.
	EventFlagged EventKind = "flagged"
	// EventUploadDead: an upload failed permanently, or for longer than
	// MaxUploadAge; it waits for Retry.
	EventUploadDead EventKind = "upload_dead"
	// EventSidecarRepaired: Open's sidecar lane wrote a sidecar that an
	// earlier process owed when it stopped (killed after the recording's
	// commit, or the sidecar skipped by a full lane).
	EventSidecarRepaired EventKind = "sidecar_repaired"
)

// Event reports one outcome to Config.Events.
type Event struct {
	Kind        EventKind
	RecordingID string
	Account     string
	// Reason explains a discard, a quarantine or a failure. It never holds
	// credentials.
	Reason string
	// Pending is the number of pending uploads after the event.
	Pending int
}

// Filter selects recordings for List. Zero fields match everything.
type Filter struct {
	Account string
	// From and Until bound Start: From <= Start < Until.
	From, Until time.Time
}

// Store is a durable recording store. Its methods are safe for concurrent
// use.
type Store struct {
	cfg     Config
	storage string // Storage with symbolic links resolved
	spool   string
	log     *slog.Logger
	client  *http.Client

	lockMu sync.Mutex
	locks  map[string]*idLock // by recording id, while held or awaited

	dirs *dirSyncer // directory fsyncs, shared by concurrent finishes

	cat    *catalog.Catalog
	ownCat bool // opened by Open, closed by Close

	activeMu   sync.Mutex
	active     chan activeEntry // Started's and Refused's entries; nil once closed
	activeDone chan struct{}

	sidecarMu       sync.Mutex
	sidecars        chan sidecarJob // the sidecar lane's queue; nil once closed
	sidecarsDone    chan struct{}
	sidecarsSkipped int           // sidecars skipped since the lane was last empty
	sidecarsRepair  sidecarRepair // what the lane's start did with the sidecars owed at Open

	owedMu    sync.Mutex
	owed      map[string]struct{} // recordings whose sidecars are owed (sidecarDue); nil once closed
	owedLog   *os.File            // <Spool>/sidecars-owed: every owed id, appended to
	owedLines int                 // lines in owedLog
	owedErr   bool                // a write to owedLog failed and was logged

	mu      sync.Mutex
	pending map[string]*entry // recording id -> pending upload
	stuck   map[string]*entry // recording id -> journal whose finish failed
	targets map[string]int    // uploads in flight per target (targetOf)
	// holdMax: a recording finished while fewer uploads than this are
	// pending keeps its journal in its entry until its first attempt
	// (entry). Set by Open (maxHeldUploads); tests lower it.
	holdMax int
	// targetNames interns the targets of pending uploads (newUpload):
	// a few strings, one per scheme and host the policies name.
	targetNames map[string]string
	// parked are the uploads due while their target was at its
	// PerTarget limit, by target, in order: the next goes when one ends.
	parked map[string][]*entry

	faultMu sync.Mutex
	fault   *StorageFault   // the storage failure in force, nil when storing works
	faulted map[string]bool // recordings that met it (counted once each)
	sched   sched           // when the entries of pending and stuck are due
	wake    chan struct{}

	// legacyJournals: the spool held journal files of an earlier release
	// after Open resumed them (one could not be); without them, Finish
	// looks for none. Set by Open, read-only after it.
	legacyJournals bool

	// test hooks
	crashAfter func(step string) bool
	rename     func(oldpath, newpath string) error
	// pathDirs: storage's directories are always checked component by
	// component (lstat each), never opened with openat2 (dirfd_linux.go).
	pathDirs bool
}

// DefaultWorkers is the default number of concurrent uploads. Each
// waits for the catalog to record its outcome (committed with the others
// of the moment), so the rate grows with them: with 16, a 200 calls/s
// soak uploaded 250 of its 400 recordings a second and the backlog grew.
const DefaultWorkers = 64

// maxHeldUploads bounds the pending uploads that keep their recording's
// metadata in memory until their first attempt: 256 of a few KB each. A
// store that keeps up has fewer pending (those in flight and about to
// be), and reads nothing from the catalog to upload; a backlog beyond it
// costs a catalog read per attempt instead of its metadata in memory.
const maxHeldUploads = 256

// DefaultMaxUploadAge is how long a failing upload is retried by default.
const DefaultMaxUploadAge = 24 * time.Hour

const (
	dirJournal    = "journal"
	dirPending    = "pending"
	dirDead       = "dead"
	dirQuarantine = "quarantine"
)

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidName reports whether s may be used as one path component: a
// recording id, a call id, an account or an extension. It allows letters,
// digits, '.', '_' and '-', starts with a letter or digit, is at most 128
// bytes long and contains no "..".
func ValidName(s string) bool {
	return validName.MatchString(s) && !strings.Contains(s, "..")
}

// Open opens the store, creating Storage and Spool (mode 0700) when
// missing. It resumes every journal left by a crash and loads the pending
// uploads; a journal or pending entry that cannot be read is moved to
// <Spool>/quarantine with a log line, and Open goes on. The sidecars an
// earlier process owed when it stopped (killed after a recording's commit
// and before its sidecar was written, or skipped by a full lane) are
// written by the sidecar lane before the ones queued after Open.
func Open(cfg Config) (*Store, error) {
	if cfg.Storage == "" || cfg.Spool == "" {
		return nil, fmt.Errorf("store: Storage and Spool are required: %w", ErrInvalid)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Backoff.Min <= 0 {
		cfg.Backoff.Min = time.Second
	}
	if cfg.Backoff.Max <= 0 {
		cfg.Backoff.Max = 5 * time.Minute
	}
	if cfg.Backoff.Max < cfg.Backoff.Min {
		cfg.Backoff.Max = cfg.Backoff.Min
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.PerTarget <= 0 {
		cfg.PerTarget = max(1, cfg.Workers/4)
	}
	if cfg.MaxUploadAge <= 0 {
		cfg.MaxUploadAge = DefaultMaxUploadAge
	}
	for _, u := range cfg.Uploads {
		if _, err := parseTarget(u.Prefix); err != nil {
			return nil, fmt.Errorf("store: upload prefix: %w", err)
		}
	}
	s := &Store{
		cfg:         cfg,
		log:         cfg.Logger,
		client:      cfg.Client,
		pending:     map[string]*entry{},
		stuck:       map[string]*entry{},
		targets:     map[string]int{},
		targetNames: map[string]string{},
		holdMax:     maxHeldUploads,
		parked:      map[string][]*entry{},
		faulted:     map[string]bool{},
		locks:       map[string]*idLock{},
		wake:        make(chan struct{}, 1),
		rename:      renameFile,
		dirs:        newDirSyncer(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.client == nil {
		s.client = defaultClient(cfg.Workers)
	}
	for _, d := range []string{cfg.Storage, cfg.Spool} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	var err error
	if s.storage, err = filepath.EvalSymlinks(cfg.Storage); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if s.storage, err = filepath.Abs(s.storage); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if s.spool, err = filepath.Abs(cfg.Spool); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	for _, d := range []string{dirJournal, dirPending, dirDead, dirQuarantine} {
		if err := os.MkdirAll(filepath.Join(s.spool, d), 0o700); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	if err := s.openCatalog(); err != nil {
		return nil, err
	}
	s.active, s.activeDone = make(chan activeEntry, activeQueue), make(chan struct{})
	go s.writeActive(s.active, s.activeDone)
	// The sidecars an earlier process owed when it stopped (a crash, a
	// full lane) are listed before anything can owe new ones, and written
	// first by the lane.
	due := s.openOwed()
	s.sidecars, s.sidecarsDone = make(chan sidecarJob, sidecarQueue), make(chan struct{})
	go s.writeSidecars(s.sidecars, s.sidecarsDone, due)
	if err := s.loadPending(); err != nil {
		s.Close()
		return nil, err
	}
	s.legacyJournals = true
	s.replayJournals()
	des, err := os.ReadDir(filepath.Join(s.spool, dirJournal))
	s.legacyJournals = err != nil || len(des) > 0
	return s, nil
}

// openCatalog opens the configured catalog, or the Store's own SQLite
// catalog in the spool; a catalog that is new while storage holds
// recordings (a store of an earlier release) is filled from the sidecars
// once.
func (s *Store) openCatalog() error {
	s.cat = s.cfg.Catalog
	fresh := false
	if s.cat == nil {
		path := filepath.Join(s.spool, "catalog.db")
		_, err := os.Stat(path)
		fresh = errors.Is(err, os.ErrNotExist)
		if s.cat, err = catalog.Open(context.Background(), catalog.Config{Driver: catalog.DriverSQLite, DSN: path}); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		s.ownCat = true
	}
	if !fresh {
		return nil
	}
	if des, err := os.ReadDir(s.storage); err != nil || len(des) == 0 {
		return nil
	}
	read, entered, err := s.Rebuild(context.Background())
	if err != nil {
		s.Close()
		return err
	}
	s.log.Info("catalog created from the sidecars in storage", "sidecars", read, "recordings", entered)
	return nil
}

// Close writes the entries of Started and the sidecars still queued,
// stops the lanes that write them and closes the catalog the Store opened
// itself. Run must have returned.
func (s *Store) Close() error {
	s.activeMu.Lock()
	q := s.active
	s.active = nil
	s.activeMu.Unlock()
	if q != nil {
		close(q)
		<-s.activeDone
	}
	s.closeSidecars()
	s.closeOwed()
	if s.ownCat {
		return s.cat.Close()
	}
	return nil
}

// lock locks the recording id and returns its unlock. Each id has a lock
// of its own while it is held or awaited: a Finish that waits on the disk
// holds up nothing but its own recording.
func (s *Store) lock(id string) func() {
	s.lockMu.Lock()
	l := s.locks[id]
	if l == nil {
		l = &idLock{}
		s.locks[id] = l
	}
	l.refs++
	s.lockMu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		s.lockMu.Lock()
		if l.refs--; l.refs == 0 {
			delete(s.locks, id)
		}
		s.lockMu.Unlock()
	}
}

// idLock is the lock of one recording id, with the count of its holders
// and waiters.
type idLock struct {
	sync.Mutex
	refs int // guarded by Store.lockMu
}

// Pending returns the number of uploads waiting for a 2xx.
func (s *Store) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

func (s *Store) emit(e Event) {
	if s.cfg.Events == nil {
		return
	}
	e.Pending = s.Pending()
	s.cfg.Events(e)
}

func (s *Store) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// hook reports whether a test asked Finish to stop, as if the process had
// died, right after step.
func (s *Store) hook(step string) bool {
	return s.crashAfter != nil && s.crashAfter(step)
}

// errCrash is returned when a test hook simulates a crash.
var errCrash = errors.New("simulated crash")
