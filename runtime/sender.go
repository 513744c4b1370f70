package runtime

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/recpol/recpol/callstate"
	"github.com/recpol/recpol/runtime/esl"
	"github.com/recpol/recpol/runtime/eslcmd"
)

// Commander sends event-socket commands to one switch. BgAPI returns the
// body of the BACKGROUND_JOB ("+OK ..." or "-ERR ...").
type Commander interface {
	BgAPI(ctx context.Context, cmd string) (string, error)
}

// jobTimer is a Commander that also says when the switch ran a command
// (its BACKGROUND_JOB's Event-Date-Timestamp, µs): esl.Client.
type jobTimer interface {
	BgAPIJob(ctx context.Context, cmd string) (string, int64, error)
}

// commandQueueSize is how many commands the engine may queue ahead of the
// sender's dispatcher (which moves them at once to their leg's queue).
const commandQueueSize = 4096

// senderInFlight bounds how many commands may wait for their
// BACKGROUND_JOB at once (FreeSWITCH runs each in a thread of its own).
// A command holds its slot for a whole round trip through the switch's
// event stream, so the bound caps the command rate at senderInFlight per
// round trip: at 200 call setups/s (about 1,000 commands/s) a round trip
// of a few hundred milliseconds under load still fits.
const senderInFlight = 1024

// sender sends queued commands until ctx is done: in order per leg, legs
// in parallel. The commands of one leg go out one after the other, each
// once the previous one's BACKGROUND_JOB came (FreeSWITCH runs each bgapi
// job in its own thread: only waiting orders them); different legs do not
// wait for each other, so a command the switch is slow to answer holds up
// its own leg only. Its workers are its own: it returns once they have.
// Commands still queued when ctx is done are not sent (a start keeps its
// intent, which the next run resolves); one line says how many.
func (e *engine) sender(ctx context.Context, c Commander) {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		queues = map[string][]eslcmd.ChannelCommand{} // by leg, while its worker runs
		// Recording commands (start, stop, mask, unmask, pause, resume)
		// and the others (tags, recording_follow_transfer) have slots of
		// their own: a burst of tags never holds up a start.
		slots    = make(chan struct{}, senderInFlight)
		slotsLow = make(chan struct{}, senderInFlight/4)
	)
	defer func() {
		wg.Wait()
		e.stopSending()
		unsent := len(e.out)
		for _, q := range queues {
			unsent += len(q)
		}
		if unsent > 0 {
			e.log.Warn("the runtime is stopping: queued commands not sent", "commands", unsent)
		}
	}()
	work := func(leg string) {
		defer wg.Done()
		for {
			mu.Lock()
			q := queues[leg]
			if len(q) == 0 {
				delete(queues, leg)
				mu.Unlock()
				return
			}
			cmd := q[0]
			queues[leg] = q[1:]
			mu.Unlock()
			pool := slotsLow
			if isRecordCommand(cmd) {
				pool = slots
			}
			select {
			case pool <- struct{}{}:
			case <-ctx.Done():
				mu.Lock()
				queues[leg] = append([]eslcmd.ChannelCommand{cmd}, queues[leg]...) // counted as unsent
				mu.Unlock()
				return
			}
			e.sendOne(ctx, c, cmd)
			<-pool
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case cmd := <-e.out:
			leg := cmd.Channel()
			mu.Lock()
			q, running := queues[leg]
			queues[leg] = append(q, cmd)
			mu.Unlock()
			if !running {
				wg.Add(1)
				go work(leg)
			}
		}
	}
}

// stopSending tells send that the sender is gone: a full queue will not
// drain.
func (e *engine) stopSending() {
	e.stopOnce.Do(func() { close(e.senderStopped) })
}

// sendOne sends one command. A command that could not reach the switch
// (no connection, the connection lost before its reply) is kept and sent
// again once the client has reconnected, in order: a mask issued while the
// switch is unreachable is not lost. Every recording command is idempotent
// on the switch (a second start of a path that records answers +OK and
// starts nothing), so sending one twice is harmless. A command that is not
// (eslcmd's Repeatable: a broadcast) is sent again only when it never left
// (no connection); one whose reply was lost is counted failed.
func (e *engine) sendOne(ctx context.Context, c Commander, cmd eslcmd.ChannelCommand) {
	defer e.commands.Add(-1)
	if decided := e.writeIntent(cmd); !decided.IsZero() && e.startDelay != nil {
		// How long the start took inside the runtime (its command is
		// written next).
		e.startDelay(time.Since(decided))
	}
	line := cmd.String()
	delay := 20 * time.Millisecond
	jt, timed := c.(jobTimer)
	for n := 0; ; n++ {
		var res string
		var at int64
		var err error
		if timed {
			res, at, err = jt.BgAPIJob(ctx, line)
		} else {
			res, err = c.BgAPI(ctx, line)
		}
		if err == nil && strings.HasPrefix(res, "+OK") {
			if n > 0 {
				e.log.Info("command sent after the switch came back", "command", line, "attempts", n+1)
			}
			e.ranAt(cmd, at)
			return
		}
		if ctx.Err() != nil {
			// Shutting down: whether the switch ran the command is
			// unknown; a start keeps its intent, which the next run
			// resolves.
			return
		}
		if err == nil || !unreached(err) {
			e.commandFailed(cmd, res, err)
			return
		}
		if !cmd.Repeatable() && !errors.Is(err, esl.ErrNotConnected) {
			// It may have reached the switch (its reply was late or
			// lost): sent again, it could take effect twice.
			e.commandFailed(cmd, res, err)
			return
		}
		if n == 0 {
			e.log.Warn("switch unreachable: command kept until it is back", "command", line, "error", err)
			e.obs("command_deferred")
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, time.Second)
	}
}

