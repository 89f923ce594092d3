package verifier_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

// heldGrants holds the first GetGrant until released, and then, as the Redis
// client does, fails it if its context has ended meanwhile.
type heldGrants struct {
	verifier.Store
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (h *heldGrants) GetGrant(ctx context.Context, id string) (store.Grant, error) {
	first := false
	h.once.Do(func() { first = true })
	if first {
		close(h.entered)
		<-h.release
		if err := ctx.Err(); err != nil {
			return store.Grant{}, err
		}
	}
	return h.Store.GetGrant(ctx, id)
}

// TestSharedGrantLookupOutlivesItsFirstCaller proves the grant lookup that
// concurrent requests share does not run on the first caller's context: that
// client disconnecting mid-lookup used to fail the lookup, and so every
// request sharing it, with 503.
func TestSharedGrantLookupOutlivesItsFirstCaller(t *testing.T) {
	held := &heldGrants{entered: make(chan struct{}), release: make(chan struct{})}
	v, ck, _, _, at := cacheEnvWith(t, func(s verifier.Store) verifier.Store { held.Store = s; return held }, verifier.Config{})
	ck.set(clerk.Introspection{Active: true, ClientID: "ck", Subject: "user_1"})

	first, disconnect := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { _, err := v.Verify(first, at); errs <- err }()
	<-held.entered
	// A second request for the same grant, which may join the lookup.
	go func() { _, err := v.Verify(context.Background(), at); errs <- err }()
	disconnect()
	close(held.release)
	for range 2 {
		if err := <-errs; errors.Is(err, verifier.ErrUnavailable) {
			t.Fatalf("Verify: %v; the first caller's disconnect failed the shared grant lookup", err)
		}
	}
}
