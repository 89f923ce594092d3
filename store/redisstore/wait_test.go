package redisstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/redisstore"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/storetest"
)

// shortWaits records what OnShortWait reports.
type shortWaits struct {
	mu  sync.Mutex
	ops []string
}

func (w *shortWaits) add(op string, acked int) {
	w.mu.Lock()
	w.ops = append(w.ops, fmt.Sprintf("%s (acked %d)", op, acked))
	w.mu.Unlock()
}

func (w *shortWaits) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.ops...)
}

func newWaitStore(t *testing.T, url, prefix string, timeout time.Duration) (*redisstore.Store, *shortWaits) {
	t.Helper()
	s, err := redisstore.New(t.Context(), redisstore.Options{URL: url, Prefix: prefix, WaitReplicas: 1, WaitTimeout: timeout})
	if err != nil {
		t.Fatalf("redisstore.New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	w := &shortWaits{}
	s.OnShortWait(w.add)
	return s, w
}

// TestConformanceWait runs the store suite with WAIT 1 on a primary with a
// replica: waited writes behave exactly as unwaited ones.
func TestConformanceWait(t *testing.T) {
	t.Parallel()
	primary, _ := testredis.StartPrimaryReplica(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := newWaitStore(t, primary.URL, fmt.Sprintf("confw%d:", n.Add(1)), time.Second)
		return s
	}, func(_ *testing.T, d time.Duration) { time.Sleep(d) })
}

// durableOp is a store write, the key it leaves (or removes; empty: not
// checked) and whether the key exists afterwards.
type durableOp struct {
	name   string
	run    func() error
	key    string
	exists bool
}

// durableOps are the writes that wait (and one that does not, put code,
// which the consume needs), in an order that works.
func durableOps(ctx context.Context, s store.Store, prefix, id string) []durableOp {
	return []durableOp{
		{"create client", func() error { return s.CreateClient(ctx, store.Client{ID: "c" + id}, time.Hour) }, prefix + "client:{c" + id + "}", true},
		{"put client", func() error { return s.PutClient(ctx, store.Client{ID: "p" + id}, time.Hour) }, prefix + "client:{p" + id + "}", true},
		{"delete client", func() error { return s.DeleteClient(ctx, "p"+id) }, prefix + "client:{p" + id + "}", false},
		{"create grant", func() error {
			return s.CreateGrant(ctx, store.Grant{ID: "g" + id, UserID: "u", ClientID: "c" + id}, time.Hour)
		}, prefix + "grant:{g" + id + "}", true},
		{"update grant", func() error {
			_, err := s.UpdateGrant(ctx, "g"+id, time.Hour, func(g *store.Grant) error { g.Active = true; return nil })
			return err
		}, prefix + "grant:{g" + id + "}", true},
		{"put code", func() error { return s.PutTicket(ctx, store.KindCode, "k"+id, []byte("v"), time.Minute) }, "", true},
		{"consume code", func() error {
			_, err := s.ConsumeTicket(ctx, store.KindCode, "k"+id, time.Minute)
			return err
		}, prefix + "ticket:code:{k" + id + "}", false},
		{"delete grant", func() error { return s.DeleteGrant(ctx, "g"+id) }, prefix + "grant:{g" + id + "}", false},
	}
}

// TestWaitReachesReplica: after each waited write returns, the replica
// already holds it (the WAIT ran on the connection, and on Cluster the node,
// that wrote); with the replica stopped the writes still succeed and each
// is reported as short of replicas.
func TestWaitReachesReplica(t *testing.T) {
	t.Parallel()
	t.Run("primary and replica", func(t *testing.T) {
		t.Parallel()
		primary, replica := testredis.StartPrimaryReplica(t)
		s, short := newWaitStore(t, primary.URL, "w:", time.Second)
		rc := replica.Client(t)
		checkOnReplica(t, s, "w:", short, func(ctx context.Context, key string) (int64, error) { return rc.Exists(ctx, key).Result() })

		replica.Stop(t)
		s2, short2 := newWaitStore(t, primary.URL, "w2:", 5*time.Millisecond)
		for _, op := range durableOps(t.Context(), s2, "w2:", "x") {
			if err := op.run(); err != nil {
				t.Fatalf("%s with the replica down: %v", op.name, err)
			}
		}
		got := short2.list()
		t.Logf("with the replica down, reported short: %v", got)
		if len(got) != 7 { // every op but put code
			t.Errorf("reported short %d times, want 7 (every waited write): %v", len(got), got)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		rc := testredis.StartReplicatedCluster(t, 3, 1)
		s, short := newWaitStore(t, rc.URL, "wc:", time.Second)
		checkOnReplica(t, s, "wc:", short, func(ctx context.Context, key string) (int64, error) {
			return clusterReplicaExists(ctx, t, rc, key)
		})
	})
}

func checkOnReplica(t *testing.T, s store.Store, prefix string, short *shortWaits, exists func(context.Context, string) (int64, error)) {
	t.Helper()
	ctx := t.Context()
	for i := range 6 { // ids over several Cluster slots
		for _, op := range durableOps(ctx, s, prefix, fmt.Sprint(i)) {
			if err := op.run(); err != nil {
				t.Fatalf("%s: %v", op.name, err)
			}
			if op.key == "" {
				continue
			}
			n, err := exists(ctx, op.key)
			if err != nil {
				t.Fatalf("%s: read on the replica: %v", op.name, err)
			}
			if (n == 1) != op.exists {
				t.Errorf("%s %d: the replica has the key: %v, want %v", op.name, i, n == 1, op.exists)
			}
		}
	}
	if got := short.list(); len(got) > 0 {
		t.Errorf("writes reported short of replicas with the replica up: %v", got)
	}
}

// clusterReplicaExists asks the replica of key's shard (a READONLY
// connection) whether key exists.
func clusterReplicaExists(ctx context.Context, t *testing.T, rc *testredis.ReplicatedCluster, key string) (int64, error) {
	for _, n := range rc.Nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr})
		info, err := c.Info(ctx, "replication").Result()
		if err != nil || !strings.Contains(info, "role:slave") {
			_ = c.Close()
			continue
		}
		conn := c.Conn()
		if err := conn.ReadOnly(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		v, err := conn.Exists(ctx, key).Result()
		_ = conn.Close()
		_ = c.Close()
		if err != nil && strings.HasPrefix(err.Error(), "MOVED") {
			continue // another shard's replica
		}
		return v, err
	}
	return 0, fmt.Errorf("no replica serves %s", key)
}

