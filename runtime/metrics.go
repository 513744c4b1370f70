package runtime

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/recpol/recpol/internal/version"
	"github.com/recpol/recpol/runtime/store"
)

// Metrics are the runtime's Prometheus metrics, in a registry of their own
// (no package-level state).
type Metrics struct {
	Registry *prometheus.Registry

	Recordings          *prometheus.CounterVec // by event: RecordingEvents
	Finished            *prometheus.CounterVec // by outcome: stored, discarded, error
	Uploads             *prometheus.CounterVec // by outcome: ok, failed
	UploadsPending      prometheus.Gauge
	Reloads             *prometheus.CounterVec // by outcome: ok, failed, unchanged, over_budget, superseded
	LastReloadOK        prometheus.Gauge
	ReloadInProgress    prometheus.Gauge
	LastReloadOKSeconds prometheus.Gauge
	TableInfo           *prometheus.GaugeVec // 1 for the live version
	TableAccounts       prometheus.Gauge
	SwitchUp            *prometheus.GaugeVec // by switch: 1 connected, 0 not
	Reconnects          *prometheus.CounterVec
	Flagged             *prometheus.CounterVec   // by flag
	EventLag            *prometheus.GaugeVec     // by switch
	StartDelay          *prometheus.HistogramVec // by switch
	SwitchMP3           *prometheus.GaugeVec     // by switch: 1 can write mp3
	FinishQueue         prometheus.Gauge
	SidecarsRepaired    prometheus.Counter
	// uploadHealth reads the store's upload queue at each scrape; set once
	// the store is open (SetUploadHealth).
	uploadHealth atomic.Pointer[func() store.UploadHealth]
}

// SetUploadHealth gives the upload gauges their source.
func (m *Metrics) SetUploadHealth(f func() store.UploadHealth) { m.uploadHealth.Store(&f) }

func (m *Metrics) readUploadHealth() store.UploadHealth {
	if f := m.uploadHealth.Load(); f != nil {
		return (*f)()
	}
	return store.UploadHealth{}
}

// RecordingEvents are the values of recpol_recordings_total's event label.
var RecordingEvents = []string{"requested", "started", "failed", "stopped", "recovered",
	"command_waited", "command_dropped", "command_invalid", "command_deferred", "intent_failed", "announce_refused"}

// InitSwitch creates a switch's labelled series at zero.
func (m *Metrics) InitSwitch(name string) {
	m.SwitchUp.WithLabelValues(name).Set(0)
	m.Reconnects.WithLabelValues(name)
	m.EventLag.WithLabelValues(name)
	m.StartDelay.WithLabelValues(name)
}

