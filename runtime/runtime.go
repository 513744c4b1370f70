// Package runtime executes a compiled recording policy beside FreeSWITCH:
// it follows each switch's calls over the event socket, takes the
// decisions of the policy's table as the facts they need become known,
// starts, masks and stops recordings with uuid_record, and hands finished
// files to the durable store, which keeps and uploads them. The policy
// directory is hot-reloaded.
//
// Import it as recpolruntime wherever the standard runtime package is
// imported too.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/internal/version"
	"github.com/recpol/recpol/runtime/catalog"
	"github.com/recpol/recpol/runtime/esl"
	"github.com/recpol/recpol/runtime/store"
	"github.com/recpol/recpol/table"
)

// Runtime is a running recpol runtime: the live policy, the store, one
// engine and event-socket client per switch, and the HTTP API. Its state
// lives in this struct; nothing is global.
type Runtime struct {
	cfg      *Config
	log      *slog.Logger
	Metrics  *Metrics
	Policy   *Policy
	Store    *store.Store
	catalog  *catalog.Catalog
	switches []*switchRun
	intents  *intents
	// finishing is the lane of stopped recordings on their way to the
	// store; its workers run in Run.
	finishing *finishLane
	reload    chan struct{}
	addr      chan string // the HTTP listener's address, once listening
	// releaseLeases: give the switches' leases up when Run ends (tests
	// turn it off to play a runtime that died).
	releaseLeases bool
	// spool is this process's exclusive lock on the spool, released when
	// Run ends (or by the kernel when the process dies).
	spool *spoolLock
}

// switchRun is one switch: its engine and its client.
type switchRun struct {
	cfg    SwitchConfig
	engine *engine
	client *esl.Client
	rt     *Runtime
	lease  lease
	lag    prometheus.Gauge // recpol_event_lag_seconds of this switch
	// handled counts the events the engine has handled (Event).
	handled atomic.Int64
	// connections carries each (re)connection from Connected to the
	// switch's reconcile loop (run by Run); a connection not yet
	// reconciled is merged with the next.
	connections chan connection
	// state says why the switch is not connected, for /healthz: nil
	// while connected.
	state atomic.Pointer[switchState]
}

// switchState is a switch's connection state while it is not connected.
type switchState struct {
	standby bool   // another runtime holds its lease: not a fault
	owner   string // that runtime, when known
	reason  string // why it is down (never the password)
	since   time.Time
}