// BenchmarkWait: the cost of WAIT 1 on a real primary and replica, for the
// writes of a registration (create client) and of a refresh (update grant),
// with WAIT off and on.
func BenchmarkWait(b *testing.B) {
	primary, _ := testredis.StartPrimaryReplica(b)
	for _, replicas := range []int{0, 1} {
		s, err := redisstore.New(b.Context(), redisstore.Options{URL: primary.URL, Prefix: fmt.Sprintf("bw%d:", replicas),
			WaitReplicas: replicas, WaitTimeout: 100 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		ctx := b.Context()
		var n atomic.Int64 // ids stay unique across the benchmark's reruns
		b.Run(fmt.Sprintf("register/wait=%d", replicas), func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.CreateClient(ctx, store.Client{ID: fmt.Sprint(n.Add(1))}, time.Hour); err != nil {
						b.Error(err)
					}
				}
			})
		})
		b.Run(fmt.Sprintf("refresh/wait=%d", replicas), func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				id := fmt.Sprint("g", n.Add(1))
				if err := s.CreateGrant(ctx, store.Grant{ID: id, UserID: "u", ClientID: "c"}, time.Hour); err != nil {
					b.Error(err)
				}
				for pb.Next() {
					if _, err := s.UpdateGrant(ctx, id, time.Hour, func(g *store.Grant) error { g.Active = true; return nil }); err != nil {
						b.Error(err)
					}
				}
			})
		})
	}
}
