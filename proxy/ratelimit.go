package proxy

import (
	"net/http"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
)

// rateLimit limits requests per client IP per minute for one endpoint. The
// counters live in the store, so the limit holds across replicas. A store
// failure lets the request through (availability over strictness) and is
// counted.
func (s *Server) rateLimit(endpoint string, perMinute int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if perMinute <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ip := httpx.ClientIP(r, s.cfg.TrustedProxies)
			n, resetIn, err := s.store.Hit(r.Context(), "rl:"+endpoint+":"+ip, time.Minute)
			if err != nil {
				s.storeError(r, "rate_limit", err)
				next.ServeHTTP(w, r)
				return
			}
			if n > int64(perMinute) {
				s.metrics.RateLimited.WithLabelValues(endpoint).Inc()
				if n == int64(perMinute)+1 {
					// One audit line per address, endpoint and window: a
					// flood must not flood the log and the event store too.
					s.audit(r, "rate_limited", "endpoint", endpoint, "ip", ip)
				}
				secs := int(resetIn.Round(time.Second) / time.Second)
				if secs < 1 {
					secs = 1
				}
				// temporarily_unavailable is RFC 6749's own code for "cannot
				// handle the request now" (§4.1.2.1); slow_down belongs to the
				// device grant (RFC 8628) and means something else to clients.
				s.writeError(w, r, endpoint, tooManyRequests("too many requests from this address; retry later", secs))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// limitInFlight caps the requests one client IP may have in progress at once
// on this replica, at every endpoint of the authorization server: the body
// and header timeouts bound how long each one lasts, this bounds how many a
// single address holds (connections, goroutines, Clerk and metadata-document
// calls). Clients behind one NAT share the cap, so it is set well above what
// a real client needs at once.
func (s *Server) limitInFlight(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release, ok := s.inFlight.Acquire(httpx.ClientIP(r, s.cfg.TrustedProxies))
		if !ok {
			s.metrics.RateLimited.WithLabelValues("in_flight").Inc()
			s.writeError(w, r, "in_flight", tooManyRequests("too many requests in progress from this address; retry shortly", 1))
			return
		}
		defer release()
		s.metrics.OAuthInFlight.Inc()
		defer s.metrics.OAuthInFlight.Dec()
		next.ServeHTTP(w, r)
	})
}

// tooManyRequests is 429 temporarily_unavailable with Retry-After.
func tooManyRequests(desc string, retryAfter int) *oauthError {
	e := oautherr.New(http.StatusTooManyRequests, oautherr.TemporarilyUnavailable, desc)
	e.RetryAfter = retryAfter
	return e
}
