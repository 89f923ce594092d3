// Command peerbench measures clerk-mcp-proxy against the peer users would
// pick instead, the TypeScript fastmcp OAuthProxy (bench/peer), both running
// in front of the same fake Clerk on the same machine in the same run
// (issue #17, goal 2). scripts/bench-peer starts the processes; this program
// plays the MCP clients and the person at the browser, and prints a table of
// ours/peer ratios against the goals, with what bounds them: the ceiling
// (a bare mcp-go server's tools/call, -bare), the fake Clerk's part of a
// sign-in alone, and each process's CPU time per sign-in (-cpu). It fails on
// any failed request, never on a timing. Never shipped: scripts/build builds only the product.
//
//	peerbench -ours http://127.0.0.1:P1 -peer http://127.0.0.1:P2
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/benchtools"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// redirect is the MCP client's loopback redirect URI: the browser stops
// there, nothing listens on it.
const clientRedirect = "http://127.0.0.1:33418/callback"

func main() {
	ours := flag.String("ours", "", "clerk-mcp-proxy base URL")
	peer := flag.String("peer", "", "fastmcp OAuthProxy base URL")
	clerk := flag.String("clerk", "", "the fake Clerk's base URL (mockclerk), to count the calls each side makes to it")
	app := flag.String("clerk-app", "", "client_id:client_secret of the fake Clerk's OAuth app, to time its part of a flow alone")
	duration := flag.String("duration", "10s", "wrk duration of the tools/call runs")
	conns := flag.Int("connections", 64, "wrk connections")
	flows := flag.Int("flows", 200, "complete sign-in flows per server")
	refreshes := flag.Int("refreshes", 1000, "refresh grants per server")
	workers := flag.Int("workers", 4, "concurrent clients for the sign-in and refresh runs")
	verbose := flag.Bool("v", false, "print wrk's full output")
	cpu := flag.String("cpu", "", "name=pid,... of the processes whose CPU time per sign-in to report (Linux /proc), e.g. clerk-mcp-proxy=1,fake Clerk=2")
	bare := flag.String("bare", "", "a bare mcp-go server with the same tool, no auth (internal/benchtools/baseline -kind mcp): the ceiling of any mcp-go endpoint's tools/call")
	flag.Parse()
	if *ours == "" || *peer == "" || *clerk == "" {
		fmt.Fprintln(os.Stderr, "usage: peerbench -ours URL -peer URL -clerk URL [-duration 10s -connections 64 -flows 200 -refreshes 1000 -workers 4]")
		os.Exit(2)
	}
	id, secret, _ := strings.Cut(*app, ":")
	procs, err := parseProcs(*cpu)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	b := bench{clerkApp: grant{clientID: id, secret: secret}, clerk: *clerk, bare: *bare, procs: procs, verbose: *verbose, duration: *duration, conns: *conns, flows: *flows, refreshes: *refreshes, workers: *workers,
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	if err := b.run(context.Background(), []*target{{name: "clerk-mcp-proxy", base: *ours}, {name: "fastmcp OAuthProxy", base: *peer}}); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
}

type bench struct {
	duration                string
	conns, flows, refreshes int
	workers                 int
	verbose                 bool
	clerk                   string
	bare                    string
	procs                   []proc // whose CPU time per sign-in is reported
	clerkApp                grant
	http                    *http.Client
}

// target is one authorization server with its MCP endpoint at /mcp.
type target struct {
	name, base string
	meta       struct {
		Registration  string `json:"registration_endpoint"`
		Authorization string `json:"authorization_endpoint"`
		Token         string `json:"token_endpoint"`
	}
}

// grant is what a signed-in client holds.
type grant struct{ clientID, secret, access, refresh string }

// result is one measured scenario for one target.
type result struct {
	rate, p99 float64 // per second; milliseconds
	n         int     // operations (requests, flows, grants)
	clerk     int     // the fake Clerk's back-channel calls meanwhile
}

func (b *bench) run(ctx context.Context, ts []*target) error {
	for _, t := range ts {
		if err := b.getJSON(ctx, t.base+"/.well-known/oauth-authorization-server", &t.meta); err != nil {
			return fmt.Errorf("%s discovery: %w", t.name, err)
		}
	}
	type row struct {
		name, unit string
		goal       float64
		res        [2]result
	}
	rows := []*row{
		{name: "tools/call get-user-info, authenticated, 1 session", unit: "req/s", goal: 10},
		{name: fmt.Sprintf("sign-in flows (DCR→token), %d workers", b.workers), unit: "flows/s", goal: 5},
		{name: fmt.Sprintf("refresh grants, %d workers", b.workers), unit: "grants/s", goal: 5},
	}
	for i, t := range ts {
		g, err := b.signIn(ctx, t)
		if err != nil {
			return fmt.Errorf("%s sign-in: %w", t.name, err)
		}
		sid, err := b.session(ctx, t, g.access, signedInEmail)
		if err != nil {
			return fmt.Errorf("%s MCP session: %w", t.name, err)
		}
		if rows[0].res[i], err = b.counted(ctx, func() (result, error) { return b.toolsCall(t, g.access, sid) }); err != nil {
			return fmt.Errorf("%s tools/call: %w", t.name, err)
		}
	}
	flowCPU := make([][]time.Duration, len(ts))
	for i, t := range ts {
		var err error
		before := b.cpuTimes()
		if rows[1].res[i], err = b.counted(ctx, func() (result, error) {
			return b.many(b.flows, func() (time.Duration, error) {
				start := time.Now()
				_, err := b.signIn(ctx, t)
				return time.Since(start), err
			}, nil)
		}); err != nil {
			return fmt.Errorf("%s sign-in flows: %w", t.name, err)
		}
		flowCPU[i] = since(before, b.cpuTimes())
	}
	for i, t := range ts {
		// Each worker refreshes its own grant in turn, keeping the rotated
		// refresh token, as a client does.
		grants := make([]grant, b.workers)
		for w := range grants {
			g, err := b.signIn(ctx, t)
			if err != nil {
				return fmt.Errorf("%s sign-in: %w", t.name, err)
			}
			grants[w] = g
		}
		var err error
		if rows[2].res[i], err = b.counted(ctx, func() (result, error) {
			return b.many(b.refreshes, nil, func(w int) (time.Duration, error) {
				start := time.Now()
				g, err := b.refresh(ctx, t, grants[w])
				grants[w] = g
				return time.Since(start), err
			})
		}); err != nil {
			return fmt.Errorf("%s refresh grants: %w", t.name, err)
		}
	}
	// A bare mcp-go server serving the same tool without auth bounds what any
	// mcp-go endpoint, ours included, can reach on tools/call.
	var ceiling *result
	if b.bare != "" {
		bare := &target{name: "bare mcp-go", base: b.bare}
		sid, err := b.session(ctx, bare, "", benchtools.SampleUser.Email)
		if err != nil {
			return fmt.Errorf("bare mcp-go session: %w", err)
		}
		r, err := b.toolsCall(bare, "", sid)
		if err != nil {
			return fmt.Errorf("bare mcp-go tools/call: %w", err)
		}
		ceiling = &r
	}
	// The fake Clerk's part of a sign-in alone: both servers' flows contain
	// it, so it bounds how far apart their flow rates can be.
	clerkOnly := &target{name: "the fake Clerk alone", base: b.clerk}
	clerkOnly.meta.Authorization, clerkOnly.meta.Token = b.clerk+"/oauth/authorize", b.clerk+"/oauth/token"
	floor, err := b.many(b.flows, func() (time.Duration, error) {
		start := time.Now()
		_, err := b.authorizeCode(ctx, clerkOnly, b.clerkApp, ts[0].base+"/oauth/callback", "")
		return time.Since(start), err
	}, nil)
	if err != nil {
		return fmt.Errorf("the fake Clerk alone: %w", err)
	}
	fmt.Printf("\n%-50s %-8s %9s %9s %9s %9s %7s %7s %9s %s\n", "scenario", "unit", "ours", "peer", "ours p99", "peer p99",
		"ours c/", "peer c/", "ours/peer", "goal")
	for _, r := range rows {
		ratio := r.res[0].rate / r.res[1].rate
		met := "no"
		if ratio >= r.goal {
			met = "yes"
		}
		fmt.Printf("%-50s %-8s %9.1f %9.1f %9.1f %9.1f %7.2f %7.2f %8.1fx >= %gx: %s\n", r.name, r.unit, r.res[0].rate, r.res[1].rate,
			r.res[0].p99, r.res[1].p99, perOp(r.res[0]), perOp(r.res[1]), ratio, r.goal, met)
		if r == rows[1] && len(b.procs) > 0 {
			for i, t := range ts {
				fmt.Printf("  CPU per sign-in through %s, ms:", t.name)
				for j, p := range b.procs {
					fmt.Printf(" %s %.2f;", p.name, float64(flowCPU[i][j].Microseconds())/1000/float64(r.res[i].n))
				}
				fmt.Println()
			}
		}
		if r == rows[0] && ceiling != nil {
			fmt.Printf("%-50s %-8s %9.1f %9s %9.1f %9s %7s %7s %8.1fx (bare/peer)\n", "  ceiling: bare mcp-go, same tool, no auth", "req/s",
				ceiling.rate, "", ceiling.p99, "", "", "", ceiling.rate/r.res[1].rate)
		}
	}
	fmt.Printf("%-50s %-8s %9.1f %9s %9.1f\n", "  floor: the fake Clerk's part of a flow alone", "flows/s", floor.rate, "", floor.p99)
	fmt.Printf("\np99 in ms (per request for tools/call, per flow or grant otherwise); c/ = the fake Clerk's back-channel calls"+
		" (token, userinfo, introspection, discovery, Backend API) per operation. tools/call: 1 MCP session, wrk -t1 -c%d -d%s;"+
		" flows: %d per server; refresh grants: %d per server. Timings are reported, never asserted.\n",
		b.conns, b.duration, b.flows, b.refreshes)
	return nil
}

// counted runs measure and adds the fake Clerk's back-channel calls made
// meanwhile: every path but the browser's (authorize, sign-in) and the admin
// API's own.
func (b *bench) counted(ctx context.Context, measure func() (result, error)) (result, error) {
	before, err := b.clerkCalls(ctx)
	if err != nil {
		return result{}, err
	}
	r, err := measure()
	if err != nil {
		return r, err
	}
	after, err := b.clerkCalls(ctx)
	r.clerk = after - before
	return r, err
}

func (b *bench) clerkCalls(ctx context.Context) (int, error) {
	var stats map[string]int
	if err := b.getJSON(ctx, b.clerk+"/__admin/stats", &stats); err != nil {
		return 0, fmt.Errorf("fake Clerk stats: %w", err)
	}
	n := 0
	for path, c := range stats {
		if path != "/" && !strings.HasPrefix(path, "/oauth/authorize") && !strings.HasPrefix(path, "/sign-in") && !strings.HasPrefix(path, "/__admin") {
			n += c
		}
	}
	return n, nil
}

// proc is a process whose CPU time the bench reports.
type proc struct {
	name string
	pid  string // "self" for this driver
}

// parseProcs reads -cpu's "name=pid,..." and adds the driver itself.
func parseProcs(spec string) ([]proc, error) {
	if spec == "" {
		return nil, nil
	}
	var ps []proc
	for _, kv := range strings.Split(spec, ",") {
		name, pid, ok := strings.Cut(kv, "=")
		if _, err := strconv.Atoi(pid); !ok || name == "" || err != nil {
			return nil, fmt.Errorf("-cpu: %q is not name=pid", kv)
		}
		ps = append(ps, proc{name, pid})
	}
	return append(ps, proc{"driver (this program)", "self"}), nil
}

// cpuTimes reads each process's user+system CPU time from /proc (zero
// where it cannot: the report is then wrong for it, never the run).
func (b *bench) cpuTimes() []time.Duration {
	out := make([]time.Duration, len(b.procs))
	for i, p := range b.procs {
		raw, err := os.ReadFile("/proc/" + p.pid + "/stat")
		if err != nil {
			continue
		}
		out[i] = statCPU(string(raw))
	}
	return out
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every
// Linux this runs on (sysconf would need cgo).
const clockTick = 10 * time.Millisecond

// statCPU is utime+stime of a /proc/<pid>/stat line. Fields are counted
// after the command name's closing parenthesis (the name may hold spaces):
// state is field 3, utime 14, stime 15.
func statCPU(stat string) time.Duration {
	f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * clockTick
}

func since(before, after []time.Duration) []time.Duration {
	d := make([]time.Duration, len(after))
	for i := range after {
		d[i] = after[i] - before[i]
	}
	return d
}

func perOp(r result) float64 {
	if r.n == 0 {
		return 0
	}
	return float64(r.clerk) / float64(r.n)
}

// signIn is a complete sign-in as an MCP client makes it: dynamic client
// registration, PKCE authorization through the consent page and the fake
// Clerk's sign-in (testflow.Browser), then the code for tokens.
func (b *bench) signIn(ctx context.Context, t *target) (grant, error) {
	var reg struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	body := `{"client_name":"peerbench","redirect_uris":["` + clientRedirect + `"],"token_endpoint_auth_method":"none",` +
		`"grant_types":["authorization_code","refresh_token"],"response_types":["code"]}`
	if err := b.postJSON(ctx, t.meta.Registration, body, &reg); err != nil {
		return grant{}, fmt.Errorf("register: %w", err)
	}
	return b.authorizeCode(ctx, t, grant{clientID: reg.ClientID, secret: reg.ClientSecret}, clientRedirect, t.base+"/mcp")
}

// authorizeCode is the authorization-code grant with PKCE for client g,
// the browser played by testflow.Browser through the consent page (if any)
// and the fake Clerk's sign-in; resource, when set, is RFC 8707's.
func (b *bench) authorizeCode(ctx context.Context, t *target, g grant, redirect, resource string) (grant, error) {
	verifier := random()
	sum := sha256.Sum256([]byte(verifier))
	state := random()
	q := url.Values{"response_type": {"code"}, "client_id": {g.clientID}, "redirect_uri": {redirect},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"state": {state}, "scope": {"openid profile email offline_access"}}
	form := url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
	if resource != "" {
		q.Set("resource", resource)
		form.Set("resource", resource)
	}
	br := testflow.NewBrowser()
	br.HTTP.Transport = b.http.Transport
	br.HTTP.Timeout = b.http.Timeout
	final, err := br.Authorize(ctx, t.meta.Authorization+"?"+q.Encode(), redirect, testflow.Choices{})
	if err != nil {
		return grant{}, fmt.Errorf("authorize: %w", err)
	}
	if final.Query().Get("state") != state || final.Query().Get("code") == "" {
		return grant{}, fmt.Errorf("authorize: redirected to %s without the code and state", final.Redacted())
	}
	form.Set("code", final.Query().Get("code"))
	return b.token(ctx, t, g, form)
}

func (b *bench) refresh(ctx context.Context, t *target, g grant) (grant, error) {
	return b.token(ctx, t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.refresh}})
}

