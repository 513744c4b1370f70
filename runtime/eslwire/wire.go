package eslwire

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits of the frame reader: a peer cannot make it allocate more.
const (
	// MaxHeaderLine is the longest header line ReadFrame accepts.
	MaxHeaderLine = 64 << 10
	// MaxHeaders is the most header lines ReadFrame accepts in one frame.
	MaxHeaders = 1024
	// MaxBody is the largest Content-Length ReadFrame accepts.
	MaxBody = 16 << 20
)

// Content types of the frames mod_event_socket writes.
const (
	TypeAuthRequest      = "auth/request"
	TypeCommandReply     = "command/reply"
	TypeAPIResponse      = "api/response"
	TypeEventPlain       = "text/event-plain"
	TypeEventJSON        = "text/event-json"
	TypeDisconnectNotice = "text/disconnect-notice"
)

// DisconnectText is the body of FreeSWITCH's text/disconnect-notice.
const DisconnectText = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"

// Header is one "Name: value" line, in wire order.
type Header struct {
	Name  string
	Value string
}

// Frame is one message of the event socket: header lines, a blank line,
// and Content-Length bytes of body when a Content-Length header is present.
// Header values are kept as they were on the wire.
type Frame struct {
	Headers []Header
	Body    []byte
}

// Get returns the value of the first header named name (case-insensitive),
// or "".
func (f Frame) Get(name string) string {
	return getHeader(f.Headers, name)
}

func getHeader(hs []Header, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// Errors of the codec.
var (
	ErrLineTooLong   = errors.New("header line too long")
	ErrTooManyHeader = errors.New("too many header lines")
	ErrBadHeader     = errors.New("malformed header line")
	ErrBadLength     = errors.New("bad Content-Length")
)

// ReadFrame reads one frame. Lines may end in "\n" or "\r\n" (clients such
// as go-eventsocket send "\r\n"). Blank lines before a frame are skipped,
// as mod_event_socket skips them between commands. It returns io.EOF when
// the reader ends cleanly between frames and io.ErrUnexpectedEOF when it
// ends inside one.
func ReadFrame(r *bufio.Reader) (Frame, error) {
	return readFrom(nil, func() (string, error) { return readLine(r) },
		func(n int) ([]byte, error) { return readBody(r, n) })
}

// Reader reads frames as ReadFrame does, reusing its memory from one
// frame to the next: a Frame that Read returns (its Headers and its Body)
// is valid only until the next Read. A reader that keeps a frame's
// content copies what it keeps.
type Reader struct {
	br   *bufio.Reader
	hs   []Header
	body []byte
	// next and readBody are bound once, not per frame.
	next     func() (string, error)
	readBody func(n int) ([]byte, error)
}

// NewReader returns a Reader of the frames of br.
func NewReader(br *bufio.Reader) *Reader {
	r := &Reader{br: br}
	r.next = func() (string, error) { return readLine(br) }
	r.readBody = func(n int) ([]byte, error) {
		if n > bodyAlloc {
			return readBody(br, n) // not kept: a rare large body
		}
		if cap(r.body) < n {
			r.body = make([]byte, n, max(n, 4<<10))
		}
		b := r.body[:n]
		if _, err := io.ReadFull(br, b); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return b, nil
	}
	return r
}

// Buffered returns how many bytes the Reader holds that it has not
// returned yet: zero means the next Read waits for its source.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// Read reads one frame, with ReadFrame's rules and errors.
func (r *Reader) Read() (Frame, error) {
	clear(r.hs)
	f, err := readFrom(r.hs[:0], r.next, r.readBody)
	if cap(f.Headers) <= 64 {
		r.hs = f.Headers[:0]
	}
	return f, err
}

// readFrom reads one frame from its lines (next returns io.EOF at the end)
// and its body (body reads n bytes), appending its headers to hs: the
// rules of ReadFrame, whatever the source.
func readFrom(hs []Header, next func() (string, error), body func(n int) ([]byte, error)) (Frame, error) {
	f := Frame{Headers: hs}
	started := false
	length := -1 // index in f.Headers of the first Content-Length
	for {
		line, err := next()
		if err != nil {
			if err == io.EOF && (started || len(line) > 0) {
				return f, io.ErrUnexpectedEOF
			}
			return f, err
		}
		if line == "" {
			if !started {
				continue
			}
			break
		}
		started = true
		if len(f.Headers) >= MaxHeaders {
			return f, ErrTooManyHeader
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || hasBlank(line[:colon]) {
			return f, fmt.Errorf("%w: %q", ErrBadHeader, truncate(line))
		}
		name, value := line[:colon], line[colon+1:]
		for len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		if length < 0 && len(name) == len("Content-Length") && strings.EqualFold(name, "Content-Length") {
			length = len(f.Headers)
		}
		f.Headers = append(f.Headers, Header{Name: name, Value: value})
	}
	if length >= 0 && f.Headers[length].Value != "" {
		v := f.Headers[length].Value
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxBody {
			return f, fmt.Errorf("%w: %q", ErrBadLength, truncate(v))
		}
		b, err := body(n)
		if err != nil {
			return f, fmt.Errorf("read body: %w", err)
		}
		f.Body = b
	}
	return f, nil
}

// hasBlank reports whether a header name holds a space or a tab.
func hasBlank(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] == ' ' || name[i] == '\t' {
			return true
		}
	}
	return false
}

