package testredis_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
)

func TestMain(m *testing.M) { os.Exit(testredis.RunMain(m)) }

// TestShared: every test of the binary gets the same running server.
func TestShared(t *testing.T) {
	a := testredis.Shared(t)
	var b *testredis.Server
	t.Run("another test", func(t *testing.T) { b = testredis.Shared(t) })
	if a != b || a.URL != "redis://"+a.Addr+"/0" {
		t.Fatalf("two servers, or a bad URL: %+v %+v", a, b)
	}
	if err := a.Client(t).Ping(context.Background()).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
}

func TestStartStopRestart(t *testing.T) {
	ctx := context.Background()
	s := testredis.Start(t)
	if s.Addr == "" || s.URL != "redis://"+s.Addr+"/0" {
		t.Fatalf("Addr %q, URL %q", s.Addr, s.URL)
	}
	c := s.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	// Persistence must be off: nothing on disk to reload on restart.
	if got := c.ConfigGet(ctx, "save").Val()["save"]; got != "" {
		t.Errorf("save = %q, want empty", got)
	}
	if got := c.ConfigGet(ctx, "appendonly").Val()["appendonly"]; got != "no" {
		t.Errorf("appendonly = %q, want no", got)
	}

	s.Stop(t)
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING succeeded while the server is stopped")
	}

	s.Restart(t)
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after restart: %v", err)
	}
	if n := c.Exists(ctx, "k").Val(); n != 0 {
		t.Error("data survived a restart with persistence off")
	}
}

func TestServersAreIndependent(t *testing.T) {
	a, b := testredis.Start(t), testredis.Start(t)
	if a.Addr == b.Addr {
		t.Fatalf("two servers on one address %s", a.Addr)
	}
	ctx := context.Background()
	if err := a.Client(t).Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n := b.Client(t).Exists(ctx, "k").Val(); n != 0 {
		t.Error("a key written to one server is visible on the other")
	}
}

func TestCluster(t *testing.T) {
	ctx := context.Background()
	s := testredis.StartCluster(t)
	if s.URL != "redis+cluster://"+s.Addr {
		t.Fatalf("URL %q", s.URL)
	}
	c := s.Client(t)
	if err := c.Set(ctx, "{a}1", "v", 0).Err(); err != nil {
		t.Fatalf("SET on the cluster node: %v", err)
	}
	// The point of a cluster node: it rejects multi-slot commands.
	if err := c.MGet(ctx, "a", "b").Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("MGET across slots: %v, want CROSSSLOT", err)
	}
	if err := c.MGet(ctx, "{a}1", "{a}2").Err(); err != nil {
		t.Fatalf("MGET within one slot: %v", err)
	}
	s.Stop(t)
	s.Restart(t)
	if info := c.ClusterInfo(ctx).Val(); !strings.Contains(info, "cluster_state:ok") {
		t.Fatalf("cluster after restart:\n%s", info)
	}
}
