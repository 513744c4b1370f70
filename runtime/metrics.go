package runtime

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/recpol/recpol/runtime/store"
)

// Metrics are the runtime's Prometheus metrics, in a registry of their own
// (no package-level state).
type Metrics struct {
	Registry *prometheus.Registry

	Recordings          *prometheus.CounterVec // by event: started, stopped, failed, command_dropped
	Finished            *prometheus.CounterVec // by outcome: stored, discarded, error
	Uploads             *prometheus.CounterVec // by outcome: ok, failed
	UploadsPending      prometheus.Gauge
	Reloads             *prometheus.CounterVec // by outcome: ok, failed, unchanged
	LastReloadOK        prometheus.Gauge
	LastReloadOKSeconds prometheus.Gauge
	TableInfo           *prometheus.GaugeVec // 1 for the live version
	TableAccounts       prometheus.Gauge
	SwitchUp            *prometheus.GaugeVec // by switch: 1 connected, 0 not
	Reconnects          *prometheus.CounterVec
	Flagged             *prometheus.CounterVec // by flag
}

// NewMetrics creates the metrics and their registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Recordings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recpol_recordings_total",
			Help: "Recording commands and outcomes seen by the engine, by event (started, stopped, failed, command_dropped)."}, []string{"event"}),
		Finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recpol_recordings_finished_total",
			Help: "Stopped recordings by outcome: stored, discarded (too short or empty), error (kept in the spool)."}, []string{"outcome"}),
		Uploads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recpol_uploads_total",
			Help: "Upload attempts by outcome (ok, failed)."}, []string{"outcome"}),
		UploadsPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "recpol_uploads_pending",
			Help: "Recordings waiting in the spool to be uploaded."}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recpol_policy_reloads_total",
			Help: "Policy reloads by outcome (ok, failed, unchanged)."}, []string{"outcome"}),
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
		Flagged: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recpol_recordings_flagged_total",
			Help: "Recordings stored with a discrepancy between the file and what was asked for, by flag (sample-rate-mismatch, duration-mismatch)."}, []string{"flag"}),
	}
	for _, f := range []string{store.FlagSampleRate, store.FlagDuration} {
		m.Flagged.WithLabelValues(f) // present from the start, at 0
	}
	m.Registry.MustRegister(m.Recordings, m.Finished, m.Uploads, m.UploadsPending, m.Reloads, m.LastReloadOK,
		m.LastReloadOKSeconds, m.TableInfo, m.TableAccounts, m.SwitchUp, m.Reconnects, m.Flagged,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
