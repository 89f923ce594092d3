package app_test

import (
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// TestUnreplicatedWritesCounted: with REDIS_WAIT_REPLICAS=1 over a Redis
// without replicas, every write the rule covers is short of its replica:
// the sign-in still succeeds (the write is kept), and each shortfall is
// counted in store_unreplicated_writes_total{op} and logged as a warning.
func TestUnreplicatedWritesCounted(t *testing.T) {
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT": "1ms"}})
	c := e.Register("http://127.0.0.1:41999/callback")
	e.Login(c, testflow.Choices{})
	if status, out := e.Refresh(c, c.RefreshToken); status != 200 {
		t.Fatalf("refresh: %d %v", status, out)
	}

	families, err := e.App.Metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "clerk_mcp_proxy_store_unreplicated_writes_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	// Registration, the pending grant, the spent code, the code exchange
	// and the rotation.
	for op, min := range map[string]float64{"create client": 1, "create grant": 1, "consume ticket": 1, "update grant": 2} {
		if got[op] < min {
			t.Errorf("store_unreplicated_writes_total{op=%q} = %v, want at least %v (all: %v)", op, got[op], min, got)
		}
	}
	if n := strings.Count(e.Logs.String(), "was not acknowledged by REDIS_WAIT_REPLICAS replicas"); n < 5 {
		t.Errorf("%d warnings logged, want one per short write (at least 5)", n)
	}
}
