package runtime

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/recpol/recpol/callstate"
	"github.com/recpol/recpol/runtime/eslcmd"
	"github.com/recpol/recpol/table"
)

// Recovery: what the engine does at each (re)connection to its switch, and
// how it replays the intents of an earlier run (see intent.go). At the
// connection, before any event of it is handled, connected adopts the
// intents the engine does not follow; then, off the event path (the
// switch's reconcile loop, owned by Run), reconcile finishes the
// recordings whose leg is gone, recoverIntents finishes or adopts the
// earlier run's intents, and rebuild restores the calls in progress and
// continues their adopted recordings. recheckLoop asks again, while
// connected, about legs that may have ended unseen.

// connected records the switch's Core-UUID and reports whether the switch
// restarted since the last connection.
//
// The intents of recordings the engine does not follow (an earlier run's)
// are adopted at once, before any event of this connection is handled, so
// that the calls they belong to, seen again mid-call, continue those
// recordings instead of starting them a second time; recoverIntents then
// finishes those whose leg is gone.
func (e *engine) connected(coreUUID string) (restarted bool) {
	var its []*intent
	if e.intents != nil {
		its = e.intents.list(e.sw)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	restarted = e.coreUUID != "" && e.coreUUID != coreUUID
	e.coreUUID = coreUUID
	for _, it := range its {
		if e.byPath[it.Path] != nil || (it.CoreUUID != "" && it.CoreUUID != coreUUID) {
			continue
		}
		e.adopted[it.Path] = it
	}
	return restarted
}

// APICommander runs a synchronous api command on a switch.
type APICommander interface {
	API(ctx context.Context, cmd string) (string, error)
}

// reconcile runs after every (re)connection. A recording whose leg no
// longer exists, or any recording after the switch restarted (a new
// Core-UUID), stopped while the connection was down and its RECORD_STOP
// was lost: it is finished from the file on disk.
func (e *engine) reconcile(ctx context.Context, c APICommander, coreUUID string, restarted bool) {
	defer e.rebuild(ctx, c)
	defer e.recoverIntents(ctx, c, coreUUID)
	for _, r := range e.running() {
		gone := restarted
		if !gone {
			res, err := runAPI(ctx, c.API, eslcmd.Exists{UUID: r.Leg.UUID})
			if err != nil {
				continue // try again on the next connection
			}
			gone = strings.TrimSpace(res) == "false"
		}
		e.mu.Lock()
		if !gone {
			r.recheck = true
		} else if cur := e.byPath[r.path]; cur == r {
			e.finishLost(r)
		}
		e.mu.Unlock()
	}
}

// recoverIntents runs after every (re)connection, once the recordings the
// engine follows are reconciled: every intent the engine does not follow
// belongs to an earlier run of the runtime (or its RECORD_STOP was lost).
// When its leg is gone, or the switch restarted since it was written, it is
// finished from its file; otherwise the engine adopts it and finishes it at
// its RECORD_STOP or its leg's hangup.
func (e *engine) recoverIntents(ctx context.Context, c APICommander, coreUUID string) {
	if e.intents == nil {
		return
	}
	for _, it := range e.intents.list(e.sw) {
		e.mu.Lock()
		live := e.byPath[it.Path] != nil
		e.mu.Unlock()
		if live {
			continue
		}
		gone := it.CoreUUID != "" && coreUUID != "" && it.CoreUUID != coreUUID
		if !gone {
			res, err := runAPI(ctx, c.API, eslcmd.Exists{UUID: it.Leg})
			if err != nil {
				continue // the next connection tries again
			}
			gone = strings.TrimSpace(res) == "false"
		}
		e.mu.Lock()
		if gone {
			delete(e.adopted, it.Path)
			e.log.Warn("finishing the recording of an earlier run from its file", "recording", it.Meta.RecordingID, "leg", it.Leg)
			e.finishIntent(it, 0, "recovered")
		} else if e.adopted[it.Path] == nil {
			e.log.Info("adopting a recording of an earlier run: its leg is still up", "recording", it.Meta.RecordingID, "leg", it.Leg)
			e.adopted[it.Path] = it
		}
		e.mu.Unlock()
	}
}

// finishIntent hands the recording of an intent to the store. e.mu is held.
func (e *engine) finishIntent(it *intent, durMS int64, cause string) {
	id := it.Meta.RecordingID
	if !e.intents.claim(id) {
		return
	}
	m := it.Meta
	m.DurationMS = durMS
	m.MaskedRanges = append([]Range{}, m.MaskedRanges...)
	if it.MaskedFromMS != nil {
		// Masked to the end: the store closes an open range (-1) at the
		// duration it reads from the file.
		end := int64(-1)
		if durMS > 0 {
			end = durMS
		}
		m.MaskedRanges = append(m.MaskedRanges, Range{StartMS: *it.MaskedFromMS, EndMS: end})
	}
	_, local := recordingPaths(e.sw, m.Account, id, m.Format)
	in := e.intents
	e.obs("recovered")
	e.fin.Finish(Finished{Meta: m, LocalPath: local, Cause: cause, Done: func() { in.done(id) }})
}

// adoptedLegGone finishes the adopted recordings of a leg that hung up
// without their RECORD_STOP (a start that never took effect). e.mu is held.
func (e *engine) adoptedLegGone(leg string) {
	for p, it := range e.adopted {
		if it.Leg == leg {
			delete(e.adopted, p)
			e.finishIntent(it, 0, "leg gone")
		}
	}
}

// finishLost finishes from its file a running recording whose leg is
// gone and whose RECORD_STOP was lost. e.mu is held.
func (e *engine) finishLost(r *recording) {
	e.forget(r)
	e.m.StopLost(r.Recording, time.Now().UnixMicro())
	e.log.Warn("recording finished while disconnected; finishing it from its file", "recording", r.ID, "leg", r.Leg.UUID)
	e.finish(r, 0, "reconciled")
}

// recheckEvery is how often the legs of recordings that were running
// across a reconnection, and of adopted recordings of an earlier run, are
// asked about again.
const recheckEvery = 5 * time.Second

// recheckLoop asks the switch, every recheckEvery while connected,
// whether the legs of recordings that straddled a reconnection and of
// adopted recordings still exist: a leg can end between the question at
// the reconnection and the subscription taking effect (FreeSWITCH keeps a
// session until its recording files are closed), and its hangup is then
// never seen. A leg that is gone has its recording finished from its file.
func (e *engine) recheckLoop(ctx context.Context, c APICommander, connected func() bool) {
	t := time.NewTicker(recheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if connected() {
			e.recheck(ctx, c)
		}
	}
}

// recheck is one round of recheckLoop.
func (e *engine) recheck(ctx context.Context, c APICommander) {
	e.mu.Lock()
	var recs []*recording
	for _, r := range e.byPath {
		if r.recheck {
			recs = append(recs, r)
		}
	}
	var its []*intent
	for _, it := range e.adopted {
		its = append(its, it)
	}
	var idle []string
	for id, ts := range e.seen {
		if e.lastTS-ts >= e.legIdle.Microseconds() {
			idle = append(idle, id)
		}
	}
	now := e.lastTS
	e.mu.Unlock()
	gone := func(leg string) bool {
		res, err := runAPI(ctx, c.API, eslcmd.Exists{UUID: leg})
		return err == nil && strings.TrimSpace(res) == "false"
	}
	// Past legChecksPerRound idle legs (a connection that lost many
	// hangups), one channel list answers for all of them; without it,
	// legChecksPerRound are asked about one by one, the rest next round.
	if len(idle) > legChecksPerRound {
		if live, ok := e.liveChannels(ctx, c); ok {
			gone = func(leg string) bool { return !live[leg] }
		} else {
			idle = idle[:legChecksPerRound]
		}
	}
	for _, id := range idle {
		if !gone(id) {
			e.mu.Lock()
			if _, ok := e.seen[id]; ok {
				e.seen[id] = e.lastTS // asked again after legIdle
			}
			e.mu.Unlock()
			continue
		}
		// Its hangup was lost: the machine sees it now.
		e.log.Info("forgetting a leg the switch no longer has (its hangup was not seen)", "leg", id)
		e.Handle(&Event{Name: "CHANNEL_HANGUP_COMPLETE", Headers: map[string]string{
			"Unique-ID": id, "Event-Date-Timestamp": strconv.FormatInt(now, 10)}})
	}
	for _, r := range recs {
		if !gone(r.Leg.UUID) {
			continue
		}
		e.mu.Lock()
		if cur := e.byPath[r.path]; cur == r {
			e.finishLost(r)
		}
		e.mu.Unlock()
	}
	for _, it := range its {
		if !gone(it.Leg) {
			continue
		}
		e.mu.Lock()
		if e.adopted[it.Path] == it {
			delete(e.adopted, it.Path)
			e.log.Warn("finishing the recording of an earlier run from its file: its leg is gone", "recording", it.Meta.RecordingID, "leg", it.Leg)
			e.finishIntent(it, 0, "recovered")
		}
		e.mu.Unlock()
	}
}

// liveChannels returns the uuids of the switch's channels (`show channels
// as json`); ok is false when the switch did not answer with a list.
func (e *engine) liveChannels(ctx context.Context, c APICommander) (live map[string]bool, ok bool) {
	res, err := runAPI(ctx, c.API, eslcmd.ShowChannels{})
	if err != nil {
		return nil, false
	}
	var list struct {
		Rows []struct {
			UUID string `json:"uuid"`
		} `json:"rows"`
	}
	if json.Unmarshal([]byte(res), &list) != nil {
		return nil, false
	}
	live = make(map[string]bool, len(list.Rows))
	for _, row := range list.Rows {
		live[row.UUID] = true
	}
	return live, true
}

// continueAdopted is the machine's question whether a recording it
// decides is one an earlier run started: an adopted intent of the same
// leg, scope and origin. e.mu is held.
func (e *engine) continueAdopted(leg string, scope callstate.Scope, origin string) (callstate.Continued, bool) {
	for p, it := range e.adopted {
		m := it.Meta
		if it.Leg != leg || m.Scope != string(scope) || m.Origin != origin {
			continue
		}
		delete(e.adopted, p)
		e.continuing[m.RecordingID] = it
		c := callstate.Continued{ID: m.RecordingID, StartTS: m.Start.UnixMicro(), Format: m.Format,
			MaskedFromMS: it.MaskedFromMS}
		if it.StartTS > 0 {
			c.StartTS = it.StartTS
		}
		for _, rg := range m.MaskedRanges {
			c.Masks = append(c.Masks, callstate.Range{StartMS: rg.StartMS, EndMS: rg.EndMS})
		}
		return c, true
	}
	return callstate.Continued{}, false
}

// rebuild asks the switch, after a (re)connection, which legs are up and
// what they are (`show channels as json`, then `uuid_dump <uuid> json` per
// leg, as FreeSWITCH's mod_commands answers them), hands them to the call
// state machine, and continues there the recordings of an earlier run that
// are still running (SPEC 2.7: a restart loses no call state): a *73
// pressed after a kill -9 unmasks the recording the earlier run masked.
func (e *engine) rebuild(ctx context.Context, c APICommander) {
	res, err := runAPI(ctx, c.API, eslcmd.ShowChannels{})
	if err != nil {
		e.log.Warn("could not list the switch's channels: calls in progress are followed from their next event", "switch", e.sw.Name, "error", err)
		return
	}
	var list struct {
		Rows []struct {
			UUID string `json:"uuid"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(res), &list); err != nil {
		e.log.Warn("unreadable channel list", "switch", e.sw.Name, "error", err)
		return
	}
	var snaps []callstate.Snapshot
	for _, row := range list.Rows {
		if !eslcmd.ValidUUID(row.UUID) {
			continue
		}
		e.mu.Lock()
		known := e.m.Leg(row.UUID) != nil
		e.mu.Unlock()
		if known {
			continue
		}
		dump, err := runAPI(ctx, c.API, eslcmd.Dump{UUID: row.UUID})
		if err != nil {
			continue
		}
		var h map[string]string
		if json.Unmarshal([]byte(dump), &h) != nil {
			continue // "-ERR No such channel!": gone meanwhile
		}
		ev := &Event{Name: "CHANNEL_DATA", Headers: h}
		answer := strings.ToLower(ev.Get("Answer-State"))
		snaps = append(snaps, callstate.Snapshot{Leg: row.UUID, ChannelName: ev.Get("Channel-Name"),
			Direction: ev.Get("Call-Direction"), Dest: ev.Get("Caller-Destination-Number"),
			CallerNum: ev.Get("Caller-Caller-ID-Number"), OtherLeg: ev.Get("Other-Leg-Unique-ID"), Vars: ev,
			Answered: answer == "answered", Media: answer == "early" || answer == "answered",
			Bridged: ev.Var("bridge_uuid") != "" || ev.Var("signal_bond") != ""})
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m.Restore(snaps)
	for p, it := range e.adopted {
		m := it.Meta
		a := callstate.AdoptedRecording{Leg: it.Leg, Scope: callstate.Scope(m.Scope), Origin: m.Origin,
			Endpoint: strings.TrimPrefix(m.Endpoint, "device:"), ReadOnly: false,
			Settings: table.Settings{Format: m.Format, RecordSampleRate: m.SampleRate, RecordMinSec: m.RecordMinSec,
				URL: m.URL, Method: m.Method},
			Provenance: table.ProvenanceFromMetadata(m.Provenance),
			Continued: callstate.Continued{ID: m.RecordingID, StartTS: m.Start.UnixMicro(), Format: m.Format,
				MaskedFromMS: it.MaskedFromMS}}
		if it.StartTS > 0 {
			a.StartTS = it.StartTS
		}
		for _, rg := range m.MaskedRanges {
			a.Masks = append(a.Masks, callstate.Range{StartMS: rg.StartMS, EndMS: rg.EndMS})
		}
		e.continuing[m.RecordingID] = it
		cmds, ok := e.m.Adopt(a)
		if !ok {
			delete(e.continuing, m.RecordingID)
			continue
		}
		delete(e.adopted, p)
		e.do(cmds)
	}
}
