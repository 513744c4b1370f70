package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestKillChild is the child side of TestKill9: it finishes the recordings
// the parent wrote and uploads them until it is killed.
func TestKillChild(t *testing.T) {
	if os.Getenv("STORE_KILL_CHILD") != "1" {
		t.Skip("run by TestKill9")
	}
	n, _ := strconv.Atoi(os.Getenv("STORE_KILL_N"))
	c := Config{Storage: os.Getenv("STORE_KILL_STORAGE"), Spool: os.Getenv("STORE_KILL_SPOOL")}
	c.Backoff.Min, c.Backoff.Max = time.Millisecond, 5*time.Millisecond
	s, err := Open(c)
	if err != nil {
		t.Fatal(err)
	}
	go s.Run(context.Background())
	for i := range n {
		m := killMeta(i, os.Getenv("STORE_KILL_URL"))
		if _, err := s.Finish(m, filepath.Join(c.Spool, "rec", m.RecordingID+".wav")); err != nil {
			t.Error(err)
		}
	}
	select {} // until killed
}

func killMeta(i int, url string) Metadata {
	m := meta(fmt.Sprintf("k-%02d", i))
	m.CallID = fmt.Sprintf("leg-%02d", i)
	m.URL = url
	return m
}

// TestKill9 kills a process that is finishing and uploading recordings
// with SIGKILL at an arbitrary moment, then checks that a new process
// stores every recording exactly once and uploads every one.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	t.Parallel()
	const n = 24
	rc := newReceiver(0, "")
	srv := httptest.NewServer(rc)
	defer srv.Close()
	e := newEnv(t)
	sums := map[string]string{}
	for i := range n {
		m := killMeta(i, "")
		p := filepath.Join(e.spool, "rec", m.RecordingID+".wav")
		writeWAV(t, p, 8000, 1000+10*i)
		sum := sha256.Sum256(wavBytes(t, 8000, 1000+10*i))
		sums[m.RecordingID] = hex.EncodeToString(sum[:])
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$")
	cmd.Env = append(os.Environ(), "STORE_KILL_CHILD=1", "STORE_KILL_N="+strconv.Itoa(n),
		"STORE_KILL_STORAGE="+e.storage, "STORE_KILL_SPOOL="+e.spool, "STORE_KILL_URL="+srv.URL+"/up")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the child's first uploads", func() bool { return rc.totalAttempts() >= 3 })
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	atKill := rc.totalAttempts()
	left, _ := os.ReadDir(filepath.Join(e.spool, "rec"))
	journals, _ := os.ReadDir(filepath.Join(e.spool, dirJournal))

	s := e.open(t)
	// The engine finishes again what it had not been told was finished.
	for i := range n {
		m := killMeta(i, srv.URL+"/up")
		r, err := s.Finish(m, filepath.Join(e.spool, "rec", m.RecordingID+".wav"))
		if err != nil || r.Outcome != Stored {
			t.Fatalf("%s: %+v %v", m.RecordingID, r, err)
		}
	}
	run(t, s)
	waitFor(t, "uploads", func() bool { return s.Pending() == 0 })
	for i := range n {
		m := killMeta(i, "")
		got, media, err := s.Get(m.RecordingID)
		if err != nil || got.SHA256 != sums[m.RecordingID] {
			t.Fatalf("%s: %v sha %s", m.RecordingID, err, got.SHA256)
		}
		b, _ := os.ReadFile(media)
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != sums[m.RecordingID] {
			t.Errorf("%s: stored bytes differ", m.RecordingID)
		}
	}
	if des, _ := os.ReadDir(filepath.Join(e.spool, "rec")); len(des) != 0 {
		t.Errorf("left in the spool: %d files", len(des))
	}
	if des, _ := os.ReadDir(filepath.Join(e.spool, dirJournal)); len(des) != 0 {
		t.Errorf("journals left: %d", len(des))
	}
	acc := rc.accepted()
	dup := 0
	for i := range n {
		c := acc[fmt.Sprintf("call_recording_leg-%02d.wav", i)]
		if c < 1 {
			t.Errorf("leg-%02d never uploaded", i)
		}
		dup += c - 1
	}
	// Only uploads in flight when the process died (at most Workers) may
	// be sent twice.
	if dup > 4 {
		t.Errorf("%d uploads sent twice", dup)
	}
	t.Logf("killed after %d upload attempts with %d recordings in the spool and %d journals; %d uploads sent again",
		atKill, len(left), len(journals), dup)
}
