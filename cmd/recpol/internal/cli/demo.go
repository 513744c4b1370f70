package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	recpol "github.com/recpol/recpol"
	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/fakeswitch"
	recpolruntime "github.com/recpol/recpol/runtime"
	"github.com/recpol/recpol/runtime/store"
	"github.com/recpol/recpol/scenario"
	"github.com/recpol/recpol/simulate"
	"github.com/recpol/recpol/table"
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
the uploads of recordings whose policy has a url: the demo points the
example's upload url (https://recordings.example.com) at it, and says so.

The example policy and the two scenarios are built into recpol, so the demo
runs from any directory; --policies and --scenario run others.

At the end it prints every call of the scenarios, with the recordings on
disk next to what 'recpol simulate --scenario' predicted for the same calls
("nothing recorded" included), and exits with status 1 if they disagree.
The recordings, their metadata and the runtime config stay in DIR.

DIR is created when missing. An existing DIR is used only when it is empty
or an earlier demo wrote it (it holds ` + demoMarker + `); the demo then
replaces what it wrote there and nothing else. Any other path (a file, a
directory of yours, your home directory) is refused with exit status 2 and
left untouched. Without --dir the demo makes a new directory under the
system's temporary directory.`,
		Example: `  recpol demo
  recpol demo --dir /tmp/recpol-demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDemo(cmd.Context(), s, policies, dir, scenarios, quiet)
		},
	}
	f := cmd.Flags()
	f.StringVar(&policies, "policies", "", "the policy `DIR` to run (default: the bundled example, testdata/policies/example)")
	f.StringVar(&dir, "dir", "", "the working `DIR`: new, empty, or written by an earlier demo (default: a new temporary directory)")
	f.StringSliceVar(&scenarios, "scenario", nil,
		"the scenario `FILES` played before and after the reload (default: the bundled testdata/scenarios/demo-1.json,demo-2.json)")
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

// exampleUploadHost is the upload host of the bundled example policy; the
// demo points it at its own server.
const exampleUploadHost = "https://recordings.example.com"

// demoInputs reads the demo's scenarios and policy files: the bundled ones
// unless flags name others.
func demoInputs(policySrc string, scenarioFiles []string) ([]*scenario.Scenario, []compiler.File, string, error) {
	bundled := recpol.Files()
	var scs []*scenario.Scenario
	if len(scenarioFiles) == 0 {
		for _, name := range []string{recpol.DemoScenario1, recpol.DemoScenario2} {
			data, err := fs.ReadFile(bundled, name)
			if err != nil {
				return nil, nil, "", err
			}
			sc, err := scenario.Parse(name, data)
			if err != nil {
				return nil, nil, "", err
			}
			scs = append(scs, sc)
		}
	} else {
		if len(scenarioFiles) != 2 {
			return nil, nil, "", errors.New("demo plays two scenarios: before and after the reload")
		}
		for _, f := range scenarioFiles {
			sc, err := scenario.ParseFile(f)
			if err != nil {
				return nil, nil, "", err
			}
			scs = append(scs, sc)
		}
	}
	if policySrc != "" {
		files, err := compiler.ReadDir(policySrc)
		return scs, files, policySrc, err
	}
	names, err := fs.Glob(bundled, path.Join(recpol.ExamplePolicyDir, "*.cue"))
	if err != nil {
		return nil, nil, "", err
	}
	var files []compiler.File
	for _, name := range names {
		data, err := fs.ReadFile(bundled, name)
		if err != nil {
			return nil, nil, "", err
		}
		files = append(files, compiler.File{Name: name, Data: data})
	}
	return scs, files, "the bundled example (" + recpol.ExamplePolicyDir + ")", nil
}

func runDemo(ctx context.Context, s *streams, policySrc, dir string, scenarioFiles []string, quiet time.Duration) error {
	scs, files, policyName, err := demoInputs(policySrc, scenarioFiles)
	if err != nil {
		return usageErr(err)
	}
	out := s.stdout
	if dir == "" {
		if dir, err = os.MkdirTemp("", "recpol-demo-"); err != nil {
			return usageErr(err)
		}
	}
	if dir, err = prepareDemoDir(dir); err != nil {
		return usageErr(err)
	}
	policies, rec := filepath.Join(dir, "policies"), filepath.Join(dir, "switch-recordings")
	for _, d := range []string{policies, rec} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return usageErr(err)
		}
	}
	uploads := &demoUploads{names: map[string]int{}}
	upSrv := httptest.NewServer(uploads)
	defer upSrv.Close()
	original := compiler.Options{}.CompileFiles(files)
	if original.Table == nil {
		printDiagnostics(s, original.Diagnostics.Errors())
		return invalid()
	}
	var rewritten []string
	for _, f := range files {
		// Uploads go to the demo's own server instead of the policy's host.
		data := string(f.Data)
		if strings.Contains(data, exampleUploadHost) {
			data = strings.ReplaceAll(data, exampleUploadHost, upSrv.URL)
			rewritten = append(rewritten, filepath.Base(f.Name))
		}
		if err := os.WriteFile(filepath.Join(policies, filepath.Base(f.Name)), []byte(data), 0o644); err != nil {
			return usageErr(err)
		}
	}

	fmt.Fprintf(out, "== recpol demo in %s\n", dir)
	fmt.Fprintf(out, "policy: %s, version %s (what 'recpol compile' prints)\n", policyName, short(original.Table.Version))
	epoch := time.Now().UTC().Truncate(time.Millisecond)
	srv := fakeswitch.New(fakeswitch.Config{Password: "ClueCon", RecordingsDir: rec, Quiet: quiet, Epoch: epoch, MP3: fakeswitch.MP3Stub})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return usageErr(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Fprintf(out, "fake switch listening on %s (a stand-in for FreeSWITCH's event socket)\n", ln.Addr())

	config := fmt.Sprintf(`// The demo's runtime config.
