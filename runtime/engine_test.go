package runtime

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/table"
)

// recorder is a Commander that keeps the commands it is sent.
type recorder struct {
	mu   sync.Mutex
	cmds []string
}

func (r *recorder) BgAPI(ctx context.Context, cmd string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds = append(r.cmds, cmd)
	return "+OK Success\n", nil
}

type finishes struct {
	mu  sync.Mutex
	got []Finished
}

func (f *finishes) Finish(x Finished) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, x)
}

func exampleTable(t *testing.T) *table.Table {
	t.Helper()
	res, err := compiler.Options{}.Compile("../testdata/policies/example")
	if err != nil || res.Table == nil {
		t.Fatalf("example: %v %v", err, res.Diagnostics)
	}
	return res.Table
}

// ev builds an event; ts is in ms.
func ev(name, uuid string, ts int64, kv ...string) *Event {
	h := map[string]string{"Unique-ID": uuid, "Event-Date-Timestamp": fmt.Sprint(ts * 1000)}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	return &Event{Name: name, Headers: h}
}

var idInPath = regexp.MustCompile(`[0-9a-f]{32}`)

// drain runs the engine's queued commands through a recorder, with
// recording ids replaced by <id>.
func drain(e *engine) []string {
	var out []string
	for {
		select {
		case c := <-e.out:
			out = append(out, idInPath.ReplaceAllString(c.String(), "<id>"))
		default:
			return out
		}
	}
}

