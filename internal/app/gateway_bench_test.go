package app_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// BenchmarkGatewayToolsCall compares an authenticated tools/call through the
// gateway (bearer verification against real Redis and the fake Clerk, the
// assertion, the policy, the relay) with the same call straight to the Go
// upstream, in the same run with the same client. Read the ratio of the two
// ns/op, one caller and concurrent ones (and the p50/p99 metrics); the
// README records a run:
//
//	REQUIRE_REDIS=1 go test -run '^$' -bench BenchmarkGatewayToolsCall -benchtime 3000x ./internal/app
func BenchmarkGatewayToolsCall(b *testing.B) {
	m := server.NewMCPServer("bench-upstream", "1")
	m.AddTool(mcp.NewTool("echo"), func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	})
	up := httptest.NewServer(server.NewStreamableHTTPServer(m, server.WithStateLess(true)))
	b.Cleanup(up.Close)
	e := e2etest.Start(b, e2etest.Options{Env: map[string]string{"UPSTREAM_MCP_URL": up.URL + "/mcp", "LOG_LEVEL": "warn"}})
	c := e.Register()
	e.Login(c, testflow.Choices{})

	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	call := func(b *testing.B, url, token string) {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("MCP-Protocol-Version", "2025-11-25")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	for _, tc := range []struct {
		name, url, token string
	}{
		{"direct", up.URL + "/mcp", ""},
		{"gateway", e.BaseURL + "/mcp", c.AccessToken},
	} {
		b.Run(tc.name, func(b *testing.B) {
			call(b, tc.url, tc.token) // warm caches and connections
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				call(b, tc.url, tc.token)
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
		// Throughput with concurrent callers (GOMAXPROCS goroutines each).
		b.Run(tc.name+"-parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					call(b, tc.url, tc.token)
				}
			})
		})
	}
}
