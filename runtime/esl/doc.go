// Package esl is the runtime's event-socket client for one FreeSWITCH
// switch: it connects, authenticates, subscribes, hands every event to a
// Handler from one goroutine in order, runs api and bgapi commands, and
// reconnects with capped, jittered backoff when the connection fails, the
// switch goes silent or a command gets no reply.
//
// The protocol is go-eventsocket's (Dial, Send, ReadEvent), with a relay
// in front of it so that what the switch sends cannot end the process
// (see session). Header names of events are FreeSWITCH's own spelling;
// Event.Get and Event.Var match names case-insensitively as a fallback.
package esl
