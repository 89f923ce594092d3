// Package metrics defines every Prometheus metric clerk-mcp-proxy exports at
// /metrics. Each instance owns its own registry, so tests and several servers
// in one process never collide (no global registry, no init()).
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the proxy's collectors.
type Metrics struct {
	reg *prometheus.Registry

	HTTPRequests *prometheus.CounterVec   // route, method, status
	HTTPDuration *prometheus.HistogramVec // route, method

	Registrations     prometheus.Counter
	Authorizations    prometheus.Counter     // /authorize requests that reached consent
	Consents          *prometheus.CounterVec // decision: approved|denied
	TokensIssued      *prometheus.CounterVec // grant_type
	Refreshes         prometheus.Counter
	GraceHits         prometheus.Counter
	ReuseDetections   *prometheus.CounterVec // kind: refresh_token|authorization_code
	Revocations       *prometheus.CounterVec // reason
	OAuthErrors       *prometheus.CounterVec // endpoint, error
	ClerkCalls        *prometheus.CounterVec // endpoint, outcome
	ClerkDuration     *prometheus.HistogramVec
	VerifierCache     *prometheus.CounterVec // cache: jwt|grant|introspection|userinfo, result: hit|miss
	VerifierOutcomes  *prometheus.CounterVec // outcome
	UpstreamRefreshes *prometheus.CounterVec // outcome
	storeErrors       *prometheus.CounterVec // op; only StoreError adds to it
	// UnreplicatedWrites counts writes that fewer replicas than
	// REDIS_WAIT_REPLICAS acknowledged within REDIS_WAIT_TIMEOUT (kept).
	UnreplicatedWrites *prometheus.CounterVec // op
	RateLimited        *prometheus.CounterVec // endpoint
	// OAuthInFlight is the authorization server's requests in progress on
	// this replica (what MAX_INFLIGHT_PER_IP caps per address).
	OAuthInFlight prometheus.Gauge
	// ClientAssertionFailures counts refused RFC 7523 client assertions by
	// reason (proxy.AssertionFailureReasons).
	ClientAssertionFailures *prometheus.CounterVec
	// BackgroundDropped counts best-effort background writes skipped
	// because too many were in progress (internal/bgwrite), by op.
	BackgroundDropped *prometheus.CounterVec

	// The hot path's series, resolved once each.
	cacheLookups *Series[cacheLookup, prometheus.Counter]
	outcomes     *Series[string, prometheus.Counter]
}

type cacheLookup struct {
	cache string
	hit   bool
}

// New creates the collectors on a fresh registry (with Go and process
// collectors).
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := factory{reg}
	latency := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &Metrics{
		reg:               reg,
		HTTPRequests:      f.counterVec("http_requests_total", "HTTP requests by route, method and status.", "route", "method", "status"),
		HTTPDuration:      f.histogramVec("http_request_duration_seconds", "HTTP request latency by route and method.", latency, "route", "method"),
		Registrations:     f.counter("registrations_total", "Clients registered (RFC 7591)."),
		Authorizations:    f.counter("authorizations_total", "Valid authorization requests shown the consent page."),
		Consents:          f.counterVec("consents_total", "Consent decisions.", "decision"),
		TokensIssued:      f.counterVec("tokens_issued_total", "Token responses by grant type.", "grant_type"),
		Refreshes:         f.counter("refreshes_total", "Successful refresh-token rotations."),
		GraceHits:         f.counter("refresh_grace_hits_total", "Previous refresh tokens replayed while in grace (successor unused, or within REFRESH_GRACE) and answered."),
		ReuseDetections:   f.counterVec("reuse_detections_total", "Replays that revoked a grant.", "kind"),
		Revocations:       f.counterVec("revocations_total", "Grants revoked, by reason.", "reason"),
		OAuthErrors:       f.counterVec("oauth_errors_total", "OAuth error responses by endpoint and error code.", "endpoint", "error"),
		ClerkCalls:        f.counterVec("clerk_requests_total", "Calls to Clerk by endpoint and outcome.", "endpoint", "outcome"),
		ClerkDuration:     f.histogramVec("clerk_request_duration_seconds", "Latency of calls to Clerk by endpoint.", latency, "endpoint"),
		VerifierCache:     f.counterVec("verifier_cache_total", "Verifier cache lookups by cache and result.", "cache", "result"),
		VerifierOutcomes:  f.counterVec("verifier_outcomes_total", "Bearer verification results at /mcp.", "outcome"),
		UpstreamRefreshes: f.counterVec("clerk_token_refreshes_total", "Refreshes of expired Clerk access tokens by outcome.", "outcome"),
		storeErrors:       f.counterVec("store_errors_total", "Storage (Redis) errors by operation.", "op"),
		UnreplicatedWrites: f.counterVec("store_unreplicated_writes_total",
			"Writes kept although fewer replicas than REDIS_WAIT_REPLICAS acknowledged them within REDIS_WAIT_TIMEOUT, by operation.", "op"),
		RateLimited:   f.counterVec("rate_limited_total", "Requests refused by a rate limit, by endpoint.", "endpoint"),
		OAuthInFlight: f.gauge("oauth_requests_in_flight", "Authorization-server requests in progress on this replica."),
		ClientAssertionFailures: f.counterVec("client_assertion_failures_total",
			"Refused private_key_jwt client assertions (RFC 7523) by reason.", "reason"),
		BackgroundDropped: f.counterVec("background_writes_dropped_total",
			"Best-effort background store writes (security events, last-used times) skipped because too many were in progress, by op.", "op"),
	}
	m.cacheLookups = NewSeries(func(k cacheLookup) prometheus.Counter {
		result := "miss"
		if k.hit {
			result = "hit"
		}
		return m.VerifierCache.WithLabelValues(k.cache, result)
	})
	m.outcomes = NewSeries(func(outcome string) prometheus.Counter { return m.VerifierOutcomes.WithLabelValues(outcome) })
	m.initKnownLabels()
	return m
}

