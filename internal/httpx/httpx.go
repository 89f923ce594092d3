// Package httpx holds the HTTP plumbing shared by every route: request ids,
// one structured access-log line per request (with the client and user when a
// handler learned them), Prometheus request metrics, panic recovery that
// answers a JSON error instead of dropping the connection, and the client-IP
// rule that trusts X-Forwarded-For only from configured proxies, the ending
// of event streams at shutdown, the local probe behind both binaries'
// container health checks, and the serving of embedded static files.
package httpx

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/metrics"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
)

type ctxKey int

const annotationsKey ctxKey = iota

// annotations are facts handlers learn during a request (who the client and
// the user are) that the access log line reports at the end.
type annotations struct {
	mu       sync.Mutex
	id       string
	clientID string
	userID   string
}

// SetClient records the OAuth client id for the access log.
func SetClient(ctx context.Context, clientID string) {
	if a, ok := ctx.Value(annotationsKey).(*annotations); ok {
		a.mu.Lock()
		a.clientID = clientID
		a.mu.Unlock()
	}
}

// SetUser records the user id for the access log.
func SetUser(ctx context.Context, userID string) {
	if a, ok := ctx.Value(annotationsKey).(*annotations); ok {
		a.mu.Lock()
		a.userID = userID
		a.mu.Unlock()
	}
}

// RequestID returns the request's id ("" outside Middleware).
func RequestID(ctx context.Context) string {
	if a, ok := ctx.Value(annotationsKey).(*annotations); ok {
		return a.id
	}
	return ""
}

// Middleware wraps every request: id, recovery, metrics and the access log.
func Middleware(log *slog.Logger, m *metrics.Metrics) func(http.Handler) http.Handler {
	series := newSeriesCache(m)
	fast, _ := log.Handler().(*JSONHandler)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			a := &annotations{id: requestID(r)}
			w.Header().Set("X-Request-Id", a.id)
			rw := &recorder{ResponseWriter: w, status: http.StatusOK}
			r = r.WithContext(context.WithValue(r.Context(), annotationsKey, a))
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					log.Error("panic serving request", "request_id", a.id, "path", r.URL.Path, "panic", p)
					if !rw.wrote {
						oautherr.Write(rw, oautherr.New(http.StatusInternalServerError, oautherr.ServerError, "internal error"))
					}
				}
				route := routePattern(r)
				end := time.Now()
				d := end.Sub(start)
				series.observe(route, r.Method, rw.status, d)
				if !log.Enabled(r.Context(), slog.LevelInfo) {
					return
				}
				line := accessLine{id: a.id, method: r.Method, route: route, status: rw.status, bytes: rw.bytes, duration: d}
				a.mu.Lock()
				line.clientID, line.userID = a.clientID, a.userID
				a.mu.Unlock()
				logAccess(r.Context(), log, fast, &line, end)
			}()
			next.ServeHTTP(rw, r)
		})
	}
}

// seriesCache hands out the request metrics' series by route, method and
// status, resolved once each: looking a labelled series up hashes its label
// values on every call, twice per request.
type seriesCache struct {
	series *metrics.Series[seriesKey, seriesPair]
}

type seriesKey struct {
	route, method string
	status        int
}

type seriesPair struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newSeriesCache(m *metrics.Metrics) *seriesCache {
	if m == nil {
		return &seriesCache{}
	}
	return &seriesCache{series: metrics.NewSeries(func(k seriesKey) seriesPair {
		return seriesPair{
			requests: m.HTTPRequests.WithLabelValues(k.route, k.method, strconv.Itoa(k.status)),
			duration: m.HTTPDuration.WithLabelValues(k.route, k.method),
		}
	})}
}

func (s *seriesCache) observe(route, method string, status int, d time.Duration) {
	if s.series == nil {
		return
	}
	// Every label is bounded: chi's patterns, MethodLabel, a status code.
	sp := s.series.Get(seriesKey{route, MethodLabel(method), status})
	sp.requests.Inc()
	sp.duration.Observe(d.Seconds())
}

// routePattern is chi's matched pattern, never the raw path (which may carry
// ids and would explode metric cardinality).
func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}

// MethodLabel bounds the method label of the request metrics. Go's server
// accepts any token as a method, so labelling with it verbatim let a client
// mint one time series per request ("M1", "M2", ...); unknown methods share
// the label OTHER.
func MethodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}

func requestID(r *http.Request) string {
	// Accept a sane upstream id so logs join across hops; otherwise mint one.
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 && isToken(id) {
		return id
	}
	// 64 random bits from the runtime's per-thread generator: an id joins
	// log lines, it guards nothing, and crypto/rand cost a system call per
	// request here.
	const digits = "0123456789abcdef"
	var b [16]byte
	v := rand.Uint64()
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[:])
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// recorder captures the status and size for the log and metrics. It keeps
// http.Flusher working because MCP streams server-sent events.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status = code
		r.wrote = true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		r.wrote = true
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// EndStreamsOn ends server-sent event streams (GET with Accept:
// text/event-stream, i.e. an MCP client's standing GET /mcp) once ctx is done.
// http.Server.Shutdown waits for every active request, and such a stream only
// ends when its client leaves: one connected client used to hold every
// SIGTERM for the whole drain timeout, then the process exited 1. Streams
// carry no request to finish, and clients reconnect (the session lives in the
// store), so they are cancelled while ordinary requests still drain.
func EndStreamsOn(ctx context.Context) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
				rctx, cancel := context.WithCancel(r.Context())
				defer cancel()
				defer context.AfterFunc(ctx, cancel)()
				r = r.WithContext(rctx)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// ClientIP is the address of the client: the connection's peer, or, when the
// peer is a trusted proxy, the right-most X-Forwarded-For entry that is not
// itself a trusted proxy (RFC 9700 §4.13: trust forwarded headers only from
// known hops).
func ClientIP(r *http.Request, trusted []*net.IPNet) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer := net.ParseIP(host)
	if peer == nil || !inNets(peer, trusted) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		ip := net.ParseIP(strings.TrimSpace(hops[i]))
		if ip == nil {
			break
		}
		if !inNets(ip, trusted) {
			return ip.String()
		}
	}
	return host
}

func inNets(ip net.IP, nets []*net.IPNet) bool {
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// ProbeLocal GETs path on the server listening on addr (a listen address such
// as ":8080" or "0.0.0.0:9400": a wildcard host is probed on loopback) and
// fails unless it answers 200. Both binaries' container health checks use it.
func ProbeLocal(addr, path string, timeout time.Duration) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad address %q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c := &http.Client{Timeout: timeout}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + path)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
