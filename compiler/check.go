package compiler

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/recpol/recpol/table"
)

// eslUnsafe are the characters that must never reach an event-socket
// command inside a value: they delimit channel variables ({k=v,k=v}), quote,
// or start an escape sequence that FreeSWITCH does not re-encode.
const eslUnsafe = `%{},='"`

var metaflowNumber = lazyRegexp(`^[0-9]+$`)

// check applies the rules of SPEC 2.6 that CUE's schema does not express.
func (c *compilation) check() {
	if d := c.policy.Defaults; d != nil {
		if d.get(fEnabled).set {
			c.add(Diagnostic{Code: CodeDefaults, Severity: Warning, Position: c.posOf("defaults", "enabled"),
				Path: "defaults.enabled",
				Message: "enabled is set in defaults: every account and every endpoint inherits it, " +
					"so most calls are recorded two or three times; set it per account or endpoint instead"})
		}
		c.checkURL(d.str(fURL), "defaults", "url")
		c.checkAnnounce(d.str(fAnnounce), "defaults", "announce")
	}
	for _, id := range sortedKeys(c.policy.Accounts) {
		c.checkAccount(id, c.policy.Accounts[id])
	}
}

func (c *compilation) checkAccount(id string, a *rawAccount) {
	at := (&pathArena{account: id}).at
	if cr := a.CallRecording; cr != nil {
		c.checkCR(cr.Account, at("call_recording", "account"))
		c.checkCR(cr.Endpoint, at("call_recording", "endpoint"))
	}
	c.checkMetaflows(a.Metaflows, at("metaflows"))
	for _, uid := range sortedKeys(a.Users) {
		u := a.Users[uid]
		c.checkCR(u.CallRecording, at("users", uid, "call_recording"))
		c.checkMetaflows(u.Metaflows, at("users", uid, "metaflows"))
	}
	for _, did := range sortedKeys(a.Devices) {
		d := a.Devices[did]
		if d.Owner != nil {
			if _, ok := a.Users[*d.Owner]; !ok {
				p := at("devices", did, "owner")
				c.errorf(CodeOwner, c.posOf(p...), cuePath(p),
					"owner %q is not a user of account %s%s", *d.Owner, id, ownerHint(a, *d.Owner))
			}
		}
		c.checkCR(d.CallRecording, at("devices", did, "call_recording"))
		c.checkMetaflows(d.Metaflows, at("devices", did, "metaflows"))
	}
	c.checkCallflows(id, a, at)
}

func (c *compilation) checkCR(cr *rawCR, path []string) {
	for _, dk := range []string{"any", "inbound", "outbound"} {
		for _, nk := range []string{"any", "onnet", "offnet"} {
			s := cr.dir(dk).net(nk)
			if s == nil {
				continue
			}
			// The paths are made only for a value to check: most
			// cells set neither.
			if u := s.str(fURL); u != nil {
				c.checkURL(u, append(append([]string(nil), path...), dk, nk, "url")...)
			}
			if a := s.str(fAnnounce); a != nil {
				c.checkAnnounce(a, append(append([]string(nil), path...), dk, nk, "announce")...)
			}
		}
	}
}

// ownerHint says what an owner that is not a user of its account may
// have meant: a user of the account with a close id, or, for the id of a
// device, that devices own nothing.
func ownerHint(a *rawAccount, owner string) string {
	if _, ok := a.Devices[owner]; ok {
		return fmt.Sprintf(" (%s is a device of the account: an owner is a user)", owner)
	}
	if len(a.Users) == 0 {
		return ": the account has no users"
	}
	return didYouMean(owner, sortedKeys(a.Users))
}

type numberClaim struct {
	callflow string
	path     []string
}

func (c *compilation) checkCallflows(acct string, a *rawAccount, at func(...string) []string) {
	numbers := map[string]numberClaim{}
	patterns := map[string]numberClaim{}
	for _, cid := range sortedKeys(a.Callflows) {
		cf := a.Callflows[cid]
		for i, n := range cf.Numbers {
			p := at("callflows", cid, "numbers", "["+strconv.Itoa(i)+"]")
			if c.isLost(p) {
				continue // CUE rejected it
			}
			if n == "" || strings.IndexFunc(n, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
				c.errorf(CodeNumber, c.posOf(p...), cuePath(p),
					"number %q must be non-empty, without spaces or control characters", n)
				continue
			}
			if prev, dup := numbers[n]; dup && prev.callflow != cid {
				c.add(Diagnostic{Code: CodeNumber, Severity: Error, Position: c.posOf(p...), Path: cuePath(p),
					Message: fmt.Sprintf("number %q is already claimed by callflow %s of account %s", n, prev.callflow, acct),
					Related: []Position{c.posOf(prev.path...)}})
				continue
			}
			numbers[n] = numberClaim{cid, p}
		}
		for i, pat := range cf.Patterns {
			p := at("callflows", cid, "patterns", "["+strconv.Itoa(i)+"]")
			if c.isLost(p) {
				continue // CUE rejected it
			}
			if _, err := regexp.Compile(pat); err != nil {
				c.errorf(CodeRegex, c.posOf(p...), cuePath(p), "invalid pattern: %v", err)
				continue
			}
			if prev, dup := patterns[pat]; dup && prev.callflow != cid {
				c.add(Diagnostic{Code: CodePattern, Severity: Error, Position: c.posOf(p...), Path: cuePath(p),
					Message: fmt.Sprintf("pattern %q is also a pattern of callflow %s: the two tie on every number it matches", pat, prev.callflow),
					Related: []Position{c.posOf(prev.path...)}})
				continue
			}
			patterns[pat] = numberClaim{cid, p}
		}
		for i := range cf.Actions {
			c.checkActionData(cf.Actions[i].Data, at("callflows", cid, "actions", "["+strconv.Itoa(i)+"]", "data"), false)
		}
	}
}

