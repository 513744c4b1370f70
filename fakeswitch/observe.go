package fakeswitch

import (
	"fmt"
	"time"

	"github.com/recpol/recpol/runtime/eslwire"
)

// Version is the FreeSWITCH-Version the fake switch reports; the suffix
// says it is the stand-in.
const Version = "1.10.12-release+fakeswitch~64bit"

// CommandRecord is one command a client sent and what the server did.
type CommandRecord struct {
	Client    int           // connection number, from 1
	At        time.Duration // virtual time the command was applied
	Line      string        // the command line (auth password masked)
	Reply     string        // Reply-Text, or the api/response body
	Job       string        // bgapi: the Job-UUID
	JobResult string        // bgapi: the BACKGROUND_JOB body
	Note      string        // why a command failed, when the reply does not say (a refused recording path)
	Error     string        // a read error that ended the connection
}

// SentEvent is one event written to one client.
type SentEvent struct {
	Client int
	At     time.Duration
	Event  *eslwire.Event
}

// Span is a range of a recording, in milliseconds from its start.
type Span struct {
	FromMS, ToMS int64
}

// FileRecord is one recording, once stopped.
type FileRecord struct {
	Path       string           // the path the client asked for
	UUID       string           // the recorded leg
	CallID     string           // the scenario call id
	Cause      string           // Record-Completion-Cause
	SampleRate int              // Hz
	Samples    int              // samples written
	DurationMS int64            // Samples in milliseconds
	Masked     []Span           // masked spans, in file time
	Vars       []eslwire.Header // recording variables ({k=v})
	StartedAt  time.Duration    // virtual time of RECORD_START
	StoppedAt  time.Duration    // virtual time of RECORD_STOP
	AnsweredAt time.Duration    // virtual time the recorded leg answered; 0 if it had not when the recording started
	Deleted    bool             // too short or empty: removed before RECORD_STOP
	ToneHz     float64          // the recorded leg's voice (its party's tone); the read side
	OtherHz    []float64        // the other voices the file carries (the write side: the bridged parties), sorted
	Channels   int              // 1, or 2 with RECORD_STEREO (left read, right write)
	Announced  []Span           // where an announcement (uuid_broadcast) plays, in file time
	Size       int64            // file size in bytes (0 when deleted)
	Error      string           // why the file could not be written, if it could not
}

// Commands returns every command received so far, in order.
func (s *Server) Commands() []CommandRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]CommandRecord(nil), s.commands...)
}

// Events returns every event sent so far, per client, in order. The events
// are shared: do not modify them.
func (s *Server) Events() []SentEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SentEvent(nil), s.sent...)
}

// Files returns every recording stopped so far, in the order they stopped.
func (s *Server) Files() []FileRecord {
	s.waitFileJobs()
	s.filesMu.Lock()
	defer s.filesMu.Unlock()
	return append([]FileRecord(nil), s.files...)
}

// Channels returns the uuids of the legs that are up.
func (s *Server) Channels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.channels))
	for u := range s.channels {
		out = append(out, u)
	}
	sortStrings(out)
	return out
}

func uptime(d time.Duration) string {
	ms := d.Milliseconds()
	return fmt.Sprintf("0 years, 0 days, %d hours, %d minutes, %d seconds, %d milliseconds, 0 microseconds",
		ms/3600000, ms/60000%60, ms/1000%60, ms%1000)
}

// Clients returns how many clients are connected and authenticated.
func (s *Server) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.clients {
		if c.authed {
			n++
		}
	}
	return n
}
