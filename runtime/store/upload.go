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
	"sort"
	"strings"
	"time"
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

// upload sends one stored recording to its URL; nil means a 2xx.
func (s *Store) upload(ctx context.Context, j *journal) error {
	target, err := uploadURL(j.Meta)
	if err != nil {
		return err
	}
	f, err := os.Open(j.Dst)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", j.Dst, errGone)
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
	if j.Meta.Method == "post" {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, target.String(), f)
	if err != nil {
		f.Close()
		return fmt.Errorf("%s %s: request: %w", method, redact(target), ErrInvalid)
	}
	req.ContentLength = fi.Size()
	req.GetBody = func() (io.ReadCloser, error) { return os.Open(j.Dst) }
	if j.Meta.Format == "mp3" {
		req.Header.Set("Content-Type", "audio/mpeg")
	} else {
		req.Header.Set("Content-Type", "audio/wav")
	}
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
		jobs, wait := s.due(s.cfg.Now(), s.cfg.Workers-running)
		s.mu.Unlock()
		for _, e := range jobs {
			running++
			go func() {
				if e.upload {
					s.attemptUpload(ctx, e)
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

// attemptUpload makes one attempt and records its outcome.
func (s *Store) attemptUpload(ctx context.Context, e *entry) {
	j := e.j
	id := j.Meta.RecordingID
	err := s.upload(ctx, j)
	if err == nil {
		if s.hook("uploaded") {
			return // as if the process died before removing the entry
		}
		// Not fsynced: a power failure that undoes the removal brings
		// the entry back, and the upload is sent again to the same name,
		// as after a crash between the 2xx and this removal.
		unlock := s.lock(id)
		rerr := os.Remove(s.pendingPath(id))
		if errors.Is(rerr, os.ErrNotExist) {
			rerr = nil
		}
		unlock()
		if rerr != nil {
			s.log.Error("upload done but its pending entry could not be removed", "recording_id", id, "error", rerr.Error())
		}
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
		s.log.Info("recording uploaded", "recording_id", id, "account", j.Meta.Account, "attempts", e.attempts+1)
		s.emit(Event{Kind: EventUploadOK, RecordingID: id, Account: j.Meta.Account})
		return
	}
	if ctx.Err() != nil {
		s.mu.Lock()
		e.busy = false
		s.mu.Unlock()
		return
	}
	if errors.Is(err, errGone) {
		// Nothing can ever succeed; keep the entry as evidence.
		unlock := s.lock(id)
		s.quarantineFile(s.pendingPath(id), err)
		unlock()
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
		return
	}
	now := s.cfg.Now()
	s.mu.Lock()
	e.attempts++
	e.lastErr = err.Error()
	if permanent(err) || now.Sub(e.retriesSince()) >= s.cfg.MaxUploadAge {
		s.mu.Unlock()
		s.deadLetter(e, err, permanent(err))
		return
	}
	delay := s.backoff(e.attempts)
	e.next = now.Add(delay)
	e.busy = false
	s.schedule(e, now)
	s.mu.Unlock()
	s.log.Warn("upload failed; will retry", "recording_id", id, "account", j.Meta.Account,
		"attempt", e.attempts, "retry_in", delay.String(), "error", err.Error())
	s.emit(Event{Kind: EventUploadFailed, RecordingID: id, Account: j.Meta.Account, Reason: err.Error()})
}

// retriesSince is when e's retries began counting towards MaxUploadAge,
// on the runtime's clock (the recording's own times are the switch's).
func (e *entry) retriesSince() time.Time {
	if !e.since.IsZero() {
		return e.since
	}
	return e.j.Checked
}

// deadLetter moves a failing upload out of the queue into the spool's
// dead/ directory: it is retried only by Retry. The recording stays
// stored; the entry keeps everything the upload needs.
func (s *Store) deadLetter(e *entry, cause error, perm bool) {
	j := e.j
	id := j.Meta.RecordingID
	unlock := s.lock(id)
	err := s.rename(s.pendingPath(id), s.deadPath(id))
	if err == nil {
		err = s.dirs.sync(filepath.Join(s.spool, dirDead))
	}
	unlock()
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
	s.dead[id] = e
	attempts := e.attempts // e is Retry's once in dead
	s.mu.Unlock()
	why := "failing for longer than the maximum upload age " + s.cfg.MaxUploadAge.String()
	if perm {
		why = "a permanent failure"
	}
	s.log.Error("upload dead-lettered: it will not be retried until an operator retries it", "recording_id", id,
		"account", j.Meta.Account, "attempts", attempts, "why", why, "error", cause.Error())
	s.emit(Event{Kind: EventUploadDead, RecordingID: id, Account: j.Meta.Account, Reason: cause.Error()})
}

// DeadUpload is an upload that will not be retried until Retry.
type DeadUpload struct {
	RecordingID string `json:"recording_id"`
	Account     string `json:"account"`
	Attempts    int    `json:"attempts"`
	LastError   string `json:"last_error"`
}

// DeadUploads returns the dead-lettered uploads, by recording id.
func (s *Store) DeadUploads() []DeadUpload {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]DeadUpload, 0, len(s.dead))
	for id, e := range s.dead {
		out = append(out, DeadUpload{RecordingID: id, Account: e.j.Meta.Account, Attempts: e.attempts, LastError: e.lastErr})
	}
	sort.Slice(out, func(i, k int) bool { return out[i].RecordingID < out[k].RecordingID })
	return out
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
	defer s.mu.Unlock()
	h := UploadHealth{Pending: len(s.pending), Dead: len(s.dead)}
	for _, e := range s.pending {
		if age := now.Sub(e.retriesSince()); age > h.Oldest {
			h.Oldest = age
		}
	}
	return h
}

// Retry puts a dead-lettered upload back in the queue, due now, its age
// counted from now. It returns ErrNotFound when id is not dead-lettered.
func (s *Store) Retry(id string) error {
	if !ValidName(id) {
		return fmt.Errorf("recording id %q: %w", id, ErrInvalid)
	}
	unlock := s.lock(id)
	defer unlock()
	s.mu.Lock()
	e, ok := s.dead[id]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("no dead-lettered upload of recording %s: %w", id, ErrNotFound)
	}
	if err := s.rename(s.deadPath(id), s.pendingPath(id)); err != nil {
		return fmt.Errorf("recording %s: retry: %w", id, err)
	}
	now := s.cfg.Now()
	s.mu.Lock()
	delete(s.dead, id)
	e.attempts, e.since, e.next = 0, now, now
	s.pending[id] = e
	s.schedule(e, now)
	s.mu.Unlock()
	s.kick()
	s.log.Info("dead-lettered upload retried", "recording_id", id, "account", e.j.Meta.Account)
	return nil
}

// retryJournal resumes a journal whose finish failed earlier.
func (s *Store) retryJournal(e *entry) {
	id := e.j.Meta.RecordingID
	unlock := s.lock(id)
	defer unlock()
	jpath := s.journalPath(id)
	j, err := s.readJournal(jpath)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.quarantineFile(jpath, err)
		}
		s.mu.Lock()
		delete(s.stuck, id)
		s.mu.Unlock()
		return
	}
	s.advance(j) // reschedules itself on failure
}

// loadPending reads the pending uploads a previous process left.
func (s *Store) loadPending() {
	s.eachJournal(dirPending, "pending uploads", func(j *journal) {
		e := &entry{j: j, upload: true}
		if j.Checked.IsZero() {
			e.since = s.cfg.Now() // a journal of an earlier release
		}
		s.pending[j.Meta.RecordingID] = e
		s.schedule(e, s.cfg.Now())
	})
}

// loadDead reads the dead-lettered uploads a previous process left.
func (s *Store) loadDead() {
	s.eachJournal(dirDead, "dead-lettered uploads", func(j *journal) {
		s.dead[j.Meta.RecordingID] = &entry{j: j, upload: true, lastErr: "dead-lettered before the restart"}
	})
}

// replayJournals resumes every recording a previous process left half
// finished.
func (s *Store) replayJournals() {
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
		if err != nil {
			s.quarantineFile(p, err)
			continue
		}
		f(j)
	}
}
