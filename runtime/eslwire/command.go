package eslwire

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Command is one command a client sent: its first line, the header lines
// that follow it up to the blank line (sendmsg has some), and a body when
// those headers carry a Content-Length.
type Command struct {
	Line    string
	Headers []Header
	Body    []byte
}

// ReadCommand reads one command as mod_event_socket reads it: lines up to a
// blank line, "\n" or "\r\n" terminated, blank lines before the command
// skipped. The first line is the command; later lines are "Name: value"
// headers (a malformed one is an error).
func ReadCommand(r *bufio.Reader) (Command, error) {
	var c Command
	started := false
	for {
		line, err := readLine(r)
		if err != nil {
			if err == io.EOF && (started || line != "") {
				return c, io.ErrUnexpectedEOF
			}
			return c, err
		}
		line = strings.TrimRight(line, "\r")
		if line == "" {
			if !started {
				continue
			}
			break
		}
		if !started {
			started = true
			c.Line = line
			continue
		}
		if len(c.Headers) >= MaxHeaders {
			return c, ErrTooManyHeader
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return c, fmt.Errorf("%w: %q", ErrBadHeader, truncate(line))
		}
		c.Headers = append(c.Headers, Header{Name: name, Value: strings.TrimLeft(value, " ")})
	}
	if v := getHeader(c.Headers, "Content-Length"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxBody {
			return c, fmt.Errorf("%w: %q", ErrBadLength, truncate(v))
		}
		body, err := readBody(r, n)
		if err != nil {
			return c, fmt.Errorf("read command body: %w", err)
		}
		c.Body = body
	}
	return c, nil
}
