package mcpserver

// The DNS-rebinding rule of the MCP streamable HTTP transport, as a public
// deployment sees it: requests arrive on a non-loopback address, so mcp-go's
// own loopback-only Host check does not apply and this server's guard is the
// only defence.

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

func TestGuardOriginAndHost(t *testing.T) {
	s := New(Config{Issuer: "https://mcp.example.com", Resource: "https://mcp.example.com/mcp", Scopes: []string{"openid"},
		AllowedOrigins: []string{"https://inspector.example", "http://localhost:6274"}},
		Deps{Verifier: twoUsers{}, Secret: []byte("guard-test-secret-0123456789abcdef0123")})
	r := chi.NewRouter()
	s.Mount(r)
	serve := func(host, origin string) int {
		req := httptest.NewRequest(http.MethodPost, "https://mcp.example.com/mcp", strings.NewReader(rpcInit))
		req.Host = host
		req.Header.Set("Authorization", "Bearer token-alice")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		return rec.Code
	}
	for _, tc := range []struct {
		host, origin string
		want         int
	}{
		{"mcp.example.com", "", http.StatusOK},
		{"MCP.Example.com", "https://mcp.example.com", http.StatusOK},
		{"mcp.example.com", "https://inspector.example", http.StatusOK},
		{"mcp.example.com", "http://localhost:6274", http.StatusOK},
		{"mcp.example.com", "https://evil.example", http.StatusForbidden},
		{"mcp.example.com", "http://mcp.example.com", http.StatusForbidden}, // scheme is part of an origin
		{"mcp.example.com", "null", http.StatusForbidden},
		{"mcp.example.com", "https://mcp.example.com.evil.example", http.StatusForbidden},
		{"evil.example", "", http.StatusForbidden},
		{"mcp.example.com.evil.example", "", http.StatusForbidden},
		{"mcp.example.com:8443", "", http.StatusForbidden},
		// The hosts of allowed origins are other sites, not names of this server.
		{"inspector.example", "", http.StatusForbidden},
		{"localhost:6274", "http://localhost:6274", http.StatusForbidden},
	} {
		if got := serve(tc.host, tc.origin); got != tc.want {
			t.Errorf("Host %q Origin %q: %d, want %d", tc.host, tc.origin, got, tc.want)
		}
	}
}
