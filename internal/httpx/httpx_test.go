package httpx

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/metrics"
)

// Request metrics stay bounded whatever clients send: raw paths collapse to
// route patterns (or "unmatched") and made-up methods to OTHER.
func TestRequestMetricsHaveBoundedLabels(t *testing.T) {
	m := metrics.New()
	r := chi.NewRouter()
	r.Use(Middleware(slog.New(slog.NewJSONHandler(io.Discard, nil)), m))
	r.Get("/register/{client_id}", func(w http.ResponseWriter, r *http.Request) {})
	srv := httptest.NewServer(r)
	defer srv.Close()
	for i := range 200 {
		for _, req := range []struct{ method, path string }{
			{"GET", fmt.Sprintf("/register/client-%d", i)},
			{"GET", fmt.Sprintf("/random/%d", i)},
			{fmt.Sprintf("M%d", i), "/register/x"},
		} {
			rq, _ := http.NewRequest(req.method, srv.URL+req.path, nil)
			resp, err := http.DefaultClient.Do(rq)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	// GET /register/{client_id} 200, GET unmatched 404, OTHER unmatched 405.
	series := requestSeries(t, m)
	if len(series) != 3 || series["unmatched OTHER 405"] != 200 {
		t.Errorf("request series after 600 requests: %v", series)
	}
}

// requestSeries maps "route method status" to the request counter's value.
func requestSeries(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "clerk_mcp_proxy_http_requests_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[labels["route"]+" "+labels["method"]+" "+labels["status"]] = s.GetCounter().GetValue()
		}
	}
	return out
}

func TestMethodLabel(t *testing.T) {
	for in, want := range map[string]string{"GET": "GET", "POST": "POST", "OPTIONS": "OPTIONS", "get": "OTHER", "PROPFIND": "OTHER", "": "OTHER"} {
		if got := MethodLabel(in); got != want {
			t.Errorf("MethodLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// At shutdown an event stream ends, while an ordinary request in flight is
// left to finish.
func TestEndStreamsOn(t *testing.T) {
	shutdown, begin := context.WithCancel(context.Background())
	ended := make(chan string, 2)
	h := EndStreamsOn(shutdown)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			ended <- r.Header.Get("Accept") + ": cancelled"
		case <-time.After(300 * time.Millisecond):
			ended <- r.Header.Get("Accept") + ": finished"
		}
	}))
	for _, accept := range []string{"text/event-stream", "application/json"} {
		req := httptest.NewRequest(http.MethodGet, "/mcp", nil)
		req.Header.Set("Accept", accept)
		go h.ServeHTTP(httptest.NewRecorder(), req)
	}
	time.Sleep(20 * time.Millisecond)
	begin()
	got := map[string]bool{<-ended: true, <-ended: true}
	if !got["text/event-stream: cancelled"] || !got["application/json: finished"] {
		t.Errorf("got %v", got)
	}
}

// TestPprofServesProfilesOnly: the PPROF_ADDR handler serves the runtime
// profiles and nothing else (not http.DefaultServeMux).
func TestPprofServesProfilesOnly(t *testing.T) {
	h := Pprof()
	for path, want := range map[string]int{"/debug/pprof/": 200, "/debug/pprof/heap?debug=1": 200, "/debug/pprof/goroutine?debug=1": 200, "/": 404, "/metrics": 404} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
	}
}
