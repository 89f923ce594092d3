package testredis

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Failover tests need a topology that can lose a primary: a Redis Cluster with
// replicas, or a primary and replica watched by Sentinels. Timeouts are small
// (a node is declared down after one second) so a promotion takes a few
// seconds, as with the production settings operators are told to use; the
// tests around them only wait with generous deadlines.

const (
	// nodeTimeout is cluster-node-timeout and Sentinel's
	// down-after-milliseconds, in milliseconds.
	nodeTimeout = 1000
	// formTimeout bounds the wait for a topology to form or to promote. A
	// Sentinel starved of CPU (a loaded CI machine) enters TILT mode and
	// does nothing for 30 seconds: one promotion took 22 s that way.
	formTimeout = 60 * time.Second
)

// ReplicatedCluster is a Redis Cluster of several primaries, each with
// replicas, on loopback.
type ReplicatedCluster struct {
	// Nodes are every node, primaries and replicas.
	Nodes []*Server
	// URL lists every node as a seed: redis://h1:p1,h2:p2,.../0.
	URL string
}

// StartReplicatedCluster starts primaries*(1+replicasPer) cluster nodes, joins
// them with `redis-cli --cluster create` and waits until every node reports
// the cluster healthy and every replica is in sync. Everything stops at
// cleanup.
func StartReplicatedCluster(t testing.TB, primaries, replicasPer int) *ReplicatedCluster {
	t.Helper()
	cli := lookPath(t, "redis-cli")
	rc := &ReplicatedCluster{}
	var addrs []string
	for range primaries * (1 + replicasPer) {
		s := start(t, nodeConfig{cluster: true, args: []string{
			"--cluster-node-timeout", strconv.Itoa(nodeTimeout),
			// A replica is always eligible for promotion, however long it
			// has been out of touch: the tests kill primaries on purpose.
			"--cluster-replica-validity-factor", "0",
		}})
		rc.Nodes = append(rc.Nodes, s)
		addrs = append(addrs, s.Addr)
	}
	rc.URL = "redis://" + strings.Join(addrs, ",") + "/0"

	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicasPer), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), formTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("testredis: redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, s := range rc.Nodes {
		c := redis.NewClient(&redis.Options{Addr: s.Addr})
		err := waitFor(ctx, func() error {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") ||
				!strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(len(rc.Nodes))+"\r") {
				return fmt.Errorf("cluster not formed: %s", info)
			}
			repl, err := c.Info(ctx, "replication").Result()
			if err != nil {
				return err
			}
			if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
				return fmt.Errorf("replica not in sync: %s", repl)
			}
			return nil
		})
		_ = c.Close()
		if err != nil {
			t.Fatalf("testredis: node %s: %v", s.Addr, err)
		}
	}
	return rc
}

// PrimaryFor returns the node that currently serves key as its slot's
// primary, as a running node sees the cluster.
func (rc *ReplicatedCluster) PrimaryFor(t testing.TB, key string) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, err := rc.primaryAddr(ctx, key)
	if err != nil {
		t.Fatalf("testredis: primary for a key: %v", err)
	}
	for _, s := range rc.Nodes {
		if s.Addr == addr {
			return s
		}
	}
	t.Fatalf("testredis: primary %s is not one of the cluster's nodes", addr)
	return nil
}

// WaitPromoted waits until every running node agrees that key's slot is
// served by a primary other than old and reports the cluster healthy, and
// returns the new primary. It measures how long the cluster took, not the
// client: the tests compare the client's recovery against this moment.
func (rc *ReplicatedCluster) WaitPromoted(t testing.TB, key string, old *Server) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), formTimeout)
	defer cancel()
	var primary string
	err := waitFor(ctx, func() error {
		primary = ""
		for _, s := range rc.Nodes {
			if s == old || !s.running() {
				continue
			}
			addr, err := primaryAddrAt(ctx, s.Addr, key)
			if err != nil {
				return err
			}
			if addr == old.Addr {
				return fmt.Errorf("%s still routes the slot to the old primary", s.Addr)
			}
			if primary != "" && addr != primary {
				return fmt.Errorf("nodes disagree on the slot's primary")
			}
			primary = addr
		}
		return nil
	})
	if err != nil {
		t.Fatalf("testredis: no promotion after %v: %v", formTimeout, err)
	}
	for _, s := range rc.Nodes {
		if s.Addr == primary {
			return s
		}
	}
	t.Fatalf("testredis: new primary %s is not one of the cluster's nodes", primary)
	return nil
}

// primaryAddr asks the first running node which node is key's primary.
func (rc *ReplicatedCluster) primaryAddr(ctx context.Context, key string) (string, error) {
	for _, s := range rc.Nodes {
		if s.running() {
			return primaryAddrAt(ctx, s.Addr, key)
		}
	}
	return "", fmt.Errorf("no node is running")
}

// primaryAddrAt asks the node at addr which node is key's primary, and
// requires that node to find the cluster healthy.
func primaryAddrAt(ctx context.Context, addr, key string) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return "", err
	}
	if !strings.Contains(info, "cluster_state:ok") {
		return "", fmt.Errorf("%s: cluster state not ok", addr)
	}
	slot, err := c.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return "", err
	}
	ranges, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return "", err
	}
	for _, r := range ranges {
		if int64(r.Start) <= slot && slot <= int64(r.End) && len(r.Nodes) > 0 {
			return r.Nodes[0].Addr, nil
		}
	}
	return "", fmt.Errorf("%s: slot %d has no primary", addr, slot)
}

// Sentinel is a primary and a replica watched by three Sentinels.
type Sentinel struct {
	Primary, Replica *Server
	Sentinels        []*Server
	// Master is the name the Sentinels know the primary by.
	Master string
	// URL is redis+sentinel://s1,s2,s3/Master/0.
	URL string
}