// token calls the token endpoint as the registered client (with its secret
// in the body when registration gave one: the peer issues one even to a
// client asking for "none").
func (b *bench) token(ctx context.Context, t *target, g grant, form url.Values) (grant, error) {
	form.Set("client_id", g.clientID)
	if g.secret != "" {
		form.Set("client_secret", g.secret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.meta.Token, strings.NewReader(form.Encode()))
	if err != nil {
		return g, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	if err := b.do(req, &tok); err != nil {
		return g, fmt.Errorf("token (%s): %w", form.Get("grant_type"), err)
	}
	if tok.Access == "" || tok.Refresh == "" {
		return g, fmt.Errorf("token (%s): no access or refresh token", form.Get("grant_type"))
	}
	g.access, g.refresh = tok.Access, tok.Refresh
	return g, nil
}

// signedInEmail is the fake Clerk's preselected user's, whom the tool answers
// after a sign-in.
const signedInEmail = "alice@example.com"

// session opens an MCP session (2025-11-25) and checks that the tool answers
// the user whose email is want.
func (b *bench) session(ctx context.Context, t *target, access, want string) (string, error) {
	resp, body, err := b.mcp(ctx, t, access, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"peerbench","version":"1"}}}`)
	if err != nil {
		return "", err
	}
	sid := resp.Header.Get("Mcp-Session-Id")
	if sid == "" {
		return "", fmt.Errorf("initialize: no session id: %s", body)
	}
	if _, _, err := b.mcp(ctx, t, access, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); err != nil {
		return "", err
	}
	if _, body, err = b.mcp(ctx, t, access, sid, toolCall); err != nil {
		return "", err
	}
	if !strings.Contains(body, want) || strings.Contains(body, `"isError":true`) {
		return "", fmt.Errorf("tools/call answered %s", body)
	}
	return sid, nil
}

const toolCall = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get-user-info","arguments":{}}}`

func (b *bench) mcp(ctx context.Context, t *target, access, sid, body string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+"/mcp", strings.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	for k, v := range mcpHeaders(access) {
		req.Header.Set(k, v)
	}
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return nil, "", fmt.Errorf("%s answered %d: %.300s", t.base+"/mcp", resp.StatusCode, raw)
	}
	return resp, string(raw), nil
}

