// Package deploy holds the deployment files (Dockerfile, Kubernetes manifests,
// the env files of docker-compose.yml). Its test runs the docker compose
// topology as plain processes — there is no Docker engine on our machines —
// with the compose file's own commands and env files, and signs a user in.
package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testflow"
)

// service is what the test reads of one docker-compose.yml service.
type service struct {
	envFile string
	command []string
	ports   []string
}

// readCompose extracts env_file, command and ports per service. The file is
// validated by `docker-compose config` in CI; this only needs its shape.
func readCompose(t *testing.T, path string) map[string]*service {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	services := map[string]*service{}
	var cur *service
	inServices, inPorts := false, false
	item := regexp.MustCompile(`^\s+-\s+"?([^"#]+?)"?\s*(#.*)?$`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#"):
			continue
		case !strings.HasPrefix(line, " "):
			inServices = strings.HasPrefix(line, "services:")
			cur = nil
		case inServices && strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   "):
			name := strings.TrimSuffix(strings.TrimSpace(line), ":")
			cur = &service{}
			services[name] = cur
		case cur != nil:
			key, val, _ := strings.Cut(strings.TrimSpace(line), ":")
			val = strings.TrimSpace(val)
			inPorts = inPorts && strings.HasPrefix(strings.TrimSpace(line), "-")
			switch {
			case key == "env_file":
				cur.envFile = val
			case key == "command" && strings.HasPrefix(val, "["):
				for _, a := range strings.Split(strings.Trim(val, "[]"), ",") {
					if a = strings.Trim(strings.TrimSpace(a), `"`); a != "" {
						cur.command = append(cur.command, a)
					}
				}
			case key == "ports":
				inPorts = true
			case inPorts:
				if m := item.FindStringSubmatch(line); m != nil {
					cur.ports = append(cur.ports, m[1])
				}
			}
		}
	}
	return services
}

// readEnv reads a docker compose env file (KEY=VALUE lines, # comments).
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: bad line %q", path, line)
		}
		env[k] = v
	}
	return env
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// binaries returns the proxy and mockclerk binaries: the ones CI built as the
// Dockerfile does, or fresh builds.
func binaries(t *testing.T) (proxyBin, clerkBin string) {
	t.Helper()
	proxyBin, clerkBin = os.Getenv("CLERK_MCP_PROXY_BIN"), os.Getenv("MOCKCLERK_BIN")
	if proxyBin != "" && clerkBin != "" {
		return proxyBin, clerkBin
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-trimpath", "-o", dir+string(os.PathSeparator), "./cmd/clerk-mcp-proxy", "./cmd/mockclerk")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "clerk-mcp-proxy"), filepath.Join(dir, "mockclerk")
}

// proc is one service running as a process.
type proc struct {
	cmd  *exec.Cmd
	out  *e2etest.SyncBuffer
	done chan struct{}
}

func startProc(t *testing.T, name string, env map[string]string, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{cmd: cmd, out: &e2etest.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- %s output:\n%s", name, p.out.String())
		}
	})
	return p
}

// stop sends SIGTERM (the container runtime's stop) and waits.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitHTTP polls url until it answers 200 (the compose healthchecks' role).
func waitHTTP(t *testing.T, url string, p *proc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("exited early:\n%s", p.out.String())
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready:\n%s", url, p.out.String())
}

