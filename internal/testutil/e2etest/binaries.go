package e2etest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Binaries returns the clerk-mcp-proxy and mockclerk binaries for tests that
// run the product as processes: the ones CI built as the Dockerfile does
// (CLERK_MCP_PROXY_BIN, MOCKCLERK_BIN), or fresh builds of this module made
// the same way (static, -trimpath) into a temporary directory.
func Binaries(t testing.TB) (proxyBin, clerkBin string) {
	t.Helper()
	proxyBin, clerkBin = os.Getenv("CLERK_MCP_PROXY_BIN"), os.Getenv("MOCKCLERK_BIN")
	if proxyBin != "" && clerkBin != "" {
		return proxyBin, clerkBin
	}
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" {
		t.Fatalf("build: cannot find the module root (go env GOMOD): %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-trimpath", "-o", dir+string(os.PathSeparator), "./cmd/clerk-mcp-proxy", "./cmd/mockclerk")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "clerk-mcp-proxy"), filepath.Join(dir, "mockclerk")
}

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