func mcpHeaders(access string) map[string]string {
	h := map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
		"MCP-Protocol-Version": "2025-11-25"}
	if access != "" {
		h["Authorization"] = "Bearer " + access
	}
	return h
}

// toolsCall is wrk with one session and the request scripts/bench sends to
// the proxy; any non-2xx or socket error fails. wrk's timeout is raised from
// 2 s to 10 s so that a slow answer counts in the latencies, not as an error.
func (b *bench) toolsCall(t *target, access, sid string) (result, error) {
	// Each request has its own JSON-RPC id: ids must not repeat among a
	// session's requests in flight (JSON-RPC 2.0 §4), and the TypeScript
	// SDK under the peer routes responses by id, so a repeated id loses
	// responses there (mcp-go does not mind).
	var lua strings.Builder
	lua.WriteString("wrk.method = \"POST\"\n")
	h := mcpHeaders(access)
	h["Mcp-Session-Id"] = sid
	for k, v := range h {
		fmt.Fprintf(&lua, "wrk.headers[%q] = %q\n", k, v)
	}
	fmt.Fprintf(&lua, "local id = 100\nrequest = function()\n  id = id + 1\n  return wrk.format(nil, nil, nil, string.format(%q, id))\nend\n",
		strings.Replace(toolCall, `"id":2`, `"id":%d`, 1))
	dir, err := os.MkdirTemp("", "peerbench")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "call.lua")
	if err := os.WriteFile(script, []byte(lua.String()), 0o600); err != nil {
		return result{}, err
	}
	out, err := exec.Command("wrk", "-t1", "-c"+strconv.Itoa(b.conns), "-d"+b.duration, "--timeout", "10s", "--latency", "-s", script, t.base+"/mcp").CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	if b.verbose {
		fmt.Fprintf(os.Stderr, "%s:\n%s\n", t.name, out)
	}
	return parseWrk(string(out))
}

