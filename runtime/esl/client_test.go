package esl

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiorix/go-eventsocket/eventsocket"
	"github.com/google/go-cmp/cmp"
	"github.com/recpol/recpol/fakeswitch"
	"github.com/recpol/recpol/runtime/eslwire"
	"github.com/recpol/recpol/scenario"
)

// twoLegCall is a caller leg whose variables the dialplan sets late, and
// a callee leg carrying its own from creation.
func twoLegCall(id string) scenario.Call {
	return scenario.Call{ID: id,
		Legs: []scenario.Leg{
			{Name: "a", CallerIDNumber: "1001", DestinationNumber: "1002"},
			{Name: "b", Parent: "a", DestinationNumber: "1002", Variables: map[string]string{"Recpol_Device": "d2"}},
		},
		Steps: []scenario.Step{
			{AtMS: 0, Do: scenario.DoCreate, Leg: "a"},
			{AtMS: 10, Do: scenario.DoSet, Leg: "a", Variables: map[string]string{"Recpol_Account": "acme+co 100%"}},
			{AtMS: 20, Do: scenario.DoExecute, Leg: "a", Application: "bridge"},
			{AtMS: 30, Do: scenario.DoCreate, Leg: "b"},
			{AtMS: 1000, Do: scenario.DoAnswer, Leg: "b"},
			{AtMS: 1000, Do: scenario.DoAnswer, Leg: "a"},
			{AtMS: 1010, Do: scenario.DoBridge, Leg: "a", Other: "b"},
			{AtMS: 2000, Do: scenario.DoDTMF, Leg: "a", Digits: "7"},
			{AtMS: 3000, Do: scenario.DoHangup, Leg: "a"},
		}}
}