%s
policies: "policies"
storage:  "recordings"
spool:    "spool"
http: {listen: "127.0.0.1:0", token: "demo-token"} // a literal token, for the demo only
reload_debounce_ms: 50
`, switchEntry(ln.Addr().String(), "ClueCon", rec))
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
	running := rt.Table()
	fmt.Fprintf(out, "runtime running with policy %s (log: %s)\n", short(running.Version), filepath.Join(dir, "runtime.log"))
	demoChanges(out, running, upSrv.URL, rewritten, original.Table.Version)
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	if err := srv.WaitClients(wctx, 1); err != nil {
		return usageErr(fmt.Errorf("the runtime did not connect to the fake switch: %w", err))
	}

	var predicted []simulate.Predicted
	var mp3 int
	phase := func(n int, sc *scenario.Scenario) error {
		t := rt.Table()
		ps, err := simulate.PredictScenario(t, sc)
		if err != nil {
			return usageErr(err)
		}
		predicted = append(predicted, ps...)
		for _, p := range ps {
			if p.Settings != nil && p.Settings.Format == "mp3" {
				mp3++
			}
		}
		fmt.Fprintf(out, "\n-- phase %d: %s under policy %s\n", n, plural(len(sc.Calls), "call"), short(t.Version))
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
	ok := demoSummary(out, scs, predicted, stored, uploads, dir)
	demoSwitchNotes(out, srv, epoch, mp3)
	if err := demoPages(ctx, out, rt, dir); err != nil {
		fmt.Fprintf(out, "FAIL: the API: %v\n", err)
		ok = false
	}
	if !ok {
		return invalid()
	}
	return nil
}

// demoChanges says what the demo changed in its copy of the policy: the
// accounts whose upload url now points at its own server.
func demoChanges(w io.Writer, t *table.Table, local string, files []string, originalVersion string) {
	if len(files) == 0 {
		fmt.Fprintf(w, "the demo runs the policy unchanged\n")
		return
	}
	accts := accountsUploadingTo(t, local)
	what := "upload url"
	if len(accts) > 0 {
		what += " of account " + strings.Join(accts, ", ")
	}
	fmt.Fprintf(w, "changed in the demo's copy of the policy (%s): %s pointed at the demo's local server (%s -> %s),\n"+
		"   so the policy it runs is %s, not %s\n",
		strings.Join(files, ", "), what, exampleUploadHost, local, short(t.Version), short(originalVersion))
}

// accountsUploadingTo lists the accounts with an upload url under prefix:
// in a cell, a callflow action or a metaflow action.
func accountsUploadingTo(t *table.Table, prefix string) []string {
	hit := func(s *table.Settings) bool { return s != nil && strings.HasPrefix(s.URL, prefix) }
	cells := func(c *table.Cells) bool {
		for d := range c {
			for n := range c[d] {
				if hit(c[d][n].Settings) {
					return true
				}
			}
		}
		return false
	}
	metaflows := func(m *table.Metaflows) bool {
		if m == nil {
			return false
		}
		for _, b := range append(append([]table.MetaflowBinding(nil), m.Numbers...), m.Patterns...) {
			if hit(b.Action.Settings) {
				return true
			}
		}
		return false
	}
	var out []string
	for id, a := range t.Accounts {
		found := cells(&a.Cells)
		for _, eps := range []map[string]*table.Endpoint{a.Users, a.Devices} {
			for _, e := range eps {
				found = found || cells(&e.Cells) || metaflows(e.Metaflows)
			}
		}
		for _, cf := range a.Callflows {
			for _, act := range cf.Actions {
				found = found || hit(act.Settings)
			}
		}
		if found {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// demoSwitchNotes says where the fake switch differs from FreeSWITCH in
// what the recordings hold: WAV bytes under .mp3 names, and the times of
// its virtual clock.
func demoSwitchNotes(w io.Writer, srv *fakeswitch.Server, epoch time.Time, mp3 int) {
	fmt.Fprintf(w, "\n== what comes from the fake switch, not from FreeSWITCH\n")
	if mp3 > 0 {
		fmt.Fprintf(w, "- the %d mp3 recordings hold WAV bytes under .mp3 names: the fake switch's MP3 stub mode\n"+
			"  (FreeSWITCH with mod_shout writes MP3; 'recpol fakeswitch --mp3 auto' encodes with lame)\n", mp3)
	}
	virtual := srv.Now()
	at := epoch.Add(virtual)
	fmt.Fprintf(w, "- the recordings' start times and metadata carry the fake switch's virtual clock, which plays\n"+
		"  calls as fast as the runtime keeps up: it ran %s and stands at %s, %s ahead of\n"+
		"  the wall clock (and of the files' own times)\n",
		virtual.Round(time.Second), at.Format(time.RFC3339), at.Sub(time.Now()).Round(time.Second))
}

// demoMarker is the file a demo writes in its directory: only a directory
// holding it (or an empty one) is ever reused, and emptied of what the
// demo wrote.
const demoMarker = ".recpol-demo"

// demoEntries are the names a demo writes in its directory; reusing the
// directory removes these and nothing else.
var demoEntries = []string{"policies", "switch-recordings", "recordings", "spool", "runtime.cue", "runtime.log"}

// legacyDemoHeader starts the runtime.cue of a demo written before the
// marker existed.
const legacyDemoHeader = "// The demo's runtime config."

// prepareDemoDir makes dir ready for a demo and returns it absolute. It
// creates a missing directory, reuses an empty one or one an earlier demo
// wrote (removing only the demo's own entries), and refuses anything else
// (a file, a directory of someone else's, the root or home directory)
// without touching it.
func prepareDemoDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	refuse := func(why string) error {
		return fmt.Errorf("demo --dir %s: %s; the demo writes only into a new directory, an empty one or one an earlier demo wrote "+
			"(holding %s), and left this one untouched: pass another --dir, or none for a new temporary directory", dir, why, demoMarker)
	}
	if filepath.Dir(abs) == abs {
		return "", refuse("is the root directory")
	}
	for _, home := range homeDirs() {
		if sameDir(abs, home) {
			return "", refuse("is your home directory")
		}
	}
	fi, err := os.Lstat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return "", err
		}
	case err != nil:
		return "", err
	case fi.Mode()&fs.ModeSymlink != 0:
		return "", refuse("is a symbolic link")
	case !fi.IsDir():
		return "", refuse("is a file, not a directory")
	default:
		entries, err := os.ReadDir(abs)
		if err != nil {
			return "", err
		}
		if len(entries) > 0 && !isDemoDir(abs, entries) {
			return "", refuse("is not a demo directory (no " + demoMarker + ") and holds " + describeEntries(entries))
		}
		for _, name := range demoEntries {
			if err := os.RemoveAll(filepath.Join(abs, name)); err != nil {
				return "", err
			}
		}
	}
	marker := "This directory was written by 'recpol demo'. A later demo with --dir here replaces\n" +
		"what it wrote (" + strings.Join(demoEntries, ", ") + ") and leaves anything else alone.\n"
	if err := os.WriteFile(filepath.Join(abs, demoMarker), []byte(marker), 0o644); err != nil {
		return "", err
	}
	return abs, nil
}

// isDemoDir reports whether an earlier demo wrote dir: it holds the
// marker, or (a demo of before the marker) only demo entries with the
// demo's runtime.cue.
func isDemoDir(dir string, entries []fs.DirEntry) bool {
	if _, err := os.Lstat(filepath.Join(dir, demoMarker)); err == nil {
		return true
	}
	for _, e := range entries {
		if !slices.Contains(demoEntries, e.Name()) {
			return false
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "runtime.cue"))
	return err == nil && strings.HasPrefix(string(data), legacyDemoHeader)
}

// describeEntries names what a directory holds: up to three entries and a
// count.
func describeEntries(entries []fs.DirEntry) string {
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		names = append(names, n)
	}
	if len(names) > 3 {
		return fmt.Sprintf("%s and %d more", strings.Join(names[:3], ", "), len(names)-3)
	}
	return strings.Join(names, ", ")
}

// homeDirs are the directories that are someone's home: $HOME and the
// user's home directory.
func homeDirs() []string {
	var out []string
	if h := os.Getenv("HOME"); h != "" {
		out = append(out, h)
	}
	if h, err := os.UserHomeDir(); err == nil {
		out = append(out, h)
	}
	return out
}

// sameDir reports whether a and b name the same directory, symbolic links
// resolved where they exist.
func sameDir(a, b string) bool {
	ab, err := filepath.Abs(b)
	if err != nil {
		return false
	}
	if filepath.Clean(a) == filepath.Clean(ab) {
		return true
	}
	ra, errA := filepath.EvalSymlinks(a)
	rb, errB := filepath.EvalSymlinks(ab)
	return errA == nil && errB == nil && ra == rb
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

// demoSummary prints every call of the scenarios with the recordings on
// disk next to the predictions ("nothing recorded" for a call that records
// nothing) and reports whether they agree.
func demoSummary(w io.Writer, scs []*scenario.Scenario, predicted []simulate.Predicted, stored []store.Metadata, up *demoUploads, dir string) bool {
	type row struct{ call, scope, origin, want, got, note string }
	byKey := map[string]store.Metadata{}
	for _, m := range stored {
		byKey[m.CallID+"|"+m.Scope+"|"+m.Origin] = m
	}
	byCall := map[string][]simulate.Predicted{}
	for _, p := range predicted {
		byCall[p.Call] = append(byCall[p.Call], p)
	}
	var rows []row
	ok := true
	used := map[string]bool{}
	unexpected := func(m store.Metadata, call string) row {
		return row{call: call, scope: m.Scope, origin: m.Origin, want: "-",
			got: ms(m.DurationMS) + " " + m.Format, note: "UNEXPECTED"}
	}
	calls, recorded, kept := 0, 0, 0
	for _, sc := range scs {
		for _, c := range sc.Calls {
			calls++
			legs := map[string]string{} // uuid -> leg name
			for _, l := range c.Legs {
				u := l.UUID
				if u == "" {
					u = scenario.LegUUID(c.ID, l.Name)
				}
				legs[u] = l.Name
			}
			ps := byCall[c.ID]
			if len(ps) > 0 {
				recorded++
			}
			for _, p := range ps {
				var pm []store.Range
				for _, s := range p.Masked {
					pm = append(pm, store.Range{StartMS: s.StartMS, EndMS: s.EndMS})
				}
				r := row{call: p.Call + "/" + p.Leg, scope: p.Scope, origin: p.Origin}
				if !p.Kept {
					r.want = "discarded (too short)"
				} else {
					kept++
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
			var extra []row
			for _, m := range stored {
				k := m.CallID + "|" + m.Scope + "|" + m.Origin
				if leg, mine := legs[m.CallID]; mine && !used[k] {
					used[k] = true
					extra = append(extra, unexpected(m, c.ID+"/"+leg))
				}
			}
			if len(ps) == 0 && len(extra) == 0 {
				rows = append(rows, row{call: c.ID, scope: "-", origin: "-", want: "nothing recorded", got: "nothing recorded"})
			}
			if len(extra) > 0 {
				ok = false
				rows = append(rows, extra...)
			}
		}
	}
	for _, m := range stored {
		if k := m.CallID + "|" + m.Scope + "|" + m.Origin; !used[k] {
			ok = false
			rows = append(rows, unexpected(m, m.CallID))
		}
	}
	fmt.Fprintf(w, "\n== every call of the scenarios: the recordings on disk next to the simulator's prediction\n")
	fmt.Fprintf(w, "%-42s %-9s %-34s %-30s %s\n", "call/leg", "scope", "origin", "predicted", "on disk")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\n", strings.TrimRight(fmt.Sprintf("%-42s %-9s %-34s %-30s %-30s %s", r.call, r.scope, r.origin, r.want, r.got, r.note), " "))
	}
	fmt.Fprintf(w, "\nfiles and metadata: %s\n", filepath.Join(dir, "recordings"))
	if ok {
		fmt.Fprintf(w, "ok: %d calls, %d recorded, %d recording nothing; %d recordings predicted, all produced as predicted\n",
			calls, recorded, calls-recorded, len(predicted))
	} else {
		fmt.Fprintf(w, "FAIL: the recordings on disk differ from the prediction\n")
	}
	return ok
}

// plural is "1 call", "2 calls".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