func (c *compilation) checkMetaflows(m *rawMetaflows, path []string) {
	if m == nil {
		return
	}
	at := func(rest ...string) []string { return append(append([]string(nil), path...), rest...) }
	for _, code := range sortedKeys(m.Numbers) {
		p := at("numbers", code)
		if !metaflowNumber().MatchString(code) {
			c.errorf(CodeMetaflowNumber, c.posOf(p...), cuePath(p),
				"metaflow number %q must be digits only (the binding digit comes first, then these digits)", code)
		}
		c.checkActionData(m.Numbers[code].Data, at("numbers", code, "data"), true)
	}
	for _, pat := range sortedKeys(m.Patterns) {
		p := at("patterns", pat)
		if _, err := regexp.Compile(pat); err != nil {
			c.errorf(CodeRegex, c.posOf(p...), cuePath(p), "invalid metaflow pattern: %v", err)
		}
		c.checkActionData(m.Patterns[pat].Data, at("patterns", pat, "data"), true)
	}
}

// checkActionData checks the data of a callflow action (metaflow false)
// or of a metaflow code (metaflow true).
func (c *compilation) checkActionData(d *rawActionData, path []string, metaflow bool) {
	if d == nil {
		return
	}
	at := func(k string) []string { return append(append([]string(nil), path...), k) }
	if d.Label != nil {
		if msg := checkLabel(*d.Label); msg != "" {
			p := at("label")
			c.errorf(CodeLabel, c.posOf(p...), cuePath(p), "label %q %s", *d.Label, msg)
		}
	}
	if d.Origin != nil {
		if msg := checkLabel(*d.Origin); msg != "" {
			p := at("origin")
			c.errorf(CodeLabel, c.posOf(p...), cuePath(p), "origin %q %s", *d.Origin, msg)
		}
	}
	if d.DTMFLeg != nil && !metaflow {
		p := at("dtmf_leg")
		c.add(Diagnostic{Code: CodeNoEffect, Severity: Warning, Position: c.posOf(p...), Path: cuePath(p),
			Message: "dtmf_leg has no effect in a callflow: it says whose DTMF fires a metaflow code"})
	}
	if d.Scope != nil && (d.Action == nil || *d.Action != string(table.Stop)) {
		p := at("scope")
		c.errorf(CodeScope, c.posOf(p...), cuePath(p),
			"scope %q applies to a stop only (mask, unmask, pause and resume already act on the whole call)", *d.Scope)
	}
	if d.MediaName != nil {
		if msg := checkMediaName(*d.MediaName); msg != "" {
			p := at("media_name")
			c.errorf(CodeMediaName, c.posOf(p...), cuePath(p), "media_name %q %s", *d.MediaName, msg)
		}
	}
	c.checkURL(d.vals.str(fURL), at("url")...)
	c.checkAnnounce(d.vals.str(fAnnounce), at("announce")...)
}

func (c *compilation) checkAnnounce(a *string, path ...string) {
	if a == nil {
		return
	}
	if msg := CheckAnnounce(*a); msg != "" {
		c.errorf(CodeAnnounce, c.posOf(path...), cuePath(path), "announce %q %s", *a, msg)
	}
}