func TestEventsNormalized(t *testing.T) {
	srv, addr := startSwitch(t, "127.0.0.1:0", fakeswitch.Config{})
	_, rec := runClient(t, testConfig(addr))
	_, core := rec.waitConnected(t, 0)
	if core != srv.CoreUUID() {
		t.Errorf("Connected(%q), switch Core-UUID %q", core, srv.CoreUUID())
	}
	uuids, err := srv.StartCall(twoLegCall("norm"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := uuids["a"], uuids["b"]
	srv.RunUntilIdle()
	tests := []struct {
		name, event, leg string
		headers          []string // looked up with Get
		vars             []string // looked up with Var
		want             map[string]string
	}{
		{"caller create, no variables yet", "CHANNEL_CREATE", a,
			[]string{"Unique-ID", "Channel-Call-UUID", "Core-UUID"}, []string{"Recpol_Account"},
			map[string]string{"Unique-ID": a, "Channel-Call-UUID": a, "Core-UUID": srv.CoreUUID(), "var Recpol_Account": ""}},
		{"callee create names its caller", "CHANNEL_CREATE", b,
			[]string{"Unique-ID", "Other-Leg-Unique-ID", "variable_Recpol_Device"}, []string{"recpol_device", "originator"},
			map[string]string{"Unique-ID": b, "Other-Leg-Unique-ID": a, "variable_Recpol_Device": "d2", "var recpol_device": "d2", "var originator": a}},
		{"late variables on the caller's answer, value decoded exactly", "CHANNEL_ANSWER", a,
			[]string{"variable_Recpol_Account", "unique-id"}, []string{"RECPOL_ACCOUNT"},
			map[string]string{"variable_Recpol_Account": "acme+co 100%", "unique-id": a, "var RECPOL_ACCOUNT": "acme+co 100%"}},
		{"bridge on the caller", "CHANNEL_BRIDGE", a,
			[]string{"Bridge-A-Unique-ID", "Bridge-B-Unique-ID"}, nil,
			map[string]string{"Bridge-A-Unique-ID": a, "Bridge-B-Unique-ID": b}},
		{"dtmf", "DTMF", a,
			[]string{"DTMF-Digit", "dtmf-digit"}, nil,
			map[string]string{"DTMF-Digit": "7", "dtmf-digit": "7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ev := rec.waitEvent(t, 0, tt.event, tt.leg)
			got := map[string]string{}
			for _, h := range tt.headers {
				got[h] = ev.Get(h)
			}
			for _, v := range tt.vars {
				got["var "+v] = ev.Var(v)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
			if !slices.ContainsFunc(ev.List, func(h eslwire.Header) bool { return h.Name == "Unique-ID" }) {
				t.Errorf("no header spelled Unique-ID in %v", ev.List)
			}
		})
	}
	// Events arrive in the switch's order, BACKGROUND_JOB excepted.
	var sent, got []string
	for _, e := range srv.Events() {
		if e.Event.Name() != "BACKGROUND_JOB" {
			sent = append(sent, e.Event.Name()+" "+e.Event.Get("Unique-ID"))
		}
	}
	rec.waitCount(t, "events", len(sent), func(c call) bool { return c.kind == itemEvent })
	for _, c := range rec.snapshot() {
		if c.kind == itemEvent {
			got = append(got, c.ev.Name+" "+c.ev.Get("Unique-ID"))
		}
	}
	if diff := cmp.Diff(sent, got); diff != "" {
		t.Errorf("events -sent +delivered:\n%s", diff)
	}
}

func TestAPIAndBgAPI(t *testing.T) {
	dir := t.TempDir()
	srv, addr := startSwitch(t, "127.0.0.1:0", fakeswitch.Config{RecordingsDir: dir})
	c, rec := runClient(t, testConfig(addr))
	rec.waitConnected(t, 0)
	uuids, err := srv.StartCall(twoLegCall("api"))
	if err != nil {
		t.Fatal(err)
	}
	a := uuids["a"]
	srv.Advance(1000 * time.Millisecond)
	rec.waitEvent(t, 0, "CHANNEL_ANSWER", a)
	path := filepath.Join(dir, "a.wav")
	tests := []struct {
		name    string
		bg      bool
		cmd     string
		want    string
		wantErr error
	}{
		{"api exists", false, "uuid_exists " + a, "true", nil},
		{"api missing", false, "uuid_exists 00000000-0000-4000-8000-000000000000", "false", nil},
		{"api unknown, text kept whole", false, "nope", "-ERR nope Command not found!\n", ErrRejected},
		{"api usage is a failure", false, "uuid_record " + a, "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n", ErrRejected},
		{"bgapi record start", true, "uuid_record " + a + " start " + path, "+OK Success\n", nil},
		{"bgapi unknown session", true, "uuid_record 00000000-0000-4000-8000-000000000000 start " + path, "-ERR Cannot locate session!\n", ErrRejected},
		{"api getvar", false, "uuid_getvar " + a + " Recpol_Account", "acme+co 100%", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call := c.API
			if tt.bg {
				call = c.BgAPI
			}
			got, err := call(context.Background(), tt.cmd)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("err %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
	// The recording's RECORD_START is an ordinary event, after the job.
	_, ev := rec.waitEvent(t, 0, "RECORD_START", a)
	if got := ev.Get("Record-File-Path"); got != path {
		t.Errorf("RECORD_START Record-File-Path %q, want %q", got, path)
	}
	for _, c := range rec.snapshot() {
		if c.kind == itemEvent && c.ev.Name == "BACKGROUND_JOB" {
			t.Errorf("BACKGROUND_JOB passed to the Handler: %v", c.ev.List)
		}
	}
}

func TestConcurrentBgAPI(t *testing.T) {
	srv, addr := startSwitch(t, "127.0.0.1:0", fakeswitch.Config{})
	c, rec := runClient(t, testConfig(addr))
	rec.waitConnected(t, 0)
	uuids, err := srv.StartCall(twoLegCall("conc"))
	if err != nil {
		t.Fatal(err)
	}
	a := uuids["a"]
	srv.Advance(0)
	rec.waitEvent(t, 0, "CHANNEL_CREATE", a)
	const n = 64
	for i := range n {
		if _, err := c.API(context.Background(), fmt.Sprintf("uuid_setvar %s v%d value-%d", a, i, i)); err != nil {
			t.Fatal(err)
		}
	}
	concurrently(t, n, func(i int) (string, error) {
		return c.BgAPI(context.Background(), fmt.Sprintf("uuid_getvar %s v%d", a, i))
	}, func(i int) string { return fmt.Sprintf("value-%d", i) })
}

// concurrently runs call(i) for i < n, each in a goroutine of its own, and
// checks that each returned want(i) without error.
func concurrently(t *testing.T, n int, call func(i int) (string, error), want func(i int) string) {
	t.Helper()
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = call(i)
		}()
	}
	wg.Wait()
	wants := make([]string, n)
	for i := range n {
		wants[i] = want(i)
		if errs[i] != nil {
			t.Errorf("caller %d: %v", i, errs[i])
		}
	}
	if diff := cmp.Diff(wants, got); diff != "" {
		t.Errorf("-want +got:\n%s", diff)
	}
}

// TestPipelined: commands are written without waiting for earlier
// replies, and each caller gets the reply to its own command. The switch
// here reads every command before it answers any (a client that waited
// for each reply before writing the next would time out), then answers
// them in order, as FreeSWITCH does.
func TestPipelined(t *testing.T) {
	const n = 32
	rs := startRaw(t, func(c *rawConn) {
		if !c.login() {
			return
		}
		for {
			var lines []string
			for range n {
				cmd, ok := c.command()
				if !ok {
					return
				}
				lines = append(lines, cmd.Line)
			}
			for _, l := range lines {
				body := "echo " + strings.TrimPrefix(l, "api ")
				c.write(fmt.Sprintf("Content-Type: api/response\nContent-Length: %d\n\n%s", len(body), body))
			}
		}
	})
	cfg := testConfig(rs.addr())
	cfg.CommandTimeout = 5 * time.Second
	c, rec := runClient(t, cfg)
	rec.waitConnected(t, 0)
	concurrently(t, n, func(i int) (string, error) {
		return c.API(context.Background(), fmt.Sprintf("cmd-%d", i))
	}, func(i int) string { return fmt.Sprintf("echo cmd-%d", i) })
}

func TestCommandValidation(t *testing.T) {
	srv, addr := startSwitch(t, "127.0.0.1:0", fakeswitch.Config{})
	c, rec := runClient(t, testConfig(addr))
	rec.waitConnected(t, 0)
	before := len(srv.Commands())
	for _, cmd := range []string{"uuid_exists x\nexit", "status\r", "uuid_kill x\r\nexit", "status\x00", "", "  "} {
		for _, bg := range []bool{false, true} {
			call := c.API
			if bg {
				call = c.BgAPI
			}
			if _, err := call(context.Background(), cmd); !errors.Is(err, ErrInvalidCommand) {
				t.Errorf("bg=%v %q: err %v, want ErrInvalidCommand", bg, cmd, err)
			}
		}
	}
	// A valid command after them is the next thing the switch sees.
	if _, err := c.API(context.Background(), "status"); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, r := range srv.Commands()[before:] {
		lines = append(lines, r.Line)
	}
	if diff := cmp.Diff([]string{"api status"}, lines); diff != "" {
		t.Errorf("commands the switch received -want +got:\n%s", diff)
	}
}

func TestNotConnected(t *testing.T) {
	c := New(Config{Address: "127.0.0.1:1"})
	if _, err := c.API(context.Background(), "status"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("API: %v", err)
	}
	if _, err := c.BgAPI(context.Background(), "status"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("BgAPI: %v", err)
	}
	if c.Connected() {
		t.Error("Connected before Run")
	}
	for _, cfg := range []Config{{}, {Address: "x:1", Password: "a\nb"}, {Address: "x:1", Events: []string{"CHANNEL_CREATE\nexit"}}} {
		if err := New(cfg).Run(context.Background(), newRecorder()); !errors.Is(err, ErrConfig) {
			t.Errorf("Run(%+v): %v, want ErrConfig", cfg, err)
		}
	}
}

func TestWrongPassword(t *testing.T) {
	srv, addr := startSwitch(t, "127.0.0.1:0", fakeswitch.Config{Password: "right"})
	cfg := testConfig(addr)
	cfg.Password = "wrong"
	cfg.BackoffMin = 20 * time.Millisecond
	cfg.BackoffMax = 100 * time.Millisecond
	c, rec := runClient(t, cfg)
	_, err := rec.waitDisconnected(t, 0)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("Disconnected(%v), want ErrAuth", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error shows the password: %v", err)
	}
	// It retries, and backs off: in one second a tight loop would make
	// thousands of attempts; backoff from 20 ms capped at 100 ms (jittered
	// to no less than half) allows at most 1000/10 + 1.
	rec.waitCount(t, "failed attempts", 2, func(c call) bool { return c.kind == itemDisconnected })
	start := authAttempts(srv)
	time.Sleep(time.Second)
	if n := authAttempts(srv) - start; n > 101 {
		t.Errorf("%d attempts in one second", n)
	}
	for _, cl := range rec.snapshot() {
		if cl.kind == itemConnected {
			t.Error("Connected with a wrong password")
		}
		if cl.kind == itemDisconnected && !errors.Is(cl.err, ErrAuth) {
			t.Errorf("Disconnected(%v), want ErrAuth", cl.err)
		}
	}
	if c.Connected() {
		t.Error("Connected() with a wrong password")
	}
}

func authAttempts(srv *fakeswitch.Server) int {
	n := 0
	for _, r := range srv.Commands() {
		if strings.HasPrefix(r.Line, "auth ") {
			n++
		}
	}
	return n
}

func TestSwitchRestart(t *testing.T) {
	srv1, addr := startSwitch(t, "127.0.0.1:0", fakeswitch.Config{})
	c, rec := runClient(t, testConfig(addr))
	i, core1 := rec.waitConnected(t, 0)
	if !c.Connected() {
		t.Error("Connected() false after Connected")
	}
	srv1.Close()
	i, err := rec.waitDisconnected(t, i+1)
	if !errors.Is(err, ErrConnectionLost) {
		t.Errorf("Disconnected(%v), want ErrConnectionLost", err)
	}
	srv2, _ := startSwitch(t, addr, fakeswitch.Config{})
	i, core2 := rec.waitConnected(t, i+1)
	if core2 != srv2.CoreUUID() || core2 == core1 {
		t.Errorf("Connected(%q) after restart; old %q, new switch %q", core2, core1, srv2.CoreUUID())
	}
	uuids, err := srv2.StartCall(twoLegCall("again"))
	if err != nil {
		t.Fatal(err)
	}
	srv2.Advance(0)
	rec.waitEvent(t, i+1, "CHANNEL_CREATE", uuids["a"])
	if got, err := c.API(context.Background(), "uuid_exists "+uuids["a"]); got != "true" || err != nil {
		t.Errorf("API after reconnect: %q, %v", got, err)
	}
	var subs []string
	for _, r := range srv2.Commands() {
		if strings.HasPrefix(r.Line, "event ") {
			subs = append(subs, r.Line)
		}
	}
	want := []string{"event plain " + strings.Join(DefaultEvents, " ")}
	if diff := cmp.Diff(want, subs); diff != "" {
		t.Errorf("subscription on the new switch -want +got:\n%s", diff)
	}
}

// TestMisbehavingPeer: whatever the peer sends, the process survives;
// what the protocol does not allow drops the connection, which is then
// retried.
func TestMisbehavingPeer(t *testing.T) {
	before := rawEvent("CUSTOM", eslwire.Header{Name: "Event-Subclass", Value: "before"})
	after := rawEvent("CUSTOM", eslwire.Header{Name: "Event-Subclass", Value: "after"})
	tests := []struct {
		name    string
		send    string
		dropped bool
	}{
		{"log/data frame", "Content-Type: log/data\nContent-Length: 5\n\nhello", true},
		{"frame without Content-Type", "Foo: bar\n\n", true},
		{"garbage line", "this is not a header\n\n", true},
		{"binary garbage", "\x00\x01\x02: \xff\n\n", true},
		{"unsolicited reply", "Content-Type: command/reply\nReply-Text: +OK\n\n", true},
		{"second auth request", "Content-Type: auth/request\n\n", true},
		{"event-json", "Content-Type: text/event-json\nContent-Length: 2\n\n{}", true},
		{"bad Content-Length", "Content-Type: text/event-plain\nContent-Length: x\n\n", true},
		{"event with no headers", "Content-Type: text/event-plain\nContent-Length: 1\n\n\n", true},
		{"stray blank lines are skipped", "\n\n\r\n", false},
		{"disconnect notice alone is not fatal", "Content-Type: text/disconnect-notice\nContent-Length: 3\n\nbye", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := startRaw(t, func(c *rawConn) {
				if !c.login() {
					return
				}
				c.write(before + tt.send + after)
				for {
					if _, ok := c.command(); !ok {
						return
					}
				}
			})
			_, rec := runClient(t, testConfig(rs.addr()))
			i, _ := rec.waitConnected(t, 0)
			want := []string{"before"}
			if !tt.dropped {
				want = append(want, "after")
			}
			rec.waitCount(t, "CUSTOM events", len(want), func(c call) bool { return c.kind == itemEvent })
			if !tt.dropped {
				if diff := cmp.Diff(want, subclasses(rec.snapshot()[i:])); diff != "" {
					t.Errorf("events -want +got:\n%s", diff)
				}
				return
			}
			j, err := rec.waitDisconnected(t, i)
			if !errors.Is(err, ErrProtocol) {
				t.Errorf("Disconnected(%v), want ErrProtocol", err)
			}
			// What came before the garbage is delivered, before
			// Disconnected; nothing after it.
			if diff := cmp.Diff(want, subclasses(rec.snapshot()[i:j])); diff != "" {
				t.Errorf("events before Disconnected -want +got:\n%s", diff)
			}
			rs.waitConns(t, 2)
			rec.waitConnected(t, j)
		})
	}
}

// TestOddReplies: replies that would panic go-eventsocket's reader or
// that it would truncate reach the caller exactly.
func TestOddReplies(t *testing.T) {
	tests := []struct {
		name, reply string
		want        string
		wantErr     error
	}{
		{"short -E api body", "Content-Type: api/response\nContent-Length: 2\n\n-E", "-E", ErrRejected},
		{"-ERR kept whole", "Content-Type: api/response\nContent-Length: 9\n\n-ERR oops", "-ERR oops", ErrRejected},
		{"-USAGE", "Content-Type: api/response\nContent-Length: 8\n\n-USAGE: ", "-USAGE: ", ErrRejected},
		{"empty body", "Content-Type: api/response\nContent-Length: 0\n\n", "", nil},
		{"body with non-ASCII", "Content-Type: api/response\nContent-Length: 6\n\nvalé\n", "valé\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := startRaw(t, func(c *rawConn) {
				if !c.login() {
					return
				}
				for {
					if _, ok := c.command(); !ok {
						return
					}
					c.write(tt.reply)
				}
			})
			c, rec := runClient(t, testConfig(rs.addr()))
			rec.waitConnected(t, 0)
			for range 2 { // the connection stays usable
				got, err := c.API(context.Background(), "anything")
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
					t.Errorf("err %v, want %v", err, tt.wantErr)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("-want +got:\n%s", diff)
				}
			}
		})
	}
	t.Run("command reply without Reply-Text", func(t *testing.T) {
		rs := startRaw(t, func(c *rawConn) {
			if !c.login() {
				return
			}
			for {
				if _, ok := c.command(); !ok {
					return
				}
				c.write("Content-Type: command/reply\n\n")
			}
		})
		c, rec := runClient(t, testConfig(rs.addr()))
		rec.waitConnected(t, 0)
		if _, err := c.BgAPI(context.Background(), "status"); !errors.Is(err, ErrRejected) {
			t.Errorf("err %v, want ErrRejected", err)
		}
	})
}