// NewMetrics creates the metrics and their registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Recordings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recpol_recordings_total",
			Help: "Recording commands and outcomes seen by the engine, by event (requested: a start sent; started: the switch took it, RECORD_START; failed: the switch refused it; stopped; recovered: finished from an earlier run's intent; command_waited: a command waited for room in a full command queue; command_dropped: a command not sent, its queue full and its sender stopped or stuck (logged at ERROR); command_invalid: a command refused before the socket, a value in it unsafe (logged at ERROR); command_deferred: kept while the switch was away; intent_failed: a crash-safety intent could not be written; announce_refused: a consent announcement not played, its media unsafe)."}, []string{"event"}),
		Finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recpol_recordings_finished_total",
			Help: "Stopped recordings by outcome: stored, discarded (too short or empty), error (kept in the spool)."}, []string{"outcome"}),
		Uploads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recpol_uploads_total",
			Help: "Upload attempts by outcome (ok, failed, dead: dead-lettered)."}, []string{"outcome"}),
		UploadsPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "recpol_uploads_pending",
			Help: "Recordings waiting in the spool to be uploaded."}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recpol_policy_reloads_total",
			Help: "Policy reloads by outcome (ok, unchanged; failed: the policy is invalid; over_budget: its compile took more time or memory than its budget and was stopped; superseded: a newer change stopped it)."}, []string{"outcome"}),
		ReloadInProgress: prometheus.NewGauge(prometheus.GaugeOpts{Name: "recpol_policy_reload_in_progress",
			Help: "1 while a policy compile runs (bounded by compile_timeout_s), else 0."}),
		LastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "recpol_policy_last_reload_successful",
			Help: "Whether the last policy reload attempt succeeded."}),
		LastReloadOKSeconds: prometheus.NewGauge(prometheus.GaugeOpts{Name: "recpol_policy_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful policy reload."}),
		TableInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "recpol_policy_table_info",
			Help: "The live decision table's version (value 1)."}, []string{"version"}),
		TableAccounts: prometheus.NewGauge(prometheus.GaugeOpts{Name: "recpol_policy_table_accounts",
			Help: "Accounts in the live decision table."}),
		SwitchUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "recpol_switch_up",
			Help: "Whether the event-socket connection to a switch is up."}, []string{"switch"}),
		Reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recpol_switch_disconnects_total",
			Help: "Event-socket disconnections by switch."}, []string{"switch"}),
		EventLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "recpol_event_lag_seconds",
			Help: "How far behind the switch the runtime reads: the time the last event handled waited between the connection and the engine."}, []string{"switch"}),
		StartDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "recpol_start_delay_seconds",
			Help:    "How long a recording start took inside the runtime: from reading the switch's event that decided it off the connection (or the API call that asked for it) to writing its uuid_record start to the switch.",
			Buckets: []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}}, []string{"switch"}),
		SwitchMP3: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "recpol_switch_mp3",
			Help: "Whether a switch can write mp3 (module_exists mod_shout at its last connection): 0 means mp3 recordings are made in WAV."}, []string{"switch"}),
		FinishQueue: prometheus.NewGauge(prometheus.GaugeOpts{Name: "recpol_finish_queue",
			Help: "Stopped recordings not yet taken by the store: queued, being stored, or waiting for a retry (their files wait in the spool)."}),
		SidecarsRepaired: prometheus.NewCounter(prometheus.CounterOpts{Name: "recpol_sidecars_repaired_total",
			Help: "Metadata sidecars written at start-up that an earlier run owed when it stopped (killed after the recording's commit, or skipped by a full sidecar lane)."}),
		Flagged: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recpol_recordings_flagged_total",
			Help: "Recordings stored with a discrepancy between the file and what was asked for, by flag (sample-rate-mismatch, duration-mismatch)."}, []string{"flag"}),
	}
	for _, f := range []string{store.FlagSampleRate, store.FlagDuration} {
		m.Flagged.WithLabelValues(f) // present from the start, at 0
	}
	// Every series an alert may watch exists from the start, at 0: an
	// alert on a counter that was never incremented sees 0, not "no data".
	for _, o := range []string{"ok", "failed", "dead"} {
		m.Uploads.WithLabelValues(o)
	}
	for _, e := range RecordingEvents {
		m.Recordings.WithLabelValues(e)
	}
	for _, o := range []string{"stored", "discarded", "quarantined", "error"} {
		m.Finished.WithLabelValues(o)
	}
	for _, o := range []string{"ok", "failed", "unchanged", "over_budget", "superseded"} {
		m.Reloads.WithLabelValues(o)
	}
	bi := version.Get()
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "recpol_build_info",
		Help:        "The running build (value 1): module version, VCS revision and Go version.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": bi.Go}})
	build.Set(1)
	m.Registry.MustRegister(build)
	m.Registry.MustRegister(m.Recordings, m.Finished, m.Uploads, m.UploadsPending, m.Reloads, m.LastReloadOK, m.ReloadInProgress,
		m.LastReloadOKSeconds, m.TableInfo, m.TableAccounts, m.SwitchUp, m.Reconnects, m.Flagged, m.EventLag, m.StartDelay,
		m.FinishQueue, m.SwitchMP3, m.SidecarsRepaired,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "recpol_uploads_dead_letter",
			Help: "Uploads dead-lettered (a permanent failure, or failing past upload_max_age_s): retried only by POST /v1/recordings/{id}/upload."},
			func() float64 { return float64(m.readUploadHealth().Dead) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "recpol_upload_oldest_pending_seconds",
			Help: "Age of the oldest pending upload, from the end of its recording (0: none pending)."},
			func() float64 { return m.readUploadHealth().Oldest.Seconds() }),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