// initKnownLabels exports 0 for the label values known in advance. A series
// that first appears at 1 is invisible to increase() and rate(), so an alert
// on, say, reuse_detections_total would miss the first replay on each
// replica; pre-created series start at 0 and every increment counts.
func (m *Metrics) initKnownLabels() {
	for vec, values := range map[*prometheus.CounterVec][]string{
		m.Consents:          {"approved", "denied"},
		m.TokensIssued:      {"authorization_code", "refresh_token"},
		m.ReuseDetections:   {"refresh_token", "authorization_code"},
		m.VerifierOutcomes:  {"ok", "invalid", "unavailable"},
		m.UpstreamRefreshes: {"ok", "rejected", "unavailable"},
		m.BackgroundDropped: {"append_event", "record_last_used"},
	} {
		for _, v := range values {
			vec.WithLabelValues(v)
		}
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry exposes the registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveClerk records one call to Clerk; it matches clerk.Config.Observe.
func (m *Metrics) ObserveClerk(endpoint, outcome string, d time.Duration) {
	m.ClerkCalls.WithLabelValues(endpoint, outcome).Inc()
	m.ClerkDuration.WithLabelValues(endpoint).Observe(d.Seconds())
}

// StoreError logs a failed storage (Redis) operation and counts it in
// store_errors_total under op. Every store error goes through here, so the
// log and the metric cannot disagree. attrs are extra log attributes (e.g.
// the request id).
func (m *Metrics) StoreError(ctx context.Context, log *slog.Logger, op string, err error, attrs ...any) {
	m.storeErrors.WithLabelValues(op).Inc()
	log.ErrorContext(ctx, StoreErrorMsg, append([]any{"op", op, "err", err}, attrs...)...)
}

// StoreErrorMsg is the log message of StoreError.
const StoreErrorMsg = "store error"

// CountLogDrops exports dropped (the log lines the asynchronous log writer
// could not keep) as log_lines_dropped_total.
func (m *Metrics) CountLogDrops(dropped func() uint64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "log_lines_dropped_total",
		Help: "Log lines dropped because the log destination did not keep up (a warning line says so too)."},
		func() float64 { return float64(dropped()) }))
}

// CacheLookup records a verifier cache hit or miss.
func (m *Metrics) CacheLookup(cache string, hit bool) {
	m.cacheLookups.Get(cacheLookup{cache, hit}).Inc()
}

// VerifierOutcome counts one bearer verification by outcome (a fixed set:
// ok, invalid, unavailable).
func (m *Metrics) VerifierOutcome(outcome string) {
	m.outcomes.Get(outcome).Inc()
}

const namespace = "clerk_mcp_proxy"

type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}
