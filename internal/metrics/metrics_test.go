package metrics

import (
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Series whose label values are known in advance are exported at 0 from the
// start, so increase() sees their first increment (an alert on the first
// refresh-token replay must fire).
func TestKnownSeriesStartAtZero(t *testing.T) {
	rec := httptest.NewRecorder()
	New().Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`clerk_mcp_proxy_reuse_detections_total{kind="refresh_token"} 0`,
		`clerk_mcp_proxy_reuse_detections_total{kind="authorization_code"} 0`,
		`clerk_mcp_proxy_consents_total{decision="denied"} 0`,
		`clerk_mcp_proxy_tokens_issued_total{grant_type="refresh_token"} 0`,
		`clerk_mcp_proxy_verifier_outcomes_total{outcome="unavailable"} 0`,
		`clerk_mcp_proxy_clerk_token_refreshes_total{outcome="rejected"} 0`,
		"clerk_mcp_proxy_refresh_grace_hits_total 0",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// Every name follows the Prometheus conventions: counters end in _total,
// histograms of durations in _seconds. (Gather would skip vectors nobody has
// touched yet, so the collectors are described field by field.)
func TestNamingConventions(t *testing.T) {
	m := reflect.ValueOf(*New())
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for i := range m.NumField() {
		if !m.Type().Field(i).IsExported() {
			continue
		}
		c, ok := m.Field(i).Interface().(prometheus.Collector)
		if !ok {
			continue
		}
		suffix := "_total"
		switch c.(type) {
		case *prometheus.HistogramVec:
			suffix = "_seconds"
		case prometheus.Gauge:
			suffix = "" // a gauge names what it measures, without a unit suffix here
		}
		descs := make(chan *prometheus.Desc, 1)
		c.Describe(descs)
		name := fqName.FindStringSubmatch((<-descs).String())[1]
		if !strings.HasPrefix(name, namespace+"_") || !strings.HasSuffix(name, suffix) {
			t.Errorf("%s: %s should start with %s_ and end in %s", m.Type().Field(i).Name, name, namespace, suffix)
		}
	}
}

// StoreError both logs and counts, so /metrics says what the log says.
func TestStoreErrorLogsAndCounts(t *testing.T) {
	m := New()
	var logs strings.Builder
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	for range 3 {
		m.StoreError(t.Context(), log, "get_grant", errors.New("dial tcp: connection refused"), "request_id", "r1")
	}
	m.StoreError(t.Context(), log, "rate_limit", errors.New("EOF"))
	if n := strings.Count(logs.String(), `"msg":"`+StoreErrorMsg+`"`); n != 4 {
		t.Errorf("%d store error lines, want 4:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `"op":"get_grant","err":"dial tcp: connection refused","request_id":"r1"`) {
		t.Errorf("log line lacks op, err or attrs:\n%s", logs.String())
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`clerk_mcp_proxy_store_errors_total{op="get_grant"} 3`,
		`clerk_mcp_proxy_store_errors_total{op="rate_limit"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
