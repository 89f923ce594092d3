package mockclerk

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
)

// Fault changes how one endpoint answers, for the next Count calls (0: until
// cleared).
type Fault struct {
	Endpoint string `json:"endpoint"` // request path, e.g. "/oauth/token_info"
	Status   int    `json:"status"`   // answer this status with Clerk's error body
	DelayMS  int    `json:"delay_ms"` // wait first (the request's context cancels the wait)
	Timeout  bool   `json:"timeout"`  // never answer: hang until the client gives up (60 s at most)
	Count    int    `json:"count"`    // how many calls; 0 = until cleared

	hang time.Duration // how long Timeout hangs: the server's limit, set when taken
}

// faults is the active fault list; guarded by Server.mu.
type faults struct {
	list []*Fault
	hang time.Duration // bounds a Timeout fault; hangLimit unless a test shortens it
}

// hangLimit bounds a "timeout" fault so a forgotten one cannot pin a server.
const hangLimit = 60 * time.Second

// SetFault adds (or replaces, for the same endpoint) a fault.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, g := range s.faults.list {
		if g.Endpoint == f.Endpoint {
			s.faults.list[i] = &f
			return
		}
	}
	s.faults.list = append(s.faults.list, &f)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.list = nil
}

// takeFault returns the fault for path, spending one of its calls. Callers
// hold s.mu.
func (s *Server) takeFault(path string) (Fault, bool) {
	for i, f := range s.faults.list {
		if f.Endpoint != path {
			continue
		}
		out := *f
		out.hang = s.faults.hang
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				s.faults.list = append(s.faults.list[:i], s.faults.list[i+1:]...)
			}
		}
		return out, true
	}
	return Fault{}, false
}

// applyFault delays, hangs or fails the request; it reports whether the
// request should then be served normally.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	if f.Timeout {
		select {
		case <-r.Context().Done():
		case <-time.After(f.hang):
			// A client that outwaits the hang must not read an empty 200
			// as success: it gets a gateway timeout.
			writeFaultError(w, r.URL.Path, http.StatusGatewayTimeout)
		}
		return false
	}
	if f.DelayMS > 0 {
		select {
		case <-r.Context().Done():
			return false
		case <-time.After(time.Duration(f.DelayMS) * time.Millisecond):
		}
	}
	if f.Status != 0 {
		writeFaultError(w, r.URL.Path, f.Status)
		return false
	}
	return true
}

// writeFaultError answers an injected status in the body shape of the path's
// endpoint family (a bare status below 400).
func writeFaultError(w http.ResponseWriter, path string, status int) {
	if status == http.StatusTooManyRequests {
		// Clerk's rate limit says when to come back (wire facts §11).
		w.Header().Set("Retry-After", "1")
	}
	switch {
	case status < 400:
		w.WriteHeader(status)
	case isOAuthPath(path):
		writeOAuthError(w, status, oautherr.ServerError, "injected fault")
	default:
		writeClerkError(w, status, "internal_clerk_error", "injected fault")
	}
}

func isOAuthPath(p string) bool {
	return p == "/oauth/token" || p == "/oauth/token_info" || p == "/oauth/token/revoke" || p == "/oauth/register"
}

// Admin API (test-only): GET /__admin/stats, POST|DELETE /__admin/faults,
// POST /__admin/reset, POST /__admin/webhooks (send a signed webhook).
func (s *Server) adminRoutes() {
	s.mux.HandleFunc("GET /__admin/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	s.mux.HandleFunc("POST /__admin/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil || f.Endpoint == "" || f.Count < 0 || f.DelayMS < 0 || (f.Status != 0 && (f.Status < 200 || f.Status > 599)) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want JSON {endpoint, status?, delay_ms?, timeout?, count?}"})
			return
		}
		s.SetFault(f)
		writeJSON(w, http.StatusOK, f)
	})
	s.mux.HandleFunc("DELETE /__admin/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("POST /__admin/webhooks", s.handleSendWebhook)
	s.mux.HandleFunc("POST /__admin/reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
}
