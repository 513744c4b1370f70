// Package fakeswitch is a test double for FreeSWITCH's inbound event
// socket (mod_event_socket): an event-socket server that plays scripted
// calls (package scenario) on a virtual clock, answers uuid_record and
// related api commands with FreeSWITCH's replies, and writes recordings as
// real WAV (or, with the lame encoder, MP3) files in which each party of a
// call speaks a tone of its own, mixed or split by channel as FreeSWITCH's
// media bugs record them (audio.go). It is a stand-in for tests and demos,
// not a switch; see README.md for what it reproduces and what it does not.
//
// The wire codec (ReadFrame, ParseEventPlain, Event.MarshalPlain,
// URLEncode) is the one the tests also use to read real FreeSWITCH
// captures, so the fake switch's frames are checked by the same rules.
package fakeswitch
