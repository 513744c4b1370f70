package runtime

import (
	"bytes"
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/recpol/recpol/callstate"
	"github.com/recpol/recpol/fakeswitch"
	"github.com/recpol/recpol/runtime/store"
	"github.com/recpol/recpol/scenario"
)

// wavSamples reads the 16-bit mono PCM samples of a WAV file.
func wavSamples(t *testing.T, path string) []int16 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("data"))
	if i < 0 || i+8 > len(b) {
		t.Fatalf("%s: no data chunk", path)
	}
	n := int(binary.LittleEndian.Uint32(b[i+4:]))
	data := b[i+8:]
	if n > len(data) {
		n = len(data)
	}
	out := make([]int16, n/2)
	for k := range out {
		out[k] = int16(binary.LittleEndian.Uint16(data[2*k:]))
	}
	return out
}

// silent reports whether samples [fromMS, toMS) are all zero, and whether
// any is not.
func silent(s []int16, rate int, fromMS, toMS int64) (all, any bool) {
	all = true
	for k := fromMS * int64(rate) / 1000; k < toMS*int64(rate)/1000 && k < int64(len(s)); k++ {
		if s[k] == 0 {
			any = true
		} else {
			all = false
		}
	}
	return all, any
}

func countCommands(srv *fakeswitch.Server, substr string) int {
	n := 0
	for _, c := range srv.Commands() {
		if strings.Contains(c.Line, substr) {
			n++
		}
	}
	return n
}

// TestMaskAcrossReconnect: the agent masks the call with *72, then the
// event socket drops and stays down for seconds: the mask is the switch's
// state, so the files keep silence through the outage; after the
// reconnection *73 unmasks. Then the socket drops again and a mask is
// asked through the API while the switch is unreachable: the command is
// kept and sent when the switch is back, so the end of the files is silent
// too. The stored WAV files hold digital silence exactly where the
// metadata says they are masked, and audio elsewhere.
func TestMaskAcrossReconnect(t *testing.T) {
	srv, px, h := proxiedHarness(t)
	call := twoLegCall("mask", 40000)
	hangup := call.Steps[len(call.Steps)-1]
	call.Steps = append(call.Steps[:len(call.Steps)-1],
		scenario.Step{AtMS: 5000, Do: "dtmf", Leg: "b", Digits: "*72"},
		scenario.Step{AtMS: 20000, Do: "dtmf", Leg: "b", Digits: "*73"},
		scenario.Step{AtMS: 25000, Do: "dtmf", Leg: "a", Digits: "1"}, hangup)
	legs, err := srv.StartCall(call)
	if err != nil {
		t.Fatal(err)
	}
	sw := h.rt.switches[0]
	down := func() {
		px.setDown(true)
		px.cut()
		waitFor(t, "the runtime to notice the drop", func() bool { return !sw.client.Connected() })
	}
	up := func() {
		px.setDown(false)
		waitFor(t, "the runtime to reconnect", func() bool { return sw.client.Connected() })
	}
	srv.Advance(1010 * time.Millisecond)
	waitFor(t, "two recordings to start", func() bool { return startsSent(srv) == 2 })
	time.Sleep(100 * time.Millisecond)
	srv.Advance(3990 * time.Millisecond) // the *72, at 5 s
	waitFor(t, "two masks", func() bool { return countCommands(srv, " mask ") == 2 })
	time.Sleep(50 * time.Millisecond)

	down()
	srv.Advance(10 * time.Second) // 15 s: masked while nobody listens
	up()
	srv.Advance(5 * time.Second) // the *73, at 20 s
	waitFor(t, "two unmasks", func() bool { return countCommands(srv, " unmask ") == 2 })
	time.Sleep(50 * time.Millisecond)
	srv.Advance(5 * time.Second) // a key press at 25 s, no code
	time.Sleep(50 * time.Millisecond)

	down()
	if _, found, err := sw.engine.apiAction(legs["a"], "mask", callstate.Actor{Name: "test", PolicyStop: true}, 0); !found || err != nil {
		t.Fatalf("API mask while disconnected: found %v, %v", found, err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := countCommands(srv, " mask "); n != 2 {
		t.Fatalf("%d masks reached an unreachable switch", n)
	}
	up()
	waitFor(t, "the kept masks to be sent", func() bool { return countCommands(srv, " mask ") == 4 })
	time.Sleep(50 * time.Millisecond)
	srv.Advance(15 * time.Second) // the hangup
	h.waitFinished(t, 2)

	stored, err := h.rt.Store.List(store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 {
		t.Fatalf("%d recordings stored, want 2", len(stored))
	}
	files := map[string]fakeswitch.FileRecord{}
	for _, f := range srv.Files() {
		files[f.UUID] = f
	}
	for _, m := range stored {
		f := files[m.CallID]
		if len(f.Masked) != 2 {
			t.Fatalf("recording %s: the switch masked %v, want two spans", m.RecordingID, f.Masked)
		}
		// The first span covers the whole outage (5 s to 15 s of the call,
		// 3990 ms to 13990 ms of the file) and matches the metadata
		// exactly; the second, asked while the switch was unreachable,
		// runs from 25 s to the file's end.
		if f.Masked[0].FromMS > 3990 || f.Masked[0].ToMS < 13990 {
			t.Errorf("recording %s: first masked span %v does not cover the outage", m.RecordingID, f.Masked[0])
		}
		if len(m.MaskedRanges) != 2 || m.MaskedRanges[0].StartMS != f.Masked[0].FromMS || m.MaskedRanges[0].EndMS != f.Masked[0].ToMS ||
			abs(m.MaskedRanges[1].StartMS-f.Masked[1].FromMS) > 1000 || m.MaskedRanges[1].EndMS != f.Masked[1].ToMS {
			t.Errorf("recording %s: metadata masks %v, file %v", m.RecordingID, m.MaskedRanges, f.Masked)
		}
		if f.Masked[1].ToMS != f.DurationMS {
			t.Errorf("recording %s: the API mask ends at %d, the file at %d", m.RecordingID, f.Masked[1].ToMS, f.DurationMS)
		}
		_, path, err := h.rt.Store.Get(m.RecordingID)
		if err != nil {
			t.Fatal(err)
		}
		s := wavSamples(t, path)
		for _, sp := range f.Masked {
			if all, _ := silent(s, f.SampleRate, sp.FromMS, sp.ToMS); !all {
				t.Errorf("recording %s: masked span %v holds audio", m.RecordingID, sp)
			}
		}
		if _, any := silent(s, f.SampleRate, f.Masked[0].ToMS+100, f.Masked[1].FromMS-100); any {
			// A tone has zero crossings; an unmasked stretch must not be
			// all silence.
			if all, _ := silent(s, f.SampleRate, f.Masked[0].ToMS+100, f.Masked[1].FromMS-100); all {
				t.Errorf("recording %s: the unmasked stretch is silent", m.RecordingID)
			}
		}
	}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
