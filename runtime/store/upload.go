package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/recpol/recpol/runtime/catalog"
)

// defaultClient is the upload client used when Config.Client is nil; it
// keeps a connection per worker open to each host.
func defaultClient(workers int) *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   workers,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   15 * time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// parseTarget parses an upload URL or prefix: http or https, a host, no
// user information, no query or fragment. Its errors never repeat the URL,
// which might hold a secret.
func parseTarget(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("upload URL does not parse: %w", ErrInvalid)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("upload URL scheme %q is not http or https: %w", u.Scheme, ErrInvalid)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("upload URL has no host: %w", ErrInvalid)
	}
	if u.User != nil {
		return nil, fmt.Errorf("upload URL carries user information; credentials belong in the uploads config: %w", ErrInvalid)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("upload URL has a query or fragment: %w", ErrInvalid)
	}
	return u, nil
}

// uploadName is the object name of a recording at its upload URL.
func uploadName(m Metadata) string {
	name := "call_recording_" + m.CallID
	if m.MediaName != "" {
		name = m.MediaName + "_" + m.CallID
	}
	if m.SameLegRecordings {
		name += "_" + m.RecordingID
	}
	return name + "." + m.Format
}

// uploadURL builds <url>/<name>?from=..&to=..&call_id=..&interaction_id=..&account_id=..
func uploadURL(m Metadata) (*url.URL, error) {
	base, err := parseTarget(m.URL)
	if err != nil {
		return nil, err
	}
	u := *base
	u.Path = strings.TrimSuffix(base.Path, "/") + "/" + uploadName(m)
	u.RawPath = ""
	u.RawQuery = "from=" + url.QueryEscape(m.From) +
		"&to=" + url.QueryEscape(m.To) +
		"&call_id=" + url.QueryEscape(m.CallID) +
		"&interaction_id=" + url.QueryEscape(m.InteractionID) +
		"&account_id=" + url.QueryEscape(m.Account)
	return &u, nil
}

