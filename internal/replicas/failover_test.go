//go:build linux

package replicas

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
)

// lagFor is how long the lagging replica is frozen before the kill.
const lagFor = 500 * time.Millisecond

// redisTopology is a Redis that can fail over: its URL, how to SIGKILL the
// primary that matters, and how to wait for the promotion.
type redisTopology struct {
	name string
	// start builds it and returns the URL, the kill and the wait.
	start func(t *testing.T) (url string, kill func(), promoted func())
}

var failoverTopologies = []redisTopology{
	// The replica falls behind first (frozen by SIGSTOP for lagFor while
	// the primary keeps acknowledging writes), then the primary is
	// SIGKILLed and the replica resumes and is promoted: the writes of that
	// window are what asynchronous replication loses. Opt-in
	// (FAILOVER_LAGGING=1).
	{"sentinel-lagging-replica", func(t *testing.T) (string, func(), func()) {
		st := testredis.StartSentinel(t)
		t.Cleanup(func() { _ = st.Replica.Signal(syscall.SIGCONT) })
		signal := func(sig syscall.Signal) {
			if err := st.Replica.Signal(sig); err != nil {
				t.Fatal(err)
			}
		}
		return st.URL, func() {
			signal(syscall.SIGSTOP)
			time.Sleep(lagFor)
			st.Primary.Stop(t)
			signal(syscall.SIGCONT)
		}, func() { st.WaitPromoted(t) }
	}},
	{"sentinel", func(t *testing.T) (string, func(), func()) {
		st := testredis.StartSentinel(t)
		return st.URL, func() { st.Primary.Stop(t) }, func() { st.WaitPromoted(t) }
	}},
	{"cluster", func(t *testing.T) (string, func(), func()) {
		rc := testredis.StartReplicatedCluster(t, 3, 1)
		const key = "cmp:grant:{failover}" // its primary is the one killed: a third of the keys
		victim := rc.PrimaryFor(t, key)
		return rc.URL, func() { victim.Stop(t) }, func() { rc.WaitPromoted(t, key, victim) }
	}},
}

// TestRedisFailoverBehindNginx: the three built replicas behind nginx over
// a Redis that fails over — a primary, a replica and three Sentinels
// (redis+sentinel://), and a 3+3 Redis Cluster — with REDIS_WAIT_REPLICAS=1
// (FAILOVER_WAIT_REPLICAS=0 runs it without the durability rule, to measure
// what is lost then). Under mixed traffic from four workers (see traffic)
// the primary is SIGKILLed. Invariants: no 500 and no 200 for another client
// or user, ever; after the promotion, with no proxy restarted, a new
// sign-in and tool call work within a bound; after the run every
// acknowledged registration, sign-in, rotation and revocation still holds,
// except at most as many as the replicas counted, before the kill, as kept
// without a replica's acknowledgement. The error window and what was lost (with how
// long before the kill it was acknowledged) are logged.
func TestRedisFailoverBehindNginx(t *testing.T) {
	wait := 1
	if v := os.Getenv("FAILOVER_WAIT_REPLICAS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("FAILOVER_WAIT_REPLICAS: %v", err)
		}
		wait = n
	}
	for _, topo := range failoverTopologies {
		if strings.HasSuffix(topo.name, "-lagging-replica") && os.Getenv("FAILOVER_LAGGING") != "1" {
			continue
		}
		t.Run(topo.name, func(t *testing.T) {
			url, kill, promoted := topo.start(t)
			s := startStackWith(t, stackOptions{redisURL: url, env: []string{
				"REDIS_WAIT_REPLICAS=" + strconv.Itoa(wait), "REDIS_WAIT_TIMEOUT=100ms"}})
			e := e2etest.Attach(t, s.lb)
			e.HTTP = noRedirects(http.DefaultTransport)

			tr := startTraffic(t, e, 4, 44000)
			tr.waitOps(t, 200)
			killStarted := time.Now()
			kill()
			killed := time.Now()
			// Only writes acknowledged before the kill can be lost; after
			// it the promoted primary has no replica, and every waited
			// write is short of one. Nothing is acknowledged between the
			// kill and the promotion.
			short := unreplicated(t, s)
			promoted()
			promotion := time.Since(killed)

			// Recovery without restarting any proxy: a new client signs in
			// and calls a tool.
			var recovered time.Duration
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				u, err := loginAs(e, 44900, users[0])
				if err == nil {
					if status, err := u.toolCall(e); status == http.StatusOK && err == nil {
						recovered = time.Since(killed)
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("no new sign-in and tool call worked within 30s of the promotion: %v", err)
				}
			}
			tr.waitOps(t, 200)
			tr.halt()

			first, last, n := tr.errorWindow(killed)
			lost, checked := tr.verify(t)
			if lag := killed.Sub(killStarted); lag > time.Second/10 {
				t.Logf("the replica was frozen %v before the kill", lag.Round(time.Millisecond))
			}
			t.Logf("%s, REDIS_WAIT_REPLICAS=%d: primary SIGKILLed; promoted %v after; a new sign-in + tool call worked %v after the kill (no proxy restarted)\n"+
				"  failed answers after the kill: %d, from %v to %v after it\n%s"+
				"  acknowledged writes checked: %d, lost: %d; writes kept without a replica's acknowledgement before the kill: %d, after it: %d",
				topo.name, wait, promotion.Round(time.Millisecond), recovered.Round(time.Millisecond),
				n, first.Round(time.Millisecond), last.Round(time.Millisecond), tr.summary(), checked, len(lost), short, unreplicated(t, s)-short)
			for _, l := range lost {
				t.Logf("  lost: %s acknowledged %v before the kill: %s", l.kind, killed.Sub(l.at).Round(time.Millisecond), l.why)
			}
			if wait > 0 && len(lost) > short {
				t.Errorf("%d acknowledged writes lost, more than the %d kept without a replica's acknowledgement", len(lost), short)
			}
			tr.checkViolations(t)
		})
	}
}
