// Package eslcmd is the event-socket api commands the runtime sends to
// FreeSWITCH, one Go type per command. Each type renders its wire form
// with String, and Validate checks every value it carries (channel uuids,
// file paths, media, variable names and values) against what that command
// may hold: no value can end the command line, add an argument, or reach a
// file outside the absolute path it names. The runtime validates a command
// before it sends it; String does not validate, so that a command can
// still be logged as it was built.
//
// The name says what the package holds: event-socket (ESL) commands. The
// wire codec is package eslwire; the client that sends is package esl.
package eslcmd

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Command is one api command (sent as "api <command>" or "bgapi
// <command>").
type Command interface {
	// String renders the command as it goes on the wire, without the
	// api or bgapi in front of it.
	String() string
	// Validate reports whether every value of the command is safe to
	// send; the error wraps ErrInvalid.
	Validate() error
}

// ChannelCommand is a command that acts on one channel (a leg).
type ChannelCommand interface {
	Command
	// Channel is the uuid of the channel the command acts on.
	Channel() string
	// Repeatable reports whether the switch running the command twice
	// has the effect of running it once, so that a command whose reply
	// was lost may be sent again.
	Repeatable() bool
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid event-socket command")

// The tokens a command may carry, checked byte by byte (a regular
// expression per value was a tenth of the engine's time per call setup;
// TestTokensMatchPatterns holds each check to its pattern):
//
//   - a channel uuid: ^[A-Za-z0-9][A-Za-z0-9-]{0,127}$
//   - a variable name: ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$
//   - a recording variable's value, a token that cannot close the {...}
//     block or start another variable: ^[A-Za-z0-9._:/+-]{1,256}$
var (
	uuidFirst     = byteSet("")
	uuidRest      = byteSet("-")
	varNameFirst  = byteSet("_")
	varNameRest   = byteSet("_.-")
	recordVarByte = byteSet("._:/+-")
)

// byteSet is the set of ASCII letters and digits, plus extra.
func byteSet(extra string) *[256]bool {
	var set [256]bool
	for c := 0; c < 256; c++ {
		set[c] = c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
	}
	for i := 0; i < len(extra); i++ {
		set[extra[i]] = true
	}
	return &set
}

// token reports whether s is 1 to maxLen bytes, its first in first and
// the others in rest.
func token(s string, maxLen int, first, rest *[256]bool) bool {
	if len(s) == 0 || len(s) > maxLen || !first[s[0]] {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !rest[s[i]] {
			return false
		}
	}
	return true
}

func validVarName(s string) bool { return token(s, 128, varNameFirst, varNameRest) }

func validRecordVarValue(s string) bool { return token(s, 256, recordVarByte, recordVarByte) }

var (
	// mediaRE is what uuid_broadcast may play: an absolute path or a
	// tone_stream, with nothing that could end or extend the command
	// line.
	mediaRE  = regexp.MustCompile(`^(/[A-Za-z0-9._+/-]+|tone_stream://[A-Za-z0-9%(),;=.+-]+)$`)
	moduleRE = regexp.MustCompile(`^mod_[a-z0-9_]{1,64}$`)
)

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// ValidUUID reports whether s is a channel uuid a command may name.
func ValidUUID(s string) bool { return token(s, 128, uuidFirst, uuidRest) }

func checkUUID(s string) error {
	if !ValidUUID(s) {
		return invalid("channel uuid %q", s)
	}
	return nil
}

// checkPath checks a file path as the switch sees it: absolute, one
// argument (no space, quote, brace or control character: FreeSWITCH
// splits a command's arguments on spaces and honours quotes), and no ".."
// element.
func checkPath(p string) error {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t\"'\\{}") || hasControl(p) {
		return invalid("path %q", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return invalid("path %q", p)
		}
	}
	return nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// Var is a recording variable of uuid_record start: a channel variable
// the recording is made with (RECORD_MIN_SEC, record_sample_rate, ...).
type Var struct {
	Name, Value string
}

// RecordStart starts recording a channel to a file:
//
//	uuid_record <uuid> start <path> <limit> {<name>=<value>,...}
//
// (mod_commands.c, session_record_function). TimeLimit is in seconds;
// Vars, when any, are the recording's own variables, in order.
type RecordStart struct {
	UUID      string
	Path      string
	TimeLimit int
	Vars      []Var
}

// Channel is the recorded channel.
func (c RecordStart) Channel() string { return c.UUID }

// Repeatable is true: a second start of a path that records answers +OK and starts nothing.
func (RecordStart) Repeatable() bool { return true }

func (c RecordStart) String() string {
	var b strings.Builder
	b.WriteString("uuid_record ")
	b.WriteString(c.UUID)
	b.WriteString(" start ")
	b.WriteString(c.Path)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(c.TimeLimit))
	if len(c.Vars) > 0 {
		b.WriteString(" {")
		for i, v := range c.Vars {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(v.Name)
			b.WriteByte('=')
			b.WriteString(v.Value)
		}
		b.WriteByte('}')
	}
	return b.String()
}

// Validate checks the uuid, the path, the limit and every variable.
func (c RecordStart) Validate() error {
	if err := checkUUID(c.UUID); err != nil {
		return err
	}
	if err := checkPath(c.Path); err != nil {
		return err
	}
	if c.TimeLimit < 0 {
		return invalid("time limit %d", c.TimeLimit)
	}
	for _, v := range c.Vars {
		if !validVarName(v.Name) || !validRecordVarValue(v.Value) {
			return invalid("recording variable %q=%q", v.Name, v.Value)
		}
	}
	return nil
}

// RecordOp is what a Record command does to a running recording.
type RecordOp uint8

// The operations of uuid_record on a running recording.
const (
	Stop RecordOp = iota + 1
	Mask
	Unmask
	Pause
	Resume
)

var recordOps = [...]string{Stop: "stop", Mask: "mask", Unmask: "unmask", Pause: "pause", Resume: "resume"}

// String is the operation as uuid_record spells it.
func (op RecordOp) String() string {
	if int(op) < len(recordOps) && recordOps[op] != "" {
		return recordOps[op]
	}
	return "RecordOp(" + strconv.Itoa(int(op)) + ")"
}

// Record stops, masks, unmasks, pauses or resumes the recording of a
// channel to a file:
//
//	uuid_record <uuid> <stop|mask|unmask|pause|resume> <path>
type Record struct {
	Op   RecordOp
	UUID string
	Path string
}

// Channel is the recorded channel.
func (c Record) Channel() string { return c.UUID }

// Repeatable is true: a stop, mask, unmask, pause or resume applied twice leaves the recording as once.
func (Record) Repeatable() bool { return true }

func (c Record) String() string {
	return "uuid_record " + c.UUID + " " + c.Op.String() + " " + c.Path
}

// Validate checks the operation, the uuid and the path.
func (c Record) Validate() error {
	if c.Op < Stop || c.Op > Resume {
		return invalid("uuid_record operation %d", c.Op)
	}
	if err := checkUUID(c.UUID); err != nil {
		return err
	}
	return checkPath(c.Path)
}

// Target is who hears a uuid_broadcast.
type Target string

// The targets of uuid_broadcast: both parties, the channel's own party
// (aleg), the party bridged to it (bleg).
const (
	Both Target = "both"
	ALeg Target = "aleg"
	BLeg Target = "bleg"
)

// Broadcast plays media to the parties of a channel:
//
//	uuid_broadcast <uuid> <media> <both|aleg|bleg>
//
// (mod_commands.c, uuid_broadcast_function).
type Broadcast struct {
	UUID   string
	Media  string // an absolute path on the switch, or a tone_stream://
	Target Target
}

// Channel is the channel whose parties hear the media.
func (c Broadcast) Channel() string { return c.UUID }

// Repeatable is false: played twice, the parties hear the notice twice.
func (Broadcast) Repeatable() bool { return false }

func (c Broadcast) String() string {
	return "uuid_broadcast " + c.UUID + " " + c.Media + " " + string(c.Target)
}

// Validate checks the uuid, the media and the target.
func (c Broadcast) Validate() error {
	if err := checkUUID(c.UUID); err != nil {
		return err
	}
	if !ValidMedia(c.Media) {
		return invalid("media %q", c.Media)
	}
	switch c.Target {
	case Both, ALeg, BLeg:
		return nil
	}
	return invalid("broadcast target %q", string(c.Target))
}

// ValidMedia reports whether uuid_broadcast may play media: an absolute
// path without a ".." or a tone_stream, one argument.
func ValidMedia(media string) bool {
	return mediaRE.MatchString(media) && !strings.Contains(media, "..")
}

// SetVar sets (an empty Value: unsets) a channel variable:
//
//	uuid_setvar <uuid> <name> <value>
type SetVar struct {
	UUID  string
	Name  string
	Value string
}

// Channel is the channel whose variable is set.
func (c SetVar) Channel() string { return c.UUID }

// Repeatable is true: setting a variable to the same value twice.
func (SetVar) Repeatable() bool { return true }

func (c SetVar) String() string {
	return "uuid_setvar " + c.UUID + " " + c.Name + " " + c.Value
}

// Validate checks the uuid, the name, and that the value is one argument
// (empty, or without space, quote or control character).
func (c SetVar) Validate() error {
	if err := checkUUID(c.UUID); err != nil {
		return err
	}
	if !validVarName(c.Name) {
		return invalid("variable name %q", c.Name)
	}
	if strings.ContainsAny(c.Value, " \t\"'\\") || hasControl(c.Value) {
		return invalid("variable value %q", c.Value)
	}
	return nil
}

// Exists asks whether a channel exists (the reply is "true" or "false"):
//
//	uuid_exists <uuid>
type Exists struct {
	UUID string
}

// Channel is the channel asked about.
func (c Exists) Channel() string { return c.UUID }

// Repeatable is true: a question.
func (Exists) Repeatable() bool { return true }

func (c Exists) String() string { return "uuid_exists " + c.UUID }

// Validate checks the uuid.
func (c Exists) Validate() error { return checkUUID(c.UUID) }

// Dump asks for a channel's variables and state as JSON:
//
//	uuid_dump <uuid> json
type Dump struct {
	UUID string
}

// Channel is the channel asked about.
func (c Dump) Channel() string { return c.UUID }

// Repeatable is true: a question.
func (Dump) Repeatable() bool { return true }

func (c Dump) String() string { return "uuid_dump " + c.UUID + " json" }

// Validate checks the uuid.
func (c Dump) Validate() error { return checkUUID(c.UUID) }

// ShowChannels asks for the switch's channels as JSON:
//
//	show channels as json
type ShowChannels struct{}

func (ShowChannels) String() string { return "show channels as json" }

// Validate has nothing to check.
func (ShowChannels) Validate() error { return nil }

// ModuleExists asks whether a module is loaded (the reply is "true" or
// "false"):
//
//	module_exists <module>
type ModuleExists struct {
	Module string // mod_shout, ...
}

func (c ModuleExists) String() string { return "module_exists " + c.Module }

// Validate checks the module's name.
func (c ModuleExists) Validate() error {
	if !moduleRE.MatchString(c.Module) {
		return invalid("module %q", c.Module)
	}
	return nil
}

// GlobalGetVar reads a global variable:
//
//	global_getvar <name>
type GlobalGetVar struct {
	Name string
}

func (c GlobalGetVar) String() string { return "global_getvar " + c.Name }

// Validate checks the name.
func (c GlobalGetVar) Validate() error { return checkGlobalName(c.Name) }

// GlobalSetVar sets a global variable, or with IfEqual only while it still
// holds Expected (switch_core_set_var_conditional, under the globals'
// write lock; an empty Value then unsets it):
//
//	global_setvar <name>=<value>
//	global_setvar <name>=<value>=<expected>
//
// FreeSWITCH splits the argument at its first two "=" (mod_commands.c,
// global_setvar_function), so Value holds no "="; Expected is the rest of
// the line.
type GlobalSetVar struct {
	Name     string
	Value    string
	IfEqual  bool
	Expected string
}

func (c GlobalSetVar) String() string {
	s := "global_setvar " + c.Name + "=" + c.Value
	if c.IfEqual {
		s += "=" + c.Expected
	}
	return s
}

// Validate checks the name, that the value holds no "=", and that
// neither value has a control character.
func (c GlobalSetVar) Validate() error {
	if err := checkGlobalName(c.Name); err != nil {
		return err
	}
	if strings.Contains(c.Value, "=") || hasControl(c.Value) || hasControl(c.Expected) {
		return invalid("global variable value %q (expected %q)", c.Value, c.Expected)
	}
	if !c.IfEqual && c.Expected != "" {
		return invalid("global_setvar expects %q without IfEqual", c.Expected)
	}
	return nil
}

func checkGlobalName(name string) error {
	if !validVarName(name) {
		return invalid("global variable name %q", name)
	}
	return nil
}
