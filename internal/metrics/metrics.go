// Package metrics holds cartflow's Prometheus metrics: HTTP latency and status
// per route for the BFF, the Temporal SDK's metrics for the worker and the BFF,
// and the business counters (checkouts, charges, renewals, refunds).
//
// Each process builds one Registry and serves it on /metrics. A Registry owns
// its prometheus.Registry rather than using the global default, so tests get
// fresh counters and no library can register surprises into the scrape.
package metrics

import (
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"

	"github.com/cartflow/cartflow/internal/domain"
)

// other replaces any label value outside its fixed set, so a bug or a new
// provider can never explode the number of series.
const other = "other"

// Label value sets. Every counter is pre-set to zero for each combination, so a
// scrape shows the series before the first event and rate() has a baseline.
var (
	checkoutOutcomes = statusLabels(domain.OrderStatuses)
	providers        = []string{"stripe", "paypal", "braintree"}
	chargeOutcomes   = []string{"succeeded", "declined", "rejected", "error", "requires_action"}
	renewalOutcomes  = []string{"renewed", "past_due", "canceled"}
	// refundOutcomes: succeeded/refused are the Refund workflow's answers,
	// rejected/error are what the provider call can end in.
	refundOutcomes = []string{"succeeded", "refused", "rejected", "error"}
	// orphanFinders are how an orphan payment can be found (orphan_payments.found_by).
	orphanFinders = []string{"webhook", "reconciliation"}
	httpMethods   = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
)

// temporalReportInterval is how often the SDK's tally scope flushes into the
// Prometheus registry; a scrape lags real values by at most this much.
const temporalReportInterval = time.Second

// Registry is one process's metrics. The business methods are safe on a nil
// *Registry, so code that records metrics needs no "is it configured" checks.
type Registry struct {
	reg *prometheus.Registry

	httpDuration *prometheus.HistogramVec
	httpRequests *prometheus.CounterVec

	checkouts *prometheus.CounterVec
	charges   *prometheus.CounterVec
	renewals  *prometheus.CounterVec
	refunds   *prometheus.CounterVec
	orphans   *prometheus.CounterVec

	temporalOnce    sync.Once
	temporalHandler client.MetricsHandler
	temporalScope   io.Closer
}

// New returns a Registry with cartflow's metrics plus the Go runtime and
// process collectors registered.
func New() *Registry {
	r := &Registry{
		reg: prometheus.NewRegistry(),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cartflow_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by method, route template and status.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route", "status"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cartflow_http_requests_total",
			Help: "HTTP requests served, by method, route template and status.",
		}, []string{"method", "route", "status"}),
		checkouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cartflow_checkouts_total",
			Help: "Checkouts that reached an outcome, by outcome (the checkout status).",
		}, []string{"outcome"}),
		charges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cartflow_charges_total",
			Help: "Charge attempts at a payment provider, by provider and outcome.",
		}, []string{"provider", "outcome"}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cartflow_renewals_total",
			Help: "Subscription renewals, by outcome.",
		}, []string{"outcome"}),
		refunds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cartflow_refunds_total",
			Help: "Refunds, by provider and outcome.",
		}, []string{"provider", "outcome"}),
		orphans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cartflow_orphan_payments_total",
			Help: "Payments that took money without a paid order to show for it, by provider and how they were found (webhook, reconciliation); each is refunded.",
		}, []string{"provider", "found_by"}),
	}
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.httpDuration, r.httpRequests, r.checkouts, r.charges, r.renewals, r.refunds, r.orphans,
	)
	for _, o := range append(slices.Clone(checkoutOutcomes), other) {
		r.checkouts.WithLabelValues(o)
	}
	for _, o := range append(slices.Clone(renewalOutcomes), other) {
		r.renewals.WithLabelValues(o)
	}
	for _, p := range append(slices.Clone(providers), other) {
		for _, o := range append(slices.Clone(chargeOutcomes), other) {
			r.charges.WithLabelValues(p, o)
		}
		for _, o := range append(slices.Clone(refundOutcomes), other) {
			r.refunds.WithLabelValues(p, o)
		}
		for _, f := range append(slices.Clone(orphanFinders), other) {
			r.orphans.WithLabelValues(p, f)
		}
	}
	return r
}

// Prometheus returns the underlying registry, for registering a collector
// that lives elsewhere (e.g. a pgx pool's stats). It is nil on a nil Registry.
func (r *Registry) Prometheus() *prometheus.Registry {
	if r == nil {
		return nil
	}
	return r.reg
}

