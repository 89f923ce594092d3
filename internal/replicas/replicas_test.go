//go:build linux

// Package replicas runs the deployment shape of "stateless replicas over
// Redis" for real: three `clerk-mcp-proxy serve` processes (the built
// binaries) behind nginx from Debian (round-robin), one redis-server and the
// mockclerk binary, all on loopback: replicas under faults
// (TestThreeReplicasBehindNginx), the fake Clerk down under load
// (TestClerkOutage) and a bounded chaos soak of both (TestChaosSoak).
// Faults are real actions on processes (SIGKILL, SIGTERM and a new start),
// never flags inside the product.
// Nothing here asserts timing: waits are polls with generous bounds, and what
// was measured is logged (go test -v) for docs/operations.md.
package replicas

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
)

const (
	clerkID     = "replicasClerkApp"
	clerkSecret = "replicas-clerk-secret-0123456789"
	proxySecret = "replicas-proxy-secret-0123456789abcdef012"
	// replicaHeader names the upstream that answered (nginx's $upstream_addr).
	replicaHeader = "X-Replica"
)

// proc is one run of a program; its output is kept for failure reports.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *e2etest.SyncBuffer
	done chan struct{}
}

func startProc(t *testing.T, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	p := &proc{name: name, cmd: cmd, out: &e2etest.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.WaitDelay = 5 * time.Second // a child holding the output pipe must not hold Wait
	// The kernel kills it should the test binary die without its cleanups
	// (a panic, go test's -timeout). Linux only, as nginx here is.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("--- %s output (last 3000 bytes):\n%s", name, tail(p.out.String(), 3000))
			// REPLICAS_LOG_DIR keeps every process's whole output of a failed
			// run, for the post-mortem the tail cannot give.
			if dir := os.Getenv("REPLICAS_LOG_DIR"); dir != "" {
				f := filepath.Join(dir, fmt.Sprintf("%s-%s-%d.log", strings.ReplaceAll(t.Name(), "/", "_"), name, time.Now().UnixNano()))
				if err := os.WriteFile(f, []byte(p.out.String()), 0o644); err != nil {
					t.Logf("REPLICAS_LOG_DIR: %v", err)
				}
			}
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// stop sends sig and waits for the exit (bounded), returning the exit code.
func (p *proc) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	p.signal(sig)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not exit within 60s of %v", p.name, sig)
	}
	return p.cmd.ProcessState.ExitCode()
}

func waitReady(t *testing.T, u string, p *proc) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if p != nil {
			select {
			case <-p.done:
				t.Fatalf("%s exited before %s answered:\n%s", p.name, u, tail(p.out.String(), 3000))
			default:
			}
		}
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	t.Fatalf("%s not ready within 30s", u)
}

// waitInRotation polls through nginx until replica i answers a request
// again: nginx's passive health check keeps a replica that refused a
// connection out of rotation for fail_timeout (2s here), so a rolling
// restart must not stop the next replica before the previous one is back
// in rotation, or nginx has no live upstream left.
func (s *stack) waitInRotation(t *testing.T, i int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(s.lb + "/healthz")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.Header.Get(replicaHeader) == s.addrs[i] {
			return
		}
	}
	t.Fatalf("nginx did not route to replica %d within 30s of its restart", i)
}

// stack is three replicas behind nginx.
type stack struct {
	root     *testing.T // the processes live as long as the whole test
	lb       string     // nginx: the BASE_URL every replica has
	clerk    string
	proxyBin string
	env      []string
	firstEnv []string // replica 0's extra environment
	addrs    [3]string
	replicas [3]*proc
	nginx    *proc
	// the fake Clerk: its binary and arguments, to start it again
	clerkBin  string
	clerkArgs []string
	clerkProc *proc
}

func (s *stack) startClerk(t *testing.T) {
	t.Helper()
	s.clerkProc = startProc(s.root, "mockclerk", nil, s.clerkBin, s.clerkArgs...)
	waitReady(t, s.clerk+"/.well-known/openid-configuration", s.clerkProc)
}

