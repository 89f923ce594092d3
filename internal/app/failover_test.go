package app_test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/metrics"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
)

// failoverDeadline bounds how long after a promotion the product may keep
// failing. It is a liveness bound, many times the second or so recovery
// takes, and shorter than go-redis's own periodic Cluster slot-map refresh
// (a minute), so a product that only recovers through that refresh fails.
const failoverDeadline = 30 * time.Second

// TestClusterFailover: with a 3-primary, 3-replica Redis Cluster, kill the
// primary that holds a signed-in user's grant while MCP calls and
// registrations flow. After the cluster promotes the replica, the product
// recovers by itself: the access token works, the refresh token works and a
// brand-new registration and sign-in work, within failoverDeadline. Until
// then it fails closed (503), never 500. A second replica, idle during the
// failover, recovers on its own too.
func TestClusterFailover(t *testing.T) {
	rc := testredis.StartReplicatedCluster(t, 3, 1)
	e := e2etest.Start(t, e2etest.Options{RedisURL: rc.URL})
	b := startReplica(t, e, nil)
	c := e.Register()
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)
	if status := b.initialize(c.AccessToken); status != http.StatusOK {
		t.Fatalf("replica B before the failover: %d", status)
	}

	key := grantKey(t, rc.Nodes, e.Prefix)
	old := rc.PrimaryFor(t, key)
	replicated(t, old)
	failoverUnderTraffic(t, e, c, session, func() {
		old.Stop(t)
		rc.WaitPromoted(t, key, old)
	})
	// B's slot map is as old as A's was. Its first reads of the grant after
	// the grant cache expired go to the dead primary and make it reload.
	promoted := time.Now()
	for b.initialize(c.AccessToken) != http.StatusOK {
		if time.Since(promoted) > failoverDeadline {
			t.Fatalf("replica B still fails %v after the recovery", failoverDeadline)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("replica B works %v after A recovered", time.Since(promoted).Round(time.Millisecond))
}

// TestSentinelFailover: the same with a primary, a replica and three
// Sentinels. The in-process caches cannot hide an outage here: the traffic
// registers clients (a write to Redis each), the grant cache lasts a second
// while the failover takes longer, and recovery is judged on a refresh and a
// new sign-in, which always go to Redis.
func TestSentinelFailover(t *testing.T) {
	st := testredis.StartSentinel(t)
	e := e2etest.Start(t, e2etest.Options{RedisURL: st.URL})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)

	replicated(t, st.Primary)
	failoverUnderTraffic(t, e, c, session, func() {
		st.Primary.Stop(t)
		st.WaitPromoted(t)
	})
}

