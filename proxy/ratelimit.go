package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
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
				secs := int(resetIn.Round(time.Second) / time.Second)
				if secs < 1 {
					secs = 1
				}
				w.Header().Set("Retry-After", strconv.Itoa(secs))
				// temporarily_unavailable is RFC 6749's own code for "cannot
				// handle the request now" (§4.1.2.1); slow_down belongs to the
				// device grant (RFC 8628) and means something else to clients.
				s.writeError(w, r, endpoint, &oauthError{Code: "temporarily_unavailable", Description: "too many requests from this address; retry later", Status: http.StatusTooManyRequests})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
