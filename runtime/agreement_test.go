package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"

	"github.com/recpol/recpol/callstate/classify"
	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/fakeswitch"
	"github.com/recpol/recpol/runtime/store"
	"github.com/recpol/recpol/scenario"
	"github.com/recpol/recpol/simulate"
)

// harness is a runtime connected to a fake switch over TCP on loopback,
// with its policy, storage and spool in a temporary directory.
type harness struct {
	dir    string
	rec    string // the switch's recordings directory
	srv    *fakeswitch.Server
	rt     *Runtime
	cancel context.CancelFunc
	done   chan error
	// settled: the switch run the fake switch's Config.Settled asks, set
	// once the runtime exists (nil for a switch the test made).
	settled *atomic.Pointer[switchRun]
}

// harnessOpts change what startHarnessOpts sets up.
type harnessOpts struct {
	srv   *fakeswitch.Server // a switch the test made (with rec as its recordings dir)
	rec   string
	addr  string // where the runtime reaches the switch
	extra string // more runtime config
	log   *slog.Logger
	// standby: another runtime holds the switch's lease; do not wait for
	// this one to connect.
	standby bool
}

// startHarness copies the policy directory, starts a fake switch and the
// runtime, and waits until the runtime is connected.
func startHarness(t testing.TB, policyDir string, extraConfig string) *harness {
	return startHarnessOpts(t, policyDir, harnessOpts{extra: extraConfig})
}

func startHarnessOpts(t testing.TB, policyDir string, o harnessOpts) *harness {
	t.Helper()
	h := &harness{dir: t.TempDir(), done: make(chan error, 1)}
	h.rec = filepath.Join(h.dir, "fs-recordings")
	if o.rec != "" {
		h.rec = o.rec
	}
	policies := filepath.Join(h.dir, "policies")
	if err := os.MkdirAll(policies, 0o755); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(policyDir, "*.cue"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(policies, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	addr := o.addr
	if o.srv != nil {
		h.srv = o.srv
	} else {
		// The clock moves once the runtime is done with every event sent
		// (handled, or a BACKGROUND_JOB read) and with every command it
		// queued: on a loaded machine a quiet period alone let a start
		// come after the clock had moved on.
		var sr atomic.Pointer[switchRun]
		h.settled = &sr
		h.srv = fakeswitch.New(fakeswitch.Config{Password: "ClueCon", RecordingsDir: h.rec, Quiet: 100 * time.Millisecond,
			Epoch: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC), Settled: func(written int64) bool {
				s := sr.Load()
				return s != nil && s.handled.Load()+s.client.JobsRead() == written && s.engine.commands.Load() == 0
			}})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go h.srv.Serve(ln)
		t.Cleanup(func() { h.srv.Close() })
		addr = ln.Addr().String()
	}
	conf := fmt.Sprintf(`switches: [{address: %q, password: "ClueCon", record_dir: %q, local_dir: %q}]
policies: "policies"
storage: "storage"
spool: "spool"
http: {listen: "127.0.0.1:0", token: "test-token"}
reload_debounce_ms: 20
%s`, addr, h.rec, h.rec, o.extra)
	cfgPath := filepath.Join(h.dir, "runtime.cue")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	lg := o.log
	if lg == nil {
		lg = quietLogger()
	}
	rt, err := New(cfg, lg)
	if err != nil {
		t.Fatal(err)
	}
	h.rt = rt
	if h.settled != nil {
		h.settled.Store(rt.switches[0])
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- rt.Run(ctx) }()
	t.Cleanup(h.stop)
	if o.standby {
		return h
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := h.srv.WaitClients(wctx, 1); err != nil {
		t.Fatalf("the runtime did not connect: %v", err)
	}
	for !rt.switches[0].client.Connected() {
		if wctx.Err() != nil {
			t.Fatal("the runtime did not finish connecting")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return h
}

func (h *harness) stop() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
		h.cancel = nil
	}
}

// waitFinished waits until the store has finished n recordings (stored or
// discarded), by the metrics.
func (h *harness) waitFinished(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		got := 0
		for _, o := range []string{"stored", "discarded", "quarantined"} {
			got += int(counterValue(h.rt.Metrics.Finished.WithLabelValues(o)))
		}
		if got >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %d finished recordings", n)
}

// TestAgreement plays scenarios covering every kind of decision (account
// inbound with late caller variables, a ring group, record_on_answer,
// record_on_bridge, a too-short callee recording, a callflow's
// record_caller stopped by its time limit, metaflow masking) through the
// runtime against the fake switch over TCP, and checks that the recordings
// produced (leg, scope, origin, settings, WAV duration and masked spans)
// are exactly those the simulator predicts.
func TestAgreement(t *testing.T) {
	agree(t, "../testdata/policies/agreement", "../testdata/scenarios/agreement.json", "", classify.Config{})
}

// TestAgreementShapes plays every call shape of SPEC 2.7 (transfers,
// pickup, park, calls the platform answers, calls between accounts
// directly and through a loopback, variables set in any order) through
// the runtime and the simulator: the recordings agree, and no recording
// pre-answers a ringing leg.
func TestAgreementShapes(t *testing.T) {
	files, err := filepath.Glob("../testdata/scenarios/shapes/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no shape scenarios: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			t.Parallel()
			predicted, stored := agree(t, "../testdata/policies/shapes", f, "", classify.Config{})
			// A recording belongs to its leg (SPEC 2.7): whatever
			// transfer, pickup, park or bow-out happened, each one the
			// runtime stored runs from its start to its own leg's hangup
			// (the shapes' policy sets no limit a call reaches); one that
			// moved with an attended transfer (SPEC 2.5) to the hangup of
			// the leg it moved to.
			sc, err := scenario.ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			hangup := map[string]int64{} // by leg uuid
			uuids := map[string]string{} // by call and leg name
			for i := range sc.Calls {
				c := &sc.Calls[i]
				for _, l := range c.Legs {
					uuids[c.ID+"/"+l.Name] = l.UUID
				}
				for _, e := range c.Effects() {
					if e.Kind == scenario.EffHangup {
						hangup[c.Leg(e.Leg).UUID] = e.AtMS
					}
				}
			}
			start := map[string]int64{}
			endLeg := map[string]string{}
			for _, p := range predicted {
				k := p.LegUUID + "|" + p.Scope + "|" + p.Origin
				start[k], endLeg[k] = p.StartMS, p.LegUUID
				if p.MovedTo != "" {
					endLeg[k] = uuids[p.Call+"/"+p.MovedTo]
				}
			}
			for _, m := range stored {
				k := m.CallID + "|" + m.Scope + "|" + m.Origin
				s, ok := start[k]
				h, hung := hangup[endLeg[k]]
				if !ok || !hung {
					t.Errorf("recording %s (%s on %s): no predicted start or no hangup of its leg", m.RecordingID, m.Scope, m.CallID)
					continue
				}
				if m.DurationMS != h-s {
					t.Errorf("recording %s (%s %q): %d ms stored, want %d ms: from its start at %d ms to its leg's hangup at %d ms",
						m.RecordingID, m.Scope, m.Origin, m.DurationMS, h-s, s, h)
				}
			}
		})
	}
}

