package mcpserver

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testclock"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/memstore"
)

// TestTerminationReachesOtherReplicasOnTheInjectedClock proves the session
// check trusts "not terminated" for liveFor on Deps.Now's clock: a session
// ended at replica A is refused at replica B once that clock has moved past
// liveFor. Deps.Now used to be ignored (time.Now), so a fake clock moved
// nothing and B kept serving the ended session.
func TestTerminationReachesOtherReplicasOnTheInjectedClock(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := memstore.New(memstore.Options{Now: clock.Now})
	t.Cleanup(func() { _ = st.Close() })
	a, b := newSessionServer(t, st, clock.Now), newSessionServer(t, st, clock.Now)

	status, session := send(t, a.URL, http.MethodPost, "token-alice", "", rpcInit)
	if status != http.StatusOK || session == "" {
		t.Fatalf("initialize at A: %d session=%q", status, session)
	}
	if status, _ := send(t, b.URL, http.MethodPost, "token-alice", session, rpcList); status != http.StatusOK {
		t.Fatalf("the session at B: %d", status)
	}
	if status, _ := send(t, a.URL, http.MethodDelete, "token-alice", session, ""); status != http.StatusOK {
		t.Fatalf("ending the session at A: %d", status)
	}
	clock.Advance(liveFor + time.Millisecond)
	if status, _ := send(t, b.URL, http.MethodPost, "token-alice", session, rpcList); status != http.StatusNotFound {
		t.Fatalf("the ended session at B past liveFor: %d, want 404", status)
	}
}

// flakyCache is a store.Cache whose reads or writes fail while down is set.
type flakyCache struct {
	store.Cache
	readsDown, writesDown atomic.Bool
}

var errStoreDown = errors.New("redis: connection refused")

func (f *flakyCache) GetCache(ctx context.Context, key string) ([]byte, error) {
	if f.readsDown.Load() {
		return nil, errStoreDown
	}
	return f.Cache.GetCache(ctx, key)
}

func (f *flakyCache) SetCache(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if f.writesDown.Load() {
		return errStoreDown
	}
	return f.Cache.SetCache(ctx, key, value, ttl)
}

// TestSessionCheckFailsClosed proves a session whose termination cannot be
// checked or recorded (Redis down) is not served: 503, as when the grant
// behind the token cannot be read, and the session works again once the
// store is back. A store error used to read as "not terminated" (and was
// trusted for a second), and a failed DELETE answered 200.
func TestSessionCheckFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name, method, body string
		writesOnly         bool // only the store's writes fail
		want               int
	}{
		{"POST", http.MethodPost, rpcList, false, http.StatusServiceUnavailable},
		{"GET stream", http.MethodGet, "", false, http.StatusServiceUnavailable},
		{"DELETE", http.MethodDelete, "", false, http.StatusServiceUnavailable},
		// mcp-go answers a failed Terminate itself, with 500.
		{"DELETE, write fails", http.MethodDelete, "", true, http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			mem := memstore.New(memstore.Options{Now: clock.Now})
			t.Cleanup(func() { _ = mem.Close() })
			st := &flakyCache{Cache: mem}
			srv := newSessionServer(t, st, clock.Now)
			status, session := send(t, srv.URL, http.MethodPost, "token-alice", "", rpcInit)
			if status != http.StatusOK || session == "" {
				t.Fatalf("initialize: %d session=%q", status, session)
			}

			st.writesDown.Store(true)
			st.readsDown.Store(!tc.writesOnly)
			if status, _ := send(t, srv.URL, tc.method, "token-alice", session, tc.body); status != tc.want {
				t.Fatalf("%s with the store down: %d, want %d", tc.method, status, tc.want)
			}
			st.readsDown.Store(false)
			st.writesDown.Store(false)
			if status, _ := send(t, srv.URL, http.MethodPost, "token-alice", session, rpcList); status != http.StatusOK {
				t.Fatalf("the session once the store is back: %d", status)
			}
		})
	}
}
