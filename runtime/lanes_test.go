package runtime

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/recpol/recpol/runtime/esl"
	"github.com/recpol/recpol/table"
)

// TestSendNeverShedsARecording: with the command queue full (the switch
// far behind), a tag is shed at once, while a recording command waits for
// room and goes out once the sender takes one.
func TestSendNeverShedsARecording(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	e := newEngine(SwitchConfig{Name: "fs", RecordDir: "/rec", LocalDir: "/rec"}, Classify{Preset: "recpol"},
		func() *table.Table { return nil }, nopFinisher{}, quietLogger(), func(what string) {
			mu.Lock()
			seen[what]++
			mu.Unlock()
		})
	for len(e.out) < cap(e.out) {
		e.out <- "uuid_setvar a recpol_recording_ids r1"
	}
	e.send("uuid_setvar b recpol_recording_ids r2")
	sent := make(chan struct{})
	go func() {
		e.send("uuid_record c start /rec/r3.wav")
		close(sent)
	}()
	waitFor(t, "the start to wait for room", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen["command_waited"] == 1
	})
	select {
	case <-sent:
		t.Fatal("a recording command went into a full queue")
	default:
	}
	<-e.out // the sender takes one
	<-sent
	var last string
	for len(e.out) > 0 {
		last = <-e.out
	}
	if last != "uuid_record c start /rec/r3.wav" {
		t.Errorf("last command queued %q, want the start", last)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["command_dropped"] != 1 || seen["command_waited"] != 1 {
		t.Errorf("dropped %d (want the tag only), waited %d (want the start)", seen["command_dropped"], seen["command_waited"])
	}
}

// TestEventLag: the gauge says how long the event handled last waited
// between the connection and the engine.
func TestEventLag(t *testing.T) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "lag"})
	e := newEngine(SwitchConfig{Name: "fs", RecordDir: "/rec", LocalDir: "/rec"}, Classify{Preset: "recpol"},
		func() *table.Table { return nil }, nopFinisher{}, quietLogger(), nil)
	sr := &switchRun{engine: e, lag: g}
	sr.Event(&esl.Event{Name: "HEARTBEAT", Headers: map[string]string{"Event-Name": "HEARTBEAT"}, Received: time.Now().Add(-2 * time.Second)})
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	if v := m.GetGauge().GetValue(); v < 2 || v > 60 {
		t.Errorf("lag %v s, want about 2", v)
	}
}
