package proxy

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// storeErrors is store_errors_total{op} of s.
func storeErrors(t *testing.T, s *Server, op string) float64 {
	t.Helper()
	families, err := s.metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "clerk_mcp_proxy_store_errors_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == op {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestReadTicket: every answer of a ticket read means one thing in all three
// flows that redeem tickets.
func TestReadTicket(t *testing.T) {
	type rec struct{ A string }
	hasA := func(r *rec) bool { return r.A != "" }
	for _, tc := range []struct {
		name   string
		raw    string
		err    error
		want   ticketOutcome
		wantA  string
		logged bool // reported as a store fault
	}{
		{"live", `{"A":"x"}`, nil, ticketOK, "x", false},
		{"spent, with its value", `{"A":"x"}`, store.ErrSpent, ticketSpent, "x", false},
		{"spent, value unreadable", `{`, store.ErrSpent, ticketSpent, "", false},
		{"unknown", ``, store.ErrNotFound, ticketUnknown, "", false},
		{"live but not JSON: the store's fault", `{`, nil, ticketUnknown, "", true},
		{"live but incomplete: the store's fault", `{}`, nil, ticketUnknown, "", true},
		{"store down", ``, errors.New("dial tcp: refused"), ticketUnavailable, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newFzEnv(t)
			var raw []byte
			if tc.raw != "" {
				raw = []byte(tc.raw)
			}
			got, outcome := readTicket(e.s, httptest.NewRequest("POST", "/token", nil), "consume_test", raw, tc.err, hasA)
			if outcome != tc.want || got.A != tc.wantA {
				t.Fatalf("readTicket = %+v, %v; want A=%q, %v", got, outcome, tc.wantA, tc.want)
			}
			if n := storeErrors(t, e.s, "consume_test"); (n > 0) != tc.logged {
				t.Fatalf("store errors counted: %v, want %v", n, tc.logged)
			}
		})
	}
}
