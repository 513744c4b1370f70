package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-audio/audio"
	"github.com/go-audio/wav"
)

// writeWAV writes a real 16-bit mono PCM WAV of ms milliseconds at rate,
// encoded with go-audio/wav (in memory, once per shape).
func writeWAV(t *testing.T, path string, rate, ms int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, wavBytes(t, rate, ms), 0o644); err != nil {
		t.Fatal(err)
	}
}

var wavCache sync.Map // [2]int{rate, ms} -> []byte

func wavBytes(t *testing.T, rate, ms int) []byte {
	key := [2]int{rate, ms}
	if b, ok := wavCache.Load(key); ok {
		return b.([]byte)
	}
	n := rate * ms / 1000
	var b []byte
	if n == 0 {
		// The encoder writes no header without samples: a bare header.
		b = []byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00")
		b = binary.LittleEndian.AppendUint32(b, uint32(rate))
		b = binary.LittleEndian.AppendUint32(b, uint32(rate*2))
		b = append(b, "\x02\x00\x10\x00data\x00\x00\x00\x00"...)
	} else {
		var ws memWriteSeeker
		enc := wav.NewEncoder(&ws, rate, 16, 1, 1)
		buf := &audio.IntBuffer{Format: &audio.Format{NumChannels: 1, SampleRate: rate}, SourceBitDepth: 16, Data: make([]int, n)}
		for i := range buf.Data {
			buf.Data[i] = (i * 37) % 2000
		}
		if err := enc.Write(buf); err != nil {
			t.Fatal(err)
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		b = ws.buf
	}
	wavCache.Store(key, b)
	return b
}

// memWriteSeeker is an in-memory io.WriteSeeker for the WAV encoder, which
// seeks back to patch its header.
type memWriteSeeker struct {
	buf []byte
	pos int
}

func (m *memWriteSeeker) Write(p []byte) (int, error) {
	if end := m.pos + len(p); end > len(m.buf) {
		m.buf = append(m.buf, make([]byte, end-len(m.buf))...)
	}
	copy(m.buf[m.pos:], p)
	m.pos += len(p)
	return len(p), nil
}

func (m *memWriteSeeker) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += int64(m.pos)
	case io.SeekEnd:
		off += int64(len(m.buf))
	}
	if off < 0 {
		return 0, errors.New("negative seek")
	}
	m.pos = int(off)
	return off, nil
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type env struct {
	storage, spool string
	logs           *syncBuffer
	mu             sync.Mutex
	events         []Event
}

func newEnv(t testing.TB) *env {
	d := t.TempDir()
	return &env{storage: filepath.Join(d, "storage"), spool: filepath.Join(d, "spool"), logs: &syncBuffer{}}
}

func (e *env) config() Config {
	c := Config{
		Storage: e.storage,
		Spool:   e.spool,
		Logger:  slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Events: func(ev Event) {
			e.mu.Lock()
			e.events = append(e.events, ev)
			e.mu.Unlock()
		},
	}
	c.Backoff.Min = time.Millisecond
	c.Backoff.Max = 5 * time.Millisecond
	return c
}

func (e *env) count(k EventKind) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.events {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

func (e *env) open(t testing.TB, mod ...func(*Config)) *Store {
	t.Helper()
	c := e.config()
	for _, f := range mod {
		f(&c)
	}
	s, err := Open(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// meta returns valid metadata for recording id of call "call-1".
func meta(id string) Metadata {
	return Metadata{
		RecordingID:   id,
		CallID:        "call-1",
		InteractionID: "ia-1",
		Account:       "acme",
		From:          "+33 1 23",
		To:            "1002",
		Start:         time.Date(2026, 3, 4, 23, 59, 0, 0, time.FixedZone("X", -3600)),
		SampleRate:    8000,
		Format:        "wav",
	}
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
