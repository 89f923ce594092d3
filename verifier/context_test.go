package verifier_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

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

// leaseLog records the refresh lock's lease and when it was asked for.
type leaseLog struct {
	verifier.Store
	mu       sync.Mutex
	askedAt  time.Time
	lease    time.Duration
	acquired bool
}

func (l *leaseLog) TryLock(ctx context.Context, name string, ttl time.Duration) (func(context.Context) error, bool, error) {
	askedAt := time.Now()
	rel, ok, err := l.Store.TryLock(ctx, name, ttl)
	l.mu.Lock()
	defer l.mu.Unlock()
	if ok && !l.acquired {
		l.askedAt, l.lease, l.acquired = askedAt, ttl, true
	}
	return rel, ok, err
}

// TestRefreshLockOutlastsTheRefresh proves the Clerk refresh runs under a
// deadline that ends before the refresh lock's lease does, however long
// CLERK_TIMEOUT is. The lease was a fixed 30 s and the refresh had no
// deadline: with a longer timeout a second replica took the lapsed lock,
// refreshed with the token Clerk had just rotated, got invalid_grant and
// ended the grant.
func TestRefreshLockOutlastsTheRefresh(t *testing.T) {
	for _, timeout := range []time.Duration{10 * time.Second, 2 * time.Minute} {
		t.Run(timeout.String(), func(t *testing.T) {
			locks := &leaseLog{}
			v, ck, clock, st, at := cacheEnvWith(t, func(s verifier.Store) verifier.Store { locks.Store = s; return locks },
				verifier.Config{RefreshTimeout: timeout})
			expireUpstream(t, st, clock)
			_, _ = v.Verify(context.Background(), at) // the refresh fails (cacheClerk); only its context matters

			locks.mu.Lock()
			askedAt, lease, acquired := locks.askedAt, locks.lease, locks.acquired
			locks.mu.Unlock()
			ck.mu.Lock()
			deadline := ck.refreshDeadline
			ck.mu.Unlock()
			switch {
			case !acquired:
				t.Fatal("the refresh lock was never taken")
			case deadline.IsZero():
				t.Fatalf("the Clerk refresh has no deadline; the lock's lease is %v", lease)
			case !deadline.Before(askedAt.Add(lease)):
				t.Fatalf("the refresh may run %v past asking for the lock, beyond its %v lease", deadline.Sub(askedAt), lease)
			case deadline.Before(askedAt.Add(timeout)):
				t.Fatalf("the refresh gets %v, less than CLERK_TIMEOUT %v", deadline.Sub(askedAt), timeout)
			}
		})
	}
}
