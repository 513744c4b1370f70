package runtime

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/recpol/recpol/runtime/esl"
	"github.com/recpol/recpol/runtime/eslcmd"
	"github.com/recpol/recpol/table"
)

// observations counts an engine's metric observations.
type observations struct {
	mu   sync.Mutex
	seen map[string]int
}

func (o *observations) obs(what string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen == nil {
		o.seen = map[string]int{}
	}
	o.seen[what]++
}

func (o *observations) get(what string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seen[what]
}

// logRecords is a slog.Handler that keeps the records at ERROR.
type logRecords struct {
	mu     sync.Mutex
	errors []string
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecords) WithGroup(string) slog.Handler            { return h }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		return nil
	}
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.Key + "=" + a.Value.String()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.errors = append(h.errors, line)
	return nil
}

func (h *logRecords) get() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.errors...)
}

// fillQueue fills the engine's command queue with tags.
func fillQueue(e *engine) {
	for len(e.out) < cap(e.out) {
		e.out <- eslcmd.SetVar{UUID: "a", Name: "recpol_recording_ids", Value: "r1"}
	}
}

// TestFullQueueAppliesBackPressure: with the command queue full (the
// switch far behind), a command waits for room, whatever it is, and goes
// out in order once the sender takes one; nothing is dropped.
func TestFullQueueAppliesBackPressure(t *testing.T) {
	for _, cmd := range []eslcmd.ChannelCommand{
		eslcmd.SetVar{UUID: "b", Name: "recpol_recording_ids", Value: "r2"},
		eslcmd.Record{Op: eslcmd.Mask, UUID: "c", Path: "/rec/r3.wav"},
	} {
		t.Run(cmd.String(), func(t *testing.T) {
			o := &observations{}
			e := newEngine(SwitchConfig{Name: "fs", RecordDir: "/rec", LocalDir: "/rec"}, Classify{Preset: "recpol"},
				func() *table.Table { return nil }, nopFinisher{}, quietLogger(), o.obs)
			fillQueue(e)
			sent := make(chan struct{})
			go func() {
				e.mu.Lock()
				defer e.mu.Unlock()
				e.send(cmd)
				close(sent)
			}()
			waitFor(t, "the command to wait for room", func() bool { return o.get("command_waited") == 1 })
			select {
			case <-sent:
				t.Fatal("a command went into a full queue")
			default:
			}
			<-e.out // the sender takes one
			<-sent
			var last eslcmd.ChannelCommand
			for len(e.out) > 0 {
				last = <-e.out
			}
			if diff := cmp.Diff(cmd, last); diff != "" {
				t.Errorf("last command queued (-want +got):\n%s", diff)
			}
			if n := o.get("command_dropped"); n != 0 {
				t.Errorf("%d commands dropped", n)
			}
		})
	}
}

// TestFullQueueFailsLoudly: once the sender is gone a full queue will not
// drain: a command fails at once, with an ERROR line naming it and the
// command_dropped metric, and a start that cannot go out is refused to
// the machine (no recording is left waiting for a RECORD_START).
func TestFullQueueFailsLoudly(t *testing.T) {
	o := &observations{}
	logs := &logRecords{}
	tb := exampleTable(t)
	e := newEngine(SwitchConfig{Name: "fs1", RecordDir: "/rec", LocalDir: "/rec"}, Classify{Preset: "recpol"},
		func() *table.Table { return tb }, nopFinisher{}, slog.New(logs), o.obs)
	e.stopSending()
	fillQueue(e)
	e.Handle(ev("CHANNEL_ANSWER", "aaaa-1", 0, "Call-Direction", "inbound", "Channel-Name", "sofia/external/+15551234",
		"Caller-Caller-ID-Number", "+15551234", "Caller-Destination-Number", "2000",
		"variable_recpol_account", "pci-callcentre", "variable_recpol_network", "offnet"))
	if o.get("requested") == 0 {
		t.Fatal("the call started no recording: the test proves nothing")
	}
	if got, want := o.get("command_dropped"), o.get("command_waited"); got == 0 || got != want {
		t.Errorf("%d commands dropped, %d waited: want every command that found the queue full dropped", got, want)
	}
	if got, want := o.get("failed"), o.get("requested"); got != want {
		t.Errorf("%d starts refused to the machine, want %d", got, want)
	}
	if n := e.sizes().recordings; n != 0 {
		t.Errorf("%d recordings left requested", n)
	}
	var starts int
	for _, l := range logs.get() {
		if strings.HasPrefix(l, "command not sent: the sender has stopped command=uuid_record aaaa-1 start ") {
			starts++
		}
	}
	if starts != o.get("requested") {
		t.Errorf("ERROR lines for the starts: %d, want %d; lines:\n%s", starts, o.get("requested"), strings.Join(logs.get(), "\n"))
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

// TestStartDelay: each start going out observes the time since the event
// that decided it was read off the connection; commands that are not
// starts observe nothing, and an event read long ago is not lost in a
// fresh one.
func TestStartDelay(t *testing.T) {
	tb := exampleTable(t)
	var (
		mu   sync.Mutex
		seen []time.Duration
	)
	e := newEngine(SwitchConfig{Name: "fs", RecordDir: "/rec", LocalDir: "/rec"}, Classify{Preset: "recpol"},
		func() *table.Table { return tb }, nopFinisher{}, quietLogger(), nil)
	e.startDelay = func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, d)
	}
	answer := ev("CHANNEL_ANSWER", "aaaa-1", 0, "Call-Direction", "inbound", "Channel-Name", "sofia/external/+15551234",
		"Caller-Caller-ID-Number", "+15551234", "Caller-Destination-Number", "2000",
		"variable_recpol_account", "pci-callcentre", "variable_recpol_network", "offnet")
	answer.Received = time.Now().Add(-2 * time.Second)
	e.Handle(answer)
	if len(e.out) == 0 {
		t.Fatal("the call started no recording: the test proves nothing")
	}
	c := &slowCommander{release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.sender(ctx, c); close(done) }()
	defer func() { cancel(); <-done }()
	var starts, others int
	waitFor(t, "the commands", func() bool {
		starts, others = 0, 0
		for _, cmd := range c.sent() {
			if strings.Contains(cmd, " start ") {
				starts++
			} else {
				others++
			}
		}
		return starts > 0 && starts+others == len(c.sent()) && len(e.out) == 0
	})
	waitFor(t, "every start observed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= starts
	})
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != starts {
		t.Errorf("%d delays observed for %d starts (and %d other commands)", len(seen), starts, others)
	}
	for _, d := range seen {
		if d < 2*time.Second || d > time.Minute {
			t.Errorf("start delay %v, want about 2 s (the event was read 2 s before it was handled)", d)
		}
	}
	if !e.received.IsZero() {
		t.Errorf("the engine still holds the handled event's time %v", e.received)
	}
}
