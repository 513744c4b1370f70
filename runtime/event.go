package runtime

import (
	"slices"
	"strings"
	"time"
	"unique"

	"github.com/recpol/recpol/runtime/esl"
	"github.com/recpol/recpol/runtime/eslwire"
)

// Event is one event-socket event as the engine sees it: its name and
// headers, channel variables as "variable_<name>" headers. Lookups are
// case-insensitive, because clients rewrite header names. It is an
// esl.Event (the two convert): the headers are in List for an event read
// from the switch, in Headers for one built from a map.
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

// Get returns a header: its exact name first, then case-insensitively
// (esl.Event.Get).
func (e *Event) Get(name string) string { return (*esl.Event)(e).Get(name) }

// Var returns the channel variable name, case-insensitively.
func (e *Event) Var(name string) string { return e.Get("variable_" + name) }

// CopyVars copies the event's channel variables named in want into dst,
// keyed by lower-case name, and reports whether any changed
// (callstate.Vars). A variable whose name has a length no wanted name has
// is passed over without a map lookup: an event carries a hundred
// variables and the machine wants a handful.
func (ev *Event) CopyVars(dst map[string]string, want map[string]bool) bool {
	var lengths uint64 // bit n: a wanted name is n bytes long (n < 64)
	long := false      // a wanted name is longer
	for n := range want {
		if len(n) < 64 {
			lengths |= 1 << len(n)
		} else {
			long = true
		}
	}
	changed := false
	var seenBuf [16]string
	seen := seenBuf[:0] // the list's variables copied so far, by header name
	copyVar := func(k, v string, fromList bool) {
		if len(k) <= 9 || k[8] != '_' || !strings.EqualFold(k[:8], "variable") {
			return
		}
		name := k[9:]
		if (len(name) < 64 && lengths&(1<<len(name)) == 0 || len(name) >= 64 && !long) && ascii(name) {
			return // lower-casing an ASCII name keeps its length
		}
		if !want[name] {
			// FreeSWITCH's variable names are case-insensitive.
			lower := strings.ToLower(name)
			if lower == name || !want[lower] {
				return
			}
			name = lower
		}
		if fromList {
			if slices.Contains(seen, k) {
				return // a duplicate header: the first one counts
			}
			seen = append(seen, k)
		}
		if old, ok := dst[name]; !ok || old != v {
			// Copies: name and value are slices of the event's frame,
			// which the leg would otherwise keep whole (3 KB an event).
			// The name is interned (unique.Make): the legs share one
			// copy of each of the handful of names instead of a copy a
			// leg (a map assignment stores the key it is given, even
			// over an equal one). unique's map is weak: a collection
			// drops a name no handle holds, and the next leg makes the
			// copy the legs after it share.
			dst[unique.Make(name).Value()] = strings.Clone(v)
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

// ascii reports whether s is all ASCII.
func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