// New loads the policy (which must compile) and opens the store. Nothing
// connects until Run.
func New(cfg *Config, log *slog.Logger) (r *Runtime, err error) {
	lock, err := lockSpool(cfg.Spool, cfg.Name)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lock.release()
		}
	}()
	m := NewMetrics()
	// A reload never takes every core from the engines: in a 200 calls/s
	// soak a reload on both cores delayed events enough that starts
	// reached the switch after their calls had ended.
	opts := compiler.Options{CacheDir: filepath.Join(cfg.Spool, "cache"), Parallel: max(1, goruntime.GOMAXPROCS(0)-1)}
	budget := cfg.Compile
	p, err := LoadPolicy(cfg.Policies, PolicyOptions{Compiler: opts, Budget: &budget}, log, m)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	r = &Runtime{cfg: cfg, log: log, Metrics: m, Policy: p, reload: make(chan struct{}, 1), addr: make(chan string, 1), releaseLeases: true, spool: lock,
		finishing: newFinishLane(func(n int) { m.FinishQueue.Set(float64(n)) })}
	var uploads []store.Upload
	for _, u := range cfg.Uploads {
		h := map[string]string{}
		for k, v := range u.Headers {
			h[k] = v.Reveal()
		}
		uploads = append(uploads, store.Upload{Prefix: u.Prefix, Headers: h, Username: u.Username, Password: u.Password.Reveal()})
	}
	cat, err := openCatalog(cfg)
	if err != nil {
		return nil, err
	}
	r.catalog = cat
	for _, c := range []struct {
		name, help string
		read       func(catalog.Stats) int64
	}{
		{"recpol_catalog_applies_total", "Writes (Apply calls) the catalog's writer has taken: a recording's start, finish, upload result, an audit entry.", func(s catalog.Stats) int64 { return s.Applies }},
		{"recpol_catalog_commits_total", "Transactions the catalog's writer committed; applies per commit is the mean group a commit carried.", func(s catalog.Stats) int64 { return s.Commits }},
		{"recpol_catalog_checkpoints_total", "WAL checkpoints run (SQLite).", func(s catalog.Stats) int64 { return s.Checkpoints }},
		{"recpol_catalog_wal_truncates_total", "Checkpoints that emptied a WAL grown past its limit, holding the catalog's writer meanwhile (SQLite).", func(s catalog.Stats) int64 { return s.WALTruncates }},
	} {
		read := c.read
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(read(cat.Stats())) }))
	}
	sc := store.Config{Storage: cfg.Storage, Spool: filepath.Join(cfg.Spool, "store"), Uploads: uploads, Workers: cfg.UploadWorkers, Logger: log,
		MaxUploadAge: cfg.UploadMaxAge, Events: r.storeEvent, Catalog: cat}
	st, err := store.Open(sc)
	if err != nil {
		cat.Close()
		return nil, fmt.Errorf("opening the store: %w", err)
	}
	r.Store = st
	m.SetUploadHealth(st.Health)
	for _, k := range []store.StorageFaultKind{store.StorageFull, store.StorageReadOnly, store.StorageError} {
		k := k
		m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "recpol_storage_fault",
			Help:        "1 while storing recordings fails this way (full, read-only, error) and they wait in the spool, else 0.",
			ConstLabels: prometheus.Labels{"kind": string(k)}},
			func() float64 {
				if f := st.Fault(); f != nil && f.Kind == k {
					return 1
				}
				return 0
			}))
	}
	in, err := openIntents(cfg.Spool, log, func() { m.Finished.WithLabelValues("quarantined").Inc() })
	if err != nil {
		return nil, err
	}
	r.intents = in
	in.started, in.refused = st.Started, st.Refused
	for _, s := range cfg.Switches {
		if !cfg.Serves(s) {
			log.Info("switch owned by another runtime: not served", "switch", s.Name, "owner", s.Owner)
			continue
		}
		if err := os.MkdirAll(s.LocalDir, 0o700); err != nil {
			return nil, fmt.Errorf("switch %s: %w", s.Name, err)
		}
		m.InitSwitch(s.Name)
		sr := &switchRun{cfg: s, rt: r, lag: m.EventLag.WithLabelValues(s.Name), connections: make(chan connection, 1)}
		sr.state.Store(&switchState{reason: "not connected yet", since: time.Now()})
		sr.engine = newEngine(s, cfg.Classify, p.Table, r, log.With("switch", s.Name), func(what string) {
			m.Recordings.WithLabelValues(what).Inc()
		})
		sr.engine.intents = in
		delay := m.StartDelay.WithLabelValues(s.Name)
		sr.engine.startDelay = func(d time.Duration) { delay.Observe(d.Seconds()) }
		if cfg.Catalog.Driver == "postgres" {
			sr.lease = &catalogLease{cat: cat, key: "switch:" + s.Name, me: cfg.Name, ttl: cfg.LeaseTTL}
		} else {
			sr.lease = &switchLease{me: cfg.Name, ttl: cfg.LeaseTTL, now: time.Now}
		}
		ec := esl.Config{Address: s.Address, Password: s.Password.Reveal(), Logger: log.With("switch", s.Name), Gate: sr.gate}
		if cfg.LeaseTTL > 0 && cfg.LeaseTTL/3 < esl.DefaultBackoffMax {
			// A runtime waiting for the lease asks again well within it.
			ec.BackoffMax = cfg.LeaseTTL / 3
		}
		sr.client = esl.New(ec)
		client := sr.client
		m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "recpol_event_backlog",
			Help: "Events read from a switch and not yet handled by its engine.", ConstLabels: prometheus.Labels{"switch": s.Name}},
			func() float64 { return float64(client.Backlog()) }))
		eng := sr.engine
		for _, g := range []struct {
			name, help string
			read       func(engineSizes) int
		}{
			{"recpol_engine_legs", "Channels the engine follows (every leg it has seen and not yet seen hang up and leave its call).", func(s engineSizes) int { return s.legs }},
			{"recpol_engine_recordings", "Recordings the engine follows (requested or running).", func(s engineSizes) int { return s.recordings }},
			{"recpol_engine_adopted", "Recordings of an earlier run the engine adopted and waits to see stop.", func(s engineSizes) int { return s.adopted }},
		} {
			read := g.read
			m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: g.name, Help: g.help, ConstLabels: prometheus.Labels{"switch": s.Name}},
				func() float64 { return float64(read(eng.sizes())) }))
		}
		r.switches = append(r.switches, sr)
	}
	if len(r.switches) == 0 {
		return nil, errors.New("this runtime serves no switch: check the switches' owner and the runtime's name")
	}
	return r, nil
}