func TestSilentSwitch(t *testing.T) {
	rs := startRaw(t, func(c *rawConn) {
		if !c.login() {
			return
		}
		for { // read commands, answer nothing, send nothing
			if _, ok := c.command(); !ok {
				return
			}
		}
	})
	cfg := testConfig(rs.addr())
	cfg.HeartbeatTimeout = 200 * time.Millisecond
	_, rec := runClient(t, cfg)
	i, _ := rec.waitConnected(t, 0)
	i, err := rec.waitDisconnected(t, i)
	if !errors.Is(err, ErrHeartbeat) {
		t.Errorf("Disconnected(%v), want ErrHeartbeat", err)
	}
	rs.waitConns(t, 2)
	rec.waitConnected(t, i)
}

func TestCommandTimeout(t *testing.T) {
	rs := startRaw(t, func(c *rawConn) {
		if !c.login() {
			return
		}
		for { // heartbeats, but no reply to any command
			if _, ok := c.command(); !ok {
				return
			}
			c.write(rawEvent("HEARTBEAT"))
		}
	})
	cfg := testConfig(rs.addr())
	cfg.CommandTimeout = 200 * time.Millisecond
	c, rec := runClient(t, cfg)
	i, _ := rec.waitConnected(t, 0)
	if _, err := c.API(context.Background(), "status"); !errors.Is(err, ErrCommandTimeout) {
		t.Errorf("API: %v, want ErrCommandTimeout", err)
	}
	_, err := rec.waitDisconnected(t, i)
	if !errors.Is(err, ErrCommandTimeout) {
		t.Errorf("Disconnected(%v), want ErrCommandTimeout", err)
	}
	rs.waitConns(t, 2)
}