func (s *stack) startReplica(t *testing.T, i int) {
	t.Helper()
	env := append(slices.Clone(s.env), "LISTEN_ADDR="+s.addrs[i])
	if i == 0 {
		env = append(env, s.firstEnv...)
	}
	s.replicas[i] = startProc(s.root, fmt.Sprintf("replica %d", i), env, s.proxyBin, "serve")
	waitReady(t, "http://"+s.addrs[i]+"/readyz", s.replicas[i])
}

// direct is an Env that talks to replica i itself, not through nginx, with
// the Host header a request through nginx has (the proxy refuses other
// hosts at /mcp: DNS rebinding protection).
func (s *stack) direct(t *testing.T, i int) *e2etest.Env {
	e := e2etest.Attach(t, "http://"+s.addrs[i])
	e.HTTP = noRedirects(hostRewriter(strings.TrimPrefix(s.lb, "http://")))
	return e
}

type hostRewriter string

func (h hostRewriter) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Host = string(h)
	return http.DefaultTransport.RoundTrip(req)
}

// nginx as one process (no master): the test's SIGKILL stops all of it.
const nginxConf = `master_process off;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream replicas {
    # round-robin; a replica that refuses a connection is skipped for 2s
    server %[2]s max_fails=1 fail_timeout=2s;
    server %[3]s max_fails=1 fail_timeout=2s;
    server %[4]s max_fails=1 fail_timeout=2s;
  }
  server {
    listen %[5]s;
    location / {
      proxy_pass http://replicas;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 60s;
      add_header ` + replicaHeader + ` $upstream_addr always;
    }
  }
}
`

func startStack(t *testing.T) *stack {
	t.Helper()
	return startStackWith(t, stackOptions{})
}

// stackOptions vary the stack: another Redis (a Sentinel or Cluster URL)
// and more environment for every replica.
type stackOptions struct {
	redisURL string // default: a fresh single redis-server
	env      []string
	firstEnv []string // added for replica 0 only (e.g. PPROF_ADDR)
}

