// Package deploy holds the deployment files (Dockerfile, Kubernetes manifests,
// the env files of docker-compose.yml). Its test runs the docker compose
// topology as plain processes with the compose file's own commands and env
// files, and signs a user in: the seconds-long twin of the real compose run
// (scripts/compose-test, the docker phase of scripts/test), for machines
// without Docker or root, and the place that checks stop_grace_period
// against SHUTDOWN_TIMEOUT and an open event stream through a SIGTERM.
package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"go/version"
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

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/config"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// service is what the test reads of one docker-compose.yml service.
type service struct {
	envFile     string
	entrypoint  []string // empty: the image's ENTRYPOINT
	command     []string
	healthcheck []string // healthcheck.test, e.g. ["CMD", "/usr/local/bin/mockclerk", "-healthcheck"]
	stopGrace   string   // stop_grace_period
	ports       []string
}

// flowList parses a one-line YAML flow sequence such as ["a", "b"].
func flowList(val string) []string {
	var out []string
	for _, a := range strings.Split(strings.Trim(val, "[]"), ",") {
		if a = strings.Trim(strings.TrimSpace(a), `"`); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// readCompose extracts env_file, entrypoint, command, healthcheck and ports
// per service. The file is validated by `docker-compose config` in CI; this
// only needs its shape. An `environment:` key is refused: the test runs the
// services with their env files only, so inline variables would make the
// processes it runs differ from the containers.
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
			case key == "environment":
				t.Fatalf("%s: a service sets environment: inline; keep every variable in its env_file (the compose test runs those)", path)
			case key == "env_file":
				cur.envFile = val
			case key == "entrypoint" && strings.HasPrefix(val, "["):
				cur.entrypoint = flowList(val)
			case key == "command" && strings.HasPrefix(val, "["):
				cur.command = flowList(val)
			case key == "test" && strings.HasPrefix(val, "["):
				cur.healthcheck = flowList(val)
			case key == "stop_grace_period":
				cur.stopGrace = val
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

// kill ends the process with SIGKILL, as a crash or the OOM killer would:
// nothing gets to flush or save on the way out.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// imageExec is the exec-form argument list of a Dockerfile instruction, e.g.
// ENTRYPOINT ["/usr/local/bin/clerk-mcp-proxy"] or HEALTHCHECK ... CMD [...].
func imageExec(t *testing.T, instruction string) []string {
	t.Helper()
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, instruction+" "); ok {
			if i := strings.Index(rest, "["); i >= 0 {
				return flowList(rest[i:])
			}
		}
	}
	t.Fatalf("Dockerfile has no exec-form %s", instruction)
	return nil
}