// TestAgreementActions plays the callflow and metaflow actions of issue 13
// (testdata/scenarios/actions) on calls a policy records too: a stop-only
// callflow a call is transferred to, *74 (own recordings) and *75 (scope
// call) while a policy recording runs, Wazo's *3 on a recorded call. The
// runtime stores what the simulator predicts, and a recording whose
// action sets media_name is stored under that name.
func TestAgreementActions(t *testing.T) {
	files, err := filepath.Glob("../testdata/scenarios/actions/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no action scenarios: %v", err)
	}
	mediaNames := map[string]string{"callflow : Sales": "sales", "metaflow : *71": "agent"}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			t.Parallel()
			_, stored := agree(t, "../testdata/policies/actions", f, "", classify.Config{})
			for _, m := range stored {
				if m.MediaName != mediaNames[m.Origin] {
					t.Errorf("recording %s (%s): media_name %q, want %q", m.RecordingID, m.Origin, m.MediaName, mediaNames[m.Origin])
				}
			}
		})
	}
}

// agree plays a scenario through the runtime against the fake switch and
// compares what is stored with the simulator's prediction. It returns the
// prediction and the stored metadata.
func agree(t *testing.T, policyDir, scenarioFile, extraConfig string, cl classify.Config) ([]simulate.Predicted, []store.Metadata) {
	t.Helper()
	sc, err := scenario.ParseFile(scenarioFile)
	if err != nil {
		t.Fatal(err)
	}
	res, err := compiler.Options{}.Compile(policyDir)
	if err != nil || res.Table == nil {
		t.Fatalf("policy: %v %v", err, res.Diagnostics)
	}
	predicted, err := simulate.PredictScenarioWith(res.Table, sc, classify.Must(cl))
	if err != nil {
		t.Fatal(err)
	}
	h := startHarness(t, policyDir, extraConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.srv.Play(ctx, sc); err != nil {
		t.Fatal(err)
	}
	h.waitFinished(t, len(predicted))

	type outcome struct {
		Leg, Account, Scope, Endpoint, Origin string
		Format                                string
		SampleRate                            int
		DurationMS                            int64
		Masked                                []store.Range
		Kept                                  bool
	}
	key := func(o outcome) string { return o.Leg + "|" + o.Scope + "|" + o.Origin }
	var want []outcome
	for _, p := range predicted {
		o := outcome{Leg: p.LegUUID, Account: p.Account, Scope: p.Scope, Endpoint: p.Endpoint, Origin: p.Origin, Kept: p.Kept,
			Format: p.Settings.Format, SampleRate: p.Settings.RecordSampleRate, Masked: []store.Range{}}
		if p.Kept {
			o.DurationMS = p.DurationMS
			for _, m := range p.Masked {
				o.Masked = append(o.Masked, store.Range{StartMS: m.StartMS, EndMS: m.EndMS})
			}
		}
		want = append(want, o)
	}
	// What the runtime stored, checked against what the switch wrote.
	stored, err := h.rt.Store.List(store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]fakeswitch.FileRecord{}
	for _, f := range h.srv.Files() {
		files[filepath.Base(f.Path)] = f
	}
	var got []outcome
	for _, m := range stored {
		f, ok := files[m.RecordingID+"."+m.Format]
		if !ok {
			t.Errorf("stored recording %s was not written by the switch", m.RecordingID)
			continue
		}
		masked := []store.Range{}
		for _, s := range f.Masked {
			masked = append(masked, store.Range{StartMS: s.FromMS, EndMS: s.ToMS})
		}
		if diff := cmp.Diff(masked, append([]store.Range{}, m.MaskedRanges...)); diff != "" {
			t.Errorf("recording %s: masked ranges in the metadata differ from the file's (-file +metadata):\n%s", m.RecordingID, diff)
		}
		if m.DurationMS != f.DurationMS {
			t.Errorf("recording %s: metadata duration %d, file %d", m.RecordingID, m.DurationMS, f.DurationMS)
		}
		if m.PolicyVersion != res.Table.Version {
			t.Errorf("recording %s: policy version %s, want %s", m.RecordingID, m.PolicyVersion, res.Table.Version)
		}
		got = append(got, outcome{Leg: m.CallID, Account: m.Account, Scope: m.Scope, Endpoint: m.Endpoint, Origin: m.Origin, Kept: true,
			Format: m.Format, SampleRate: f.SampleRate, DurationMS: f.DurationMS, Masked: masked})
	}
	// Recordings the switch deleted as too short.
	for _, f := range h.srv.Files() {
		if !f.Deleted {
			continue
		}
		for _, p := range predicted {
			if p.LegUUID == f.UUID && !p.Kept {
				got = append(got, outcome{Leg: p.LegUUID, Account: p.Account, Scope: p.Scope, Endpoint: p.Endpoint, Origin: p.Origin,
					Format: p.Settings.Format, SampleRate: f.SampleRate, Masked: []store.Range{}})
			}
		}
	}
	sort.Slice(want, func(i, j int) bool { return key(want[i]) < key(want[j]) })
	sort.Slice(got, func(i, j int) bool { return key(got[i]) < key(got[j]) })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recordings (-predicted +produced):\n%s", diff)
	}
	if pa := h.srv.PreAnswered(); len(pa) != 0 {
		t.Errorf("recordings pre-answered ringing legs %v: a recording must not change the call", pa)
	}
	return predicted, stored
}

