package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/recpol/recpol/compiler/isolate"
	"github.com/recpol/recpol/fakeswitch"
	"github.com/recpol/recpol/internal/catalogtest"
	"github.com/recpol/recpol/runtime/store"
	"github.com/recpol/recpol/scenario"
)

// TestLease: two runtimes configured on one switch. The first holds the
// switch's lease and records its calls; the second logs who owns the
// switch and records nothing. When the first dies (without giving the
// lease up), the second takes over once the lease expires and records the
// next call; no call is recorded twice. The lease is the switch's global
// variable for runtimes of their own catalogs, a row of the PostgreSQL
// catalog they share otherwise.
func TestLease(t *testing.T) {
	for _, shared := range []bool{false, true} {
		name := "switch variable"
		if shared {
			name = "shared postgresql catalog"
		}
		t.Run(name, func(t *testing.T) { testLease(t, shared) })
	}
}

func testLease(t *testing.T, shared bool) {
	rec := t.TempDir()
	srv := fakeswitch.New(fakeswitch.Config{Password: "ClueCon", RecordingsDir: rec, Quiet: 100 * time.Millisecond,
		Epoch: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	const ttl = 3 * time.Second
	conf := `lease_ttl_s: 3`
	if shared {
		pg := catalogtest.Postgres(t)
		conf += fmt.Sprintf("\ncatalog: {driver: \"postgres\", dsn: %q}", pg.DSN)
	}
	a := startHarnessOpts(t, "../testdata/policies/agreement", harnessOpts{srv: srv, rec: rec, addr: ln.Addr().String(),
		extra: conf + "\nname: \"rt-a\""})
	var blog syncBuffer
	b := startHarnessOpts(t, "../testdata/policies/agreement", harnessOpts{srv: srv, rec: rec, addr: ln.Addr().String(),
		extra: conf + "\nname: \"rt-b\"", standby: true, log: slog.New(slog.NewTextHandler(&blog, nil))})
	waitFor(t, "the second runtime to find the switch owned", func() bool {
		return strings.Contains(blog.String(), "switch served by another runtime") && strings.Contains(blog.String(), "owner=rt-a")
	})
	call := func(id string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Play(ctx, &scenario.Scenario{Calls: []scenario.Call{{ID: id, Legs: []scenario.Leg{
			{Name: "a", CallerIDNumber: "+15550001111", DestinationNumber: "2002",
				Variables: map[string]string{"recpol_account": "acme", "recpol_network": "offnet"}}},
			Steps: []scenario.Step{{AtMS: 0, Do: "create", Leg: "a"}, {AtMS: 100, Do: "answer", Leg: "a"}, {AtMS: 2100, Do: "hangup", Leg: "a"}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	stored := func(h *harness) int {
		ms, err := h.rt.Store.List(store.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		return len(ms)
	}
	call("first")
	a.waitFinished(t, 1)
	if b.rt.switches[0].client.Connected() {
		t.Fatal("the second runtime subscribed to a switch the first owns")
	}
	if na, nb := stored(a), stored(b); !shared && (na != 1 || nb != 0) || shared && (na != 1 || nb != 1) {
		t.Errorf("the first call: the owner lists %d recordings, the other %d", na, nb)
	}

	// The first runtime dies: it keeps its lease until it expires.
	a.rt.releaseLeases = false
	died := time.Now()
	a.stop()
	waitFor(t, "the second runtime to take the switch over", func() bool { return b.rt.switches[0].client.Connected() })
	if took := time.Since(died); took > ttl+ttl/3+2*time.Second {
		t.Errorf("took over after %v; the lease lasts %v", took, ttl)
	}
	call("second")
	b.waitFinished(t, 1)
	want := 1 // its own catalog
	if shared {
		want = 2 // both calls, once each
	}
	if nb := stored(b); nb != want {
		t.Errorf("after the second call the runtime that took over lists %d recordings, want %d", nb, want)
	}
}

func TestMain(m *testing.M) {
	isolate.Main() // a runtime compiles its policy in a child: this test binary
	catalogtest.Main(m)
}
