package eslwire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// readFrameBytes is ReadFrame over b: the reference parseFrame must
// agree with.
func readFrameBytes(b []byte) (Frame, error) {
	return ReadFrame(bufio.NewReader(bytes.NewReader(b)))
}

// captureBodies are the text/event-plain bodies of the real FreeSWITCH
// 1.10.12 captures.
func captureBodies(t testing.TB) [][]byte {
	t.Helper()
	files, _ := filepath.Glob("../../../shared/esl-captures/freeswitch-1.10.12/*")
	var out [][]byte
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		r := bufio.NewReader(bytes.NewReader(raw))
		for {
			f, err := ReadFrame(r)
			if err != nil {
				break
			}
			if f.Get("Content-Type") == TypeEventPlain {
				out = append(out, f.Body)
			}
		}
	}
	return out
}

// sampleEvent is a CHANNEL_ANSWER as the switch frames it, with encoded
// values, an _undef_ and a body of its own.
func sampleEvent() []byte {
	e := &Event{Body: "+OK body\n"}
	e.Add("Event-Name", "CHANNEL_ANSWER")
	e.Add("Core-UUID", "00000000-0000-4000-8000-00000000c0de")
	e.Add("Caller-Caller-ID-Name", "Jean Dupont {x}")
	e.Add("variable_sip_h_X-Note", "a: b\nc")
	e.Add("variable_empty", "")
	return e.MarshalPlain()
}

// sameFrame checks parseFrame against ReadFrame on one input: the same
// frame, or an error on both with the same sentinel.
func sameFrame(t testing.TB, b []byte) {
	want, werr := readFrameBytes(b)
	got, gerr := parseFrame(b)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%q: ReadFrame error %v, parseFrame error %v", b, werr, gerr)
	}
	for _, sentinel := range []error{ErrLineTooLong, ErrTooManyHeader, ErrBadHeader, ErrBadLength} {
		if errors.Is(werr, sentinel) != errors.Is(gerr, sentinel) {
			t.Fatalf("%q: ReadFrame error %v, parseFrame error %v", b, werr, gerr)
		}
	}
	if werr != nil {
		return
	}
	if len(want.Body) == 0 {
		want.Body = nil
	}
	if len(got.Body) == 0 {
		got.Body = nil
	}
	if len(want.Headers) == 0 {
		want.Headers = nil
	}
	if len(got.Headers) == 0 {
		got.Headers = nil
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("%q: ReadFrame -want parseFrame +got:\n%s", b, diff)
	}
}

