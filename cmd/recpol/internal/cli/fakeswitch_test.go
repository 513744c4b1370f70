package cli

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fiorix/go-eventsocket/eventsocket"
	"github.com/go-audio/wav"
)

var exampleScenario = filepath.Join("..", "..", "..", "..", "testdata", "scenarios", "basic.json")

func TestFakeswitchUsageErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"calls": [{"id": "c", "legs": [{"name": "a"}], "steps": [{"at_ms": 0, "do": "create", "leg": "nobody"}]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no recordings", []string{"fakeswitch", "--scenario", exampleScenario}, "--recordings DIR is required"},
		{"bad scenario", []string{"fakeswitch", "--recordings", t.TempDir(), "--scenario", bad}, "bad.json:1:"},
		{"missing scenario", []string{"fakeswitch", "--recordings", t.TempDir(), "--scenario", "nope.json"}, "nope.json"},
		{"bad listen", []string{"fakeswitch", "--recordings", t.TempDir(), "--listen", "nonsense"}, "listen"},
		{"bad mp3 mode", []string{"fakeswitch", "--recordings", t.TempDir(), "--mp3", "real"}, `--mp3 "real": want stub, auto or off`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Run(tt.args, nil, &stdout, &stderr); code != ExitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, ExitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.want)
			}
		})
	}
}

// TestFakeswitchPlaysToClient runs the command with the example scenario
// and a client that records the bridged caller's leg and masks it between
// the *72 and *73 DTMF sequences, as the runtime will.
func TestFakeswitchPlaysToClient(t *testing.T) {
	dir := t.TempDir()
	pr, pw := io.Pipe()
	exit := make(chan int, 1)
	go func() {
		exit <- Run([]string{"fakeswitch", "--listen", "127.0.0.1:0", "--recordings", dir, "--scenario", exampleScenario, "--quiet", "300ms"}, nil, io.Discard, pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	addrRe := regexp.MustCompile(`addr=(\S+)`)
	var addr string
	for addr == "" && lines.Scan() {
		if m := addrRe.FindStringSubmatch(lines.Text()); m != nil && strings.Contains(lines.Text(), "listening") {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatal("no listen address logged")
	}
	go io.Copy(io.Discard, pr)

	c, err := eventsocket.Dial(addr, "ClueCon")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	evs := make(chan *eventsocket.Event, 10000)
	go func() {
		for {
			ev, err := c.ReadEvent()
			if err != nil {
				close(evs)
				return
			}
			evs <- ev
		}
	}()
	if _, err := c.Send("event plain CHANNEL_BRIDGE DTMF RECORD_STOP"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "caller.wav")
	var uuid string
	var stop *eventsocket.Event
	timeout := time.After(20 * time.Second)
	for stop == nil {
		select {
		case ev := <-evs:
			switch ev.Get("Event-Name") {
			case "CHANNEL_BRIDGE":
				uuid = ev.Get("Unique-Id")
				if _, err := c.Send("bgapi uuid_record " + uuid + " start " + path); err != nil {
					t.Fatal(err)
				}
			case "DTMF":
				if ev.Get("Dtmf-Digit") == "2" {
					if _, err := c.Send("bgapi uuid_record " + uuid + " mask " + path); err != nil {
						t.Fatal(err)
					}
				}
				if ev.Get("Dtmf-Digit") == "3" {
					if _, err := c.Send("bgapi uuid_record " + uuid + " unmask " + path); err != nil {
						t.Fatal(err)
					}
				}
			case "RECORD_STOP":
				stop = ev
			}
		case <-timeout:
			t.Fatal("no RECORD_STOP")
		}
	}
	if code := <-exit; code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	// Bridged at 3010 ms, masked from 20000 to 35000, hung up at 60000.
	if got := stop.Get("Variable_record_ms"); got != "56990" {
		t.Errorf("record_ms %s, want 56990", got)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf, err := wav.NewDecoder(f).FullPCMBuffer()
	if err != nil {
		t.Fatal(err)
	}
	data := buf.Data
	if len(data) != 56990*8 {
		t.Fatalf("%d samples", len(data))
	}
	zeros := func(from, to int) (n int) {
		for _, v := range data[from*8 : to*8] {
			if v == 0 {
				n++
			}
		}
		return n
	}
	if n := zeros(16990, 31990); n != 15000*8 {
		t.Errorf("masked span has %d zero samples of %d", n, 15000*8)
	}
	if n := zeros(0, 16990); n > 16990*8/10 {
		t.Errorf("recorded span has %d zero samples", n)
	}
}
