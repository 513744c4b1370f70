// Package store is the runtime's durable recording store. When FreeSWITCH
// reports RECORD_STOP, the engine hands the finished file to
// (*Store).Finish, which checks it, moves it into
// <Storage>/<account>/<yyyy>/<mm>/<dd>/<recording id>.<ext> (or
// <media_name>_<recording id>.<ext> when the policy's action names the
// media) with a JSON metadata sidecar <recording id>.json beside it, and queues an upload when the policy names a
// URL. (*Store).Run uploads queued recordings with capped, jittered backoff.
//
// # Durability
//
// Every step is journaled in the spool before it is taken, and every
// journal write is atomic (temporary file, fsync, rename, fsync of the
// directory). The spool holds:
//
//	<Spool>/journal/<id>.json    a recording being finished, with its state
//	<Spool>/pending/<id>.json    a stored recording waiting for its upload
//	<Spool>/quarantine/          corrupt journals and recordings that failed their checks
//
// Finish checks and hashes the file first, which only reads it; the first
// journal is written in state checked (the sha256 and the destination are
// recorded) before anything is moved. The journal then either disappears
// (stored locally) or is renamed into pending/ as it is (an upload is due).
// That rename is the single atomic step that hands a recording to the
// upload worker, so a crash at any moment (kill -9 included) leaves the
// file untouched for the caller's next Finish (a crash during the checks),
// a journal that Open resumes, or a pending entry that Run resumes, never
// two of them. A file leaves the spool only once it is in storage; a
// pending entry is removed only after a 2xx.
//
// A stored recording costs six fsyncs: the journal and its directory, both
// directories of the move, the sidecar and its directory (and one more to
// remove the journal of a recording without an upload). The four of
// directories are shared between recordings finished at the same time: a
// caller waits for the next fsync of the directory to begin and end, and
// every caller that arrived meanwhile is served by it, so at hundreds of
// recordings a second the journal, recordings and storage directories are
// each fsynced a few dozen times a second, not hundreds. The hand-over to
// pending/ and the removal of a pending entry after its 2xx are not
// fsynced: a power failure that undoes either brings back the journal or
// the pending entry, and resuming it repeats the hand-over or sends the
// upload again to the same name, as after a crash between a 2xx and the
// removal. A crash of the process alone (kill -9) undoes neither.
//
// The one window that cannot be closed without the server's help is a crash
// after the server answered 2xx and before the pending entry was removed:
// the upload is then sent again after the restart, to the same name, which
// a PUT target overwrites with identical bytes.
//
// A journal whose finish failed (storage full, a symbolic link in the way)
// stays in the spool with its recording; calling Finish again resumes it,
// and so does Run, with the same backoff as uploads.
//
// Open indexes storage by walking it once (recording id to sidecar); Get
// and List use that index, which Finish keeps current.
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
//
// # Safety
//
// Recording ids, call ids, accounts and extensions that reach a path are
// checked against [ValidName]; directories are created one component at a
// time with mode 0700 and a symbolic link anywhere below Storage is refused.
// Files are 0600. Credentials are matched to an upload URL by scheme, host
// and longest path prefix; headers, passwords and URLs with user
// information are never logged, and a policy URL carrying user information
// is refused.
package store
