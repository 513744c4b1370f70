package fakeswitch

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/recpol/recpol/scenario"
)

// TestManyCalls places calls from Go, overlapping on the virtual clock,
// records each callee and checks every call ends with its recording.
func TestManyCalls(t *testing.T) {
	srv, addr := startServer(t, Config{})
	c := dialRaw(t, addr)
	c.login(t, "")
	const n = 100
	var callees []string
	for i := 0; i < n; i++ {
		call := twoLegCall(fmt.Sprintf("call-%d", i), 4100+int64(i%7)*1000)
		call.StartMS = int64(i) * 10
		uuids, err := srv.StartCall(call)
		if err != nil {
			t.Fatal(err)
		}
		callees = append(callees, uuids["b1"])
	}
	srv.Advance(4050 * time.Millisecond) // every call bridged (the last at 2990+1010), none hung up
	for i, u := range callees {
		p := filepath.Join(srv.cfg.RecordingsDir, fmt.Sprintf("%d.wav", i))
		if got := c.api(t, "uuid_record "+u+" start "+p); got != "+OK Success\n" {
			t.Fatalf("call %d: %q", i, got)
		}
	}
	srv.RunUntilIdle()
	if got := srv.Channels(); len(got) != 0 {
		t.Errorf("%d channels still up", len(got))
	}
	files := srv.Files()
	if len(files) != n {
		t.Fatalf("%d files, want %d", len(files), n)
	}
	for _, f := range files {
		if f.Cause != "success-silence" || f.Deleted || f.Samples == 0 {
			t.Errorf("%s: %+v", f.Path, f)
		}
	}
}

// TestSteppingAndTransfer drives the clock step by step and checks a
// transfer changes the leg's destination on later events.
func TestSteppingAndTransfer(t *testing.T) {
	srv, addr := startServer(t, Config{Heartbeat: -1})
	c := dialRaw(t, addr)
	c.login(t, "CHANNEL_CREATE CHANNEL_EXECUTE CHANNEL_ANSWER CHANNEL_HANGUP")
	sc := &scenario.Scenario{Calls: []scenario.Call{{
		ID:   "t",
		Legs: []scenario.Leg{{Name: "a", UUID: "uuid-a", CallerIDNumber: "1001", DestinationNumber: "1002"}},
		Steps: []scenario.Step{
			{AtMS: 0, Do: "create", Leg: "a"},
			{AtMS: 100, Do: "answer", Leg: "a"},
			{AtMS: 500, Do: "transfer", Leg: "a", DestinationNumber: "2000"},
			{AtMS: 900, Do: "hangup", Leg: "a", Cause: "USER_BUSY"},
		},
	}}}
	if err := srv.Load(sc); err != nil {
		t.Fatal(err)
	}
	if sc.Calls[0].Steps[0].Cause != "" {
		t.Error("Load changed the caller's scenario")
	}
	type seen struct {
		Name, Dest, Cause string
		At                time.Duration
	}
	var got []seen
	for srv.Step() {
		at := srv.Now()
		for _, e := range srv.Events()[len(got):] {
			got = append(got, seen{e.Event.Name(), e.Event.Get("Caller-Destination-Number"), e.Event.Get("Hangup-Cause"), at})
		}
	}
	want := []seen{
		{"CHANNEL_CREATE", "1002", "", 0},
		{"CHANNEL_ANSWER", "1002", "", 100 * time.Millisecond},
		{"CHANNEL_EXECUTE", "1002", "", 500 * time.Millisecond},
		{"CHANNEL_HANGUP", "2000", "USER_BUSY", 900 * time.Millisecond},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if srv.Pending() != 0 {
		t.Errorf("%d actions pending", srv.Pending())
	}
	for range want {
		c.nextEvent(t)
	}
}

// TestRealtime plays a short call following the wall clock: the scenario
// completes and every step ran at its virtual time.
func TestRealtime(t *testing.T) {
	srv, _ := startServer(t, Config{Realtime: true, Heartbeat: -1})
	sc := &scenario.Scenario{Calls: []scenario.Call{{
		ID:   "rt",
		Legs: []scenario.Leg{{Name: "a"}},
		Steps: []scenario.Step{
			{AtMS: 0, Do: "create", Leg: "a"},
			{AtMS: 50, Do: "answer", Leg: "a"},
			{AtMS: 150, Do: "hangup", Leg: "a"},
		},
	}}}
	if err := srv.Play(context.Background(), sc); err != nil {
		t.Fatal(err)
	}
	if got := srv.Now(); got < 150*time.Millisecond {
		t.Errorf("virtual time %v after the call, before its hangup", got)
	}
	if got := srv.Channels(); len(got) != 0 {
		t.Errorf("channels up: %v", got)
	}
}

// TestRealtimeIgnoresClients: in Realtime mode the clock does not wait
// for the clients to be quiet (Quiet of an hour, a client that just sent
// a command and reads nothing): the call plays on the wall clock.
func TestRealtimeIgnoresClients(t *testing.T) {
	srv, addr := startServer(t, Config{Realtime: true, Quiet: time.Hour, Heartbeat: -1})
	c := dialRaw(t, addr)
	c.login(t, "all")
	done := make(chan error, 1)
	go func() {
		done <- srv.Play(context.Background(), &scenario.Scenario{Calls: []scenario.Call{twoLegCall("rt", 1600)}})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(guard):
		t.Fatal("the realtime clock waited for a quiet client")
	}
	if got := srv.Now(); got < 1600*time.Millisecond {
		t.Errorf("virtual time %v after the call, before its hangup", got)
	}
}

// TestRunStopsOnCancel checks Run returns when its context ends.
func TestRunStopsOnCancel(t *testing.T) {
	srv, _ := startServer(t, Config{Realtime: true})
	if _, err := srv.StartCall(twoLegCall("long", 3600000)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v, want context.Canceled", err)
	}
}
