package esl

import (
	"strings"
	"time"

	"github.com/recpol/recpol/runtime/eslwire"
)

// Event is one FreeSWITCH event as the switch sent it.
//
// Header names are FreeSWITCH's own spelling ("Unique-ID",
// "Channel-Call-UUID", "Other-Leg-Unique-ID", "DTMF-Digit", "Job-UUID",
// "variable_<name>" with the variable's original case): the client takes
// every event from its own strict reader of the wire, so nothing of
// go-eventsocket's rewriting (Title-Case names, lower-cased variable
// names, url.QueryUnescape turning '+' into ' ') reaches an Event. Values
// are decoded as FreeSWITCH encodes them (%XX only; "_undef_" becomes "").
// When a header appears twice in one event the first value is kept.
//
// An Event the client read carries its headers in List only: a map of
// its hundred-odd headers, built for every event, cost more than the few
// lookups a Handler makes (Get walks List). An Event built by hand may
// carry a Headers map instead.
type Event struct {
	// Name is the Event-Name header (for example CHANNEL_ANSWER).
	Name string
	// Headers maps each header name, as FreeSWITCH spells it, to its
	// decoded value, for an Event built from a map; nil for an Event the
	// client read (List holds its headers).
	Headers map[string]string
	// Body is the event's body, if any (BACKGROUND_JOB carries the
	// command's output there).
	Body string
	// List holds the headers in the order the switch sent them
	// (duplicates included: the first counts). Nil for an Event built
	// from a map.
	List []eslwire.Header
	// Received is when the client took the event off the connection
	// (zero for an Event built by hand): a Handler tells from it how far
	// behind the switch it reads.
	Received time.Time
}

// Get returns the value of header name, or "". The exact spelling is
// tried first, then a case-insensitive match, so "Unique-Id" finds
// "Unique-ID".
func (e *Event) Get(name string) string {
	if e == nil {
		return ""
	}
	if e.List != nil {
		for _, h := range e.List {
			if h.Name == name {
				return h.Value
			}
		}
		for _, h := range e.List {
			if len(h.Name) == len(name) && strings.EqualFold(h.Name, name) {
				return h.Value
			}
		}
		return ""
	}
	if v, ok := e.Headers[name]; ok {
		return v
	}
	for k, v := range e.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// Var returns the value of the channel variable name (header
// "variable_<name>"), or "". The name is matched exactly first, then
// case-insensitively.
func (e *Event) Var(name string) string {
	return e.Get("variable_" + name)
}

// fromWire converts an event parsed by the strict reader.
func fromWire(w *eslwire.Event) *Event {
	return &Event{Name: w.Get("Event-Name"), Body: w.Body, List: w.Headers, Received: time.Now()}
}