var (
	wrkRate    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkP99     = regexp.MustCompile(`(?m)^\s+99%\s+([0-9.]+)(us|ms|s)`)
	wrkTotal   = regexp.MustCompile(`(\d+) requests in `)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func parseWrk(out string) (result, error) {
	rate, p99 := wrkRate.FindStringSubmatch(out), wrkP99.FindStringSubmatch(out)
	if rate == nil || p99 == nil || wrkTotal.FindStringSubmatch(out) == nil {
		return result{}, fmt.Errorf("unreadable wrk output: %s", out)
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		return result{}, fmt.Errorf("%s responses were not 2xx", m[1])
	}
	if m := wrkSockErr.FindStringSubmatch(out); m != nil {
		return result{}, fmt.Errorf("socket errors (connect, read, write, timeout): %s %s %s %s", m[1], m[2], m[3], m[4])
	}
	r, _ := strconv.ParseFloat(rate[1], 64)
	ms, _ := strconv.ParseFloat(p99[1], 64)
	switch p99[2] {
	case "us":
		ms /= 1000
	case "s":
		ms *= 1000
	}
	total := wrkTotal.FindStringSubmatch(out)
	n, _ := strconv.Atoi(total[1])
	return result{rate: r, p99: ms, n: n}, nil
}

// many runs n operations on b.workers goroutines (op, or opW given the
// worker's index) and reports their rate and p99; the first error fails.
func (b *bench) many(n int, op func() (time.Duration, error), opW func(w int) (time.Duration, error)) (result, error) {
	var (
		mu    sync.Mutex
		next  int
		lat   []time.Duration
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < b.workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= n || first != nil {
					mu.Unlock()
					return
				}
				next++
				mu.Unlock()
				var d time.Duration
				var err error
				if op != nil {
					d, err = op()
				} else {
					d, err = opW(w)
				}
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				lat = append(lat, d)
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		return result{}, first
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p99 := lat[(len(lat)*99-1)/100]
	return result{rate: float64(n) / elapsed.Seconds(), p99: float64(p99.Microseconds()) / 1000, n: n}, nil
}

func (b *bench) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	return b.do(req, v)
}

func (b *bench) postJSON(ctx context.Context, u, body string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewBufferString(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return b.do(req, v)
}

func (b *bench) do(req *http.Request, v any) error {
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		// Error bodies of token endpoints carry no token: safe to show.
		return fmt.Errorf("%s answered %d: %.300s", req.URL.Path, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errors.Join(fmt.Errorf("%s: not JSON: %.200s", req.URL.Path, raw), err)
	}
	return nil
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
