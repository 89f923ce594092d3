package app_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// BenchmarkHotPath measures an authenticated MCP request (JWT check, grant
// liveness, Clerk introspection gate — all cached after the first call)
// against a baseline measured in the same run on the same server: the
// unauthenticated /healthz round trip. Compare the two ns/op as a ratio
// (`go test -run '^$' -bench HotPath ./internal/app`); clerk_calls/op shows
// that the cache keeps Clerk out of the hot path.
func BenchmarkHotPath(b *testing.B) {
	e := e2etest.Start(b, e2etest.Options{Env: map[string]string{"LOG_LEVEL": "error"}})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	client := &http.Client{}

	do := func(b *testing.B, req func() *http.Request) {
		b.Helper()
		resp, err := client.Do(req())
		if err != nil {
			b.Fatal(err)
		}
		_, _ = bytes.NewBuffer(nil).ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	mcp := func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, e.BaseURL+"/mcp", bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+c.AccessToken)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		r.Header.Set("Mcp-Session-Id", session)
		return r
	}
	healthz := func() *http.Request {
		r, _ := http.NewRequest(http.MethodGet, e.BaseURL+"/healthz", nil)
		return r
	}

	b.Run("baseline=healthz", func(b *testing.B) {
		for b.Loop() {
			do(b, healthz)
		}
	})
	b.Run("mcp=authenticated-ping", func(b *testing.B) {
		do(b, mcp) // warm the caches
		before := e.Clerk.Stats()["/oauth/token_info"] + e.Clerk.Stats()["/oauth/userinfo"]
		for b.Loop() {
			do(b, mcp)
		}
		after := e.Clerk.Stats()["/oauth/token_info"] + e.Clerk.Stats()["/oauth/userinfo"]
		b.ReportMetric(float64(after-before)/float64(b.N), "clerk_calls/op")
	})
}