// StartSentinel starts the primary, its replica and three Sentinels (quorum
// 2), and waits until each Sentinel knows the replica and the other
// Sentinels, so that a failover can be authorized as soon as the primary
// dies. Everything stops at cleanup.
//
// The two data nodes keep an append-only file, as Sentinel deployments
// must: a node killed and started again comes back with its data. Without
// it, a node restarted empty can be promoted by a second failover before
// the Sentinels have made it a replica (the new primary stalls past
// down-after-milliseconds, as on a starved machine), and the new primary
// then copies its empty data set: everything is gone. That happened in a
// 10-minute chaos soak; TestSentinelRestartedNodeKeepsData shows it.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	const master = "cmp"
	primary, replica := startPrimaryReplica(t, persistent)
	st := &Sentinel{Primary: primary, Replica: replica, Master: master}
	conf := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2\n"+
		"sentinel down-after-milliseconds %[1]s %[3]d\n"+
		"sentinel failover-timeout %[1]s 10000\n"+
		"sentinel parallel-syncs %[1]s 1\n", master, primary.port, nodeTimeout)
	var addrs []string
	for range 3 {
		s := start(t, nodeConfig{sentinelConf: conf})
		st.Sentinels = append(st.Sentinels, s)
		addrs = append(addrs, s.Addr)
	}
	st.URL = "redis+sentinel://" + strings.Join(addrs, ",") + "/" + master + "/0"

	ctx, cancel := context.WithTimeout(context.Background(), formTimeout)
	defer cancel()
	for _, s := range st.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
		err := waitFor(ctx, func() error {
			m, err := c.Master(ctx, master).Result()
			if err != nil {
				return err
			}
			if m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" {
				return fmt.Errorf("sentinel sees %s replicas and %s other sentinels", m["num-slaves"], m["num-other-sentinels"])
			}
			return nil
		})
		_ = c.Close()
		if err != nil {
			t.Fatalf("testredis: sentinel %s: %v", s.Addr, err)
		}
	}
	return st
}

// StartPrimaryReplica starts a primary and a replica of it and waits until
// the replica is in sync. Both stop at cleanup.
func StartPrimaryReplica(t testing.TB) (primary, replica *Server) {
	t.Helper()
	return startPrimaryReplica(t, nil)
}

// persistent are the options of a data node that keeps its data across a
// kill and a restart: an append-only file, written to the OS at every
// write and synced every second (Redis's default appendfsync).
var persistent = []string{"--appendonly", "yes"}

func startPrimaryReplica(t testing.TB, args []string) (primary, replica *Server) {
	t.Helper()
	primary = start(t, nodeConfig{args: args})
	replica = start(t, nodeConfig{args: append(slices.Clone(args), "--replicaof", "127.0.0.1", strconv.Itoa(primary.port))})
	replica.WaitInSync(t)
	return primary, replica
}

// WaitInSync waits until the server is a replica whose link to its primary
// is up (the initial copy done).
func (s *Server) WaitInSync(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), formTimeout)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	if err := waitFor(ctx, func() error {
		repl, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(repl, "role:slave") || !strings.Contains(repl, "master_link_status:up") {
			return fmt.Errorf("replica not in sync")
		}
		return nil
	}); err != nil {
		t.Fatalf("testredis: replica %s: %v", s.Addr, err)
	}
}

// WaitPromoted waits until every Sentinel names the replica as the primary
// and the replica says it is one.
func (st *Sentinel) WaitPromoted(t testing.TB) {
	t.Helper()
	st.WaitPrimary(t, st.Replica)
}

// eachSentinel runs check against every Sentinel in turn, until one fails.
func (st *Sentinel) eachSentinel(check func(s *Server, c *redis.SentinelClient) error) error {
	for _, s := range st.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
		err := check(s, c)
		_ = c.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// WaitReplicaUp waits until every Sentinel lists srv among the primary's
// replicas and does not hold it down (after a restart, it answers again).
func (st *Sentinel) WaitReplicaUp(t testing.TB, srv *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), formTimeout)
	defer cancel()
	err := waitFor(ctx, func() error {
		return st.eachSentinel(func(s *Server, c *redis.SentinelClient) error {
			replicas, err := c.Replicas(ctx, st.Master).Result()
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(replicas, func(r map[string]string) bool {
				return net.JoinHostPort(r["ip"], r["port"]) == srv.Addr && !strings.Contains(r["flags"], "down")
			}) {
				return fmt.Errorf("sentinel %s does not see %s as a healthy replica: %v", s.Addr, srv.Addr, replicas)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
}

// WaitPrimary waits until every Sentinel names srv as the primary and srv
// says it is one.
func (st *Sentinel) WaitPrimary(t testing.TB, srv *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), formTimeout)
	defer cancel()
	err := waitFor(ctx, func() error {
		if err := st.eachSentinel(func(s *Server, c *redis.SentinelClient) error {
			addr, err := c.GetMasterAddrByName(ctx, st.Master).Result()
			if err != nil {
				return err
			}
			if len(addr) != 2 || net.JoinHostPort(addr[0], addr[1]) != srv.Addr {
				return fmt.Errorf("sentinel %s names %v as the primary", s.Addr, addr)
			}
			return nil
		}); err != nil {
			return err
		}
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		defer c.Close()
		repl, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(repl, "role:master") {
			return fmt.Errorf("%s is not a primary yet", srv.Addr)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("testredis: no Sentinel promotion after %v: %v", formTimeout, err)
	}
}

// running reports whether the server's process is up.
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// waitFor calls check every 50ms until it succeeds or ctx ends, and returns
// the last error then.
func waitFor(ctx context.Context, check func() error) error {
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}