// CheckAnnounce returns why an announce setting is unacceptable, or "" when
// it is fine. The runtime puts it on an event-socket command line
// (uuid_broadcast <uuid> <media> <leg>), so it must be one of:
//   - "" (no announcement) or table.Tone ("tone", a beep);
//   - an absolute path on the switch: "/" then letters, digits and
//     . _ + - /, not ending in "/";
//   - "tone_stream://" then a tone spec of letters, digits and % ( ) , ; = . + -.
//
// Never whitespace, control characters, quotes, braces, "$" (no variable
// expansion such as $${sounds_dir}), ".." or "::" (uuid_broadcast runs
// "app::args" as an application), and at most 255 bytes.
func CheckAnnounce(s string) string {
	const tonePrefix = "tone_stream://"
	switch {
	case s == "" || s == table.Tone:
		return ""
	case len(s) > 255:
		return "must be at most 255 bytes long"
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "must not contain whitespace or control characters (it goes on an event-socket command line)"
	case strings.ContainsAny(s, "'\"`"):
		return "must not contain quotes (it goes on an event-socket command line)"
	case strings.ContainsAny(s, "{}[]"):
		return "must not contain braces or brackets (the switch would read channel variables from them)"
	case strings.Contains(s, "$"):
		return "must not refer to variables with $ (give the absolute path on the switch)"
	case strings.Contains(s, ".."):
		return `must not contain ".."`
	case strings.Contains(s, "::"):
		return `must not contain "::" (uuid_broadcast would run it as an application)`
	case strings.HasPrefix(s, tonePrefix):
		if !toneSpec().MatchString(s[len(tonePrefix):]) {
			return "must be tone_stream:// followed by a tone spec of letters, digits and % ( ) , ; = . + - only, e.g. " + table.ToneStream
		}
		return ""
	case !announcePath().MatchString(s):
		return `must be an absolute path on the switch ("/" then letters, digits, '.', '_', '+', '-' and '/', not ending in "/"), a tone_stream:// spec, "tone" for a beep, or "" for none`
	}
	return ""
}

// announcePath and toneSpec are the two forms of an announce beside "tone".
var (
	announcePath = lazyRegexp(`^(/[A-Za-z0-9._+-]+)+$`)
	toneSpec     = lazyRegexp(`^[A-Za-z0-9%(),;=.+-]+$`)
)

func (c *compilation) checkURL(u *string, path ...string) {
	if u == nil {
		return
	}
	if msg := CheckURL(*u); msg != "" {
		c.errorf(CodeURL, c.posOf(path...), cuePath(path), "url %q %s", RedactURL(*u), msg)
	}
}

// CheckURL returns why a recording URL is unacceptable, or "" when it is
// fine: it must be absolute http or https with a host, and carry no
// credentials (those belong in the runtime config) and no spaces or control
// characters.
func CheckURL(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "must not contain spaces or control characters"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "is not a valid URL"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "must be an http or https URL"
	}
	if u.User != nil {
		return "must not carry credentials: put them in the runtime config's uploads"
	}
	if u.Host == "" {
		return "has no host"
	}
	return ""
}

// RedactURL hides the credentials of a URL, so that a diagnostic or a log
// line never repeats a password.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = url.User("REDACTED")
	return u.String()
}

// checkLabel returns why a label is unacceptable, or "". Spaces are fine
// ("Sales queue").
func checkLabel(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "must not contain control characters"
	}
	if strings.ContainsAny(s, eslUnsafe) {
		return "must not contain any of " + spaced(eslUnsafe) + " (they would break an event-socket command)"
	}
	return ""
}

// checkMediaName returns why a media_name is unacceptable, or "": it names
// a file, so no path separators, no "..", no whitespace or control
// characters, nothing that breaks an event-socket command.
func checkMediaName(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case strings.ContainsAny(s, `/\`):
		return "must not contain path separators"
	case strings.Contains(s, ".."):
		return `must not contain ".."`
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "must not contain whitespace or control characters"
	case strings.ContainsAny(s, eslUnsafe):
		return "must not contain any of " + spaced(eslUnsafe) + " (they would break an event-socket command)"
	case !mediaName().MatchString(s):
		return "must start with a letter or a digit and hold only letters, digits, '.', '_' and '-', at most 64 of them (it names the stored file and the uploaded object)"
	}
	return ""
}

// mediaName is what a media_name may be: one file-name component, which
// the store prefixes to the recording id (runtime/store ValidName).
var mediaName = lazyRegexp(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func spaced(chars string) string {
	return strings.Join(strings.Split(chars, ""), " ")
}

// lazyRegexp returns a regular expression compiled on its first use: the
// package's patterns compiled at start-up took a millisecond of every
// recpol command, most of them for the bounded repetitions of ids and
// media names, and a warm compile uses none of them.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// pathArena makes the CUE paths of an account's values for check,
// "accounts", its id, then more: paths only ever read (and copied to be
// extended), several an endpoint, cut from backing arrays a few hundred
// elements at a time rather than allocated each on its own.
type pathArena struct {
	account string
	buf     []string
}

// pathsChunk is how many path elements a pathArena allocates at a time.
const pathsChunk = 256

// at returns the path of the account's value at rest.
func (p *pathArena) at(rest ...string) []string {
	n := 2 + len(rest)
	if cap(p.buf)-len(p.buf) < n {
		p.buf = make([]string, 0, max(pathsChunk, n))
	}
	start := len(p.buf)
	p.buf = append(append(p.buf, "accounts", p.account), rest...)
	return p.buf[start:len(p.buf):len(p.buf)]
}