// TestEngineDecisions plays an offnet customer calling the PCI call
// centre's supervisor: the account decides on the A-leg once its
// variables are known (they arrive late, on the bridge's CHANNEL_EXECUTE)
// and starts recording it once the leg has media (its early media: a
// start never pre-answers a ringing leg), the
// supervisor's phone records its B-leg at answer, and *72 pressed by the
// supervisor masks both recordings.
func TestEngineDecisions(t *testing.T) {
	tb := exampleTable(t)
	fin := &finishes{}
	sw := SwitchConfig{Name: "fs1", RecordDir: "/var/spool/rec", LocalDir: "/local/rec"}
	e := newEngine(sw, Classify{Preset: "recpol"}, func() *table.Table { return tb }, fin, quietLogger(), nil)
	a, b := "aaaa-1", "bbbb-2"
	e.Handle(ev("CHANNEL_CREATE", a, 0, "Call-Direction", "inbound", "Channel-Name", "sofia/external/+15551234",
		"Caller-Caller-ID-Number", "+15551234", "Caller-Destination-Number", "2000"))
	if got := drain(e); len(got) != 0 {
		t.Fatalf("commands before the caller is classified: %v", got)
	}
	e.Handle(ev("CHANNEL_EXECUTE", a, 10, "Application", "bridge",
		"variable_recpol_account", "pci-callcentre", "variable_recpol_network", "offnet"))
	if got := drain(e); len(got) != 0 {
		t.Fatalf("commands before the caller's leg has media: %v", got)
	}
	e.Handle(ev("CHANNEL_PROGRESS_MEDIA", a, 15))
	want := []string{
		"uuid_record aaaa-1 start /var/spool/rec/pci-callcentre/<id>.mp3 10800 {RECORD_MIN_SEC=5,record_sample_rate=16000}",
		"uuid_setvar aaaa-1 recpol_recording_ids <id>",
	}
	if diff := cmp.Diff(want, drain(e)); diff != "" {
		t.Fatalf("account inbound decision (-want +got):\n%s", diff)
	}
	e.Handle(ev("CHANNEL_CREATE", b, 20, "Call-Direction", "outbound", "Other-Leg-Unique-ID", a,
		"variable_recpol_account", "pci-callcentre", "variable_recpol_device", "sup-phone", "variable_recpol_network", "onnet"))
	if got := drain(e); len(got) != 0 {
		t.Fatalf("callee recorded before it answered: %v", got)
	}
	e.Handle(ev("CHANNEL_ANSWER", b, 3000))
	want = []string{
		"uuid_record bbbb-2 start /var/spool/rec/pci-callcentre/<id>.wav 10800 {RECORD_MIN_SEC=2,record_sample_rate=16000}",
		"uuid_setvar bbbb-2 recpol_recording_ids <id>",
	}
	if diff := cmp.Diff(want, drain(e)); diff != "" {
		t.Fatalf("callee decision (-want +got):\n%s", diff)
	}
	e.Handle(ev("CHANNEL_ANSWER", a, 3000))
	e.Handle(ev("CHANNEL_BRIDGE", a, 3010, "Bridge-A-Unique-ID", a, "Bridge-B-Unique-ID", b))
	paths := map[string]string{}
	for p, r := range e.byPath {
		paths[r.Leg.UUID] = p
		e.Handle(&Event{Name: "RECORD_START", Headers: map[string]string{"Unique-ID": r.Leg.UUID,
			"Record-File-Path": p, "Event-Date-Timestamp": fmt.Sprint(int64(3020) * 1000)}})
	}
	for i, d := range "*72" {
		e.Handle(ev("DTMF", b, 20000+int64(i)*100, "DTMF-Digit", string(d)))
	}
	got := drain(e)
	sortStrings(got)
	want = []string{idInPath.ReplaceAllString("uuid_record aaaa-1 mask "+paths[a], "<id>"), idInPath.ReplaceAllString("uuid_record bbbb-2 mask "+paths[b], "<id>")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("*72 (-want +got):\n%s", diff)
	}
	for i, d := range "*73" {
		e.Handle(ev("DTMF", b, 35000+int64(i)*100, "DTMF-Digit", string(d)))
	}
	drain(e)
	e.Handle(ev("CHANNEL_HANGUP", a, 60000))
	for uuid, p := range paths {
		e.Handle(&Event{Name: "RECORD_STOP", Headers: map[string]string{"Unique-ID": uuid, "Record-File-Path": p,
			"Record-Completion-Cause": "success-silence", "variable_record_ms": "56980",
			"Event-Date-Timestamp": fmt.Sprint(int64(60000) * 1000)}})
	}
	e.Handle(ev("CHANNEL_HANGUP_COMPLETE", a, 60000))
	e.Handle(ev("CHANNEL_HANGUP_COMPLETE", b, 60000))
	if len(fin.got) != 2 {
		t.Fatalf("%d recordings finished, want 2", len(fin.got))
	}
	type summary struct {
		Scope, Leg, Origin, Endpoint, Account, From, To string
		Masked                                          []Range
	}
	var sums []summary
	for _, f := range fin.got {
		m := f.Meta
		sums = append(sums, summary{m.Scope, m.Leg, m.Origin, m.Endpoint, m.Account, m.From, m.To, m.MaskedRanges})
	}
	if sums[0].Scope != "account" {
		sums[0], sums[1] = sums[1], sums[0]
	}
	wantSums := []summary{
		{"account", "a", "inbound from offnet to account", "", "pci-callcentre", "+15551234", "2000", []Range{{StartMS: 17180, EndMS: 32180}}},
		{"callee", "b", "inbound from offnet to endpoint", "device:sup-phone", "pci-callcentre", "+15551234", "2000", []Range{{StartMS: 17180, EndMS: 32180}}},
	}
	if diff := cmp.Diff(wantSums, sums); diff != "" {
		t.Errorf("finished recordings (-want +got):\n%s", diff)
	}
	if e.m.Legs() != 0 {
		t.Errorf("%d legs left after the call", e.m.Legs())
	}
}

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if strings.Compare(s[j], s[i]) < 0 {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

// TestValidID: validID accepts exactly what its pattern accepts: every
// byte first and later, and lengths around the limit.
func TestValidID(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	inputs := []string{"", "a", "a\n", "-a", ".a", "_a", "a.b_c-d", "a b", "a/b",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 65)}
	for c := range 256 {
		inputs = append(inputs, string([]byte{byte(c)}), "a"+string([]byte{byte(c)}))
	}
	for _, in := range inputs {
		if got, want := validID(in), pattern.MatchString(in); got != want {
			t.Errorf("%q: %t, the pattern says %t", in, got, want)
		}
	}
}