// TestComposeTopology runs redis, mockclerk and proxy with the compose file's
// commands and env files (only host ports are remapped to free ones, and the
// `redis` host name to loopback), then: sign-in and tool call; a Redis
// restart with the compose persistence settings keeps the registration; the
// proxy drains on SIGTERM.
func TestComposeTopology(t *testing.T) {
	services := readCompose(t, "../docker-compose.yml")
	for _, name := range []string{"redis", "mockclerk", "proxy"} {
		if services[name] == nil {
			t.Fatalf("docker-compose.yml has no %s service", name)
		}
	}
	if services["mockclerk"].envFile == "" || services["proxy"].envFile == "" {
		t.Fatal("mockclerk and proxy must take their environment from env files")
	}
	clerkEnv := readEnv(t, filepath.Join("..", services["mockclerk"].envFile))
	proxyEnv := readEnv(t, filepath.Join("..", services["proxy"].envFile))
	proxyBin, clerkBin := binaries(t)
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("REQUIRE_REDIS") == "1" {
			t.Fatal("redis-server not found")
		}
		t.Skip("redis-server not found")
	}

	// Remap the compose ports (8080 proxy, 9400 fake Clerk, 6379 redis).
	pp, cp, rp := freePort(t), freePort(t), freePort(t)
	ports := strings.NewReplacer(":8080", ":"+pp, ":9400", ":"+cp, "redis:6379", "127.0.0.1:"+rp)
	hosts := strings.NewReplacer("0.0.0.0:", "127.0.0.1:") // listen on loopback only
	for _, env := range []map[string]string{clerkEnv, proxyEnv} {
		for k, v := range env {
			env[k] = hosts.Replace(ports.Replace(v))
		}
	}
	if !strings.HasSuffix(proxyEnv["LISTEN_ADDR"], ":"+pp) {
		t.Fatalf("proxy LISTEN_ADDR %q does not use the published port 8080", proxyEnv["LISTEN_ADDR"])
	}
	proxyEnv["LISTEN_ADDR"] = "127.0.0.1:" + pp

	// redis, with the compose command's persistence flags.
	dataDir := t.TempDir()
	redisArgs := append(append([]string{}, services["redis"].command[1:]...), "--port", rp, "--bind", "127.0.0.1", "--dir", dataDir)
	redis := startProc(t, "redis", nil, redisBin, redisArgs...)
	waitRedis(t, "127.0.0.1:"+rp, redis)

	clerk := startProc(t, "mockclerk", clerkEnv, clerkBin)
	waitHTTP(t, clerkEnv["MOCKCLERK_ISSUER"]+"/.well-known/openid-configuration", clerk)
	proxy := startProc(t, "proxy", proxyEnv, proxyBin, services["proxy"].command...)
	waitHTTP(t, proxyEnv["BASE_URL"]+"/readyz", proxy)

	e := &e2etest.Env{T: t, BaseURL: proxyEnv["BASE_URL"]}
	c := e.Register("http://127.0.0.1:33418/callback")
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)
	if resp, info := e.CallTool(c.AccessToken, session, "get-user-info"); resp.Status != http.StatusOK || info["userId"] == nil {
		t.Fatalf("get-user-info: %d %s", resp.Status, resp.Body)
	}

	// The flow shows up in /metrics under Prometheus names.
	resp, err := http.Get(proxyEnv["BASE_URL"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`clerk_mcp_proxy_http_requests_total{method="POST",route="/token",status="200"}`,
		"clerk_mcp_proxy_http_request_duration_seconds_bucket",
		"clerk_mcp_proxy_registrations_total 1",
		`clerk_mcp_proxy_consents_total{decision="approved"} 1`,
		`clerk_mcp_proxy_tokens_issued_total{grant_type="authorization_code"} 1`,
		`clerk_mcp_proxy_clerk_requests_total{endpoint="token_info",outcome="ok"}`,
		"clerk_mcp_proxy_clerk_request_duration_seconds_bucket",
		`clerk_mcp_proxy_verifier_cache_total{`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Redis restarts (docker compose restart redis): the append-only file
	// keeps the registration and the grant.
	redis.stop()
	redis = startProc(t, "redis (restarted)", nil, redisBin, redisArgs...)
	waitRedis(t, "127.0.0.1:"+rp, redis)
	waitHTTP(t, proxyEnv["BASE_URL"]+"/readyz", proxy)
	status, out := e.Refresh(c, c.RefreshToken)
	if status != http.StatusOK {
		t.Fatalf("refresh after a Redis restart: %d %v", status, out)
	}
	e.Login(c, testflow.Choices{}) // the registration survived too

	// SIGTERM drains: a request in flight (held up at Clerk's introspection
	// by the fake's fault injection) still gets its answer, then the proxy
	// exits 0.
	admin := clerkEnv["MOCKCLERK_ISSUER"] + "/__admin/"
	postJSON(t, admin+"reset", "")
	postJSON(t, admin+"faults", `{"endpoint":"/oauth/token_info","delay_ms":1500,"count":1}`)
	c3 := e.Register("http://127.0.0.1:33418/callback")
	e.Login(c3, testflow.Choices{}) // a fresh token: its introspection is not cached
	done := make(chan e2etest.MCPResponse, 1)
	go func() {
		done <- e.MCP(c3.AccessToken, "", "initialize", map[string]any{"protocolVersion": "2025-11-25",
			"capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "drain", "version": "1"}})
	}()
	for deadline := time.Now().Add(10 * time.Second); clerkStat(t, admin, "/oauth/token_info") == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached Clerk")
		}
	}
	proxy.stop()
	select {
	case r := <-done:
		if r.Status != http.StatusOK {
			t.Fatalf("in-flight request during SIGTERM: %d %s", r.Status, r.Body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the in-flight request was dropped during SIGTERM")
	}
	if code := proxy.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("proxy exit code after SIGTERM: %d\n%s", code, proxy.out.String())
	}

	// One start-up summary line, secrets redacted.
	logs := proxy.out.String()
	if strings.Count(logs, `"msg":"clerk-mcp-proxy serving"`) != 1 {
		t.Errorf("want one start-up summary line:\n%s", logs)
	}
	for _, secret := range []string{proxyEnv["PROXY_SECRET"], proxyEnv["CLERK_CLIENT_SECRET"], proxyEnv["CLERK_SECRET_KEY"]} {
		if strings.Contains(logs, secret) {
			t.Errorf("the proxy logged a secret (%d bytes)", len(secret))
		}
	}
}

func postJSON(t *testing.T, url, body string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("POST %s: %d", url, resp.StatusCode)
	}
}

func clerkStat(t *testing.T, admin, path string) int {
	t.Helper()
	resp, err := http.Get(admin + "stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var stats map[string]int
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		t.Fatal(err)
	}
	return stats[path]
}

func waitRedis(t *testing.T, addr string, p *proc) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			fmt.Fprint(c, "PING\r\n")
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("redis not ready:\n%s", p.out.String())
}

// TestDockerfileBuildsAsCI: the Dockerfile and scripts/build (what CI runs)
// build the binaries with the same flags.
func TestDockerfileBuildsAsCI(t *testing.T) {
	docker, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	build, err := os.ReadFile("../scripts/build")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w -X github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/app.Version=`, "./cmd/clerk-mcp-proxy ./cmd/mockclerk"} {
		if !strings.Contains(string(docker), want) || !strings.Contains(string(build), want) {
			t.Errorf("Dockerfile and scripts/build must both contain %q", want)
		}
	}
	for _, want := range []string{"USER nonroot", "HEALTHCHECK", "clerk-mcp-proxy\", \"healthcheck"} {
		if !strings.Contains(string(docker), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
