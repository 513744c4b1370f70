// Package store is the runtime's durable recording store. When FreeSWITCH
// reports RECORD_STOP, the engine hands the finished file to
// (*Store).Finish, which checks it, moves it into
// <Storage>/<account>/<yyyy>/<mm>/<dd>/<recording id>.<ext> (or
// <media_name>_<recording id>.<ext> when the policy's action names the
// media) with a JSON metadata sidecar <recording id>.json beside it, enters
// it in the catalog (runtime/catalog: every recording's metadata and state,
// the upload queue, the audit trail) and queues its upload there when the
// policy names a URL. (*Store).Run uploads queued recordings with capped,
// jittered backoff, and dead-letters the ones that cannot succeed.
//
// # Durability
//
// Every step is recorded in the catalog (a transaction, group-committed
// with the other finishes of the moment) or in the file system (a file
// moved, directories fsynced) before the next is taken. The spool holds:
//
//	<Spool>/quarantine/          corrupt journals and recordings that failed their checks
//	<Spool>/catalog.db           the catalog, unless the caller gives one (Config.Catalog)
//	<Spool>/journal/<id>.json    journals of an earlier release, resumed at Open
//	<Spool>/sidecars-owed        ids of the recordings whose metadata sidecars may not be written yet
//
// Finish checks and hashes the file first, which only reads it; then the
// file is moved to its destination, which its metadata decides, and one
// catalog transaction enters the stored recording and, with a URL, its
// upload. The move is atomic: a rename, or across filesystems a copy
// through a temporary file, fsynced, before the source is removed. So a
// crash at any moment (kill -9 included) leaves the file in the spool, at
// its destination (or both, with the same bytes, after a copy), or a
// stored recording, never a recording that is nowhere; and the caller's
// next Finish, which the caller owes until Finish returns (the runtime's
// intent log), takes it from wherever it is: from the spool it starts
// over, from its destination it checks and hashes the file there and
// enters it, and a recording already entered is reported as a duplicate.
// A file leaves the spool only once it is in storage; an upload leaves the
// queue only after a 2xx (UploadDone and the state uploaded are one
// commit).
//
// A stored recording costs one share of a catalog commit when it ends
// (and one when its upload's outcome is recorded) and the fsyncs of both
// directories of the move. The fsyncs of directories are shared between
// recordings finished at the same time: a caller waits for the next fsync
// of the directory to begin and end, and every caller that arrived
// meanwhile is served by it.
//
// FinishAll finishes a batch (the runtime's finish lane hands over
// everything queued): one goroutine checks, hashes and moves each file,
// fsyncs each directory of the moves once, and commits the batch's
// catalog entries with one ApplyEach (one transaction, each recording's
// entry failing alone, one wait), so that a burst wakes one goroutine
// per commit, not one per recording. Every guarantee above holds per
// recording.
//
// The metadata sidecar is a readable copy of the catalog's row, written
// after the commit by the Store's sidecar lane, off the finish path: one
// goroutine, a bounded queue (a sidecar that does not fit is skipped and
// logged, never waited for), through a temporary file and a rename but
// without fsync; Close writes the ones still queued. Before its commit,
// Finish marks the recording's sidecar as owed: its id is appended, as
// one line and without fsync, to <Spool>/sidecars-owed (one write of a
// few bytes; no catalog commit and no fsync is added to a finish). The
// lane forgets the id once the sidecar is written, or once the recording
// is gone from storage, and replaces the log by one holding only the ids
// still owed when it has grown well past them; Close removes it when
// nothing is owed. The next Open reads the log (nothing else: after a
// clean Close there is none) and the lane, before the sidecars queued
// after Open, checks each id with one catalog read and one stat, writes
// from the catalog the sidecars of stored recordings that are missing (a
// sidecar already there is not written again) and says how many in one
// log line (EventSidecarRepaired for each). So a sidecar that the process
// dying (kill -9 included) after the recording's commit kept from being
// written, that a full lane skipped, or whose writing failed is written
// by the next Open. Not covered: a crash of the machine (a power failure
// may lose the log's last lines as it may lose the sidecars, neither
// being fsynced), a log that cannot be written (logged), and the
// sidecars owed by a release without the log. The catalog is the record:
// `recpol catalog sidecars` (WriteSidecars) writes every sidecar again,
// and the caller's next Finish of a stored recording whose sidecar is
// missing queues it.
//
// The one window that cannot be closed without the server's help is a crash
// after the server answered 2xx and before the catalog recorded it: the
// upload is then sent again after the restart, to the same name, which a
// PUT target overwrites with identical bytes.
//
// A recording whose finish failed (storage full, a symbolic link in the
// way, the catalog unreachable) stays where it is (in the spool, or in
// storage when only its commit failed) and is entered in the catalog with
// state finishing and its journal (where the file comes from and goes to,
// the sha256, the metadata): the one extra commit of a failure. Calling
// Finish again resumes it, and so do Run, with the same backoff as
// uploads, and the next Open. Pending and dead-lettered entries of an
// earlier release's spool (pending/, dead/) are moved into the catalog by
// Open; a new catalog beside a storage that holds recordings is filled
// from their sidecars once (Rebuild). Nothing else walks storage.
//
// # Checks and outcomes
//
// A missing or empty file, a WAV without samples, or a recording shorter
// than RecordMinSec is discarded: the file is removed, as FreeSWITCH itself
// does. A file that is not a readable PCM WAV or not a regular file is
// evidence of a fault, not of a short call: it is quarantined (moved to
// <Spool>/quarantine/ with the journal beside it, reason included), never
// deleted. A readable file that differs from what was asked for (another
// sample rate, a duration far from the one its events gave) is stored,
// listed and uploaded like any other, with Metadata.Flags saying what
// differs: a recording that exists is never withheld.
//
// # Upload names
//
// A recording is uploaded as call_recording_<call_id>.<ext>; when the caller
// sets Metadata.SameLegRecordings (the recorded leg carries several
// recordings of the call) it becomes call_recording_<call_id>_<recording
// id>.<ext>. The caller decides because only the engine knows, at the time
// of the first upload, that a second recording of the same leg will follow.
// A media_name (Metadata.MediaName) replaces the "call_recording" prefix.
//
// # Memory
//
// A pending upload costs the store under two hundred bytes of memory
// (TestPendingUploadHeap), whatever its recording's metadata holds: its
// id, its target, its attempts and times. The metadata and the path are
// read from the catalog when an attempt starts. Only the uploads of
// recordings finished while fewer than 256 were pending keep their
// metadata until their first attempt, so that a store keeping up reads
// nothing to upload. A backlog of 200,000 uploads costs about 35 MB.
//
// # Uploads that fail
//
// A 4xx other than 408 and 429, an unusable URL or a stored file that is
// gone can never succeed: the upload is dead-lettered at once. A 5xx, a
// timeout or a network error is retried until Config.MaxUploadAge has
// passed since the recording was checked (on the runtime's clock), then
// dead-lettered. A dead letter stays in the catalog until Retry.
//
// # Safety
//
// Recording ids, call ids, accounts and extensions that reach a path are
// checked against [ValidName]; directories are created one component at a
// time with mode 0700 and a symbolic link anywhere below Storage is refused.
// Where the kernel has openat2, a recording's directory that exists is
// opened in one call that refuses a link anywhere on its path
// (RESOLVE_NO_SYMLINKS), and the recording is looked at and its sidecar
// written relative to it; else, and whenever that open fails, each
// component is checked with an lstat. Files are 0600. Credentials are matched to an upload URL by scheme, host
// and longest path prefix; headers, passwords and URLs with user
// information are never logged, and a policy URL carrying user information
// is refused.
package store