// openCatalog opens the configured catalog: SQLite in the spool by
// default, or PostgreSQL.
func openCatalog(cfg *Config) (*catalog.Catalog, error) {
	cc := catalog.Config{Driver: catalog.DriverSQLite, DSN: cfg.Catalog.DSN.Reveal()}
	if cfg.Catalog.Driver == "postgres" {
		cc.Driver = catalog.DriverPostgres
	} else if cc.DSN == "" {
		dir := filepath.Join(cfg.Spool, "store")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("opening the catalog: %w", err)
		}
		cc.DSN = filepath.Join(dir, "catalog.db")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := catalog.Open(ctx, cc)
	if err != nil {
		// The error never repeats the DSN: it may hold a password.
		return nil, fmt.Errorf("opening the %s catalog: %w", cc.Driver, err)
	}
	return c, nil
}

// storeEvent turns the store's outcomes into metrics.
func (r *Runtime) storeEvent(e store.Event) {
	switch e.Kind {
	case store.EventStored:
		r.Metrics.Finished.WithLabelValues("stored").Inc()
	case store.EventDiscarded:
		r.Metrics.Finished.WithLabelValues("discarded").Inc()
	case store.EventQuarantined, store.EventJournalQuarantined:
		r.Metrics.Finished.WithLabelValues("quarantined").Inc()
	case store.EventStorageFull:
		r.Metrics.Finished.WithLabelValues("error").Inc()
	case store.EventUploadOK:
		r.Metrics.Uploads.WithLabelValues("ok").Inc()
	case store.EventUploadFailed:
		r.Metrics.Uploads.WithLabelValues("failed").Inc()
	case store.EventUploadDead:
		r.Metrics.Uploads.WithLabelValues("dead").Inc()
	case store.EventSidecarRepaired:
		r.Metrics.SidecarsRepaired.Inc()
	case store.EventFlagged:
		for _, f := range strings.Split(e.Reason, ",") {
			r.Metrics.Flagged.WithLabelValues(f).Inc()
		}
	}
	r.Metrics.UploadsPending.Set(float64(e.Pending))
}

// TriggerReload asks for a policy reload (SIGHUP, the API); it goes
// through the same loop as file changes.
func (r *Runtime) TriggerReload() {
	select {
	case r.reload <- struct{}{}:
	default:
	}
}

// HTTPAddr returns the API's listening address once it listens.
func (r *Runtime) HTTPAddr(ctx context.Context) (string, error) {
	select {
	case a := <-r.addr:
		r.addr <- a
		return a, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Run runs until ctx is done: the store's upload workers, the finish
// lane, the policy watcher, per switch its client, its engine's sender,
// reconcile and recheck loops and its lease, and the HTTP API. Every
// goroutine the runtime starts is Run's: it ends with Run's context and
// Run returns only once it has.
func (r *Runtime) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 4+len(r.switches))
	goRun := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	goRun("store", func() error { return r.Store.Run(ctx) })
	goRun("finish lane", func() error { r.runFinishLane(ctx); return nil })
	if addr := debugAddr(); addr != "" {
		goRun("profiler", func() error { return r.serveDebug(ctx, addr) })
	}
	if len(r.cfg.Retention) > 0 {
		goRun("retention", func() error { r.retain(ctx); return nil })
	}
	goRun("policy watcher", func() error { return r.Policy.Watch(ctx, r.cfg.ReloadDebounce, r.reload) })
	for _, sr := range r.switches {
		sr := sr
		goRun("sender "+sr.cfg.Name, func() error { sr.engine.sender(ctx, sr.client); return nil })
		goRun("reconcile "+sr.cfg.Name, func() error { sr.reconcileLoop(ctx); return nil })
		goRun("recheck "+sr.cfg.Name, func() error { sr.engine.recheckLoop(ctx, sr.client, sr.client.Connected); return nil })
		goRun("switch "+sr.cfg.Name, func() error { return sr.client.Run(ctx, sr) })
		goRun("lease "+sr.cfg.Name, func() error { sr.keepLease(ctx); return nil })
	}
	if h := r.cfg.HTTP; h != nil {
		ln, err := net.Listen("tcp", h.Listen)
		if err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("http: %w", err)
		}
		r.addr <- ln.Addr().String()
		srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: httpReadHeaderTimeout, ReadTimeout: httpReadTimeout,
			WriteTimeout: httpWriteTimeout, IdleTimeout: httpIdleTimeout, MaxHeaderBytes: httpMaxHeaderBytes}
		ll := newLimitListener(ln, httpMaxConns)
		srv.ConnState = ll.track
		goRun("http", func() error { return serveUntil(ctx, srv, ll) })
		r.log.Info("http api listening", "addr", ln.Addr().String())
	}
	r.log.Info("runtime running", "version", version.Get().String(), "policy", r.Policy.Table().Version, "switches", len(r.switches))
	<-ctx.Done()
	wg.Wait()
	// A recording the store takes from now on keeps its intent: the next
	// run finishes it again, without effect.
	r.intents.close()
	if err := r.Policy.Close(); err != nil {
		r.log.Error("stopping the policy's compile worker", "error", err)
	}
	if err := r.Store.Close(); err != nil {
		r.log.Error("closing the store", "error", err)
	}
	if err := r.catalog.Close(); err != nil {
		r.log.Error("closing the catalog", "error", err)
	}
	r.spool.release()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// retain deletes the recordings past their account's retention, at start
