package runtime

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/callstate"
	"github.com/recpol/recpol/runtime/eslcmd"
	"github.com/recpol/recpol/table"
)

// TestStartCommand: a recording's start carries its settings in its own
// recording variables, as the switch has always been sent them.
func TestStartCommand(t *testing.T) {
	tests := []struct {
		name     string
		settings table.Settings
		readOnly bool
		want     string
	}{
		{"mono", table.Settings{TimeLimit: 10800, RecordMinSec: 2, RecordSampleRate: 8000}, false,
			"uuid_record leg-1 start /rec/acme/r1.wav 10800 {RECORD_MIN_SEC=2,record_sample_rate=8000}"},
		{"stereo", table.Settings{TimeLimit: 60, RecordMinSec: 0, RecordSampleRate: 16000, Stereo: true}, false,
			"uuid_record leg-1 start /rec/acme/r1.wav 60 {RECORD_MIN_SEC=0,record_sample_rate=16000,RECORD_STEREO=true}"},
		{"read only wins over stereo", table.Settings{TimeLimit: 0, RecordMinSec: 1, RecordSampleRate: 8000, Stereo: true}, true,
			"uuid_record leg-1 start /rec/acme/r1.wav 0 {RECORD_MIN_SEC=1,record_sample_rate=8000,RECORD_READ_ONLY=true}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recording{Recording: &callstate.Recording{Leg: &callstate.Leg{UUID: "leg-1"}, Settings: tt.settings, ReadOnly: tt.readOnly},
				path: "/rec/acme/r1.wav"}
			cmd := startCommand(r)
			if err := cmd.Validate(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, cmd.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestInvalidCommandNeverQueued: a command with an unsafe value is
// refused before the queue, loudly (command_invalid), whatever sends it.
func TestInvalidCommandNeverQueued(t *testing.T) {
	o := &observations{}
	e := newEngine(SwitchConfig{Name: "fs", RecordDir: "/rec", LocalDir: "/rec"}, Classify{Preset: "recpol"},
		func() *table.Table { return nil }, nopFinisher{}, quietLogger(), o.obs)
	e.mu.Lock()
	e.send(eslcmd.SetVar{UUID: "leg-1", Name: "recpol_recording_ids", Value: "r1\napi shutdown"})
	e.send(eslcmd.Record{Op: eslcmd.Mask, UUID: "leg 1", Path: "/rec/r1.wav"})
	e.do([]callstate.Command{{Kind: callstate.Announce, Leg: "leg-1", Value: "/sounds/../../etc/passwd", Target: "both"}})
	e.mu.Unlock()
	if n := len(e.out); n != 0 {
		t.Errorf("%d commands queued, want none", n)
	}
	if got := [2]int{o.get("command_invalid"), o.get("announce_refused")}; got != [2]int{2, 1} {
		t.Errorf("command_invalid, announce_refused = %v, want [2 1]", got)
	}
}