// waitHealthy runs a service's container health check (argv[0] is the local
// binary for the image's path) with the service's environment until it
// passes, as `depends_on: condition: service_healthy` waits for it.
func waitHealthy(t *testing.T, name string, argv []string, env map[string]string, p *proc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var out []byte
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited early:\n%s", name, p.out.String())
		default:
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		var err error
		if out, err = cmd.CombinedOutput(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: health check %q never passed: %s\n%s", name, argv, out, p.out.String())
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
	// docker kills a container stop_grace_period after SIGTERM (10s when
	// unset): that must leave the proxy its whole drain.
	cfg, err := config.Load(func(k string) string { return proxyEnv[k] }, config.ModeServe)
	if err != nil {
		t.Fatalf("%s: %v", services["proxy"].envFile, err)
	}
	if grace, err := time.ParseDuration(services["proxy"].stopGrace); err != nil || grace <= cfg.ShutdownTimeout {
		t.Errorf("proxy stop_grace_period %q must exceed SHUTDOWN_TIMEOUT %v", services["proxy"].stopGrace, cfg.ShutdownTimeout)
	}
	proxyBin, clerkBin := e2etest.Binaries(t)
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

	// Each service runs the program its image path names: the compose
	// entrypoint, else the Dockerfile's ENTRYPOINT; then its command.
	local := map[string]string{"/usr/local/bin/clerk-mcp-proxy": proxyBin, "/usr/local/bin/mockclerk": clerkBin}
	argv := func(name string, s *service) []string {
		ep := s.entrypoint
		if len(ep) == 0 {
			ep = imageExec(t, "ENTRYPOINT")
		}
		if local[ep[0]] == "" {
			t.Fatalf("%s: unknown program %q", name, ep[0])
		}
		return append(append([]string{local[ep[0]]}, ep[1:]...), s.command...)
	}
	// The health checks: the compose file's, else the image's HEALTHCHECK.
	health := func(name string, s *service) []string {
		hc := s.healthcheck
		if len(hc) == 0 { // HEALTHCHECK [options] CMD [...], in compose's form
			hc = append([]string{"CMD"}, imageExec(t, "HEALTHCHECK")...)
		}
		if hc[0] != "CMD" || local[hc[1]] == "" {
			t.Fatalf("%s: health check %q must be exec form on a binary of the image", name, hc)
		}
		return append([]string{local[hc[1]]}, hc[2:]...)
	}

	// redis, with the compose command's persistence flags.
	dataDir := t.TempDir()
	redisArgs := append(append([]string{}, services["redis"].command[1:]...), "--port", rp, "--bind", "127.0.0.1", "--dir", dataDir)
	redis := startProc(t, "redis", nil, redisBin, redisArgs...)
	waitRedis(t, "127.0.0.1:"+rp, redis)

	clerkArgv := argv("mockclerk", services["mockclerk"])
	clerk := startProc(t, "mockclerk", clerkEnv, clerkArgv[0], clerkArgv[1:]...)
	waitHealthy(t, "mockclerk", health("mockclerk", services["mockclerk"]), clerkEnv, clerk)
	proxyArgv := argv("proxy", services["proxy"])
	proxy := startProc(t, "proxy", proxyEnv, proxyArgv[0], proxyArgv[1:]...)
	waitHealthy(t, "proxy", health("proxy", services["proxy"]), proxyEnv, proxy)
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

	// Redis dies (SIGKILL: a crash, the OOM killer; no save on the way out)
	// and restarts: the append-only file alone keeps the registration and
	// the grant. (A clean stop would save a snapshot and prove nothing.)
	redis.kill()
	redis = startProc(t, "redis (restarted)", nil, redisBin, redisArgs...)
	waitRedis(t, "127.0.0.1:"+rp, redis)
	waitHTTP(t, proxyEnv["BASE_URL"]+"/readyz", proxy)
	status, out := e.Refresh(c, c.RefreshToken)
	if status != http.StatusOK {
		t.Fatalf("refresh after a Redis restart: %d %v", status, out)
	}
	e.Login(c, testflow.Choices{}) // the registration survived too

	// An MCP client's standing event stream (GET /mcp) is open through the
	// SIGTERM below: it must not hold the drain for SHUTDOWN_TIMEOUT.
	stream := openEventStream(t, proxyEnv["BASE_URL"], c.AccessToken, e.Initialize(c.AccessToken))
	defer stream.Close()

	// SIGTERM drains: a request in flight (held up at Clerk's introspection
	// by the fake's fault injection) still gets its answer, then the proxy
	// exits 0 promptly.
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
	stopping := time.Now()
	proxy.stop()
	if d := time.Since(stopping); d > 10*time.Second {
		t.Errorf("SIGTERM took %v with an event stream open", d)
	}
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

	// One start-up summary line, secrets redacted; every line is JSON.
	logs := proxy.out.String()
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("not a JSON log line: %q", line)
		}
	}
	if strings.Count(logs, `"msg":"clerk-mcp-proxy serving"`) != 1 {
		t.Errorf("want one start-up summary line:\n%s", logs)
	}
	for _, secret := range []string{proxyEnv["PROXY_SECRET"], proxyEnv["CLERK_CLIENT_SECRET"], proxyEnv["CLERK_SECRET_KEY"]} {
		if strings.Contains(logs, secret) {
			t.Errorf("the proxy logged a secret (%d bytes)", len(secret))
		}
	}
}

// openEventStream opens an MCP client's standing GET /mcp event stream; the
// caller closes it.
func openEventStream(t *testing.T, base, token, session string) io.Closer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", session)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET /mcp: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp.Body
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
	// A numeric user: Kubernetes' runAsNonRoot cannot check a user name.
	for _, want := range []string{"USER 65532:65532", "HEALTHCHECK", "clerk-mcp-proxy\", \"healthcheck"} {
		if !strings.Contains(string(docker), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// The golang image runs with GOTOOLCHAIN=local: its Go must be at least
	// what go.mod's go line asks for, or the build stops there.
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	goArg := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)$`).FindSubmatch(docker)
	if goLine == nil || goArg == nil {
		t.Fatal("go.mod's go line or the Dockerfile's ARG GO_VERSION is missing")
	}
	if !version.IsValid("go"+string(goArg[1])) || version.Compare("go"+string(goArg[1]), "go"+string(goLine[1])) < 0 || strings.Count(string(goArg[1]), ".") != 2 {
		t.Errorf("Dockerfile GO_VERSION %s: want a full version no older than go.mod's go %s", goArg[1], goLine[1])
	}
}
