package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/redisstore"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t) // one server; every subtest gets its own prefix
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store {
		return newStore(t, srv.URL, fmt.Sprintf("conf%d:", n.Add(1)))
	}, func(_ *testing.T, d time.Duration) { time.Sleep(d) })
}

// TestConformanceCluster runs the suite through a ClusterClient against a
// Cluster node, which rejects any script whose keys span hash slots.
func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	srv := testredis.StartCluster(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store {
		return newStore(t, srv.URL, fmt.Sprintf("conf%d:", n.Add(1)))
	}, func(_ *testing.T, d time.Duration) { time.Sleep(d) })
}

func newStore(t *testing.T, url, prefix string) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(t.Context(), redisstore.Options{URL: url, Prefix: prefix})
	if err != nil {
		t.Fatalf("redisstore.New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// workload exercises every kind of record the store writes.
func workload(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	check("create client", s.CreateClient(ctx, store.Client{ID: "c-permanent"}, 0))
	check("create client", s.CreateClient(ctx, store.Client{ID: "c-dynamic"}, time.Hour))
	check("put client", s.PutClient(ctx, store.Client{ID: "c-cimd"}, time.Hour))
	check("put ticket", s.PutTicket(ctx, store.KindTransaction, "t1", []byte("v"), time.Minute))
	check("put ticket", s.PutTicket(ctx, store.KindCode, "t2", []byte("v"), time.Minute))
	_, err := s.ConsumeTicket(ctx, store.KindCode, "t2", time.Minute)
	check("consume ticket", err)
	check("create grant", s.CreateGrant(ctx, store.Grant{ID: "g1"}, time.Hour))
	_, err = s.UpdateGrant(ctx, "g1", 0, func(g *store.Grant) error { g.Active = true; return nil })
	check("update grant", err)
	_, err = s.GetOrCreateKeySet(ctx, []byte("keys"))
	check("create key set", err)
	check("set cache", s.SetCache(ctx, "k", []byte("v"), time.Minute))
	_, ok, err := s.TryLock(ctx, "l", time.Minute)
	check("lock", err)
	if !ok {
		t.Fatal("lock not taken")
	}
	_, _, err = s.Hit(ctx, "h", time.Minute)
	check("hit", err)
}

func TestKeysArePrefixedAndExpire(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t)
	const prefix = "test-prefix:"
	workload(t, newStore(t, srv.URL, prefix))

	raw := srv.Client(t)
	ctx := t.Context()
	permanent := map[string]bool{ // the only records allowed to live forever
		prefix + "client:{c-permanent}": true,
		prefix + "keyset":               true,
	}
	var keys []string
	it := raw.Scan(ctx, 0, "*", 100).Iterator()
	for it.Next(ctx) {
		keys = append(keys, it.Val())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if len(keys) < 10 {
		t.Fatalf("only %d keys after the workload: %q", len(keys), keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			t.Errorf("key %q lacks the prefix %q", k, prefix)
		}
		pttl, err := raw.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case permanent[k] && pttl != -1:
			t.Errorf("key %q: PTTL %v, want no expiry", k, pttl)
		case !permanent[k] && pttl <= 0:
			t.Errorf("key %q has no expiry (PTTL %v)", k, pttl)
		}
		delete(permanent, k)
	}
	for k := range permanent {
		t.Errorf("expected key %q was not written", k)
	}
}

// TestOddPrefixesAndIdsStayInOneSlot: braces in the prefix or the id must
// not split a ticket from its spent marker (the Cluster node would answer
// CROSSSLOT).
func TestOddPrefixesAndIdsStayInOneSlot(t *testing.T) {
	t.Parallel()
	srv := testredis.StartCluster(t)
	ctx := t.Context()
	for _, tc := range []struct{ prefix, id string }{
		{"p{x:", "id"},
		{"p}x:", "id"},
		{"{tenant}:", "id"},
		{"cmp:", "id}1"},
		{"cmp:", "{id}"},
		{"a{b:", "c}d{e"},
		{"a{b}:", ""}, // the prefix's own tag covers an empty id
	} {
		s := newStore(t, srv.URL, tc.prefix)
		id := tc.id
		if err := s.PutTicket(ctx, store.KindCode, id, []byte("v"), time.Minute); err != nil {
			t.Fatalf("prefix %q id %q: put: %v", tc.prefix, id, err)
		}
		if _, err := s.ConsumeTicket(ctx, store.KindCode, id, time.Minute); err != nil {
			t.Fatalf("prefix %q id %q: consume: %v", tc.prefix, id, err)
		}
		if _, err := s.ConsumeTicket(ctx, store.KindCode, id, time.Minute); !errors.Is(err, store.ErrSpent) {
			t.Fatalf("prefix %q id %q: consume again: %v, want ErrSpent", tc.prefix, id, err)
		}
	}

	// An id that would make an empty hash tag is refused up front, with an
	// error that is not a store sentinel.
	s := newStore(t, srv.URL, "cmp:")
	for _, id := range []string{"", "}x"} {
		err := s.PutTicket(ctx, store.KindCode, id, []byte("v"), time.Minute)
		if err == nil || errors.Is(err, store.ErrAlreadyExists) {
			t.Errorf("put ticket with id %q: %v, want an error", id, err)
		}
		if _, err := s.ConsumeTicket(ctx, store.KindCode, id, 0); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Errorf("consume ticket with id %q: %v, want an error", id, err)
		}
	}
}