// TestFlood: thousands of events while commands are in flight and the
// Handler is slow; nothing deadlocks and nothing is lost.
func TestFlood(t *testing.T) {
	srv, addr := startSwitch(t, "127.0.0.1:0", fakeswitch.Config{Heartbeat: -1})
	rec := newRecorder()
	rec.slow = 50 * time.Microsecond
	c, _ := runClientWith(t, testConfig(addr), rec)
	rec.waitConnected(t, 0)
	const calls = 400
	var legs []string
	for i := range calls {
		uuids, err := srv.StartCall(twoLegCall(fmt.Sprintf("flood-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		legs = append(legs, uuids["a"])
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < calls; i += 8 {
				var err error
				if i%2 == 0 {
					_, err = c.API(context.Background(), "uuid_exists "+legs[i])
				} else {
					_, err = c.BgAPI(context.Background(), "uuid_exists "+legs[i])
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	go func() {
		srv.RunUntilIdle()
		close(done)
	}()
	wg.Wait()
	<-done
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	rec.waitEvent(t, 0, "CHANNEL_HANGUP_COMPLETE", "")
	want := 0
	for _, e := range srv.Events() {
		if e.Event.Name() != "BACKGROUND_JOB" {
			want++
		}
	}
	t.Logf("%d events", want)
	if want < 1000 {
		t.Fatalf("only %d events sent", want)
	}
	rec.waitCount(t, "events", want, func(c call) bool { return c.kind == itemEvent })
	if n := len(rec.snapshot()); n != want+1 {
		t.Errorf("%d Handler calls, want Connected and %d events", n, want)
	}
}

// customEvents is n CUSTOM events as the switch frames them, their
// Event-Subclass 0 to n-1.
func customEvents(n int) string {
	var b strings.Builder
	for k := range n {
		b.WriteString(rawEvent("CUSTOM", eslwire.Header{Name: "Event-Subclass", Value: fmt.Sprint(k)}))
	}
	return b.String()
}

// numbered is "0" to n-1: the subclasses of customEvents(n).
func numbered(n int) []string {
	out := make([]string, n)
	for k := range out {
		out[k] = fmt.Sprint(k)
	}
	return out
}

func subclasses(calls []call) []string {
	var out []string
	for _, c := range calls {
		if c.kind == itemEvent {
			out = append(out, c.ev.Get("Event-Subclass"))
		}
	}
	return out
}

// TestEventsBeforeClose: events the switch sent before closing the
// connection are all delivered, in order, before Disconnected.
func TestEventsBeforeClose(t *testing.T) {
	const n = 300
	rs := startRaw(t, func(c *rawConn) {
		if !c.login() {
			return
		}
		c.write(customEvents(n))
		// and close
	})
	_, rec := runClient(t, testConfig(rs.addr()))
	i, _ := rec.waitConnected(t, 0)
	j, err := rec.waitDisconnected(t, i)
	if !errors.Is(err, ErrConnectionLost) {
		t.Errorf("Disconnected(%v), want ErrConnectionLost", err)
	}
	if diff := cmp.Diff(numbered(n), subclasses(rec.snapshot()[i:j])); diff != "" {
		t.Errorf("events before Disconnected -want +got:\n%s", diff)
	}
}

// TestLibraryDialFailsFast: when go-eventsocket's dial to the relay fails
// at once (no free port on the host), the attempt ends with that error at
// once, not when the dial timeout runs out, and the client tries again.
func TestLibraryDialFailsFast(t *testing.T) {
	_, addr := startSwitch(t, "", fakeswitch.Config{})
	refused := errors.New("connect: cannot assign requested address")
	var mu sync.Mutex
	fails := 0
	dialLibrary = func(addr, password string) (*eventsocket.Connection, error) {
		mu.Lock()
		defer mu.Unlock()
		if fails < 2 {
			fails++
			return nil, refused
		}
		return eventsocket.Dial(addr, password)
	}
	t.Cleanup(func() { dialLibrary = eventsocket.Dial })
	cfg := testConfig(addr)
	cfg.DialTimeout = time.Hour // a failed dial that waited for it would never connect
	_, rec := runClient(t, cfg)
	rec.waitConnected(t, 0)
	var got []error
	for _, c := range rec.snapshot() {
		if c.kind == itemDisconnected {
			got = append(got, c.err)
		}
	}
	if len(got) != 2 || !errors.Is(got[0], refused) || !errors.Is(got[0], ErrConnectionLost) {
		t.Errorf("setups that failed: %v, want 2 wrapping the dial's error and ErrConnectionLost", got)
	}
}

// TestEventsBatched: the events the switch sends at once reach the
// library as far fewer placeholders than events, and every event is
// delivered, in order.
func TestEventsBatched(t *testing.T) {
	const n = 300
	rs := startRaw(t, func(c *rawConn) {
		if !c.login() {
			return
		}
		c.write(customEvents(n))
		for {
			if _, ok := c.command(); !ok {
				return
			}
		}
	})
	c, rec := runClient(t, testConfig(rs.addr()))
	i, _ := rec.waitConnected(t, 0)
	rec.waitCount(t, "CUSTOM events", n, func(c call) bool { return c.kind == itemEvent })
	if diff := cmp.Diff(numbered(n), subclasses(rec.snapshot()[i:])); diff != "" {
		t.Errorf("events -want +got:\n%s", diff)
	}
	s, err := c.current()
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	parsed, forwarded, left := s.parsed, s.forwarded, len(s.pending)-s.head
	s.mu.Unlock()
	if forwarded*2 > parsed || left != 0 {
		t.Errorf("%d events parsed in %d placeholders, %d left, want at most half as many placeholders and none left", parsed, forwarded, left)
	}
}

// TestEventsOfAStreamThatNeverPauses: events are handed over in batches
// of at most maxBatch even while the switch keeps sending (here, the
// start of a frame whose end never comes), not only when it pauses.
func TestEventsOfAStreamThatNeverPauses(t *testing.T) {
	const n = 3 * maxBatch
	rs := startRaw(t, func(c *rawConn) {
		if !c.login() {
			return
		}
		c.write(customEvents(n) + "Content-Length: 100\nContent-Type: text/event-plain\n\nEvent-Name: CUS")
		for {
			if _, ok := c.command(); !ok {
				return
			}
		}
	})
	_, rec := runClient(t, testConfig(rs.addr()))
	i, _ := rec.waitConnected(t, 0)
	rec.waitCount(t, "CUSTOM events", 2*maxBatch, func(c call) bool { return c.kind == itemEvent })
	got := subclasses(rec.snapshot()[i:])
	if diff := cmp.Diff(numbered(len(got)), got); diff != "" {
		t.Errorf("events -want +got:\n%s", diff)
	}
}
