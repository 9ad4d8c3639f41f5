// Package metrics turns ward's decision logs into Prometheus metrics. The
// front doors cannot hold counters (ward-runtime lives for one command, a
// shim for one pod: docs/metrics.md), so a node daemon follows the logs
// every door writes and counts what it reads.
//
//	m, err := metrics.New(metrics.Config{Logs: []string{"/var/log/ward/*.jsonl"}})
//	go m.Run(ctx)                       // follow the logs until ctx ends
//	mux.Handle("/metrics", m.Handler()) // serve them
//
// A daemon that already reads the logs for something else feeds entries to
// Observe instead of running a second follower; one that has its own
// registry passes it in Config.Registry.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ward-runtime/ward/internal/decisionlog"
	"github.com/ward-runtime/ward/internal/version"
)

// Config says what to follow and where the metrics go.
type Config struct {
	// Logs are filepath.Match globs of the decision logs to follow.
	Logs []string
	// Poll is how often the logs are checked (default one second).
	Poll time.Duration
	// FromStart counts the entries already in the logs at start; by
	// default only new ones are (a restarted daemon would count its
	// history twice otherwise; Prometheus sees the restart as a counter
	// reset either way).
	FromStart bool
	// Registry, when set, gets ward's metrics; nil makes one with the Go
	// runtime's and the process's collectors too.
	Registry *prometheus.Registry
}

// Metrics counts decision-log entries.
type Metrics struct {
	cfg      Config
	registry *prometheus.Registry

	decisions      *prometheus.CounterVec
	rejections     *prometheus.CounterVec
	findings       *prometheus.CounterVec
	failClosed     *prometheus.CounterVec
	policyFailures *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	versions       *prometheus.CounterVec
	readProblems   *prometheus.CounterVec
	files          prometheus.Gauge
}

// durationBuckets span a decision's cost: about a millisecond to judge and
// rewrite a spec, tens with an idmapped root filesystem, more on a loaded
// node.
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// New builds the metrics and registers them.
func New(cfg Config) (*Metrics, error) {
	if err := decisionlog.ValidatePatterns(cfg.Logs); err != nil {
		return nil, err
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &Metrics{
		cfg:      cfg,
		registry: reg,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ward_decisions_total",
			Help: "Decisions by front door, event (create, exec), action (harden, sandbox, reject; error when ward failed closed), backend, deciding rule and audit mode.",
		}, []string{"door", "event", "action", "backend", "rule", "audit"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ward_rejections_total",
			Help: "Containers the policy refused (audit mode excluded), by front door and deciding rule.",
		}, []string{"door", "rule"}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ward_findings_total",
			Help: "Findings in container decisions, by finding, severity, the decision's action, and whether an exemption waived it.",
		}, []string{"finding", "severity", "action", "waived"}),
		failClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ward_fail_closed_total",
			Help: "Containers and exec sessions ward refused because it could not judge or prepare them, by front door, event and kind (failed, invalid-spec, unknown-pod, forbidden).",
		}, []string{"door", "event", "kind"}),
		policyFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ward_policy_load_failures_total",
			Help: "Loads of the node configuration or policy that failed, by front door (each refused what it was asked to decide, or kept its last good policy).",
		}, []string{"door"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ward_decision_duration_seconds",
			Help:    "Time a front door took to decide (load, judge, rewrite, prepare), by front door, event and action.",
			Buckets: durationBuckets,
		}, []string{"door", "event", "action"}),
		versions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ward_log_entries_total",
			Help: "Decision-log entries by the ward version that wrote them (a rollout shows here).",
		}, []string{"ward_version"}),
		readProblems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ward_log_read_problems_total",
			Help: "Decision-log lines or files that could not be read, by kind (malformed, too-long, read).",
		}, []string{"kind"}),
		files: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ward_log_files",
			Help: "Decision-log files followed.",
		}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "ward_build_info",
		Help:        "The ward build serving these metrics.",
		ConstLabels: prometheus.Labels{"version": version.Version()},
	})
	build.Set(1)
	for _, c := range []prometheus.Collector{m.decisions, m.rejections, m.findings, m.failClosed,
		m.policyFailures, m.duration, m.versions, m.readProblems, m.files, build} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Handler serves the registry's metrics in Prometheus's formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Run follows the logs until ctx is done.
func (m *Metrics) Run(ctx context.Context) error {
	fl := decisionlog.Follower{
		Patterns:  m.cfg.Logs,
		Poll:      m.cfg.Poll,
		FromStart: m.cfg.FromStart,
		Entry:     m.Observe,
		Problem:   func(p decisionlog.FollowProblem) { m.readProblems.WithLabelValues(p.Kind).Inc() },
		Files:     func(n int) { m.files.Set(float64(n)) },
	}
	return fl.Follow(ctx)
}

// Observe counts one decision-log entry.
func (m *Metrics) Observe(e decisionlog.Entry) {
	m.versions.WithLabelValues(e.WardVersion).Inc()
	if e.Event == "load" {
		m.policyFailures.WithLabelValues(e.Door).Inc()
		return
	}
	action := string(e.Action)
	if e.Error != "" {
		// The container did not run, whatever the report says it would
		// have been.
		action = "error"
		kind := e.ErrorKind
		if kind == "" {
			kind = "failed" // written before entries had a kind
		}
		m.failClosed.WithLabelValues(e.Door, e.Event, kind).Inc()
	}
	m.decisions.WithLabelValues(e.Door, e.Event, action, string(e.Backend), e.Rule, strconv.FormatBool(e.Audit)).Inc()
	if action == "reject" && !e.Audit {
		m.rejections.WithLabelValues(e.Door, e.Rule).Inc()
	}
	if e.DurationSeconds > 0 {
		m.duration.WithLabelValues(e.Door, e.Event, action).Observe(e.DurationSeconds)
	}
	// An exec entry repeats its container's findings: counted once, at
	// create.
	if e.Event != "create" {
		return
	}
	for _, f := range e.Findings {
		m.findings.WithLabelValues(f.ID, f.Severity.String(), action, strconv.FormatBool(f.Waived != "")).Inc()
	}
}
