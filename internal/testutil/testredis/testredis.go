// Package testredis owns the real Redis that tests run against: it starts a
// redis-server binary on a free loopback port, with persistence off, in a
// temporary directory, and stops it when the test ends. Tests can also stop
// and restart it to simulate Redis going away. StartCluster does the same for
// a one-node Redis Cluster, which enforces the Cluster rules (notably that a
// multi-key command or script touches one hash slot) without needing six
// processes. Failover tests use StartReplicatedCluster (primaries with
// replicas) and StartSentinel (a primary, a replica, three Sentinels), whose
// primaries can be killed and replaced. Shared gives the tests of a package
// one server between them (their TestMain calls RunMain, which stops it at
// the end).
//
// A real server rather than an emulation keeps the Lua scripts, TTL precision
// and error behaviour of the production backend under test. When
// redis-server is not on PATH the test is skipped, unless REQUIRE_REDIS=1
// (set in CI), where a missing server is a failure rather than silent
// coverage loss.
package testredis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/syncbuf"
)

const (
	// startAttempts bounds retries when the port picked turned out to be taken
	// (another process can grab it between our probe and redis-server's bind).
	startAttempts = 5
	// readyTimeout bounds the wait for the server to answer PING.
	readyTimeout = 10 * time.Second
)

// Server is a running redis-server.
type Server struct {
	// Addr is host:port, e.g. 127.0.0.1:40123.
	Addr string
	// URL is redis://Addr/0, or redis+cluster://Addr for StartCluster; both
	// are understood by redisstore.
	URL string

	bin  string
	dir  string
	port int
	node nodeConfig

	mu   sync.Mutex
	proc *process // nil while stopped
}

// process is one run of redis-server.
type process struct {
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{} // closed when the process has exited
}

// Start starts a redis-server for the test and stops it at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, nodeConfig{})
}

// StartCluster starts a one-node Redis Cluster owning all 16384 slots and
// stops it at cleanup. Client returns a plain client to the node, which
// suffices for assertions since the node owns every slot.
func StartCluster(t testing.TB) *Server {
	t.Helper()
	return start(t, nodeConfig{cluster: true, ownAllSlots: true})
}

// nodeConfig says what kind of redis-server to run.
type nodeConfig struct {
	cluster      bool     // cluster-enabled
	ownAllSlots  bool     // a one-node cluster: claim every slot at start
	sentinelConf string   // non-empty: run as a Sentinel with this configuration
	args         []string // extra command-line options
}

// lookPath finds a Redis binary, skipping the test when it is missing
// unless REQUIRE_REDIS=1.
func lookPath(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("REQUIRE_REDIS") == "1" {
			t.Fatalf("testredis: %s not found on PATH and REQUIRE_REDIS=1: %v", name, err)
		}
		t.Skipf("testredis: %s not found on PATH; install Redis to run this test (set REQUIRE_REDIS=1 to make this a failure)", name)
	}
	return bin
}

func start(t testing.TB, node nodeConfig) *Server {
	t.Helper()
	bin := lookPath(t, "redis-server")
	s := &Server{bin: bin, dir: t.TempDir(), node: node}
	if node.sentinelConf != "" {
		// Sentinel rewrites its configuration file, so it lives in the
		// server's own temporary directory.
		if err := os.WriteFile(filepath.Join(s.dir, "sentinel.conf"), []byte(node.sentinelConf), 0o600); err != nil {
			t.Fatalf("testredis: write sentinel.conf: %v", err)
		}
	}
	t.Cleanup(func() { s.stop() })
	if err := s.listen(); err != nil {
		t.Fatalf("testredis: start redis-server: %v", err)
	}
	return s
}

// listen starts the server on a free port, trying another when the one
// picked was taken meanwhile, and sets Addr and URL.
func (s *Server) listen() error {
	var lastErr error
	for range startAttempts {
		port, err := freePort()
		if err != nil {
			return fmt.Errorf("pick a port: %w", err)
		}
		s.port = port
		if lastErr = s.start(); lastErr == nil {
			s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			s.URL = "redis://" + s.Addr + "/0"
			if s.node.cluster {
				s.URL = "redis+cluster://" + s.Addr
			}
			return nil
		}
		if !errors.Is(lastErr, errBind) {
			break
		}
	}
	return lastErr
}

// shared is the one server of a test binary (Shared), stopped by RunMain.
var shared struct {
	sync.Mutex
	inMain bool // RunMain is running the tests
	srv    *Server
	err    error
}

// RunMain runs a package's tests and then stops its shared server, if one
// was started. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testredis.RunMain(m)) }
func RunMain(m *testing.M) int {
	shared.Lock()
	shared.inMain = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.srv != nil {
		shared.srv.stop()
		_ = os.RemoveAll(shared.srv.dir)
	}
	return code
}

