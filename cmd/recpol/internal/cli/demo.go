package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/recpol/recpol/compiler"
	recpolruntime "github.com/recpol/recpol/runtime"
	"github.com/recpol/recpol/runtime/fakeswitch"
	"github.com/recpol/recpol/runtime/store"
	"github.com/recpol/recpol/scenario"
	"github.com/recpol/recpol/simulate"
)

func newDemoCmd(s *streams) *cobra.Command {
	var policies, dir string
	var scenarios []string
	var quiet time.Duration
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the end-to-end demo: fake switch, runtime, recordings, hot reload",
		Long: `demo runs the whole product on this machine, without FreeSWITCH: it copies the
policy into DIR, starts the fake switch (a stand-in that speaks FreeSWITCH's
event socket) and the runtime on loopback, plays the first scenario's calls,
then edits the policy so that Sales records its internal calls (a hot
reload) and plays the second scenario. An HTTP server on loopback receives
the uploads of recordings whose policy has a url.

At the end it prints every recording on disk next to what 'recpol simulate
--scenario' predicted for the same calls, and exits with status 1 if they
disagree. The recordings, their metadata and the runtime config stay in
DIR.`,
		Example: `  recpol demo
  recpol demo --dir /tmp/recpol-demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDemo(cmd.Context(), s, policies, dir, scenarios, quiet)
		},
	}
	f := cmd.Flags()
	f.StringVar(&policies, "policies", "testdata/policies/example", "the policy `DIR` to run")
	f.StringVar(&dir, "dir", "bin/demo", "the working `DIR` (emptied first)")
	f.StringSliceVar(&scenarios, "scenario", []string{"testdata/scenarios/demo-1.json", "testdata/scenarios/demo-2.json"},
		"the scenario `FILES` played before and after the reload")
	f.DurationVar(&quiet, "quiet", 100*time.Millisecond,
		"how long the fake switch waits for the runtime to react before its clock moves on")
	return cmd
}

// demoUploads counts the uploads the demo's HTTP server received.
type demoUploads struct {
	mu    sync.Mutex
	names map[string]int
}

func (u *demoUploads) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	u.mu.Lock()
	u.names[r.URL.Query().Get("call_id")]++
	u.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

func runDemo(ctx context.Context, s *streams, policySrc, dir string, scenarioFiles []string, quiet time.Duration) error {
	if len(scenarioFiles) != 2 {
		return usageErr(errors.New("demo plays two scenarios: before and after the reload"))
	}
	var scs []*scenario.Scenario
	for _, f := range scenarioFiles {
		sc, err := scenario.ParseFile(f)
		if err != nil {
			return usageErr(err)
		}
		scs = append(scs, sc)
	}
	out := s.stdout
	if err := os.RemoveAll(dir); err != nil {
		return usageErr(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return usageErr(err)
	}
	dir = abs
	policies, rec := filepath.Join(dir, "policies"), filepath.Join(dir, "switch-recordings")
	for _, d := range []string{policies, rec} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return usageErr(err)
		}
	}
	uploads := &demoUploads{names: map[string]int{}}
	upSrv := httptest.NewServer(uploads)
	defer upSrv.Close()
	files, err := compiler.ReadDir(policySrc)
	if err != nil {
		return usageErr(err)
	}
	for _, f := range files {
		// Uploads go to the demo's own server instead of the policy's host.
		data := strings.ReplaceAll(string(f.Data), "https://recordings.example.com", upSrv.URL)
		if err := os.WriteFile(filepath.Join(policies, filepath.Base(f.Name)), []byte(data), 0o644); err != nil {
			return usageErr(err)
		}
	}

	fmt.Fprintf(out, "== recpol demo in %s\n", dir)
	srv := fakeswitch.New(fakeswitch.Config{Password: "ClueCon", RecordingsDir: rec, Quiet: quiet})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return usageErr(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Fprintf(out, "fake switch listening on %s (a stand-in for FreeSWITCH's event socket)\n", ln.Addr())

	config := fmt.Sprintf(`// The demo's runtime config.
switches: [{address: %q, password: "ClueCon", record_dir: %q, local_dir: %q}]
policies: "policies"
storage:  "recordings"
spool:    "spool"
http: {listen: "127.0.0.1:0", token: "demo-token"} // a literal token, for the demo only
reload_debounce_ms: 50
`, ln.Addr().String(), rec, rec)
	cfgPath := filepath.Join(dir, "runtime.cue")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		return usageErr(err)
	}
	cfg, err := recpolruntime.LoadConfig(cfgPath)
	if err != nil {
		return usageErr(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "runtime.log"))
	if err != nil {
		return usageErr(err)
	}
	defer logFile.Close()
	rt, err := recpolruntime.New(cfg, slog.New(slog.NewTextHandler(logFile, nil)))
	if err != nil {
		return usageErr(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	defer func() { cancel(); <-done }()
	fmt.Fprintf(out, "runtime running with policy %s (log: %s)\n", short(rt.Table().Version), filepath.Join(dir, "runtime.log"))
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	if err := srv.WaitClients(wctx, 1); err != nil {
		return usageErr(fmt.Errorf("the runtime did not connect to the fake switch: %w", err))
	}

	var predicted []simulate.Predicted
	phase := func(n int, sc *scenario.Scenario) error {
		t := rt.Table()
		ps, err := simulate.PredictScenario(t, sc)
		if err != nil {
			return usageErr(err)
		}
		predicted = append(predicted, ps...)
		fmt.Fprintf(out, "\n-- phase %d: %d calls under policy %s\n", n, len(sc.Calls), short(t.Version))
		for _, c := range sc.Calls {
			fmt.Fprintf(out, "   call %s\n", c.ID)
		}
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Minute)
		defer pcancel()
		if err := srv.Play(pctx, sc); err != nil {
			return usageErr(fmt.Errorf("playing the scenario: %w", err))
		}
		return nil
	}
	if err := phase(1, scs[0]); err != nil {
		return err
	}

	// The hot reload: Sales now records its internal calls.
	old := rt.Table().Version
	edit := "package recpol\n\n// Added during the demo: Sales records its internal calls too.\n" +
		"accounts: sales: users: [_]: call_recording: inbound: onnet: enabled: true\n"
	if err := os.WriteFile(filepath.Join(policies, "sales-internal.cue"), []byte(edit), 0o644); err != nil {
		return usageErr(err)
	}
	fmt.Fprintf(out, "\n-- hot reload: wrote %s\n", filepath.Join(policies, "sales-internal.cue"))
	deadline := time.Now().Add(30 * time.Second)
	for rt.Table().Version == old {
		if time.Now().After(deadline) {
			return usageErr(errors.New("the policy change was not reloaded"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprintf(out, "   policy %s is live\n", short(rt.Table().Version))
	if err := phase(2, scs[1]); err != nil {
		return err
	}

	// Wait for every predicted recording to be stored or discarded, and
	// for the uploads.
	want := 0
	for _, p := range predicted {
		if p.Kept {
			want++
		}
	}
	var stored []store.Metadata
	deadline = time.Now().Add(30 * time.Second)
	for {
		stored, err = rt.Store.List(store.Filter{})
		if err != nil {
			return usageErr(err)
		}
		if (len(stored) >= want && rt.Store.Pending() == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	ok := demoSummary(out, predicted, stored, uploads, dir)
	if err := demoPages(ctx, out, rt, dir); err != nil {
		fmt.Fprintf(out, "FAIL: the API: %v\n", err)
		ok = false
	}
	if !ok {
		return invalid()
	}
	return nil
}

// demoPages lists the recordings through the runtime's API, three a page,
// following next_cursor, as an operator's client would.
func demoPages(ctx context.Context, w io.Writer, rt *recpolruntime.Runtime, dir string) error {
	addr, err := rt.HTTPAddr(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n== the catalog (%s), through the API: GET /v1/recordings?limit=3, following next_cursor\n",
		filepath.Join(dir, "spool", "store", "catalog.db"))
	cursor, total := "", 0
	for page := 1; ; page++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet,
			"http://"+addr+"/v1/recordings?limit=3&cursor="+url.QueryEscape(cursor), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer demo-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		var p struct {
			Items []struct {
				RecordingID string `json:"recording_id"`
				State       string `json:"state"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("page %d: status %d: %v", page, resp.StatusCode, err)
		}
		var ids []string
		for _, it := range p.Items {
			ids = append(ids, it.RecordingID+" ("+it.State+")")
		}
		total += len(p.Items)
		fmt.Fprintf(w, "page %d: %s\n", page, strings.Join(ids, ", "))
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	fmt.Fprintf(w, "%d recordings in the catalog\n", total)
	return nil
}