// writeIntent writes the intent of a start command before the command
// goes out: a recording the switch runs always has its intent on disk.
// A mask or unmask rewrites it with the recording's masking as it stands.
// For a start it returns when the event that decided it was read (zero
// for other commands), taken under the same lock, for startDelay.
func (e *engine) writeIntent(cmd eslcmd.ChannelCommand) (decided time.Time) {
	var it *intent
	switch c := cmd.(type) {
	case eslcmd.RecordStart:
		e.mu.Lock()
		if r := e.byPath[c.Path]; r != nil {
			decided = r.decided
		}
		it = e.unwritten[c.Path]
		delete(e.unwritten, c.Path)
		e.mu.Unlock()
	case eslcmd.Record:
		if e.intents == nil || c.Op != eslcmd.Mask && c.Op != eslcmd.Unmask {
			return
		}
		e.mu.Lock()
		if r := e.byPath[c.Path]; r != nil && (r.State == callstate.Requested || r.State == callstate.Running) {
			it = e.intentOf(r)
		}
		e.mu.Unlock()
	}
	if it == nil || e.intents == nil {
		return
	}
	if err := e.intents.write(it); err != nil {
		e.log.Error("writing a recording intent failed: the recording is not protected against a crash of the runtime",
			"recording", it.Meta.RecordingID, "error", err)
		e.obs("intent_failed")
	}
	return
}

// unreached reports whether a command's error means it may not have
// reached the switch, so that it is worth sending again.
func unreached(err error) bool {
	return errors.Is(err, esl.ErrNotConnected) || errors.Is(err, esl.ErrConnectionLost) || errors.Is(err, esl.ErrCommandTimeout)
}

// isRecordCommand reports whether a command is one a recording needs:
// its start, stop, mask and pause, and its consent announcement (a
// recording must not go on without the notice the policy asks).
func isRecordCommand(cmd eslcmd.ChannelCommand) bool {
	switch cmd.(type) {
	case eslcmd.RecordStart, eslcmd.Record, eslcmd.Broadcast:
		return true
	}
	return false
}

// commandQueueWait bounds how long send waits for room in a full command
// queue: the sender's dispatcher moves commands off the queue without
// taking any lock of the engine's, so only a sender that stopped, or
// never started, leaves it full that long.
const commandQueueWait = 5 * time.Second

// send queues a command for the sender. e.mu is held.
//
// A command that does not validate is refused. A full queue (the switch
// far behind) applies back-pressure: send waits for room, holding the
// engine (events wait in the client's queue meanwhile). Only when the
// sender is gone, or the queue stays full for commandQueueWait, does the
// command fail, loudly: an ERROR line and the command_dropped metric; a
// start that fails so is refused to the machine, as a start the switch
// refused.
func (e *engine) send(cmd eslcmd.ChannelCommand) {
	if err := cmd.Validate(); err != nil {
		e.log.Error("refusing to send an invalid command", "command", cmd.String(), "error", err)
		e.obs("command_invalid")
		e.unsent(cmd)
		return
	}
	e.commands.Add(1) // until sendOne is done with it
	select {
	case e.out <- cmd:
		return
	default:
	}
	e.obs("command_waited")
	t := time.NewTimer(commandQueueWait)
	defer t.Stop()
	why := "the command queue stayed full"
	select {
	case e.out <- cmd:
		return
	case <-t.C:
	case <-e.senderStopped:
		why = "the sender has stopped"
	}
	e.commands.Add(-1)
	e.log.Error("command not sent: "+why, "command", cmd.String(), "queued", len(e.out))
	e.obs("command_dropped")
	e.unsent(cmd)
}

// unsent settles a command that will not be sent: a start that did not go
// out is a recording that did not start. e.mu is held.
func (e *engine) unsent(cmd eslcmd.ChannelCommand) {
	if c, ok := cmd.(eslcmd.RecordStart); ok {
		e.startFailed(c.Path)
	}
}

// startFailed tells the machine that the start of the recording to path
// did not take: no RECORD_START or RECORD_STOP will follow. e.mu is held.
func (e *engine) startFailed(path string) {
	_, unwritten := e.unwritten[path] // its intent never reached the log
	delete(e.unwritten, path)
	r := e.byPath[path]
	if r == nil || r.State != callstate.Requested {
		return
	}
	e.forget(r)
	if e.intents != nil && !unwritten {
		e.intents.forget(r.ID)
	}
	e.obs("failed")
	e.do(e.m.Handle(&callstate.Event{Kind: callstate.StartRefused, Rec: r.ID}))
}

// commandFailed handles a refused command: a start that failed means no
// RECORD_START or RECORD_STOP will follow.
func (e *engine) commandFailed(cmd eslcmd.ChannelCommand, res string, err error) {
	e.log.Warn("switch refused a command", "command", cmd.String(), "reply", strings.TrimSpace(res), "error", err)
	refused := err == nil || errors.Is(err, esl.ErrRejected)
	if c, ok := cmd.(eslcmd.RecordStart); ok && refused {
		// Only a refusal says the recording did not start; after a
		// timeout it may have, and the reconciliation settles it.
		e.mu.Lock()
		e.startFailed(c.Path)
		e.mu.Unlock()
	}
}

// ranAt notes when the switch ran a recording's mask or unmask.
func (e *engine) ranAt(cmd eslcmd.ChannelCommand, at int64) {
	c, ok := cmd.(eslcmd.Record)
	if at <= 0 || !ok || (c.Op != eslcmd.Mask && c.Op != eslcmd.Unmask) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.byPath[c.Path]; r != nil {
		r.switchMasks = append(r.switchMasks, switchMask{mask: c.Op == eslcmd.Mask, at: at})
	}
}
