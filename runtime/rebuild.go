package runtime

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/recpol/recpol/callstate"
	"github.com/recpol/recpol/table"
)

// rebuild asks the switch, after a (re)connection, which legs are up and
// what they are (`show channels as json`, then `uuid_dump <uuid> json` per
// leg, as FreeSWITCH's mod_commands answers them), hands them to the call
// state machine, and continues there the recordings of an earlier run that
// are still running (SPEC 2.7: a restart loses no call state): a *73
// pressed after a kill -9 unmasks the recording the earlier run masked.
func (e *engine) rebuild(ctx context.Context, c APICommander) {
	res, err := c.API(ctx, "show channels as json")
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
		if !uuidRE.MatchString(row.UUID) {
			continue
		}
		e.mu.Lock()
		known := e.m.Leg(row.UUID) != nil
		e.mu.Unlock()
		if known {
			continue
		}
		dump, err := c.API(ctx, "uuid_dump "+row.UUID+" json")
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
		a := callstate.AdoptedRecording{Leg: it.Leg, Scope: m.Scope, Origin: m.Origin,
			Endpoint: strings.TrimPrefix(m.Endpoint, "device:"), ReadOnly: false,
			Settings: table.Settings{Format: m.Format, RecordSampleRate: m.SampleRate, RecordMinSec: m.RecordMinSec,
				URL: m.URL, Method: m.Method},
			Provenance: provenanceOf(m.Provenance),
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

// provenanceOf is the inverse of provenanceMap.
func provenanceOf(m map[string]string) table.Provenance {
	return table.Provenance{Enabled: m["enabled"], Format: m["format"], TimeLimit: m["time_limit"],
		RecordMinSec: m["record_min_sec"], RecordSampleRate: m["record_sample_rate"],
		RecordOnAnswer: m["record_on_answer"], RecordOnBridge: m["record_on_bridge"], Method: m["method"], URL: m["url"]}
}