// bodyAlloc is the largest body read into one allocation of its
// Content-Length; a larger one grows as its data arrives, so that a
// peer's Content-Length alone cannot make the reader allocate MaxBody.
const bodyAlloc = 64 << 10

// readBody reads n bytes.
func readBody(r io.Reader, n int) ([]byte, error) {
	if n <= bodyAlloc {
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return body, nil
	}
	body, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err != nil {
		return nil, err
	}
	if len(body) < n {
		return nil, io.ErrUnexpectedEOF
	}
	return body, nil
}

func readLine(r *bufio.Reader) (string, error) {
	chunk, isPrefix, err := r.ReadLine()
	if err != nil || !isPrefix {
		if len(chunk) > MaxHeaderLine {
			return "", ErrLineTooLong
		}
		return string(chunk), err
	}
	buf := append([]byte(nil), chunk...)
	for {
		chunk, isPrefix, err := r.ReadLine()
		buf = append(buf, chunk...)
		if len(buf) > MaxHeaderLine {
			return "", ErrLineTooLong
		}
		if err != nil {
			return string(buf), err
		}
		if !isPrefix {
			return string(buf), nil
		}
	}
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// AppendFrame appends f as mod_event_socket writes it: each header line
// ending in "\n", a blank line, then the body as is.
func AppendFrame(b []byte, f Frame) []byte {
	for _, h := range f.Headers {
		b = append(b, h.Name...)
		b = append(b, ": "...)
		b = append(b, h.Value...)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	return append(b, f.Body...)
}

// Bytes returns the frame as written on the wire.
func (f Frame) Bytes() []byte { return AppendFrame(nil, f) }

// Event is a FreeSWITCH event: ordered headers with their decoded values,
// and an optional body (BACKGROUND_JOB carries the command's output there).
type Event struct {
	Headers []Header
	Body    string
}

// Name returns the Event-Name.
func (e *Event) Name() string { return e.Get("Event-Name") }

// Get returns the decoded value of the first header named name
// (case-sensitive, as FreeSWITCH names them), or "".
func (e *Event) Get(name string) string {
	for _, h := range e.Headers {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

// Has reports whether the event has a header named name.
func (e *Event) Has(name string) bool {
	for _, h := range e.Headers {
		if h.Name == name {
			return true
		}
	}
	return false
}

// Add appends a header.
func (e *Event) Add(name, value string) {
	e.Headers = append(e.Headers, Header{Name: name, Value: value})
}

// Set replaces the value of header name, or appends it.
func (e *Event) Set(name, value string) {
	for i := range e.Headers {
		if e.Headers[i].Name == name {
			e.Headers[i].Value = value
			return
		}
	}
	e.Add(name, value)
}

// Clone returns a deep copy.
func (e *Event) Clone() *Event {
	c := &Event{Body: e.Body, Headers: make([]Header, len(e.Headers))}
	copy(c.Headers, e.Headers)
	return c
}

// undef is what FreeSWITCH writes for a header whose value is empty.
const undef = "_undef_"

// MarshalPlain returns the event in text/event-plain form, as
// switch_event_serialize writes it: "Name: url-encoded-value\n" per header
// (an empty value written as _undef_), then either a blank line, or when
// there is a body "Content-Length: N\n\n" and the body.
func (e *Event) MarshalPlain() []byte {
	n := len(e.Body) + 32
	for _, h := range e.Headers {
		n += len(h.Name) + len(h.Value) + 3
	}
	b := make([]byte, 0, n+n/4)
	for _, h := range e.Headers {
		b = append(b, h.Name...)
		b = append(b, ": "...)
		if h.Value == "" {
			b = append(b, undef...)
		} else {
			b = appendURLEncoded(b, h.Value)
		}
		b = append(b, '\n')
	}
	if e.Body != "" {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(e.Body)), 10)
		b = append(b, "\n\n"...)
		b = append(b, e.Body...)
	} else {
		b = append(b, '\n')
	}
	return b
}

// PlainFrame returns the event framed as mod_event_socket frames it:
// Content-Length, then Content-Type: text/event-plain, then the event.
func (e *Event) PlainFrame() Frame {
	body := e.MarshalPlain()
	return Frame{
		Headers: []Header{{"Content-Length", strconv.Itoa(len(body))}, {"Content-Type", TypeEventPlain}},
		Body:    body,
	}
}

// ParseEventPlain parses the body of a text/event-plain frame: header lines
// up to a blank line, values URL-decoded (_undef_ becomes ""), then a body
// when the event has its own Content-Length header (that header is not kept
// in Headers; MarshalPlain writes it back).
//
// The event's names, values and body are substrings of one copy of b, and
// the decoded values share one allocation: an event of a hundred headers
// costs a few allocations, not a few hundred.
func ParseEventPlain(b []byte) (*Event, error) {
	f, body, err := parseFrameString(string(b))
	if err != nil {
		return nil, fmt.Errorf("event-plain: %w", err)
	}
	// The frame's header slice becomes the event's: the Content-Length
	// header is dropped and values are decoded in place.
	hs := f.Headers[:0]
	encoded := 0 // bytes of the values that need decoding
	for _, h := range f.Headers {
		if h.Name == "Content-Length" {
			continue
		}
		if h.Value == undef {
			h.Value = ""
		} else if strings.IndexByte(h.Value, '%') >= 0 {
			encoded += len(h.Value)
		}
		hs = append(hs, h)
	}
	clear(f.Headers[len(hs):])
	if len(hs) == 0 {
		return nil, fmt.Errorf("event-plain: %w: no headers", ErrBadHeader)
	}
	if encoded > 0 {
		decodeValues(hs, encoded)
	}
	return &Event{Body: body, Headers: hs}, nil
}

// decodeValues URL-decodes the values of hs that hold a '%', encoded
// bytes in all, into one string they become slices of.
func decodeValues(hs []Header, encoded int) {
	buf := make([]byte, 0, encoded)
	var endsBuf [128]int32
	ends := endsBuf[:0] // where each decoded value ends in buf, in order
	for _, h := range hs {
		if strings.IndexByte(h.Value, '%') >= 0 {
			buf = appendURLDecoded(buf, h.Value)
			ends = append(ends, int32(len(buf)))
		}
	}
	all := string(buf)
	start := int32(0)
	for i := range hs {
		if strings.IndexByte(hs[i].Value, '%') >= 0 {
			hs[i].Value, start = all[start:ends[0]], ends[0]
			ends = ends[1:]
		}
	}
}

// parseFrame is ReadFrame over a frame held in memory, with the same
// rules and errors (parseFrameString), its body a slice of b.
func parseFrame(b []byte) (Frame, error) {
	f, body, err := parseFrameString(string(b))
	if err == nil && body != "" {
		f.Body = []byte(body)
	}
	return f, err
}

// parseFrameString is ReadFrame over a frame held in a string, with the
// same rules and errors: the header names and values are substrings of
// src, and so is the body, returned beside the frame (whose Body is nil).
func parseFrameString(src string) (Frame, string, error) {
	i := 0
	next := func() (string, error) {
		if i >= len(src) {
			return "", io.EOF
		}
		line := src[i:]
		if j := strings.IndexByte(line, '\n'); j >= 0 {
			line = line[:j]
			if len(line) > 0 && line[len(line)-1] == '\r' { // as bufio.Reader.ReadLine
				line = line[:len(line)-1]
			}
			i += j + 1
		} else {
			i = len(src)
		}
		if len(line) > MaxHeaderLine {
			return "", ErrLineTooLong
		}
		return line, nil
	}
	var body string
	readBody := func(n int) ([]byte, error) {
		if len(src)-i < n {
			return nil, io.ErrUnexpectedEOF
		}
		body = src[i : i+n]
		return nil, nil
	}
	f, err := readFrom(make([]Header, 0, min(strings.Count(src, "\n")+1, MaxHeaders)), next, readBody)
	return f, body, err
}

// MarshalJSON returns the event as text/event-json: one object with the
// headers in order (values not encoded) and the body under "_body".
func (e *Event) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, h := range e.Headers {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(h.Name)
		v, _ := json.Marshal(h.Value)
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	if e.Body != "" {
		v, _ := json.Marshal(e.Body)
		fmt.Fprintf(&b, `,"Content-Length":"%d","_body":%s`, len(e.Body), v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// JSONFrame returns the event framed as text/event-json.
func (e *Event) JSONFrame() Frame {
	body, _ := e.MarshalJSON()
	return Frame{
		Headers: []Header{{"Content-Length", strconv.Itoa(len(body))}, {"Content-Type", TypeEventJSON}},
		Body:    body,
	}
}

// urlUnsafe is FreeSWITCH's SWITCH_URL_UNSAFE.
const urlUnsafe = "\r\n #%&+:;<=>?@[\\]^`{|}\""

const upperHex = "0123456789ABCDEF"

// URLEncode encodes s as switch_url_encode does: bytes below ' ', above
// '~' and those in SWITCH_URL_UNSAFE become %XX (upper-case hex), except a
// '%' already followed by two upper-case hex digits, which is kept as is
// (FreeSWITCH does not encode an existing %XX again).
func URLEncode(s string) string {
	return string(appendURLEncoded(nil, s))
}

// appendURLEncoded appends URLEncode(s) to b.
func appendURLEncoded(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) && isUpperHex(s[i+1]) && isUpperHex(s[i+2]) {
			b = append(b, c)
			continue
		}
		if c < ' ' || c > '~' || strings.IndexByte(urlUnsafe, c) >= 0 {
			b = append(b, '%', upperHex[c>>4], upperHex[c&0x0f])
			continue
		}
		b = append(b, c)
	}
	return b
}

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// URLDecode decodes %XX sequences as switch_url_decode does; anything else,
// '+' included, is kept as is.
func URLDecode(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	return string(appendURLDecoded(make([]byte, 0, len(s)), s))
}

// appendURLDecoded appends URLDecode(s) to b.
func appendURLDecoded(b []byte, s string) []byte {
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			return append(b, s...)
		}
		b = append(b, s[:i]...)
		s = s[i:]
		if len(s) > 2 {
			hi, ok1 := unhex(s[1])
			lo, ok2 := unhex(s[2])
			if ok1 && ok2 {
				b = append(b, hi<<4|lo)
				s = s[3:]
				continue
			}
		}
		b = append(b, '%')
		s = s[1:]
	}
}