// failoverUnderTraffic runs failover (kill a primary, wait for the
// promotion) while tools/call and registrations flow, then requires
// recovery, no 500s, and store_errors_total equal to the store errors
// logged.
func failoverUnderTraffic(t *testing.T, e *e2etest.Env, c *e2etest.Client, session string, failover func()) {
	// Each stream sends a request every 20ms or so, one at a time. The grant
	// cache lasts a second, shorter than any failover, so the tool calls
	// read the grant from Redis during it; an unknown refresh token is a read
	// of the client and of the token (400 invalid_grant while Redis works); a
	// registration is a write.
	streams := map[string]func() (int, error){
		"mcp": func() (int, error) {
			r, err := e.TryMCP(c.AccessToken, session, "tools/call", map[string]any{"name": "get-user-info", "arguments": map[string]any{}})
			return r.Status, err
		},
		"unknown_refresh": func() (int, error) {
			status, _, err := e.TryToken(map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {"unknown-" + strconv.FormatInt(time.Now().UnixNano(), 36)}, "client_id": {c.ID}})
			return status, err
		},
		"register": func() (int, error) {
			if _, err := e.TryRegister(); err != nil {
				if status := statusOf(err); status != 0 {
					return status, nil
				}
				return 0, err
			}
			return http.StatusCreated, nil
		},
	}
	var (
		mu       sync.Mutex
		statuses = map[string]map[int]int{}
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for name, send := range streams {
		statuses[name] = map[int]int{}
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
					status, err := send()
					if err != nil {
						t.Errorf("%s: %v", name, err)
						return
					}
					mu.Lock()
					statuses[name][status]++
					mu.Unlock()
				}
			}()
		}
	}
	stopTraffic := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopTraffic()

	killed := time.Now()
	failover()
	promoted := time.Now()
	t.Logf("promotion seen %v after the kill", promoted.Sub(killed).Round(time.Millisecond))

	deadline := promoted.Add(failoverDeadline)
	eventually := func(what string, try func() error) {
		t.Helper()
		var err error
		for time.Now().Before(deadline) {
			if err = try(); err == nil {
				t.Logf("%s works %v after the promotion", what, time.Since(promoted).Round(time.Millisecond))
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%s still fails %v after the promotion: %v", what, failoverDeadline, err)
	}
	eventually("the access token", func() error {
		r, err := e.TryMCP(c.AccessToken, session, "tools/call", map[string]any{"name": "get-user-info", "arguments": map[string]any{}})
		return okStatus(r.Status, err)
	})
	var access string
	eventually("a refresh", func() error {
		status, out, err := e.TryToken(map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {c.RefreshToken}, "client_id": {c.ID}})
		if err := okStatus(status, err); err != nil {
			return err
		}
		access, _ = out["access_token"].(string)
		return nil
	})
	if r := e.MCP(access, "", "initialize", initParams); r.Status != http.StatusOK {
		t.Errorf("the refreshed access token: %d %s", r.Status, r.Body)
	}
	eventually("a new registration and sign-in", func() error {
		c2, err := e.TryRegister()
		if err != nil {
			return err
		}
		if err := e.TryLogin(c2, testflow.Choices{}); err != nil {
			return err
		}
		r, err := e.TryMCP(c2.AccessToken, "", "initialize", initParams)
		return okStatus(r.Status, err)
	})
	stopTraffic()

	mu.Lock()
	t.Logf("statuses during the failover: %v", statuses)
	want := map[string]int{"mcp": http.StatusOK, "unknown_refresh": http.StatusBadRequest, "register": http.StatusCreated}
	unavailable := 0
	for what, byStatus := range statuses {
		unavailable += byStatus[http.StatusServiceUnavailable]
		for status := range byStatus {
			if status != want[what] && status != http.StatusServiceUnavailable {
				t.Errorf("%s answered %d during the failover; want only its usual answer or 503", what, status)
			}
		}
	}
	mu.Unlock()

	logged := strings.Count(e.Logs.String(), `"msg":"`+metrics.StoreErrorMsg+`"`)
	counted := storeErrorsTotal(t, e)
	t.Logf("store errors: %d logged, %d counted", logged, counted)
	// On a loaded machine the traffic may happen to send nothing while the
	// primary is gone; every 503 it did get must have been logged and counted.
	if counted != logged || (unavailable > 0 && logged == 0) {
		t.Errorf("store_errors_total = %d, store error log lines = %d, 503 answers = %d; want the first two equal, and non-zero after a 503", counted, logged, unavailable)
	}
}

var initParams = map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{},
	"clientInfo": map[string]any{"name": "failover", "version": "1"}}

// statusErr is a request that got an answer other than success.
type statusErr int

func (s statusErr) Error() string { return "status " + strconv.Itoa(int(s)) }

func okStatus(status int, err error) error {
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return statusErr(status)
	}
	return nil
}

// statusOf reads the status from TryRegister's error ("register: status N").
func statusOf(err error) int {
	_, n, _ := strings.Cut(err.Error(), "status ")
	status, _ := strconv.Atoi(n)
	return status
}

// grantKey finds the only grant's key in a cluster.
func grantKey(t *testing.T, nodes []*testredis.Server, prefix string) string {
	t.Helper()
	for _, n := range nodes {
		keys, err := n.Client(t).Keys(context.Background(), prefix+"grant:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 1 {
			return keys[0]
		}
	}
	t.Fatal("no grant in the cluster")
	return ""
}

// replicated waits until primary's replicas have every write so far: the
// tests are about reconnecting, not about writes lost to asynchronous
// replication (the README documents that caveat).
func replicated(t *testing.T, primary *testredis.Server) {
	t.Helper()
	c := primary.Client(t)
	if n, err := c.Do(context.Background(), "WAIT", 1, 10000).Int(); err != nil || n < 1 {
		t.Fatalf("WAIT for the replica: %d %v", n, err)
	}
}

// storeErrorsTotal sums clerk_mcp_proxy_store_errors_total over its ops.
func storeErrorsTotal(t *testing.T, e *e2etest.Env) int {
	t.Helper()
	resp, err := http.Get(e.BaseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	total := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "clerk_mcp_proxy_store_errors_total{") {
			continue
		}
		n, err := strconv.Atoi(line[strings.LastIndex(line, " ")+1:])
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		total += n
	}
	return total
}