func TestSurvivesRedisRestart(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t)
	s := newStore(t, srv.URL, "restart:")
	ctx := t.Context()
	workload(t, s)

	srv.Stop(t)
	opCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Ping(opCtx); err == nil {
		t.Fatal("Ping succeeded with Redis down")
	}
	_, err := s.ConsumeTicket(opCtx, store.KindTransaction, "t1", 0)
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ConsumeTicket with Redis down: %v, want a connection error", err)
	}
	if _, err := s.UpdateGrant(opCtx, "g1", 0, func(*store.Grant) error { return nil }); err == nil {
		t.Fatal("UpdateGrant succeeded with Redis down")
	}

	srv.Restart(t) // comes back empty: persistence is off
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after restart: %v", err)
	}
	// Scripts must be reloaded transparently (the server's script cache is
	// empty now) and data written again.
	workload(t, s)
	v, err := s.ConsumeTicket(ctx, store.KindTransaction, "t1", 0)
	if err != nil || string(v) != "v" {
		t.Fatalf("ConsumeTicket after restart: %q, %v", v, err)
	}
}

func TestNewFailsClearly(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	if _, err := redisstore.New(ctx, redisstore.Options{URL: "http://localhost"}); err == nil ||
		!strings.Contains(err.Error(), "scheme") {
		t.Errorf("bad URL: error = %v, want one about the scheme", err)
	}

	srv := testredis.Start(t)
	url := srv.URL
	srv.Stop(t) // a port nothing listens on
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := redisstore.New(ctx, redisstore.Options{URL: url})
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("unreachable Redis: error = %v, want one saying so", err)
	}
}

func TestClientOption(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t)
	c := srv.Client(t)
	s, err := redisstore.New(t.Context(), redisstore.Options{Client: c, URL: "ignored://"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetCache(t.Context(), "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := c.Exists(t.Context(), redisstore.DefaultPrefix+"cache:{k}").Val(); n != 1 {
		t.Error("empty prefix did not default to DefaultPrefix")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Errorf("Store.Close closed a client it does not own: %v", err)
	}
}

func TestCorruptRecordErrorsDoNotLeakValues(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t)
	s := newStore(t, srv.URL, "corrupt:")
	raw := srv.Client(t)
	ctx := t.Context()
	const secret = "sk_live_very_secret"
	raw.Set(ctx, "corrupt:client:{c}", `{"id":`+secret, 0)
	raw.HSet(ctx, "corrupt:grant:{g}", "v", "1", "d", `{"upstream":`+secret)
	raw.Set(ctx, "corrupt:grant:{h}", "not a hash", 0)
	_, err1 := s.GetClient(ctx, "c")
	_, err2 := s.GetGrant(ctx, "g")
	_, err3 := s.GetGrant(ctx, "h")
	for _, err := range []error{err1, err2, err3} {
		if err == nil || errors.Is(err, store.ErrNotFound) {
			t.Errorf("corrupt record: error = %v, want a real error", err)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks the stored value: %v", err)
		}
	}
}

// TestGrantIndexKeys: the index sets never expire before their grants and
// outlive them by at most a minute (create and ttl-resetting update), empty
// once the grants are deleted, and a stale id (its grant gone without the
// set hearing of it) is skipped and pruned by a listing.
func TestGrantIndexKeys(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t)
	const prefix = "idx:"
	s := newStore(t, srv.URL, prefix)
	raw := srv.Client(t)
	ctx := t.Context()
	userKey, clientKey, grantKey := prefix+"grants:user:{u1}", prefix+"grants:client:{c1}", prefix+"grant:{g1}"
	wantTTLs := func(what string) {
		t.Helper()
		g := raw.PTTL(ctx, grantKey).Val()
		for _, k := range []string{userKey, clientKey} {
			if ix := raw.PTTL(ctx, k).Val(); ix < g || ix > g+time.Minute+time.Second {
				t.Errorf("%s: %s PTTL %v, grant PTTL %v: want between the grant's and a minute more", what, k, ix, g)
			}
		}
	}
	if err := s.CreateGrant(ctx, store.Grant{ID: "g1", UserID: "u1", ClientID: "c1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	wantTTLs("after create")
	if _, err := s.UpdateGrant(ctx, "g1", 48*time.Hour, func(g *store.Grant) error { return nil }); err != nil {
		t.Fatal(err)
	}
	wantTTLs("after an update that extends the grant")
	if _, err := s.UpdateGrant(ctx, "g1", 0, func(g *store.Grant) error { return nil }); err != nil {
		t.Fatal(err)
	}
	wantTTLs("after an update that keeps the expiry")

	raw.SAdd(ctx, userKey, "ghost")
	gs, err := s.ListGrantsByUser(ctx, "u1")
	if err != nil || len(gs) != 1 || gs[0].ID != "g1" {
		t.Fatalf("listing with a stale id: %v %v", gs, err)
	}
	if raw.SIsMember(ctx, userKey, "ghost").Val() {
		t.Error("the stale id was not pruned")
	}
	if err := s.DeleteGrant(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	if n := raw.Exists(ctx, userKey, clientKey).Val(); n != 0 {
		t.Errorf("%d index sets left after the last grant was deleted", n)
	}
}
