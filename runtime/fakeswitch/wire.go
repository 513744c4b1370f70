package fakeswitch

import "github.com/recpol/recpol/runtime/eslwire"

// The wire codec lives in package eslwire, shared with the runtime's
// event-socket client; these names keep the fake switch's API unchanged.

// Limits of the frame reader: a peer cannot make it allocate more.
const (
	MaxHeaderLine = eslwire.MaxHeaderLine
	MaxHeaders    = eslwire.MaxHeaders
	MaxBody       = eslwire.MaxBody
)

// Content types of the frames mod_event_socket writes.
const (
	TypeAuthRequest      = eslwire.TypeAuthRequest
	TypeCommandReply     = eslwire.TypeCommandReply
	TypeAPIResponse      = eslwire.TypeAPIResponse
	TypeEventPlain       = eslwire.TypeEventPlain
	TypeEventJSON        = eslwire.TypeEventJSON
	TypeDisconnectNotice = eslwire.TypeDisconnectNotice
)

// DisconnectText is the body of FreeSWITCH's text/disconnect-notice.
const DisconnectText = eslwire.DisconnectText

// Header is one "Name: value" line, in wire order.
type Header = eslwire.Header

// Frame is one message of the event socket.
type Frame = eslwire.Frame

// Event is a FreeSWITCH event with ordered, decoded headers.
type Event = eslwire.Event

// Command is one command a client sent.
type Command = eslwire.Command

// Errors of the codec.
var (
	ErrLineTooLong   = eslwire.ErrLineTooLong
	ErrTooManyHeader = eslwire.ErrTooManyHeader
	ErrBadHeader     = eslwire.ErrBadHeader
	ErrBadLength     = eslwire.ErrBadLength
)

// Functions of the codec.
var (
	ReadFrame       = eslwire.ReadFrame
	ReadCommand     = eslwire.ReadCommand
	AppendFrame     = eslwire.AppendFrame
	ParseEventPlain = eslwire.ParseEventPlain
	URLEncode       = eslwire.URLEncode
	URLDecode       = eslwire.URLDecode
)

// undef is what FreeSWITCH writes for a header whose value is empty.
const undef = "_undef_"

func getHeader(hs []Header, name string) string {
	return Frame{Headers: hs}.Get(name)
}
