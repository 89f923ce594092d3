package app_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// TestShutdownEndsEventStreams proves App.Serve, which the binary and the
// end-to-end harness both run, ends an MCP client's standing event stream at
// shutdown, so the drain finishes instead of waiting for that client to leave.
// Only cmd/clerk-mcp-proxy used to add this, so the harness tested a server
// whose drain ran out (context deadline exceeded) while the stream stayed up.
func TestShutdownEndsEventStreams(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)

	req, _ := http.NewRequest(http.MethodGet, e.BaseURL+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+c.AccessToken)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	req.Header.Set("Mcp-Session-Id", session)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("opening the event stream: %d", resp.StatusCode)
	}

	stopped := make(chan error, 1)
	go func() { stopped <- e.Stop() }()
	_, _ = io.Copy(io.Discard, resp.Body) // returns once the server ends the stream
	if err := <-stopped; err != nil {
		t.Fatalf("shutdown with an open event stream: %v", err)
	}
}
