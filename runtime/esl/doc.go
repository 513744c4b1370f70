// Package esl is the runtime's event-socket client for one FreeSWITCH
// switch: it connects, authenticates, subscribes, hands every event to a
// Handler from one goroutine in order, runs api and bgapi commands, and
// reconnects with capped, jittered backoff when the connection fails, the
// switch goes silent or a command gets no reply.
//
// The connection is go-eventsocket's (Dial, ReadEvent), with a relay in
// front of it so that what the switch sends cannot end the process (see
// session for what is forwarded); commands are written by the client
// itself and their replies matched in order, so that several can be in
// flight. In short:
//
//   - A frame with an unknown Content-Type (log/data, text/event-json,
//     anything else), a malformed frame, or a reply no command asked for
//     closes the connection with ErrProtocol; go-eventsocket never sees it.
//   - Replies reach the caller exactly as the switch sent them ("-ERR ..."
//     whole, "-USAGE" as a failure); replies go-eventsocket would panic on
//     cannot reach it.
//   - Event headers keep FreeSWITCH's spelling, variable names their
//     original case, values FreeSWITCH's decoding: the client reads them
//     from the wire, not from go-eventsocket's rewritten map. Nothing is
//     lost but a repeated header's later values (the first is kept).
//   - One goroutine drains the library's events into an unbounded queue
//     and never waits on a command or on the Handler, so the library's
//     16-event buffer never stalls a command's reply.
//   - Commands are validated (no CR, LF or NUL), pipelined (written in
//     the order they are issued, without waiting for earlier replies;
//     replies are matched to them in that order, as FreeSWITCH answers
//     them), and bounded by CommandTimeout; a missing reply closes the
//     connection.
//   - bgapi sends its own Job-UUID header (FreeSWITCH honours it), so the
//     BACKGROUND_JOB is matched to its caller even when it arrives before
//     the command's reply is read.
//
// go-eventsocket can only Dial an address, so the relay listens on a
// loopback port for the one connection the library makes. Another local
// process that connected to that port first would be handed the switch's
// greeting, not the password; the attempt then fails and is retried.
package esl