// Shared returns the test binary's one redis-server, started by the first
// test that asks, so that a package pays for one server rather than one per
// test. Tests sharing it keep to key prefixes of their own and never stop
// or flush it: a test that does takes a server of its own from Start.
func Shared(t testing.TB) *Server {
	t.Helper()
	bin := lookPath(t, "redis-server")
	shared.Lock()
	defer shared.Unlock()
	if !shared.inMain {
		t.Fatal("testredis: Shared needs the package's TestMain to run its tests through testredis.RunMain")
	}
	if shared.srv == nil && shared.err == nil {
		s := &Server{bin: bin}
		if s.dir, shared.err = os.MkdirTemp("", "testredis-"); shared.err == nil {
			if shared.err = s.listen(); shared.err == nil {
				shared.srv = s
			} else {
				_ = os.RemoveAll(s.dir)
			}
		}
	}
	if shared.err != nil {
		t.Fatalf("testredis: start the shared redis-server: %v", shared.err)
	}
	return shared.srv
}

// Stop kills the server, as if Redis went away. Data is lost.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.stop()
}

// Signal sends sig to the running server, e.g. SIGSTOP to freeze it (its
// connections stay open, nothing is answered or replicated) and SIGCONT to
// let it go on.
func (s *Server) Signal(sig os.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return fmt.Errorf("testredis: signal %v: the server on port %d is not running", sig, s.port)
	}
	return s.proc.cmd.Process.Signal(sig)
}

// Output is what the running server has logged (warnings and above; for a
// Sentinel, its events: +sdown, +switch-master, ...).
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return ""
	}
	return s.proc.out.String()
}

// Restart starts the server again on the same port after Stop (and stops it
// first if it is still running). It comes back empty (persistence is off),
// except the data nodes of StartSentinel, which keep an append-only file.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.restart(t, false)
}

// RestartEmpty is Restart after the server's data files are deleted: a node
// that lost its disk, or ran without persistence.
func (s *Server) RestartEmpty(t testing.TB) {
	t.Helper()
	s.restart(t, true)
}

func (s *Server) restart(t testing.TB, wipe bool) {
	t.Helper()
	s.stop()
	if wipe {
		for _, f := range []string{"appendonlydir", "unused.rdb"} {
			if err := os.RemoveAll(filepath.Join(s.dir, f)); err != nil {
				t.Fatalf("testredis: wipe %s: %v", s.dir, err)
			}
		}
	}
	var err error
	// The port was ours a moment ago; retry briefly in case the kernel or a
	// stray process holds it.
	for range startAttempts {
		if err = s.start(); err == nil || !errors.Is(err, errBind) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("testredis: restart redis-server on port %d: %v", s.port, err)
	}
}

// Client returns a go-redis client to the server for assertions; it is closed
// at cleanup. It keeps working across Stop/Restart (it reconnects).
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var errBind = errors.New("address already in use")

// start launches redis-server on s.port and waits until it answers PING.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return nil
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	var args []string
	if s.node.sentinelConf != "" {
		args = append(args, "sentinel.conf", "--sentinel")
	}
	args = append(args,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--dbfilename", "unused.rdb",
		"--daemonize", "no",
		"--logfile", "",
		"--loglevel", "warning",
	)
	if s.node.cluster {
		// The node's own state file (slot ownership) lives in the temp dir too;
		// it is configuration, not data, so a Restart keeps the slots.
		args = append(args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes-"+strconv.Itoa(s.port)+".conf",
		)
	}
	args = append(args, s.node.args...)
	cmd := exec.Command(s.bin, args...)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = s.dir
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-p.done:
			log := out.String()
			if strings.Contains(log, "Address already in use") {
				return fmt.Errorf("port %d: %w", s.port, errBind)
			}
			return fmt.Errorf("redis-server exited early: %s", strings.TrimSpace(log))
		default:
		}
		if ping(addr) == nil {
			if s.node.ownAllSlots {
				if err := claimAllSlots(addr, deadline); err != nil {
					_ = cmd.Process.Kill()
					<-p.done
					return err
				}
			}
			s.proc = p
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-p.done
			return fmt.Errorf("redis-server not ready after %v: %s", readyTimeout, strings.TrimSpace(out.String()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop kills the server, if running, and waits for it to exit so the port is
// free again when stop returns.
func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.cmd.Process.Kill()
	<-s.proc.done
	s.proc = nil
}

// claimAllSlots makes a fresh cluster node own every slot and waits until
// the cluster reports itself healthy. A restarted node already owns them.
func claimAllSlots(addr string, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return fmt.Errorf("CLUSTER INFO: %w", err)
	}
	if !strings.Contains(info, "cluster_slots_assigned:16384") {
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
			return fmt.Errorf("CLUSTER ADDSLOTSRANGE: %w", err)
		}
	}
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not ready: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ping speaks just enough RESP to check readiness without a client pool.
func ping(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		// e.g. "-LOADING" while the server is still starting up.
		return fmt.Errorf("unexpected reply %q", strings.TrimSpace(line))
	}
	return nil
}

// freePort asks the kernel for a free loopback port. Another process may take
// it before redis-server binds it; start reports that as errBind and Start
// retries with a new port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
