package server

import (
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus series.
type metrics struct {
	executions *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	rejections *prometheus.CounterVec
	pruned     prometheus.Counter
	handle     gin.HandlerFunc
}

func newMetrics(reg prometheus.Registerer, gather prometheus.Gatherer, s *Server) (*metrics, error) {
	if reg == nil {
		r := prometheus.NewRegistry()
		reg = r
		if gather == nil {
			gather = r
		}
	}
	if gather == nil {
		gather = prometheus.DefaultGatherer
	}
	m := &metrics{
		executions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "isol8_executions_total", Help: "Executions by runtime and outcome (ok, nonzero, error).",
		}, []string{"runtime", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "isol8_execution_duration_seconds", Help: "Execution time from admission to the last byte, by runtime.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"runtime"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "isol8_rejections_total", Help: "Requests refused before execution, by reason.",
		}, []string{"reason"}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "isol8_sessions_pruned_total", Help: "Idle sessions removed by auto-prune.",
		}),
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	collectors := []prometheus.Collector{
		m.executions, m.latency, m.rejections, m.pruned,
		gauge("isol8_queue_waiting", "Executions waiting for a slot.", func() float64 { w, _ := s.queue.depth(); return float64(w) }),
		gauge("isol8_executions_running", "Executions holding a slot.", func() float64 { _, r := s.queue.depth(); return float64(r) }),
		gauge("isol8_sessions", "Live persistent sessions.", func() float64 { n, _ := s.sessions.count(); return float64(n) }),
		gauge("isol8_sessions_active", "Sessions executing now.", func() float64 { _, a := s.sessions.count(); return float64(a) }),
		gauge("isol8_pool_idle", "Ready sandboxes in the warm pools.", func() float64 { return float64(s.opts.Host.PoolStats().Idle) }),
		counter("isol8_pool_hits_total", "Executions that found a ready sandbox.", func() float64 { return float64(s.opts.Host.PoolStats().Hits) }),
		counter("isol8_pool_misses_total", "Executions that had to make a sandbox.", func() float64 { return float64(s.opts.Host.PoolStats().Misses) }),
		counter("isol8_audit_dropped_total", "Audit records dropped because the writer fell behind.", func() float64 {
			if s.opts.Audit == nil {
				return 0
			}
			return float64(s.opts.Audit.Dropped())
		}),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	h := promhttp.HandlerFor(gather, promhttp.HandlerOpts{})
	m.handle = gin.WrapH(h)
	return m, nil
}

func (m *metrics) handler(c *gin.Context) { m.handle(c) }

func (m *metrics) executed(runtime, outcome string, d time.Duration) {
	if runtime == "" {
		runtime = "unknown"
	}
	m.executions.WithLabelValues(runtime, outcome).Inc()
	m.latency.WithLabelValues(runtime).Observe(d.Seconds())
}

func (m *metrics) rejected(reason string) {
	if m != nil {
		m.rejections.WithLabelValues(reason).Inc()
	}
}
