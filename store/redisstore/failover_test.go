package redisstore_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// recoveryDeadline is how long after a promotion the store may keep failing.
// It is a liveness bound, far above the few seconds recovery takes, and far
// below go-redis's periodic slot-map refresh (a minute), which the store
// used to wait for.
const recoveryDeadline = 20 * time.Second

// TestClusterFailover kills the primary that owns a grant's slot while the
// store keeps reading and writing it, and requires the store to reach the
// promoted replica by itself: a read, a script (EVALSHA on a node whose script
// cache is empty) and a compare-and-swap all work again within a liveness
// deadline after the promotion.
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	rc := testredis.StartReplicatedCluster(t, 3, 1)
	s := newStore(t, rc.URL, "fo:")
	ctx := t.Context()
	if err := s.CreateGrant(ctx, store.Grant{ID: "g1", UserID: "u"}, 0); err != nil {
		t.Fatal(err)
	}
	// A write the replica has confirmed (WAIT), so the promoted replica has it:
	// this test is about routing, not about asynchronous replication.
	old := rc.PrimaryFor(t, "fo:grant:{g1}")
	if n, err := old.Client(t).Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT: %d %v", n, err)
	}

	// Traffic before, during and after the failover; the first success after
	// the promotion ends it.
	ok := make(chan time.Time, 1)
	stop := make(chan struct{})
	promoted := make(chan struct{})
	go func() {
		defer close(ok)
		after := false
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-promoted:
				after = true
			default:
			}
			opCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := op(opCtx, s, i)
			cancel()
			if err == nil && after {
				ok <- time.Now()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer close(stop)

	killed := time.Now()
	old.Stop(t)
	rc.WaitPromoted(t, "fo:grant:{g1}", old)
	at := time.Now()
	close(promoted)
	t.Logf("promotion seen %v after the kill", at.Sub(killed).Round(time.Millisecond))

	select {
	case done := <-ok:
		t.Logf("store recovered %v after the promotion", done.Sub(at).Round(time.Millisecond))
	case <-time.After(recoveryDeadline):
		t.Fatalf("the store still fails %v after the promotion", recoveryDeadline)
	}
	// Everything works now, with no restart.
	for i := range 3 {
		if err := op(ctx, s, 100+i); err != nil {
			t.Fatalf("after recovery: %v", err)
		}
	}
}

// op reads the grant, updates it (a Lua compare-and-swap) and counts a hit
// (another script), all in the grant's slot.
func op(ctx context.Context, s store.Store, i int) error {
	if _, err := s.GetGrant(ctx, "g1"); err != nil {
		return err
	}
	if _, err := s.UpdateGrant(ctx, "g1", 0, func(g *store.Grant) error {
		g.UserID = "u" + strconv.Itoa(i)
		return nil
	}); err != nil {
		return err
	}
	if _, _, err := s.Hit(ctx, "{g1}", time.Minute); err != nil {
		return err
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return nil
}
