package table

// MaxMetaflowDigits bounds the digits a Collector holds after the binding
// digit: a code longer than this never completes, and a stream of digits
// that keeps a pattern listener collecting (a DTMF flood, a stuck key)
// cannot grow memory or the time a match takes.
const MaxMetaflowDigits = 32

// Collector gathers the DTMF digits of one endpoint's metaflows: the
// binding digit, then digits until a code matches and no longer number
// could still match, no code can match any more, or more than the
// metaflows' digit_timeout passes between two digits. The runtime and the
// simulator both use it, so they agree on what a key press does.
type Collector struct {
	active bool
	digits string
	lastMS int64
}

// Feed adds a digit pressed at atMS (milliseconds on any clock) and returns
// the binding it completes, if any.
func (c *Collector) Feed(m *Metaflows, digit string, atMS int64) (*MetaflowBinding, bool) {
	if c.active && atMS-c.lastMS > int64(m.DigitTimeout) {
		c.active, c.digits = false, ""
	}
	c.lastMS = atMS
	if !c.active {
		if digit == m.BindingDigit {
			c.active, c.digits = true, ""
		}
		return nil, false
	}
	if len(c.digits)+len(digit) > MaxMetaflowDigits {
		c.active, c.digits = false, ""
		return nil, false
	}
	c.digits += digit
	b, ok := m.Match(c.digits)
	longer := false
	for _, n := range m.Numbers {
		if len(n.Code) > len(c.digits) && n.Code[:len(c.digits)] == c.digits {
			longer = true
		}
	}
	switch {
	case ok && !longer:
		c.active, c.digits = false, ""
		return b, true
	case !longer && !ok && !m.MayMatch(c.digits):
		c.active, c.digits = false, ""
	}
	return nil, false
}
