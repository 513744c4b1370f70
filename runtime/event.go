package runtime

import "strings"

// Event is one event-socket event as the engine sees it: its name and
// headers, channel variables as "variable_<name>" headers. Lookups are
// case-insensitive, because clients rewrite header names.
type Event struct {
	Name    string
	Headers map[string]string
	Body    string
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

// vars copies the event's channel variables into dst, keyed by lower-case
// name, and reports whether any changed.
func (e *Event) vars(dst map[string]string) bool {
	changed := false
	for k, v := range e.Headers {
		if len(k) > 9 && strings.EqualFold(k[:9], "variable_") {
			name := strings.ToLower(k[9:])
			if dst[name] != v {
				dst[name] = v
				changed = true
			}
		}
	}
	return changed
}
