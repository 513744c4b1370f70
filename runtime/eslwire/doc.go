// Package eslwire is the wire codec of FreeSWITCH's event socket: a strict
// frame reader with bounded allocation, the command reader, and the
// text/event-plain and text/event-json encodings with FreeSWITCH's URL
// encoding. It is shared by the runtime's event-socket client (which reads
// every frame from the switch with it before anything else sees the bytes)
// and by the fake switch.
package eslwire