func short(v string) string {
	v = strings.TrimPrefix(v, "sha256:")
	if len(v) > 12 {
		v = v[:12]
	}
	return v
}

func ms(d int64) string { return fmt.Sprintf("%.1fs", float64(d)/1000) }

func spans(rs []store.Range) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, ms(r.StartMS)+"-"+ms(r.EndMS))
	}
	if len(parts) == 0 {
		return ""
	}
	return " masked " + strings.Join(parts, ",")
}

// demoSummary prints the recordings on disk next to the predictions and
// reports whether they agree.
func demoSummary(w io.Writer, predicted []simulate.Predicted, stored []store.Metadata, up *demoUploads, dir string) bool {
	type row struct{ call, scope, origin, want, got, note string }
	byKey := map[string]store.Metadata{}
	for _, m := range stored {
		byKey[m.CallID+"|"+m.Scope+"|"+m.Origin] = m
	}
	var rows []row
	ok := true
	used := map[string]bool{}
	for _, p := range predicted {
		var pm []store.Range
		for _, s := range p.Masked {
			pm = append(pm, store.Range{StartMS: s.StartMS, EndMS: s.EndMS})
		}
		r := row{call: p.Call + "/" + p.Leg, scope: p.Scope, origin: p.Origin}
		if !p.Kept {
			r.want = "discarded (too short)"
		} else {
			r.want = ms(p.DurationMS) + " " + p.Settings.Format + spans(pm)
		}
		k := p.LegUUID + "|" + p.Scope + "|" + p.Origin
		m, found := byKey[k]
		switch {
		case found:
			used[k] = true
			r.got = ms(m.DurationMS) + " " + m.Format + spans(m.MaskedRanges)
			if m.URL != "" {
				r.note = "uploaded"
				up.mu.Lock()
				if up.names[m.CallID] == 0 {
					r.note = "upload pending"
				}
				up.mu.Unlock()
			}
		case !p.Kept:
			r.got = "discarded (too short)"
		default:
			r.got = "MISSING"
		}
		if r.got != r.want {
			ok = false
			r.note = strings.TrimSpace(r.note + " MISMATCH")
		}
		rows = append(rows, r)
	}
	for k, m := range byKey {
		if !used[k] {
			ok = false
			rows = append(rows, row{call: m.CallID, scope: m.Scope, origin: m.Origin, want: "-",
				got: ms(m.DurationMS) + " " + m.Format, note: "UNEXPECTED"})
		}
	}
	fmt.Fprintf(w, "\n== recordings on disk next to the simulator's prediction\n")
	fmt.Fprintf(w, "%-42s %-9s %-34s %-30s %-30s %s\n", "call/leg", "scope", "origin", "predicted", "on disk", "")
	for _, r := range rows {
		fmt.Fprintf(w, "%-42s %-9s %-34s %-30s %-30s %s\n", r.call, r.scope, r.origin, r.want, r.got, r.note)
	}
	fmt.Fprintf(w, "\nfiles and metadata: %s\n", filepath.Join(dir, "recordings"))
	if ok {
		fmt.Fprintf(w, "ok: %d recordings predicted, all produced as predicted\n", len(predicted))
	} else {
		fmt.Fprintf(w, "FAIL: the recordings on disk differ from the prediction\n")
	}
	return ok
}