// and every ten minutes, until ctx is done.
func (r *Runtime) retain(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		n, err := r.Store.Purge(ctx, r.cfg.Retention, time.Now(), 1000)
		if err != nil && ctx.Err() == nil {
			r.log.Error("retention", "error", err)
		}
		if n > 0 {
			r.log.Info("recordings past their retention deleted", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Connected is called by the switch's client on every (re)connection. It
// reconciles the recordings the engine believes are running: a leg that
// no longer exists finished while the connection was down.
func (sr *switchRun) Connected(coreUUID string) {
	sr.rt.Metrics.SwitchUp.WithLabelValues(sr.cfg.Name).Set(1)
	sr.state.Store(nil)
	sr.rt.log.Info("switch connected", "switch", sr.cfg.Name, "core_uuid", coreUUID)
	restarted := sr.engine.connected(coreUUID)
	c := connection{coreUUID: coreUUID, restarted: restarted}
	for {
		select {
		case sr.connections <- c:
			return
		default:
		}
		// A connection not reconciled yet: this one supersedes it
		// (the client calls Connected from one goroutine, so this
		// ends).
		select {
		case old := <-sr.connections:
			c.restarted = c.restarted || old.restarted
		default:
		}
	}
}

// connection is one (re)connection to a switch, to reconcile.
type connection struct {
	coreUUID  string
	restarted bool // the switch restarted since the connection before
}

// reconcileLoop reconciles the engine after each (re)connection, off the
// client's event path, until ctx is done.
func (sr *switchRun) reconcileLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-sr.connections:
			sr.engine.reconcile(ctx, sr.client, c.coreUUID, c.restarted)
		}
	}
}

// serveUntil serves srv on ln until ctx is done, then closes it; the
// goroutine that closes it ends before serveUntil returns.
func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener) error {
	stop := make(chan struct{})
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		select {
		case <-ctx.Done():
			srv.Close()
		case <-stop:
		}
	}()
	err := srv.Serve(ln)
	close(stop)
	<-closed
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Event hands an event to the engine.
func (sr *switchRun) Event(ev *esl.Event) {
	if !ev.Received.IsZero() {
		sr.lag.Set(time.Since(ev.Received).Seconds())
	}
	sr.engine.Handle((*Event)(ev))
	sr.handled.Add(1)
}

// Disconnected records a lost connection.
func (sr *switchRun) Disconnected(err error) {
	sr.rt.Metrics.SwitchUp.WithLabelValues(sr.cfg.Name).Set(0)
	if gated(err) {
		owner := ""
		var no *notOwnerError
		if errors.As(err, &no) {
			owner = no.holder
		}
		sr.state.Store(&switchState{standby: true, owner: owner, reason: "served by another runtime", since: time.Now()})
		return // another runtime serves it; gate logged who
	}
	sr.state.Store(&switchState{reason: err.Error(), since: time.Now()})
	if errors.Is(err, context.Canceled) {
		// The runtime is shutting down.
		sr.rt.log.Info("switch disconnected: the runtime is stopping", "switch", sr.cfg.Name)
		return
	}
	sr.rt.Metrics.Reconnects.WithLabelValues(sr.cfg.Name).Inc()
	sr.rt.log.Warn("switch disconnected", "switch", sr.cfg.Name, "error", err)
}

// Tables returns the live table; calls in progress keep their own.
func (r *Runtime) Table() *table.Table { return r.Policy.Table() }

// CatalogTool opens the store of a runtime config for the catalog's
// maintenance (recpol catalog): rebuild it from the sidecars, or the
// sidecars from it. It must not run beside a runtime using the same spool.
func CatalogTool(cfg *Config, log *slog.Logger, f func(*store.Store) error) error {
	lock, err := lockSpool(cfg.Spool, "recpol catalog")
	if err != nil {
		return err
	}
	defer lock.release()
	cat, err := openCatalog(cfg)
	if err != nil {
		return err
	}
	defer cat.Close()
	st, err := store.Open(store.Config{Storage: cfg.Storage, Spool: filepath.Join(cfg.Spool, "store"), Logger: log, Catalog: cat})
	if err != nil {
		return fmt.Errorf("opening the store: %w", err)
	}
	defer st.Close()
	return f(st)
}
