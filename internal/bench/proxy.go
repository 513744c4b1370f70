package bench

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tap sits on loopback between the fake switch and the runtime, where the
// switch's socket is, and timestamps the stream: when each CHANNEL_ANSWER
// event is handed to the runtime's connection, and when each
// `uuid_record <uuid> start` command comes back from it. It forwards the
// bytes unchanged. It can also keep a copy of every event frame it
// forwards, the stream a peer client is then fed.
type tap struct {
	ln     net.Listener
	target string

	starts atomic.Int64 // uuid_record ... start commands forwarded
	events atomic.Int64 // event frames forwarded

	mu       sync.Mutex
	answered map[string]time.Time // leg uuid -> when its CHANNEL_ANSWER was forwarded
	latency  []time.Duration      // CHANNEL_ANSWER forwarded -> uuid_record start read
	jobs     map[string]time.Time // Job-UUID -> when its bgapi was read
	rtt      []time.Duration      // bgapi read -> its BACKGROUND_JOB forwarded
	capture  bool
	frames   bytes.Buffer
	nframes  int
	conns    []net.Conn
}

func newTap(target string) (*tap, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &tap{ln: ln, target: target, answered: map[string]time.Time{}, jobs: map[string]time.Time{}}
	go t.accept()
	return t, nil
}

func (t *tap) addr() string { return t.ln.Addr().String() }

func (t *tap) close() {
	t.ln.Close()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.conns {
		c.Close()
	}
}

// reset forgets the latencies measured so far.
func (t *tap) reset(capture bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.latency, t.rtt = nil, nil
	t.answered, t.jobs = map[string]time.Time{}, map[string]time.Time{}
	t.capture = capture
	t.frames.Reset()
	t.nframes = 0
}

// results returns the latencies and the captured event frames since the
// last reset.
func (t *tap) results() ([]time.Duration, []byte, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]time.Duration(nil), t.latency...), bytes.Clone(t.frames.Bytes()), t.nframes
}

// roundTrips returns the bgapi round trips seen since the last reset.
func (t *tap) roundTrips() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]time.Duration(nil), t.rtt...)
}

func (t *tap) accept() {
	for {
		c, err := t.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", t.target)
		if err != nil {
			c.Close()
			continue
		}
		t.mu.Lock()
		t.conns = append(t.conns, c, up)
		t.mu.Unlock()
		go t.down(up, c)
		go t.up(c, up)
	}
}

// down forwards the switch's bytes to the runtime as they arrive, and
// parses a copy: complete event frames are counted (and captured), and a
// CHANNEL_ANSWER's leg is timestamped just before the bytes that complete
// its frame are written on.
func (t *tap) down(sw, rt net.Conn) {
	defer rt.Close()
	buf := make([]byte, 256<<10)
	var acc []byte // bytes not yet parsed into whole frames
	var answered, jobs []string
	for {
		n, err := sw.Read(buf)
		if n > 0 {
			acc = append(acc, buf[:n]...)
			answered, jobs = answered[:0], jobs[:0]
			acc = t.parse(acc, &answered, &jobs)
			if len(answered) > 0 || len(jobs) > 0 {
				now := time.Now()
				t.mu.Lock()
				for _, u := range answered {
					t.answered[u] = now
				}
				for _, j := range jobs {
					if at, ok := t.jobs[j]; ok {
						t.rtt = append(t.rtt, now.Sub(at))
						delete(t.jobs, j)
					}
				}
				t.mu.Unlock()
			}
			if _, werr := rt.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// frames consumes the whole frames at the start of b and returns the rest.
func (t *tap) parse(b []byte, answered, jobs *[]string) []byte {
	for {
		end := bytes.Index(b, []byte("\n\n"))
		if end < 0 {
			return b
		}
		head := b[:end+1]
		clen, isEvent := 0, false
		for _, l := range bytes.Split(head, []byte("\n")) {
			if k, v, ok := bytes.Cut(bytes.TrimRight(l, "\r"), []byte(": ")); ok {
				switch string(k) {
				case "Content-Length":
					clen, _ = strconv.Atoi(string(v))
				case "Content-Type":
					isEvent = string(v) == "text/event-plain"
				}
			}
		}
		total := end + 2 + clen
		if len(b) < total {
			return b
		}
		if isEvent {
			body := b[end+2 : total]
			t.events.Add(1)
			if bytes.Contains(body, []byte("Event-Name: CHANNEL_ANSWER\n")) {
				if u := header(body, "Unique-ID"); u != "" {
					*answered = append(*answered, u)
				}
			} else if bytes.Contains(body, []byte("Event-Name: BACKGROUND_JOB\n")) {
				if j := header(body, "Job-UUID"); j != "" {
					*jobs = append(*jobs, j)
				}
			}
			t.mu.Lock()
			if t.capture {
				t.frames.Write(b[:total])
				t.nframes++
			}
			t.mu.Unlock()
		}
		b = b[total:]
		if len(b) == 0 {
			return b[:0]
		}
	}
}

// header returns a header of a plain event body (URL-encoded as sent).
func header(body []byte, name string) string {
	var rest []byte
	if key := []byte(name + ": "); bytes.HasPrefix(body, key) {
		rest = body[len(key):]
	} else {
		key = []byte("\n" + name + ": ")
		i := bytes.Index(body, key)
		if i < 0 {
			return ""
		}
		rest = body[i+len(key):]
	}
	if j := bytes.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	return string(rest)
}

// up forwards the runtime's bytes to the switch as they arrive, noting
// each `uuid_record <uuid> start` command line when it is read.
func (t *tap) up(rt, sw net.Conn) {
	defer sw.Close()
	buf := make([]byte, 64<<10)
	var acc []byte
	first := true // the next line starts a command
	bg := false   // the command being read is a bgapi
	for {
		n, err := rt.Read(buf)
		if n > 0 {
			now := time.Now()
			acc = append(acc, buf[:n]...)
			for {
				i := bytes.IndexByte(acc, '\n')
				if i < 0 {
					break
				}
				l := strings.TrimRight(string(acc[:i]), "\r")
				acc = acc[i+1:]
				if first && l != "" {
					t.command(l, now)
					bg = strings.HasPrefix(l, "bgapi ")
				} else if bg && strings.HasPrefix(l, "Job-UUID: ") {
					t.mu.Lock()
					t.jobs[strings.TrimPrefix(l, "Job-UUID: ")] = now
					t.mu.Unlock()
				}
				first = l == ""
			}
			if len(acc) == 0 {
				acc = acc[:0]
			} else {
				acc = bytes.Clone(acc)
			}
			if _, werr := sw.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (t *tap) command(l string, now time.Time) {
	f := strings.Fields(l)
	if len(f) < 4 || (f[0] != "bgapi" && f[0] != "api") || f[1] != "uuid_record" || f[3] != "start" {
		return
	}
	t.starts.Add(1)
	t.mu.Lock()
	if at, ok := t.answered[f[2]]; ok {
		t.latency = append(t.latency, now.Sub(at))
		delete(t.answered, f[2])
	}
	t.mu.Unlock()
}