func counterValue(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// TestAgreementKazoo plays calls with the variables KAZOO's ecallmgr sets,
// one "set" at a time: an IP-authenticated device (ecallmgr_Inception
// "on-net": onnet, not the PSTN) calling a colleague, and a carrier call.
// The recordings are the policy's, their interaction id is
// ecallmgr_Call-Interaction-ID, and each recorded leg is tagged with its
// recording ids in ecallmgr_Media-Recording-ID (KAZOO's CDR shows it as
// custom_channel_vars.media_recording_id).
func TestAgreementKazoo(t *testing.T) {
	predicted, stored := agree(t, "../testdata/policies/kazoo", "../testdata/scenarios/kazoo.json",
		`classify: {preset: "kazoo"}`, classify.Config{Preset: classify.PresetKazoo})
	type rec struct{ Call, Scope, Origin, Interaction string }
	want := []rec{
		{"kazoo-carrier", "account", "inbound from offnet to account", "63890799999-0c0ffee0"},
		{"kazoo-carrier", "callee", "inbound from offnet to endpoint", "63890799999-0c0ffee0"},
		{"kazoo-ip-auth-device", "callee", "inbound from onnet to endpoint", "63890712345-5f2a9c1e"},
		{"kazoo-ip-auth-device", "caller", "outbound to onnet from endpoint", "63890712345-5f2a9c1e"},
	}
	if len(predicted) != len(want) {
		t.Fatalf("predicted %d recordings, want %d: %+v", len(predicted), len(want), predicted)
	}
	calls := map[string]string{}
	for _, p := range predicted {
		calls[p.LegUUID] = p.Call
	}
	var got []rec
	for _, m := range stored {
		got = append(got, rec{calls[m.CallID], m.Scope, m.Origin, m.InteractionID})
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Call+got[i].Scope < got[j].Call+got[j].Scope })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored recordings (-want +got):\n%s", diff)
	}
}