// redact is a URL fit for logs: scheme, host and path only.
func redact(u *url.URL) string {
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

// credentials returns the Upload whose prefix has the target's scheme and
// host and the longest path that prefixes the target's path.
func (s *Store) credentials(target *url.URL) *Upload {
	var best *Upload
	bestLen := -1
	for i := range s.cfg.Uploads {
		u := &s.cfg.Uploads[i]
		p, err := parseTarget(u.Prefix)
		if err != nil {
			continue
		}
		if !strings.EqualFold(p.Scheme, target.Scheme) || !strings.EqualFold(p.Host, target.Host) {
			continue
		}
		if !strings.HasPrefix(target.Path, p.Path) || len(p.Path) <= bestLen {
			continue
		}
		best, bestLen = u, len(p.Path)
	}
	return best
}

// errGone marks an upload whose stored file has disappeared.
var errGone = errors.New("stored recording is missing")

// statusError is a non-2xx answer of an upload target.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// permanent reports whether an upload failure can never succeed by
// retrying the same request: a 4xx other than 408 (request timeout) and
// 429 (too many requests), or a URL or request the store refuses. 5xx,
// timeouts and network errors are worth retrying.
func permanent(err error) bool {
	var se *statusError
	if errors.As(err, &se) {
		return se.code >= 400 && se.code < 500 && se.code != http.StatusRequestTimeout && se.code != http.StatusTooManyRequests
	}
	return errors.Is(err, ErrInvalid)
}

// upload sends the recording stored at path to its URL; nil means a 2xx.
func (s *Store) upload(ctx context.Context, m *Metadata, path string) error {
	target, err := uploadURL(*m)
	if err != nil {
		return err
	}
	// Opened without the poller (openFile: no epoll_ctl and fcntls for a
	// regular file); the body is still an *os.File for the transport.
	f, err := openFile(path, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", path, errGone)
	}
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	method := http.MethodPut
	if m.Method == "post" {
		method = http.MethodPost
	}
	ctx, cancel := context.WithTimeout(ctx, attemptDeadline(fi.Size()))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target.String(), f)
	if err != nil {
		f.Close()
		return fmt.Errorf("%s %s: request: %w", method, redact(target), ErrInvalid)
	}
	req.ContentLength = fi.Size()
	req.GetBody = func() (io.ReadCloser, error) { return openFile(path, os.O_RDONLY, 0) }
	req.Header.Set("Content-Type", m.ContentType())
	if c := s.credentials(target); c != nil {
		for k, v := range c.Headers {
			req.Header.Set(k, v)
		}
		if c.Username != "" {
			req.SetBasicAuth(c.Username, c.Password)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// url.Error repeats the whole URL; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s %s: %w", method, redact(target), err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &statusError{code: resp.StatusCode, msg: fmt.Sprintf("%s %s: %s", method, redact(target), resp.Status)}
	}
	return nil
}

// unpark frees the worker an upload to target t held and queues the
// next upload parked for t, if any. s.mu is held.
func (s *Store) unpark(t string) {
	if s.targets[t] <= 1 {
		delete(s.targets, t)
	} else {
		s.targets[t]--
	}
	q := s.parked[t]
	if len(q) == 0 {
		return
	}
	e := q[0]
	q[0] = nil
	if q = q[1:]; len(q) == 0 {
		delete(s.parked, t)
	} else {
		s.parked[t] = q
	}
	e.queued = false
	s.schedule(e, s.cfg.Now())
}

// newUpload is the entry of recording id's pending upload to rawURL, its
// retries counted from since, due at once. Its target is interned: the
// entries of one target share one string. s.mu is held.
func (s *Store) newUpload(id, rawURL string, since time.Time) *entry {
	t := targetOf(rawURL)
	if it, ok := s.targetNames[t]; ok {
		t = it
	} else {
		s.targetNames[t] = t
	}
	return &entry{id: id, upload: true, target: t, since: since}
}

// targetOf is an upload's target for the PerTarget limit: its scheme and
// host ("" for a URL that does not parse: the attempt fails on its own).
func targetOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// uploadOf reads what an upload attempt needs from the catalog: the
// recording's metadata and the path of its file. A document that does
// not decode can never be uploaded: its error wraps ErrInvalid (a
// permanent failure); any other failure to read it is transient.
func (s *Store) uploadOf(ctx context.Context, id string) (Recording, error) {
	cr, err := s.cat.Get(ctx, id)
	if err != nil {
		return Recording{}, fmt.Errorf("recording %s: reading its upload from the catalog: %w", id, err)
	}
	r, err := fromRow(cr)
	if err != nil {
		return Recording{}, fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	return r, nil
}

// attemptDeadline bounds one upload attempt, request and response
// included: a minute, plus the file's time at 64 KB/s, at most the
// client's own timeout. A target that accepts the bytes slowly or
// trickles its answer loses the worker at that deadline, not at 15
// minutes.
func attemptDeadline(size int64) time.Duration {
	return min(time.Minute+time.Duration(size/(64<<10))*time.Second, 15*time.Minute)
}

// backoff is the jittered delay before attempt n+1 after n failures:
// Min doubled n-1 times, capped at Max, then between half and all of it.
func (s *Store) backoff(n int) time.Duration {
	d := s.cfg.Backoff.Min
	for i := 1; i < n && d < s.cfg.Backoff.Max; i++ {
		d *= 2
	}
	d = min(d, s.cfg.Backoff.Max)
	half := d / 2
	return half + rand.N(d-half+1)
}

// Run uploads pending recordings, Config.Workers at a time, and retries
// failed uploads and unfinished journals with capped, jittered backoff,
// until ctx is done. It starts with the work a previous process left.
// It returns nil once ctx is done and the uploads in flight have stopped.
func (s *Store) Run(ctx context.Context) error {
	done := make(chan struct{}, s.cfg.Workers)
	running := 0
	defer func() {
		for ; running > 0; running-- {
			<-done
		}
	}()
	for {
		s.mu.Lock()
		now := s.cfg.Now()
		jobs, wait := s.due(now, s.cfg.Workers-running)
		// One target gets at most PerTarget workers: an upload whose
		// target is at its limit is parked, without a worker, until an
		// upload to that target ends (unpark). It is not put back in the
		// schedule: cycling a backlog of one target through it on every
		// turn of this loop cost a third of the runtime's CPU at 400
		// recordings a second.
		jobs = slices.DeleteFunc(jobs, func(e *entry) bool {
			if !e.upload {
				return false
			}
			t := e.target
			if s.targets[t] < s.cfg.PerTarget {
				s.targets[t]++
				return false
			}
			e.busy, e.queued = false, true
			s.parked[t] = append(s.parked[t], e)
			return true
		})
		s.mu.Unlock()
		for _, e := range jobs {
			running++
			go func() {
				if e.upload {
					s.attemptUpload(ctx, e)
					s.mu.Lock()
					s.unpark(e.target)
					s.mu.Unlock()
				} else {
					s.retryJournal(e)
				}
				done <- struct{}{}
			}()
		}
		if wait == 0 && running >= s.cfg.Workers {
			wait = -1 // due work waits for a worker: done wakes the loop
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if wait >= 0 {
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case <-s.wake:
		case <-done:
			running--
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// attemptUpload makes one attempt and records its outcome. The
// recording's metadata and path are read from the catalog for the
// attempt and let go after it.
func (s *Store) attemptUpload(ctx context.Context, e *entry) {
	id := e.id
	s.mu.Lock()
	j := e.j // held by a fresh upload (entry), given up now
	e.j = nil
	s.mu.Unlock()
	var r Recording
	var err error
	if j != nil {
		r = Recording{Metadata: j.Meta, Path: j.Dst}
	} else {
		r, err = s.uploadOf(ctx, id)
	}
	if err == nil {
		err = s.upload(ctx, &r.Metadata, r.Path)
	}
	account := r.Account // "" when the catalog could not be read
	if err == nil {
		if s.hook("uploaded") {
			return // as if the process died before removing the entry
		}
		// A crash before this commit sends the upload again after the
		// restart, to the same name.
		if cerr := s.cat.Apply(context.Background(), catalog.UploadDone(id), catalog.SetState(id, catalog.StateUploaded)); cerr != nil {
			s.log.Error("upload done but the catalog could not record it; it will be sent again", "recording_id", id, "error", cerr.Error())
			s.mu.Lock()
			e.busy = false
			e.next = s.cfg.Now().Add(s.backoff(e.attempts + 1))
			s.schedule(e, s.cfg.Now())
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
		s.log.Info("recording uploaded", "recording_id", id, "account", account, "attempts", e.attempts+1)
		s.emit(Event{Kind: EventUploadOK, RecordingID: id, Account: account})
		return
	}
	if ctx.Err() != nil {
		s.mu.Lock()
		e.busy = false
		s.mu.Unlock()
		return
	}
	if errors.Is(err, errGone) {
		// Nothing can ever succeed: the catalog keeps the row, dead,
		// with the reason.
		s.mu.Lock()
		e.attempts++
		s.mu.Unlock()
		s.deadLetter(e, account, err, true)
		return
	}
	now := s.cfg.Now()
	s.mu.Lock()
	e.attempts++
	if permanent(err) || now.Sub(e.since) >= s.cfg.MaxUploadAge {
		s.mu.Unlock()
		s.deadLetter(e, account, err, permanent(err))
		return
	}
	attempts := e.attempts
	delay := s.backoff(attempts)
	next := now.Add(delay)
	s.mu.Unlock()
	// Recorded before the entry is due again (it stays busy meanwhile),
	// so that a later attempt's outcome is never overwritten by this one.
	if cerr := s.cat.Apply(context.Background(), catalog.UploadFailed(id, err.Error(), next, false)); cerr != nil {
		s.log.Error("the catalog could not record a failed upload", "recording_id", id, "error", cerr.Error())
	}
	s.mu.Lock()
	e.next = next
	e.busy = false
	s.schedule(e, s.cfg.Now())
	s.mu.Unlock()
	s.log.Warn("upload failed; will retry", "recording_id", id, "account", account,
		"attempt", attempts, "retry_in", delay.String(), "error", err.Error())
	s.emit(Event{Kind: EventUploadFailed, RecordingID: id, Account: account, Reason: err.Error()})
}

// deadLetter takes a failing upload out of the queue: the catalog marks it
// dead, and it is retried only by Retry. The recording stays stored.
func (s *Store) deadLetter(e *entry, account string, cause error, perm bool) {
	id := e.id
	err := s.cat.Apply(context.Background(), catalog.UploadFailed(id, cause.Error(), time.Time{}, true),
		catalog.SetState(id, catalog.StateDead))
	s.mu.Lock()
	e.busy = false
	if err != nil {
		// Keep retrying rather than lose track of it.
		e.next = s.cfg.Now().Add(s.backoff(e.attempts))
		s.schedule(e, s.cfg.Now())
		s.mu.Unlock()
		s.log.Error("upload failed and could not be dead-lettered; will retry", "recording_id", id, "error", err.Error())
		return
	}
	delete(s.pending, id)
	attempts := e.attempts
	s.mu.Unlock()
	why := "failing for longer than the maximum upload age " + s.cfg.MaxUploadAge.String()
	if perm {
		why = "a permanent failure"
	}
	s.log.Error("upload dead-lettered: it will not be retried until an operator retries it", "recording_id", id,
		"account", account, "attempts", attempts, "why", why, "error", cause.Error())
	s.emit(Event{Kind: EventUploadDead, RecordingID: id, Account: account, Reason: cause.Error()})
}

// DeadUpload is an upload that will not be retried until Retry.
type DeadUpload struct {
	RecordingID string    `json:"recording_id"`
	Account     string    `json:"account"`
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"last_error"`
	Since       time.Time `json:"since"` // when it was (last) enqueued
}

// DeadUploads returns a page of the dead-lettered uploads, in the order
// they were enqueued, and the cursor of the next page ("" on the last).
func (s *Store) DeadUploads(ctx context.Context, limit int, cursor string) ([]DeadUpload, string, error) {
	ups, next, err := s.cat.Uploads(ctx, catalog.UploadStateDead, limit, cursor)
	if errors.Is(err, catalog.ErrBadCursor) {
		return nil, "", fmt.Errorf("dead uploads: %v: %w", err, ErrInvalid)
	}
	if err != nil {
		return nil, "", fmt.Errorf("dead uploads: %w", err)
	}
	out := make([]DeadUpload, 0, len(ups))
	for _, u := range ups {
		d := DeadUpload{RecordingID: u.RecordingID, Attempts: u.Attempts, LastError: u.LastError, Since: u.EnqueuedAt}
		if r, err := s.cat.Get(ctx, u.RecordingID); err == nil {
			d.Account = r.Account
		}
		out = append(out, d)
	}
	return out, next, nil
}

// UploadHealth is what the upload queue says about the store's health.
type UploadHealth struct {
	Pending, Dead int
	// Oldest is the age of the oldest pending upload (zero: none).
	Oldest time.Duration
}

// Health returns the upload queue's size, dead letters and the age of its
// oldest pending upload.
func (s *Store) Health() UploadHealth {
	now := s.cfg.Now()
	s.mu.Lock()
	h := UploadHealth{Pending: len(s.pending)}
	for _, e := range s.pending {
		if age := now.Sub(e.since); age > h.Oldest {
			h.Oldest = age
		}
	}
	s.mu.Unlock()
	n, err := s.cat.CountDead(context.Background())
	if err != nil {
		s.log.Error("the catalog cannot count dead uploads", "error", err.Error())
		n = -1 // unknown counts as degraded
	}
	h.Dead = n
	return h
}

// Retry puts a dead-lettered upload back in the queue, due now, its age
// counted from now. It returns an error wrapping ErrNotFound when id is
// not dead-lettered.
func (s *Store) Retry(id string) error {
	r, err := s.Lookup(context.Background(), id)
	if err != nil {
		return err
	}
	if catalog.State(r.State) != catalog.StateDead {
		return fmt.Errorf("no dead-lettered upload of recording %s: %w", id, ErrNotFound)
	}
	unlock := s.lock(id)
	defer unlock()
	now := s.cfg.Now()
	if err := s.cat.Apply(context.Background(), catalog.EnqueueUpload(id, r.URL, now), catalog.SetState(id, catalog.StateStored)); err != nil {
		return fmt.Errorf("recording %s: retry: %w", id, err)
	}
	s.mu.Lock()
	e := s.newUpload(id, r.URL, now)
	e.next = now
	s.pending[id] = e
	s.schedule(e, now)
	s.mu.Unlock()
	s.kick()
	s.log.Info("dead-lettered upload retried", "recording_id", id, "account", r.Account)
	return nil
}

// retryJournal resumes a journal whose finish failed earlier: from its
// file (an earlier release's), from the catalog, or from memory when the
// catalog could not list it; one that is gone was finished meanwhile.
func (s *Store) retryJournal(e *entry) {
	id := e.id
	unlock := s.lock(id)
	defer unlock()
	s.mu.Lock()
	cur := s.stuck[id]
	s.mu.Unlock()
	if cur != e {
		return // finished meanwhile, by the caller's Finish
	}
	if !e.j.listed && e.j.State == stChecked {
		s.advance(e.j) // reschedules itself on failure
		return
	}
	jpath := s.journalPath(id)
	j, err := s.readJournal(jpath)
	if errors.Is(err, errCorruptJournal) {
		s.quarantineFile(jpath, err)
	}
	if err != nil {
		var ok bool
		if j, ok = s.journalOf(id); !ok {
			s.mu.Lock()
			delete(s.stuck, id)
			s.mu.Unlock()
			return
		}
	}
	s.advance(j) // reschedules itself on failure
}

// loadPending queues the uploads the catalog holds as pending, and moves
// the pending and dead-lettered entries of an earlier release's spool
// (pending/, dead/) into the catalog.
func (s *Store) loadPending() error {
	ctx := context.Background()
	for _, sub := range []string{dirPending, dirDead} {
		s.eachJournal(sub, "upload entries of an earlier release", func(j *journal) {
			id := j.Meta.RecordingID
			r, err := row(j.Meta, j.Dst, catalog.StateStored)
			if err == nil {
				ops := []catalog.Op{catalog.PutRecording(r), catalog.EnqueueUpload(id, j.Meta.URL, s.cfg.Now())}
				if sub == dirDead {
					ops = append(ops, catalog.UploadFailed(id, "dead-lettered before the catalog", time.Time{}, true),
						catalog.SetState(id, catalog.StateDead))
				}
				err = s.cat.Apply(ctx, ops...)
			}
			if err != nil {
				s.log.Error("an upload entry could not be moved into the catalog; it stays in the spool", "recording_id", id, "error", err.Error())
				return
			}
			os.Remove(filepath.Join(s.spool, sub, id+".json"))
		})
	}
	cursor := ""
	for {
		ups, next, err := s.cat.Uploads(ctx, catalog.UploadStatePending, catalog.MaxLimit, cursor)
		if err != nil {
			return fmt.Errorf("store: pending uploads: %w", err)
		}
		for _, u := range ups {
			r, err := s.Lookup(ctx, u.RecordingID)
			if err != nil {
				s.log.Error("a pending upload's recording cannot be read from the catalog", "recording_id", u.RecordingID, "error", err.Error())
				continue
			}
			if !inside(s.storage, r.Path) {
				continue // another runtime's, in a catalog they share: it uploads its own
			}
			// Under s.mu: the sidecar lane, already started, reads
			// Pending when it repairs sidecars (emit).
			s.mu.Lock()
			e := s.newUpload(u.RecordingID, r.URL, u.EnqueuedAt)
			e.attempts, e.next = u.Attempts, u.NextAt
			s.pending[u.RecordingID] = e
			s.schedule(e, s.cfg.Now())
			s.mu.Unlock()
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
}

// replayJournals resumes every recording a previous process left half
// finished: the catalog's finishing rows, and the journal files of an
// earlier release.
func (s *Store) replayJournals() {
	f := catalog.Filter{State: catalog.StateFinishing, Limit: catalog.MaxLimit}
	for {
		p, err := s.cat.Search(context.Background(), f)
		if err != nil {
			s.log.Error("cannot read the recordings left half finished", "error", err.Error())
			break
		}
		for _, cr := range p.Items {
			j, err := s.checkJournal(cr.Doc, cr.ID)
			if err != nil {
				s.log.Error("a recording's journal in the catalog cannot be used; left as it is", "recording_id", cr.ID, "error", err.Error())
				continue
			}
			j.listed = true
			s.log.Info("resuming recording after restart", "recording_id", cr.ID, "state", j.State)
			unlock := s.lock(cr.ID)
			s.advance(j)
			unlock()
		}
		if p.NextCursor == "" {
			break
		}
		f.Cursor = p.NextCursor
	}
	s.eachJournal(dirJournal, "journals", func(j *journal) {
		s.log.Info("resuming recording after restart", "recording_id", j.Meta.RecordingID, "state", j.State)
		unlock := s.lock(j.Meta.RecordingID)
		s.advance(j)
		unlock()
	})
}

// eachJournal calls f for every journal in a spool directory. A temporary
// file is a journal that was never committed (its recording is untouched)
// and is removed; a journal that cannot be read is quarantined.
func (s *Store) eachJournal(sub, what string, f func(*journal)) {
	dir := filepath.Join(s.spool, sub)
	des, err := os.ReadDir(dir)
	if err != nil {
		s.log.Error("cannot read "+what, "dir", dir, "error", err.Error())
		return
	}
	for _, de := range des {
		p := filepath.Join(dir, de.Name())
		if strings.HasSuffix(de.Name(), ".tmp") {
			os.Remove(p)
			continue
		}
		j, err := s.readJournal(p)
		if errors.Is(err, errCorruptJournal) {
			s.quarantineFile(p, err)
			continue
		}
		if err != nil {
			// Transient: left for the next start, never quarantined.
			s.log.Error("reading a journal failed; it is left in place", "journal", p, "error", err.Error())
			continue
		}
		f(j)
	}
}
