package runtime

import (
	"strings"
	"time"

	"github.com/recpol/recpol/runtime/eslwire"
)

// Event is one event-socket event as the engine sees it: its name and
// headers, channel variables as "variable_<name>" headers. Lookups are
// case-insensitive, because clients rewrite header names.
type Event struct {
	Name    string
	Headers map[string]string
	Body    string
	// List is the headers in the switch's order (esl.Event.List); nil
	// for an event built from a map.
	List []eslwire.Header
	// Received is when the connection delivered it (esl.Event.Received).
	Received time.Time
}

// Get returns a header, case-insensitively.
func (e *Event) Get(name string) string {
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

// Var returns the channel variable name, case-insensitively.
func (e *Event) Var(name string) string { return e.Get("variable_" + name) }

// CopyVars copies the event's channel variables named in want into dst,
// keyed by lower-case name, and reports whether any changed
// (callstate.Vars).
func (ev *Event) CopyVars(dst map[string]string, want map[string]bool) bool {
	changed := false
	copyVar := func(k, v string, fromList bool) {
		if len(k) <= 9 || !strings.EqualFold(k[:9], "variable_") {
			return
		}
		name := k[9:]
		if !want[name] {
			// FreeSWITCH's variable names are case-insensitive.
			name = strings.ToLower(name)
			if !want[name] {
				return
			}
		}
		if fromList && ev.Headers[k] != v {
			return // a duplicate header: the first one counts, as in Headers
		}
		if old, ok := dst[name]; !ok || old != v {
			// A copy: the value is a slice of the event's frame, which
			// the leg would otherwise keep whole (3 KB an event).
			dst[strings.Clone(name)] = strings.Clone(v)
			changed = true
		}
	}
	if ev.List != nil {
		for _, h := range ev.List {
			copyVar(h.Name, h.Value, true)
		}
		return changed
	}
	for k, v := range ev.Headers {
		copyVar(k, v, false)
	}
	return changed
}