// TestParseFrameAgrees: the in-memory parser behind ParseEventPlain reads
// exactly what ReadFrame reads, on the captured events, on hand-made edge
// cases, and on many deterministic mutations of the captures.
func TestParseFrameAgrees(t *testing.T) {
	cases := []string{
		"", "\n", "\n\n", "A: b", "A: b\n", "A: b\n\n", "A: b\r\n\r\n", "\r\n\r\nA: b\n\n",
		"A: b\r", "A: b\r\n", "A:b\n\nrest", "A b\n\n", ": b\n\n", "A\tB: c\n\n", "A: b\rc\n\n",
		"Content-Length: 3\n\nabcdef", "Content-Length: 3\n\nab", "Content-Length: -1\n\n", "Content-Length: x\n\n",
		fmt.Sprintf("Content-Length: %d\n\n", MaxBody+1),
		"A: " + string(bytes.Repeat([]byte("x"), MaxHeaderLine)) + "\n\n",
		"A: " + string(bytes.Repeat([]byte("x"), MaxHeaderLine-3)) + "\n\n",
		string(bytes.Repeat([]byte("A: b\n"), MaxHeaders)) + "\n",
		string(bytes.Repeat([]byte("A: b\n"), MaxHeaders+1)) + "\n",
	}
	for _, c := range cases {
		sameFrame(t, []byte(c))
	}
	bodies := append(captureBodies(t), sampleEvent())
	if len(bodies) == 1 {
		t.Log("the captures are not beside the repository; mutating a sample event only")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("\n\r: \tA%0Content-Length5")
	for _, b := range bodies {
		sameFrame(t, b)
		for range 30 {
			m := append([]byte(nil), b...)
			for range 1 + rng.IntN(4) {
				switch k := rng.IntN(3); {
				case k == 0 && len(m) > 0: // replace a byte
					m[rng.IntN(len(m))] = alphabet[rng.IntN(len(alphabet))]
				case k == 1 && len(m) > 0: // cut
					m = m[:rng.IntN(len(m))]
				default: // insert
					i := rng.IntN(len(m) + 1)
					m = append(m[:i], append([]byte{alphabet[rng.IntN(len(alphabet))]}, m[i:]...)...)
				}
			}
			sameFrame(t, m)
		}
	}
}

// FuzzParseEventPlain: the in-memory parser agrees with ReadFrame on any
// input, and ParseEventPlain never panics.
func FuzzParseEventPlain(f *testing.F) {
	for _, b := range append(captureBodies(f), sampleEvent()) {
		f.Add(b)
	}
	f.Add([]byte("Event-Name: CUSTOM\nContent-Length: 2\n\nhi"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sameFrame(t, b)
		ev, err := ParseEventPlain(b)
		if err == nil && len(ev.Headers) == 0 {
			t.Fatal("an event without headers")
		}
	})
}

func BenchmarkParseEventPlain(b *testing.B) {
	bodies := captureBodies(b)
	if len(bodies) == 0 {
		b.Skip("no captures")
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := ParseEventPlain(bodies[i%len(bodies)]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReaderAgrees: a Reader, which reuses its memory from frame to
// frame, reads a stream of frames exactly as ReadFrame does, each frame
// checked before the next Read.
func TestReaderAgrees(t *testing.T) {
	big := bytes.Repeat([]byte("y"), bodyAlloc+1)
	streams := map[string][]byte{
		"events and replies": []byte("Content-Type: auth/request\n\n" +
			"Content-Type: command/reply\nReply-Text: +OK accepted\n\n" +
			"Content-Length: 5\nContent-Type: api/response\n\n-ERR \n" +
			"Content-Length: 16\nContent-Type: text/event-plain\n\nEvent-Name: A\n\n\n" +
			"Content-Length: 3\nContent-Type: text/event-plain\n\nabc" +
			"Content-Type: text/disconnect-notice\n\n"),
		"a longer body after a short one": append([]byte("Content-Length: 2\n\nab"+
			fmt.Sprintf("Content-Length: %d\n\n", len(big))), big...),
		"a malformed frame last": []byte("Content-Length: 1\n\nxA b\n\n"),
		"cut inside a body":      []byte("Content-Length: 1\n\nxContent-Length: 9\n\nabc"),
		"many headers":           append(bytes.Repeat([]byte("A: b\n"), 100), "\nContent-Length: 0\n\n"...),
	}
	for name, stream := range streams {
		t.Run(name, func(t *testing.T) {
			want := bufio.NewReader(bytes.NewReader(stream))
			r := NewReader(bufio.NewReader(bytes.NewReader(stream)))
			for n := 0; ; n++ {
				wf, werr := ReadFrame(want)
				gf, gerr := r.Read()
				if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
					t.Fatalf("frame %d: ReadFrame error %v, Reader error %v", n, werr, gerr)
				}
				if werr != nil {
					return
				}
				if len(wf.Body) == 0 {
					wf.Body = nil
				}
				if len(gf.Body) == 0 {
					gf.Body = nil
				}
				if diff := cmp.Diff(wf, gf); diff != "" {
					t.Fatalf("frame %d: ReadFrame -want Reader +got:\n%s", n, diff)
				}
			}
		})
	}
}

// TestURLDecode: %XX in either case becomes its byte; anything else, a
// '%' without two hex digits after it and '+' included, is kept; an event
// decodes every value as URLDecode does.
func TestURLDecode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain+value", "plain+value"},
		{"a%20b", "a b"},
		{"%3a%3A", "::"},
		{"%", "%"},
		{"%4", "%4"},
		{"a%41", "aA"},
		{"%41%", "A%"},
		{"%zz%41", "%zzA"},
		{"%%41", "%A"},
		{"%C3%A9", "é"},
		{"%0A", "\n"},
	}
	ev := &Event{}
	for i, tt := range tests {
		if got := URLDecode(tt.in); got != tt.want {
			t.Errorf("URLDecode(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if tt.in != "" {
			ev.Add(fmt.Sprintf("H%d", i), tt.in)
		}
	}
	var b []byte
	for _, h := range ev.Headers {
		b = fmt.Appendf(b, "%s: %s\n", h.Name, h.Value)
	}
	got, err := ParseEventPlain(append(b, '\n'))
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range got.Headers {
		if want := URLDecode(ev.Headers[i].Value); h.Value != want {
			t.Errorf("%s: %q, want %q", h.Name, h.Value, want)
		}
	}
}