func startStackWith(t *testing.T, o stackOptions) *stack {
	t.Helper()
	nginxBin, err := exec.LookPath("nginx")
	if err != nil {
		nginxBin = "/usr/sbin/nginx"
		if _, serr := os.Stat(nginxBin); serr != nil {
			if os.Getenv("REQUIRE_REDIS") == "1" {
				t.Fatalf("nginx not found (scripts/deps installs nginx-light): %v", err)
			}
			t.Skip("nginx not installed (apt-get install nginx-light)")
		}
	}
	if o.redisURL == "" {
		o.redisURL = testredis.Start(t).URL
	}
	proxyBin, clerkBin := e2etest.Binaries(t)
	s := &stack{root: t, proxyBin: proxyBin}
	lbAddr, clerkAddr := e2etest.FreeAddr(t), e2etest.FreeAddr(t)
	s.lb, s.clerk = "http://"+lbAddr, "http://"+clerkAddr
	for i := range s.addrs {
		s.addrs[i] = e2etest.FreeAddr(t)
	}
	s.clerkBin, s.clerkArgs = clerkBin, []string{"-addr", clerkAddr, "-client-id", clerkID, "-client-secret", clerkSecret,
		"-redirect-uri", s.lb + "/oauth/callback", "-secret-key", "sk_test_replicas"}
	s.startClerk(t)
	s.env = []string{"CLERK_DOMAIN=" + s.clerk, "CLERK_API_URL=" + s.clerk, "CLERK_CLIENT_ID=" + clerkID,
		"CLERK_CLIENT_SECRET=" + clerkSecret, "CLERK_SECRET_KEY=sk_test_replicas", "BASE_URL=" + s.lb,
		"REDIS_URL=" + o.redisURL, "PROXY_SECRET=" + proxySecret, "SHUTDOWN_TIMEOUT=10s",
		"RATE_LIMIT_REGISTER=0", "RATE_LIMIT_TOKEN=0", "RATE_LIMIT_AUTHORIZE=0"}
	s.env = append(s.env, o.env...)
	s.firstEnv = o.firstEnv
	for i := range s.replicas {
		s.startReplica(t, i)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, dir, s.addrs[0], s.addrs[1], s.addrs[2], lbAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	s.nginx = startProc(t, "nginx", nil, nginxBin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	t.Cleanup(func() {
		if t.Failed() {
			raw, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("--- nginx error.log (last 3000 bytes):\n%s", tail(string(raw), 3000))
		}
	})
	waitReady(t, s.lb+"/healthz", s.nginx)
	return s
}

// recorder is a transport that notes which replica answered each request
// that went through nginx.
type recorder struct {
	mu   sync.Mutex
	seen []string // "<method> <path> <status> <replica>"
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && resp.Header.Get(replicaHeader) != "" {
		r.mu.Lock()
		r.seen = append(r.seen, fmt.Sprintf("%s %s %d %s", req.Method, req.URL.Path, resp.StatusCode, resp.Header.Get(replicaHeader)))
		r.mu.Unlock()
	}
	return resp, err
}

func noRedirects(rt http.RoundTripper) *http.Client {
	return &http.Client{Transport: rt, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signedIn is a registered client with tokens and an MCP session.
type signedIn struct {
	c       *e2etest.Client
	session string
	user    string // the Clerk user signed in, when chosen
}

func login(e *e2etest.Env, port int) (*signedIn, error) { return loginAs(e, port, "") }

// loginAs registers a client and signs user in (empty: the fake Clerk's
// preselected user).
func loginAs(e *e2etest.Env, port int, user string) (*signedIn, error) {
	c, err := e.TryRegister(fmt.Sprintf("http://127.0.0.1:%d/callback", port))
	if err != nil {
		return nil, err
	}
	if err := e.TryLogin(c, testflow.Choices{UserID: user}); err != nil {
		return nil, err
	}
	return &signedIn{c: c, user: user}, nil
}

func (s *signedIn) toolCall(e *e2etest.Env) (int, error) {
	if s.session == "" {
		r, err := e.TryMCP(s.c.AccessToken, "", "initialize", map[string]any{"protocolVersion": "2025-11-25",
			"capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "replicas", "version": "1"}})
		if err != nil || r.Status != http.StatusOK {
			return r.Status, err
		}
		s.session = r.SessionID
		if _, err := e.TryMCP(s.c.AccessToken, s.session, "notifications/initialized", nil); err != nil {
			return 0, err
		}
	}
	r, err := e.TryMCP(s.c.AccessToken, s.session, "tools/call", map[string]any{"name": "get-user-info", "arguments": map[string]any{}})
	if err == nil && r.Status == http.StatusOK && (r.Result == nil || !strings.Contains(string(r.Result), s.c.ID)) {
		return r.Status, fmt.Errorf("tools/call answered 200 without the caller's client_id: %s", tail(r.Body, 300))
	}
	if err == nil && r.Status == http.StatusOK && s.user != "" && !strings.Contains(string(r.Result), s.user) {
		return r.Status, fmt.Errorf("tools/call answered 200 without the signed-in user %s: %s", s.user, tail(r.Body, 300))
	}
	return r.Status, err
}

// tally counts the outcomes of requests made under load.
type tally struct {
	mu     sync.Mutex
	counts map[string]int // "200", "502", "transport error", ...
	wrong  []error        // a 200 with the wrong answer
	total  atomic.Int64
}

func (ty *tally) add(status int, err error) {
	ty.total.Add(1)
	key := fmt.Sprint(status)
	switch {
	case err != nil && status == http.StatusOK:
		ty.mu.Lock()
		ty.wrong = append(ty.wrong, err)
		ty.mu.Unlock()
	case err != nil:
		key = "transport error"
	}
	ty.mu.Lock()
	if ty.counts == nil {
		ty.counts = map[string]int{}
	}
	ty.counts[key]++
	ty.mu.Unlock()
}

func (ty *tally) String() string {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	return fmt.Sprintf("%d requests %v", ty.total.Load(), ty.counts)
}

// load runs workers that call a tool through nginx in a loop until stop is
// closed, each with its own signed-in client.
func load(e *e2etest.Env, clients []*signedIn, ty *tally, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				status, err := c.toolCall(e)
				if status != http.StatusOK {
					c.session = "" // a new session on the next call
				}
				ty.add(status, err)
			}
		}()
	}
	return &wg
}

// waitRequests waits until the load has made n more requests (bounded).
func waitRequests(t *testing.T, ty *tally, n int64) {
	t.Helper()
	target := ty.total.Load() + n
	for deadline := time.Now().Add(2 * time.Minute); ty.total.Load() < target; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the load made %d of %d requests in 2 minutes", ty.total.Load(), target)
		}
	}
}

func checkTally(t *testing.T, what string, ty *tally, maxFailures int) {
	t.Helper()
	t.Logf("%s: %s", what, ty)
	ty.mu.Lock()
	defer ty.mu.Unlock()
	if ty.counts["500"] > 0 {
		t.Errorf("%s: %d answers were 500", what, ty.counts["500"])
	}
	for _, err := range ty.wrong {
		t.Errorf("%s: wrong answer: %v", what, err)
	}
	n := 0
	for k, v := range ty.counts {
		if k != "200" {
			n += v
		}
	}
	if n > maxFailures {
		t.Errorf("%s: %d requests failed; at most %d (the requests in flight at the replica that went away) may", what, n, maxFailures)
	}
}

// TestThreeReplicasBehindNginx: one client's flow hops replicas on every
// request; a revocation at one replica is refused at the others (about a
// second: the grant cache); SIGKILL of a replica under load costs only its
// in-flight requests; a rolling restart of all three under load loses no
// grant and no registration.
func TestThreeReplicasBehindNginx(t *testing.T) {
	s := startStack(t)
	rec := &recorder{}
	e := e2etest.Attach(t, s.lb)
	e.HTTP = noRedirects(rec)

	t.Run("flow hops replicas", func(t *testing.T) {
		rec.mu.Lock()
		rec.seen = nil
		rec.mu.Unlock()
		u, err := login(e, 41100)
		if err != nil {
			t.Fatal(err)
		}
		if status, err := u.toolCall(e); status != http.StatusOK || err != nil {
			t.Fatalf("tool call: %d %v", status, err)
		}
		status, out := e.Refresh(u.c, u.c.RefreshToken)
		if status != http.StatusOK {
			t.Fatalf("refresh: %d %v", status, out)
		}
		u.c.AccessToken = out["access_token"].(string)
		if status, err := u.toolCall(e); status != http.StatusOK || err != nil {
			t.Fatalf("tool call after refresh: %d %v", status, err)
		}
		rec.mu.Lock()
		seen := slices.Clone(rec.seen)
		rec.mu.Unlock()
		used := map[string]bool{}
		prev := ""
		for _, line := range seen {
			f := strings.Fields(line)
			replica := f[len(f)-1]
			if strings.Contains(line, ",") {
				t.Errorf("nginx retried a request on another replica: %s", line)
			}
			if replica == prev {
				t.Errorf("two requests in a row at %s: %v", replica, seen)
			}
			used[replica], prev = true, replica
		}
		if len(used) != 3 || len(seen) < 6 {
			t.Errorf("the flow used replicas %v in %d requests; want all 3", used, len(seen))
		}
		t.Logf("one client's flow, %d requests through nginx, each at the next replica:\n  %s", len(seen), strings.Join(seen, "\n  "))
	})

	t.Run("revocation reaches every replica", func(t *testing.T) {
		u, err := login(e, 41101)
		if err != nil {
			t.Fatal(err)
		}
		direct := make([]*e2etest.Env, 3)
		sessions := make([]*signedIn, 3)
		for i := range direct {
			direct[i] = s.direct(t, i)
			sessions[i] = &signedIn{c: u.c}
			// Each replica has checked the grant (and cached the answer).
			if status, err := sessions[i].toolCall(direct[i]); status != http.StatusOK || err != nil {
				t.Fatalf("tool call at replica %d: %d %v", i, status, err)
			}
		}
		revokedAt := time.Now()
		status, out := direct[0].PostForm("/revoke", url.Values{"token": {u.c.RefreshToken}, "token_type_hint": {"refresh_token"}}, u.c)
		if status != http.StatusOK {
			t.Fatalf("revoke at replica 0: %d %v", status, out)
		}
		for i := 1; i < 3; i++ {
			var last int
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				last, err = sessions[i].toolCall(direct[i])
				if last == http.StatusUnauthorized {
					t.Logf("replica %d refuses the revoked grant's access token %v after the revocation at replica 0", i, time.Since(revokedAt).Round(time.Millisecond))
					break
				}
				if last != http.StatusOK && last != http.StatusNotFound {
					t.Fatalf("replica %d answered %d (%v) while the revocation spread", i, last, err)
				}
				if time.Now().After(deadline) {
					t.Fatalf("replica %d still accepts the revoked grant 15s after the revocation (documented: about a second)", i)
				}
			}
		}
		if status, err := u.toolCall(e); status != http.StatusUnauthorized {
			t.Errorf("through nginx after the revocation: %d %v, want 401", status, err)
		}
	})

	// Clients for the load: signed in before any fault.
	const workers = 4
	clients := make([]*signedIn, workers)
	for i := range clients {
		u, err := login(e, 41200+i)
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = u
	}

	t.Run("SIGKILL of a replica costs only its in-flight requests", func(t *testing.T) {
		ty := &tally{}
		stop := make(chan struct{})
		wg := load(e, clients, ty, stop)
		waitRequests(t, ty, 60)
		before := ty.String()
		s.replicas[2].stop(t, syscall.SIGKILL)
		waitRequests(t, ty, 200)
		close(stop)
		wg.Wait()
		t.Logf("before the kill: %s", before)
		// Each worker has at most one request in flight when the replica dies.
		checkTally(t, "replica 2 SIGKILLed under load", ty, workers)
		s.startReplica(t, 2)
		s.waitInRotation(t, 2)
	})

	t.Run("rolling restart under load loses no grant and no registration", func(t *testing.T) {
		ty := &tally{}
		stop := make(chan struct{})
		wg := load(e, clients, ty, stop)
		// New registrations and sign-ins during the restart.
		var mu sync.Mutex
		var joined []*signedIn
		var joinFailures []error
		wg.Add(1)
		go func() {
			defer wg.Done()
			for port := 41300; ; port++ {
				select {
				case <-stop:
					return
				default:
				}
				u, err := login(e, port)
				mu.Lock()
				if err != nil {
					joinFailures = append(joinFailures, err)
				} else {
					joined = append(joined, u)
				}
				mu.Unlock()
			}
		}()
		waitRequests(t, ty, 40)
		for i := range s.replicas {
			code := s.replicas[i].stop(t, syscall.SIGTERM)
			if code != 0 {
				t.Errorf("replica %d exited %d after SIGTERM, want 0", i, code)
			}
			waitRequests(t, ty, 20) // two replicas carry the load
			s.startReplica(t, i)
			s.waitInRotation(t, i)
			waitRequests(t, ty, 20)
		}
		close(stop)
		wg.Wait()
		checkTally(t, "rolling restart (SIGTERM, start) of all three under load", ty, 3*workers)
		t.Logf("sign-ins during the restart: %d completed, %d failed %v", len(joined), len(joinFailures), joinFailures)
		if len(joinFailures) > 3 {
			t.Errorf("%d sign-ins failed during the rolling restart; at most one per restart may (a request in flight)", len(joinFailures))
		}
		// Every grant and registration made before or during the restart
		// still works: a refresh (the registration, the grant, its refresh
		// token) and a tool call with the new access token.
		for _, u := range append(slices.Clone(clients), joined...) {
			status, out := e.Refresh(u.c, u.c.RefreshToken)
			if status != http.StatusOK {
				t.Errorf("client %s: refresh after the rolling restart: %d %v", u.c.ID, status, out)
				continue
			}
			u.c.AccessToken, u.c.RefreshToken, u.session = out["access_token"].(string), out["refresh_token"].(string), ""
			if status, err := u.toolCall(e); status != http.StatusOK || err != nil {
				t.Errorf("client %s: tool call after the rolling restart: %d %v", u.c.ID, status, err)
			}
		}
		t.Logf("after the rolling restart: %d clients (%d from before, %d signed in during it) refreshed and called a tool",
			len(clients)+len(joined), len(clients), len(joined))
	})
}

