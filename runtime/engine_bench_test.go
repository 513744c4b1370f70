package runtime

import (
	"context"
	"maps"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/fakeswitch"
	"github.com/recpol/recpol/runtime/esl"
	"github.com/recpol/recpol/runtime/eslcmd"
	"github.com/recpol/recpol/scenario"
	"github.com/recpol/recpol/table"
)

// benchCall is the benchmarks' call setup (testdata/bench/call.json): an
// offnet A-leg classified late by the dialplan, a bridge to the device's
// B-leg, ringing, answer, bridge, hangup.
func benchCall(b *testing.B) scenario.Call {
	b.Helper()
	sc, err := scenario.ParseFile("../testdata/bench/call.json")
	if err != nil {
		b.Fatal(err)
	}
	return sc.Calls[0]
}

// collector keeps the events an esl client hands over.
type collector struct {
	mu  sync.Mutex
	evs []*Event
}

func (c *collector) Connected(string)   {}
func (c *collector) Disconnected(error) {}
func (c *collector) Event(ev *esl.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evs = append(c.evs, (*Event)(ev))
}

func (c *collector) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ev := range c.evs {
		if ev.Name == name {
			n++
		}
	}
	return n
}

// captureCall plays benchCall on the fake switch and returns the channel
// events of the call as the runtime's esl client delivers them: the full
// header sets FreeSWITCH sends, decoded.
func captureCall(b *testing.B) []*Event {
	b.Helper()
	srv := fakeswitch.New(fakeswitch.Config{RecordingsDir: b.TempDir(), Heartbeat: -1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	col := &collector{}
	cl := esl.New(esl.Config{Address: ln.Addr().String(), Password: "ClueCon", Logger: quietLogger()})
	done := make(chan error, 1)
	go func() { done <- cl.Run(ctx, col) }()
	defer func() { cancel(); <-done }()
	if err := srv.WaitClients(ctx, 1); err != nil {
		b.Fatal(err)
	}
	if _, err := srv.StartCall(benchCall(b)); err != nil {
		b.Fatal(err)
	}
	srv.RunUntilIdle()
	for col.count("CHANNEL_HANGUP_COMPLETE") < 2 {
		if ctx.Err() != nil {
			b.Fatal("the call's events did not arrive")
		}
		time.Sleep(time.Millisecond)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	var out []*Event
	for _, ev := range col.evs {
		if strings.HasPrefix(ev.Name, "CHANNEL_") {
			out = append(out, ev)
		}
	}
	return out
}

// recordEvent builds the RECORD_START or RECORD_STOP the switch sends for
// a start command: the leg's full header set from its CHANNEL_ANSWER, with
// the recording's headers.
func recordEvent(answer *Event, name, path string) *Event {
	h := headerMap(answer, 4)
	h["Event-Name"] = name
	h["Record-File-Path"] = path
	if name == "RECORD_STOP" {
		h["Record-Completion-Cause"] = "success-silence"
		h["variable_record_ms"] = "1500"
		h["Event-Date-Timestamp"] = answer.Get("Event-Date-Timestamp") + "0"
	}
	return &Event{Name: name, Headers: h}
}

// headerMap is a map of an event's headers (the first of a repeated one),
// with room for extra more.
func headerMap(ev *Event, extra int) map[string]string {
	if ev.List == nil {
		h := make(map[string]string, len(ev.Headers)+extra)
		maps.Copy(h, ev.Headers)
		return h
	}
	h := make(map[string]string, len(ev.List)+extra)
	for _, x := range ev.List {
		if _, dup := h[x.Name]; !dup {
			h[x.Name] = x.Value
		}
	}
	return h
}

type nopFinisher struct{}

func (nopFinisher) Finish(Finished) {}

// BenchmarkEngineCallSetup feeds the engine one call setup per iteration:
// the call's channel events with the switch's full header sets (about
// 2.5 KB each), the RECORD_START of every recording it starts and the
// RECORD_STOP at hangup, and takes its commands as the sender would.
func BenchmarkEngineCallSetup(b *testing.B) {
	res, err := compiler.Options{}.Compile("../testdata/bench")
	if err != nil {
		b.Fatal(err)
	}
	if res.Table == nil {
		b.Fatal(res.Diagnostics)
	}
	tb := res.Table
	evs := captureCall(b)
	answers := map[string]*Event{}
	size := 0
	for _, ev := range evs {
		if ev.Name == "CHANNEL_ANSWER" {
			answers[ev.Get("Unique-ID")] = ev
		}
		for k, v := range headerMap(ev, 0) {
			size += len(k) + len(v) + 3
		}
	}
	sw := SwitchConfig{Name: "fs1", RecordDir: "/var/spool/rec", LocalDir: "/local/rec"}
	e := newEngine(sw, Classify{Preset: "recpol"}, func() *table.Table { return tb }, nopFinisher{}, quietLogger(), nil)
	starts := 0
	var paths []struct{ uuid, path string }
	b.ReportAllocs()
	b.ReportMetric(float64(size)/float64(len(evs)), "B/event")
	b.ReportMetric(float64(len(evs)), "events/setup")
	b.ResetTimer()
	for b.Loop() {
		paths = paths[:0]
		for _, ev := range evs {
			if ev.Name == "CHANNEL_HANGUP" && len(paths) > 0 {
				for _, p := range paths {
					e.Handle(recordEvent(answers[p.uuid], "RECORD_STOP", p.path))
				}
			}
			e.Handle(ev)
		drain:
			for {
				select {
				case cmd := <-e.out:
					if s, ok := cmd.(eslcmd.RecordStart); ok {
						starts++
						paths = append(paths, struct{ uuid, path string }{s.UUID, s.Path})
						e.Handle(recordEvent(answers[s.UUID], "RECORD_START", s.Path))
					}
				default:
					break drain
				}
			}
		}
	}
	b.StopTimer()
	if starts < 2*b.N {
		b.Fatalf("%d recordings started in %d setups, want 2 each", starts, b.N)
	}
	if e.m.Legs() != 0 {
		b.Fatalf("%d legs left after the calls", e.m.Legs())
	}
}
