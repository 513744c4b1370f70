package fakeswitch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/recpol/recpol/runtime/eslwire"
)

// captureOrder returns, per Event-Name, the header order of the first such
// event in the real captures.
func captureOrder(t *testing.T) map[string][]string {
	t.Helper()
	dir := filepath.Join(capturesDir(t), "freeswitch-1.10.12")
	out := map[string][]string{}
	for _, name := range []string{"late_vars_bridge_rx_raw.txt", "main_ev_rx_raw.txt", "limit_ev_rx_raw.txt"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range readAll(t, data) {
			if f.Get("Content-Type") != eslwire.TypeEventPlain {
				continue
			}
			ev, err := eslwire.ParseEventPlain(f.Body)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := out[ev.Name()]; !ok {
				out[ev.Name()] = headerNames(ev.Headers)
			}
		}
	}
	return out
}

// relativeOrder returns the names of a that are also in b, first
// occurrences only, variables left out (their order is the channel's
// history), in a's order.
func relativeOrder(a, b []string) []string {
	inB := map[string]bool{}
	for _, n := range b {
		inB[n] = true
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range a {
		if inB[n] && !seen[n] && !strings.HasPrefix(n, "variable_") {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// TestWireFollowsCaptures reads the fake switch's own bytes with the codec
// that reads the real captures, and checks the same rules: frame headers,
// exact Content-Length, bytes that re-encode identically, and for every
// event type the captures have, the same header order.
func TestWireFollowsCaptures(t *testing.T) {
	order := captureOrder(t)
	srv, addr := startServer(t, Config{})
	c := dialRaw(t, addr)
	c.login(t, "ALL")
	call := twoLegCall("wire", 3000)
	call.Legs[0].CallerIDName = "Ann Example+1"
	call.Legs[1].Variables["odd"] = "a b;c=d%20e:f"
	uuids, err := srv.StartCall(call)
	if err != nil {
		t.Fatal(err)
	}
	srv.Advance(1100 * time.Millisecond)
	path := filepath.Join(srv.cfg.RecordingsDir, "x.wav")
	c.send(t, "api uuid_record "+uuids["b1"]+" start "+path+" 60 {foo=bar,baz=qux}")
	var frames []eslwire.Frame
	for len(frames) == 0 || frames[len(frames)-1].Get("Content-Type") != eslwire.TypeAPIResponse {
		frames = append(frames, c.frame(t))
	}
	if got := string(frames[len(frames)-1].Body); got != "+OK Success\n" {
		t.Fatalf("start: %q", got)
	}
	// The reply comes before the RECORD_START it causes.
	rs := c.frame(t)
	if ev, err := eslwire.ParseEventPlain(rs.Body); err != nil || ev.Name() != "RECORD_START" {
		t.Fatalf("frame after the reply: %v, %v; want RECORD_START", ev, err)
	}
	frames = append(frames, rs)
	srv.RunUntilIdle()
	c.send(t, "exit")
	for {
		c.conn.SetReadDeadline(time.Now().Add(guard))
		f, err := eslwire.ReadFrame(c.r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
	}

	seen := map[string]bool{}
	for _, f := range frames {
		if f.Get("Content-Type") != eslwire.TypeEventPlain {
			continue
		}
		if got := headerNames(f.Headers); !cmp.Equal(got, []string{"Content-Length", "Content-Type"}) {
			t.Errorf("event frame headers %v", got)
		}
		ev, err := eslwire.ParseEventPlain(f.Body)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ev.MarshalPlain(), f.Body) {
			t.Errorf("%s does not re-encode to its own bytes", ev.Name())
		}
		for _, h := range bytes.Split(f.Body, []byte("\n")) {
			if bytes.HasSuffix(h, []byte(": ")) {
				t.Errorf("%s: empty value not written as _undef_: %q", ev.Name(), h)
			}
		}
		if ev.Name() == "CHANNEL_CREATE" && ev.Get("Unique-ID") == uuids["b1"] {
			if !bytes.Contains(f.Body, []byte("variable_odd: a%20b%3Bc%3Dd%20e%3Af\n")) {
				t.Errorf("encoded variable not as FreeSWITCH writes it:\n%s", f.Body)
			}
		}
		want, ok := order[ev.Name()]
		if !ok || seen[ev.Name()] {
			continue
		}
		seen[ev.Name()] = true
		got := headerNames(ev.Headers)
		if diff := cmp.Diff(relativeOrder(want, got), relativeOrder(got, want)); diff != "" {
			t.Errorf("%s header order differs from the capture (-capture +fake):\n%s", ev.Name(), diff)
		}
		if ev.Name() == "RECORD_STOP" {
			if diff := cmp.Diff([]string{"Record-File-Path", "Recording-Variable-foo", "Recording-Variable-baz", "Record-Completion-Cause"}, got[len(got)-4:]); diff != "" {
				t.Errorf("RECORD_STOP trailer (-want +got):\n%s", diff)
			}
		}
	}
	last := frames[len(frames)-1]
	for _, n := range []string{"CHANNEL_CREATE", "CHANNEL_EXECUTE", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "RECORD_START", "RECORD_STOP", "DTMF"} {
		if !seen[n] {
			t.Errorf("no %s compared with the captures", n)
		}
	}
	if last.Get("Content-Type") != eslwire.TypeDisconnectNotice || string(last.Body) != eslwire.DisconnectText {
		t.Errorf("last frame %v %q, want the disconnect notice", last.Headers, last.Body)
	}
}

// TestReplies checks command replies byte for byte against those in the
// captures.
func TestReplies(t *testing.T) {
	srv, addr := startServer(t, Config{})
	uuids, err := srv.StartCall(twoLegCall("r", 60000))
	if err != nil {
		t.Fatal(err)
	}
	srv.Advance(1100 * time.Millisecond)
	a := uuids["a"]
	dir := srv.cfg.RecordingsDir
	p := filepath.Join(dir, "r.wav")
	c := dialRaw(t, addr)
	c.login(t, "")
	tests := []struct {
		cmd, want string
	}{
		{"uuid_record " + a + " start " + p, "+OK Success\n"},
		{"uuid_record " + a + " start " + p, "+OK Success\n"}, // already recording
		{"uuid_record " + a + " mask " + p, "+OK Success\n"},
		{"uuid_record " + a + " unmask " + p, "+OK Success\n"},
		{"uuid_record " + a + " pause " + p, "+OK Success\n"},
		{"uuid_record " + a + " resume " + p, "+OK Success\n"},
		{"uuid_record " + a + " stop " + p, "+OK Success\n"},
		{"uuid_record " + a + " stop " + p, "-ERR Cannot stop record session!\n"},
		{"uuid_record " + a + " mask " + p, "-ERR Cannot mask recording session!\n"},
		{"uuid_record " + a + " unmask " + p, "-ERR Cannot unmask recording session!\n"},
		{"uuid_record " + a + " pause " + p, "-ERR Cannot pause recording session!\n"},
		{"uuid_record " + a + " bogus " + p, recordUsage},
		{"uuid_record " + a + " start", recordUsage},
		{"uuid_record " + a, recordUsage},
		{"uuid_record", recordUsage},
		{"uuid_record 00000000-0000-0000-0000-000000000000 start " + p, "-ERR Cannot locate session!\n"},
		{"uuid_record 00000000-0000-0000-0000-000000000000 bogus " + p, "-ERR Cannot locate session!\n"},
		{"uuid_record " + a + " start /etc/passwd.wav", "-ERR Cannot record session!\n"},
		{"uuid_record " + a + " start " + dir + "/../escape.wav", "-ERR Cannot record session!\n"},
		{"uuid_record " + a + " start relative.wav", "-ERR Cannot record session!\n"},
		{"uuid_record " + a + " start " + dir + "/x.xyz", "-ERR Cannot record session!\n"},
		{"uuid_setvar " + a + " foo bar baz", "+OK\n"},
		{"uuid_getvar " + a + " foo", "bar baz"},
		{"uuid_getvar " + a + " recpol_device", "d1"},
		{"uuid_getvar " + a + " nothing", "_undef_"},
		{"uuid_getvar 00000000-0000-0000-0000-000000000000 foo", "-ERR No such channel!\n"},
		{"uuid_setvar 00000000-0000-0000-0000-000000000000 foo 1", "-ERR No such channel!\n"},
		{"uuid_exists " + a, "true"},
		{"uuid_exists 00000000-0000-0000-0000-000000000000", "false"},
		{"uuid_answer " + a, "+OK\n"},
		{"uuid_kill 00000000-0000-0000-0000-000000000000", "-ERR No such channel!\n"},
		{"reloadxml", "+OK [Success]\n"},
		{"no_such_api x", "-ERR no_such_api Command not found!\n"},
	}
	for _, tt := range tests {
		if got := c.api(t, tt.cmd); got != tt.want {
			t.Errorf("api %s = %q, want %q", tt.cmd, got, tt.want)
		}
	}
	var notes int
	for _, r := range srv.Commands() {
		if r.Note != "" {
			notes++
		}
	}
	if notes != 4 {
		t.Errorf("%d refused paths explained in Commands(), want 4", notes)
	}
	for _, cmd := range []string{"nonsense_command", "auth ClueCon", "log 7"} {
		c.send(t, cmd)
		if got := c.frame(t).Get("Reply-Text"); got != "-ERR command not found" {
			t.Errorf("%s: %q", cmd, got)
		}
	}
	var show struct {
		RowCount int                 `json:"row_count"`
		Rows     []map[string]string `json:"rows"`
	}
	if err := json.Unmarshal([]byte(c.api(t, "show channels as json")), &show); err != nil {
		t.Fatal(err)
	}
	if show.RowCount != 2 || len(show.Rows) != 2 {
		t.Errorf("show channels: %+v", show)
	}
	if got := c.api(t, "uuid_kill "+a); got != "+OK\n" {
		t.Errorf("uuid_kill: %q", got)
	}
	if got := c.api(t, "show channels as json"); got != "{\"row_count\":0}\n" {
		t.Errorf("show channels after kill: %q", got)
	}
}

// TestSubscriptions runs several clients with their own subscriptions.
func TestSubscriptions(t *testing.T) {
	srv, addr := startServer(t, Config{})
	type client struct {
		setup []string
		want  []string // event names received for the call, in order
	}
	clients := []client{
		{[]string{"event plain ALL", "nixevent CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_PROGRESS CHANNEL_UNBRIDGE"},
			[]string{"CHANNEL_CREATE", "CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "DTMF", "DTMF", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"}},
		{[]string{"event plain CHANNEL_ANSWER DTMF"}, []string{"CHANNEL_ANSWER", "CHANNEL_ANSWER", "DTMF", "DTMF"}},
		{[]string{"event plain CHANNEL_ANSWER", "filter Call-Direction outbound"}, []string{"CHANNEL_ANSWER"}},
		{[]string{"event json CHANNEL_BRIDGE"}, []string{"CHANNEL_BRIDGE"}},
		{[]string{"event plain ALL", "noevents"}, nil},
		{nil, nil},
	}
	var raws []*rawClient
	for _, cl := range clients {
		c := dialRaw(t, addr)
		c.login(t, "")
		for _, cmd := range cl.setup {
			c.send(t, cmd)
			if got := c.frame(t).Get("Reply-Text"); !strings.HasPrefix(got, "+OK") {
				t.Fatalf("%s: %q", cmd, got)
			}
		}
		raws = append(raws, c)
	}
	if _, err := srv.StartCall(twoLegCall("subs", 2000)); err != nil {
		t.Fatal(err)
	}
	srv.RunUntilIdle()
	for i, c := range raws {
		c.send(t, "exit")
		var got []string
		for {
			f := c.frame(t)
			ct := f.Get("Content-Type")
			if ct == eslwire.TypeDisconnectNotice {
				break
			}
			switch ct {
			case eslwire.TypeEventPlain:
				ev, err := eslwire.ParseEventPlain(f.Body)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ev.Name())
			case eslwire.TypeEventJSON:
				var m map[string]string
				if err := json.Unmarshal(f.Body, &m); err != nil {
					t.Fatalf("json event: %v", err)
				}
				got = append(got, m["Event-Name"])
			}
		}
		if diff := cmp.Diff(clients[i].want, got); diff != "" {
			t.Errorf("client %d %v (-want +got):\n%s", i+1, clients[i].setup, diff)
		}
	}
}

// TestHeartbeat checks HEARTBEAT every 20 s of virtual time.
func TestHeartbeat(t *testing.T) {
	srv, addr := startServer(t, Config{})
	c := dialES(t, addr, "ClueCon")
	c.send(t, "event plain HEARTBEAT")
	srv.Advance(65 * time.Second)
	for i := 1; i <= 3; i++ {
		ev := c.next(t, "HEARTBEAT")
		if ev.Get("Core-Uuid") != srv.CoreUUID() || ev.Get("Event-Info") != "System Ready" {
			t.Errorf("heartbeat %d: %v", i, ev.Header)
		}
	}
	var at []time.Duration
	for _, e := range srv.Events() {
		at = append(at, e.At)
	}
	if diff := cmp.Diff([]time.Duration{20 * time.Second, 40 * time.Second, 60 * time.Second}, at); diff != "" {
		t.Errorf("heartbeat times (-want +got):\n%s", diff)
	}
	if other := New(Config{}); other.CoreUUID() == srv.CoreUUID() {
		t.Errorf("two servers share Core-UUID %s", other.CoreUUID())
	}
}

// TestGarbage sends malformed input: the server answers or hangs up, and
// keeps serving others.
func TestGarbage(t *testing.T) {
	srv, addr := startServer(t, Config{})
	inputs := []string{
		"\x00\x01\x02\n\n",
		"api\n\n",
		"bgapi\n\n",
		"sendmsg\nbad header line\n\n",
		"api status\nContent-Length: nope\n\n",
		strings.Repeat("A", eslwire.MaxHeaderLine+1),
		"event plain\n\nfilter\n\nfilter delete\n\nnixevent\n\n",
	}
	for _, in := range inputs {
		c := dialRaw(t, addr)
		c.login(t, "")
		if _, err := c.conn.Write([]byte(in)); err != nil {
			t.Fatal(err)
		}
		c.conn.(interface{ CloseWrite() error }).CloseWrite()
		c.conn.SetReadDeadline(time.Now().Add(guard))
		if _, err := io.Copy(io.Discard, c.r); err != nil {
			t.Errorf("%q: %v", in[:min(len(in), 20)], err)
		}
	}
	c := dialES(t, addr, "ClueCon")
	if got := c.send(t, "api uuid_exists x").Body; got != "false" {
		t.Errorf("server not serving after garbage: %q", got)
	}
	if len(srv.Commands()) == 0 {
		t.Error("no commands recorded")
	}
}

// TestCommandReader checks command framing as clients send it.
func TestCommandReader(t *testing.T) {
	in := "auth ClueCon\r\n\r\n\napi status\n\nsendmsg x\ncall-command: execute\ncontent-length: 3\n\nabc"
	r := bufio.NewReader(strings.NewReader(in))
	var got []eslwire.Command
	for {
		c, err := eslwire.ReadCommand(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	want := []eslwire.Command{
		{Line: "auth ClueCon"},
		{Line: "api status"},
		{Line: "sendmsg x", Headers: []eslwire.Header{{Name: "call-command", Value: "execute"}, {Name: "content-length", Value: "3"}}, Body: []byte("abc")},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
