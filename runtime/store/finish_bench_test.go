package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// cpuMicros is the process's user+system CPU time so far, in µs.
func cpuMicros() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano()/1000 + ru.Stime.Nano()/1000
}

// BenchmarkFinish finishes recordings from 64 goroutines at once, or in
// batches of 128 from one goroutine with FinishAll (batch: as the
// runtime's finish lane hands them over): a 1-second 8 kHz WAV each,
// written into the spool before the timer starts, then Finish (checked,
// hashed, moved, entered; queued for upload with a URL; the sidecar
// written by the sidecar lane). It reports the
// recordings finished per second of wall time (rec/s), the process's CPU
// per recording (cpu-µs/op: user+system from getrusage, the sidecar lane's
// work included, up to its last sidecar), the catalog transactions
// committed per recording (tx/op: shared by the finishes of a group) and
// the Apply calls per recording (applies/op: each one a wait for a
// commit).
func BenchmarkFinish(b *testing.B) {
	for _, bc := range []struct {
		upload, batch bool
	}{{false, false}, {true, false}, {false, true}, {true, true}} {
		upload := bc.upload
		name := "local"
		if upload {
			name = "upload-queued"
		}
		if bc.batch {
			name += "/batch"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnvB(b)
			s, err := Open(e.config())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			wav := pcmWAV(8000, 1000)
			recs := make([]Metadata, b.N)
			for i := range recs {
				m := meta(fmt.Sprintf("b-%d", i))
				m.CallID = fmt.Sprintf("call-%d", i)
				if upload {
					m.URL = "http://127.0.0.1:9/up/"
				}
				recs[i] = m
				if err := os.WriteFile(e.src(m), wav, 0o600); err != nil {
					b.Fatal(err)
				}
			}
			var n atomic.Int64
			b.SetParallelism(32) // 64 goroutines on 2 cores
			syscallMark()
			cpu0 := cpuMicros()
			st0 := s.cat.Stats()
			start := time.Now()
			b.ResetTimer()
			if bc.batch {
				for len(recs) > 0 {
					n := min(128, len(recs))
					items := make([]Item, n)
					for i, m := range recs[:n] {
						items[i] = Item{Meta: m, File: e.src(m)}
					}
					for _, o := range s.FinishAll(items) {
						if o.Err != nil || o.Result.Outcome != Stored {
							b.Fatalf("%+v %v", o.Result, o.Err)
						}
					}
					recs = recs[n:]
				}
			} else {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						m := recs[n.Add(1)-1]
						if r, err := s.Finish(m, e.src(m)); err != nil || r.Outcome != Stored {
							b.Errorf("%+v %v", r, err)
							return
						}
					}
				})
			}
			b.StopTimer()
			wall := time.Since(start)
			s.syncSidecars()
			syscallMark()
			st := s.cat.Stats()
			b.ReportMetric(float64(b.N)/wall.Seconds(), "rec/s")
			b.ReportMetric(float64(cpuMicros()-cpu0)/float64(b.N), "cpu-µs/op")
			b.ReportMetric(float64(st.Commits-st0.Commits)/float64(b.N), "tx/op")
			b.ReportMetric(float64(st.Applies-st0.Applies)/float64(b.N), "applies/op")
		})
	}
}

// syscallMark makes a system call nothing else in the test binary makes
// (getppid), around the work a benchmark measures: a trace of the process
// (strace -f) counts the system calls between two marks, the benchmark's
// own set-up left out.
func syscallMark() { os.Getppid() }

// src is where the benchmark's recording m waits in the spool.
func (e *env) src(m Metadata) string {
	return filepath.Join(e.spool, "rec", m.RecordingID+".wav")
}

func newEnvB(b *testing.B) *env {
	d := b.TempDir()
	os.MkdirAll(filepath.Join(d, "spool", "rec"), 0o700)
	return &env{storage: filepath.Join(d, "storage"), spool: filepath.Join(d, "spool"), logs: &syncBuffer{}}
}

// pcmWAV is a silent 16-bit mono PCM WAV of ms milliseconds.
func pcmWAV(rate, ms int) []byte {
	data := rate * ms / 1000 * 2
	b := make([]byte, 44+data)
	put32 := func(off, v int) { binary.LittleEndian.PutUint32(b[off:], uint32(v)) }
	put16 := func(off, v int) { binary.LittleEndian.PutUint16(b[off:], uint16(v)) }
	copy(b, "RIFF")
	put32(4, 36+data)
	copy(b[8:], "WAVEfmt ")
	put32(16, 16)
	put16(20, 1) // PCM
	put16(22, 1) // mono
	put32(24, rate)
	put32(28, rate*2)
	put16(32, 2)
	put16(34, 16)
	copy(b[36:], "data")
	put32(40, data)
	return b
}

// BenchmarkUploadBacklog uploads a backlog of recordings, all to one
// target (a local server that answers at once), with the default workers
// and per-target limit: the recordings are finished before the timer
// starts, then Run uploads them. It reports uploads per second and the
// process's CPU per upload (the server's included: it runs in process).
func BenchmarkUploadBacklog(b *testing.B) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	defer srv.Close()
	e := newEnvB(b)
	s, err := Open(e.config())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	wav := pcmWAV(8000, 200)
	for i := range b.N {
		m := meta(fmt.Sprintf("u-%d", i))
		m.CallID = fmt.Sprintf("call-%d", i)
		m.URL = srv.URL + "/up/"
		if err := os.WriteFile(e.src(m), wav, 0o600); err != nil {
			b.Fatal(err)
		}
		if r, err := s.Finish(m, e.src(m)); err != nil || r.Outcome != Stored {
			b.Fatalf("%+v %v", r, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	syscallMark()
	cpu0 := cpuMicros()
	start := time.Now()
	b.ResetTimer()
	go func() { done <- s.Run(ctx) }()
	for {
		s.mu.Lock()
		left := len(s.pending)
		s.mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	syscallMark()
	wall := time.Since(start)
	cancel()
	<-done
	if int(got.Load()) < b.N {
		b.Fatalf("%d of %d uploaded", got.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/wall.Seconds(), "uploads/s")
	b.ReportMetric(float64(cpuMicros()-cpu0)/float64(b.N), "cpu-µs/op")
}