// TestClerkOutage: the fake Clerk is SIGKILLed under load and started again
// later. While it is down: tokens whose introspection is cached (in process
// and in Redis, INTROSPECTION_CACHE_TTL) keep working on every replica; a
// token never introspected gets 503 (never 200, never 500); a new sign-in
// fails at Clerk's sign-in page, and no proxy answer on its way is a 500;
// every replica's /readyz answers 503 (readiness includes Clerk's
// discovery). After Clerk is back, without restarting anything: /readyz is
// 200 everywhere and a new sign-in and tool call work.
func TestClerkOutage(t *testing.T) {
	s := startStack(t)
	rec := &recorder{}
	e := e2etest.Attach(t, s.lb)
	e.HTTP = noRedirects(rec)

	cached := signInCached(t, e, 3, 41400)
	fresh, err := login(e, 41410) // signed in, its Clerk token never introspected
	if err != nil {
		t.Fatal(err)
	}

	ty := &tally{}
	stop := make(chan struct{})
	wg := load(e, cached, ty, stop)
	waitRequests(t, ty, 30)
	s.clerkProc.stop(t, syscall.SIGKILL)
	t.Log("fake Clerk SIGKILLed")

	for i := range s.addrs {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			resp, err := http.Get("http://" + s.addrs[i] + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusServiceUnavailable {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d /readyz still not 503 30s into the Clerk outage", i)
			}
		}
	}
	t.Log("every replica's /readyz answers 503")

	r, err := e.TryMCP(fresh.c.AccessToken, "", "initialize", map[string]any{"protocolVersion": "2025-11-25",
		"capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "replicas", "version": "1"}})
	if err != nil || r.Status != http.StatusServiceUnavailable {
		t.Errorf("a token never introspected, Clerk down: %d %v %s; want 503", r.Status, err, tail(r.Body, 200))
	} else {
		t.Logf("a token never introspected: 503 (Retry-After %q)", r.Header.Get("Retry-After"))
	}

	rec.mu.Lock()
	rec.seen = nil
	rec.mu.Unlock()
	if _, err := login(e, 41411); err == nil {
		t.Error("a new sign-in completed while Clerk was down")
	} else {
		t.Logf("a new sign-in while Clerk is down fails: %v", err)
	}
	rec.mu.Lock()
	for _, line := range rec.seen {
		if strings.Contains(line, " 500 ") {
			t.Errorf("the proxy answered 500 during a sign-in with Clerk down: %s", line)
		}
	}
	rec.mu.Unlock()

	waitRequests(t, ty, 100) // cached tokens keep working all along
	during := ty.String()
	s.startClerk(t)
	t.Log("fake Clerk started again")
	for i := range s.addrs {
		waitReady(t, "http://"+s.addrs[i]+"/readyz", s.replicas[i])
	}
	close(stop)
	wg.Wait()
	t.Logf("load on cached tokens through the outage: %s", during)
	checkTally(t, "tool calls with cached tokens through the Clerk outage", ty, 0)

	u, err := login(e, 41412)
	if err != nil {
		t.Fatalf("sign-in after Clerk is back: %v", err)
	}
	if status, err := u.toolCall(e); status != http.StatusOK || err != nil {
		t.Fatalf("tool call after Clerk is back: %d %v", status, err)
	}
	t.Log("after Clerk is back, with no restart: /readyz 200 on every replica, a new sign-in and tool call work")
}

// signInCached signs n clients in as the seeded users in turn and calls a
// tool with each, so their Clerk tokens' introspection is cached.
func signInCached(t *testing.T, e *e2etest.Env, n, portBase int) []*signedIn {
	t.Helper()
	out := make([]*signedIn, n)
	for i := range out {
		u, err := loginAs(e, portBase+i, users[i%len(users)])
		if err != nil {
			t.Fatal(err)
		}
		if status, err := u.toolCall(e); status != http.StatusOK || err != nil { // introspected, cached
			t.Fatalf("tool call before the fault: %d %v", status, err)
		}
		out[i] = u
	}
	return out
}