// Handler serves the registry in the Prometheus exposition format, for /metrics.
// On a nil Registry it answers 404, so an unconfigured process exposes nothing.
func (r *Registry) Handler() http.Handler {
	if r == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		// A failing collector should not hide every other metric.
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      r.reg,
	})
}

// CheckoutOutcome counts a checkout reaching status.
func (r *Registry) CheckoutOutcome(status domain.OrderStatus) {
	if r == nil {
		return
	}
	r.checkouts.WithLabelValues(bounded(string(status), checkoutOutcomes)).Inc()
}

// Charge counts one charge attempt at provider ending in outcome
// (succeeded, declined, rejected, error, requires_action).
func (r *Registry) Charge(provider, outcome string) {
	if r == nil {
		return
	}
	r.charges.WithLabelValues(bounded(provider, providers), bounded(outcome, chargeOutcomes)).Inc()
}

// Renewal counts one subscription renewal ending in outcome (renewed, past_due, canceled).
func (r *Registry) Renewal(outcome string) {
	if r == nil {
		return
	}
	r.renewals.WithLabelValues(bounded(outcome, renewalOutcomes)).Inc()
}

// Refund counts one refund at provider ending in outcome (succeeded, refused, rejected, error).
func (r *Registry) Refund(provider, outcome string) {
	if r == nil {
		return
	}
	r.refunds.WithLabelValues(bounded(provider, providers), bounded(outcome, refundOutcomes)).Inc()
}

// OrphanPayment counts one payment found at provider (by the webhook or the reconciliation)
// that took money without a paid order to show for it.
func (r *Registry) OrphanPayment(provider, foundBy string) {
	if r == nil {
		return
	}
	r.orphans.WithLabelValues(bounded(provider, providers), bounded(foundBy, orphanFinders)).Inc()
}

// TemporalMetricsHandler returns a handler for client.Options.MetricsHandler
// that exports the Temporal SDK's metrics (temporal_request_total,
// temporal_workflow_completed_total, temporal_activity_execution_latency_seconds, …)
// into this registry. The SDK's counters get a _total suffix and its timers a
// _seconds suffix, as Prometheus naming expects. Every call returns the same
// handler, because the underlying collectors may be registered only once. On a
// nil Registry it returns client.MetricsNopHandler.
//
// The SDK reports through tally (go.temporal.io/sdk/contrib/tally), which
// flushes into the registry every second; Close stops that.
func (r *Registry) TemporalMetricsHandler() client.MetricsHandler {
	if r == nil {
		return client.MetricsNopHandler
	}
	r.temporalOnce.Do(func() {
		reporter := tallyprom.NewReporter(tallyprom.Options{
			Registerer: r.reg,
			// Histograms, not summaries: they aggregate across workers.
			DefaultTimerType: tallyprom.HistogramTimerType,
			// The default panics. Losing one SDK metric (e.g. a name reused
			// with other tags) must not take the worker down.
			OnRegisterError: func(err error) {
				slog.Default().Warn("temporal metric not exported", "err", err)
			},
		})
		scope, closer := tally.NewRootScope(tally.ScopeOptions{
			CachedReporter:  reporter,
			Separator:       tallyprom.DefaultSeparator,
			SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
		}, temporalReportInterval)
		r.temporalScope = closer
		r.temporalHandler = sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope))
	})
	if r.temporalHandler == nil {
		// Close ran first: nothing would ever flush, so record nothing.
		return client.MetricsNopHandler
	}
	return r.temporalHandler
}

// Close flushes the Temporal SDK's pending metrics and stops their reporting
// loop. It is safe on a nil Registry and when TemporalMetricsHandler was never called.
func (r *Registry) Close() error {
	if r == nil {
		return nil
	}
	// Taking the Once guarantees a concurrent TemporalMetricsHandler has finished
	// (or will never build the scope), so temporalScope is safe to read.
	r.temporalOnce.Do(func() {})
	if r.temporalScope == nil {
		return nil
	}
	return r.temporalScope.Close()
}

// bounded returns v when it is one of allowed, and "other" otherwise.
func bounded(v string, allowed []string) string {
	if slices.Contains(allowed, v) {
		return v
	}
	return other
}

func statusLabels(statuses []domain.OrderStatus) []string {
	out := make([]string, len(statuses))
	for i, s := range statuses {
		out[i] = string(s)
	}
	return out
}
