package app_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testflow"
)

// liveness bounds every wait below. It is far above the configured timeouts
// and only stops a broken build from hanging; nothing here times anything.
const liveness = 60 * time.Second

// slowEnv is a stack with short client timeouts, so stalls end quickly, and
// no cap on requests in progress (TestInFlightCapPerAddress covers it), so
// many stalled requests from one address all reach the body bound.
func slowEnv(t *testing.T) *e2etest.Env {
	return e2etest.Start(t, e2etest.Options{Env: map[string]string{
		"BODY_IDLE_TIMEOUT": "1s", "BODY_READ_TIMEOUT": "8s", "HEADER_READ_TIMEOUT": "2s", "MAX_INFLIGHT_PER_IP": "0",
	}})
}

// rawRequest opens a connection and sends a request's head and the first
// part of its body, announcing more than it sends.
func rawRequest(t *testing.T, baseURL, method, path string, headers map[string]string, announced int, sent string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(baseURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", method, path, strings.TrimPrefix(baseURL, "http://"), announced)
	for k, v := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n" + sent)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	return conn
}

// answerThenClose reads the server's answer to a stalled request and then
// requires the connection to be closed by the server.
func answerThenClose(t *testing.T, conn net.Conn) int {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(liveness))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if _, err := br.ReadByte(); err != io.EOF {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the server kept the connection of a stalled body open")
		}
	}
	return resp.StatusCode
}

// TestWithheldBodyEndsTheConnection: a client that announces a body and then
// stops sending gets 408 at every endpoint that reads a body, its connection
// is closed, and the goroutines it held are returned. Before BodyDeadline
// such connections stayed open for ever (200 of them: 200 goroutines).
//
// Not parallel: it counts the process's goroutines, which tests running
// beside it would change.
func TestWithheldBodyEndsTheConnection(t *testing.T) {
	e := slowEnv(t)
	c := e.Register()
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	cases := []struct {
		name, method, path string
		headers            map[string]string
		want               int
	}{
		{"token", "POST", "/token", form, http.StatusRequestTimeout},
		{"revoke", "POST", "/revoke", form, http.StatusRequestTimeout},
		{"introspect", "POST", "/introspect", form, http.StatusRequestTimeout},
		{"register", "POST", "/register", map[string]string{"Content-Type": "application/json"}, http.StatusRequestTimeout},
		{"consent", "POST", "/consent", form, 0}, // answers before reading a body it cannot use
		{"mcp", "POST", "/mcp", map[string]string{
			"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
			"Authorization": "Bearer " + c.AccessToken, "Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-11-25",
		}, http.StatusRequestTimeout},
		{"mcp without a token", "POST", "/mcp", map[string]string{"Content-Type": "application/json"}, http.StatusUnauthorized},
		{"an unknown path", "POST", "/nowhere", nil, http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn := rawRequest(t, e.BaseURL, tc.method, tc.path, tc.headers, 1000, "0123456789")
			got := answerThenClose(t, conn)
			if tc.want != 0 && got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
			if got >= 500 {
				t.Fatalf("status %d", got)
			}
		})
	}

	// Many at once, as an attacker would: every connection ends and the
	// server's goroutines come back to where they were.
	runtime.GC()
	base := runtime.NumGoroutine()
	const n = 100
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = rawRequest(t, e.BaseURL, "POST", "/token", form, 1000, "0123456789")
	}
	for _, conn := range conns {
		if got := answerThenClose(t, conn); got != http.StatusRequestTimeout {
			t.Fatalf("status %d, want 408", got)
		}
		conn.Close()
	}
	deadline := time.Now().Add(liveness)
	for runtime.NumGoroutine() > base+10 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			os.Stderr.Write(buf[:runtime.Stack(buf, true)])
			t.Fatalf("goroutines: %d, %d before the stalled requests", runtime.NumGoroutine(), base)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWithheldHeadersEndTheConnection: the request head has its own bound.
func TestWithheldHeadersEndTheConnection(t *testing.T) {
	t.Parallel()
	e := slowEnv(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.BaseURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "POST /token HTTP/1.1\r\nHost: x\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(liveness))
	if _, err := io.Copy(io.Discard, conn); err != nil {
		t.Fatalf("the server kept a connection with unfinished headers: %v", err)
	}
}

// TestSlowButSteadyBodyIsServed: a body that keeps arriving, with gaps
// shorter than BODY_IDLE_TIMEOUT, is served even though it takes longer than
// that in total.
func TestSlowButSteadyBodyIsServed(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{"BODY_IDLE_TIMEOUT": "2s", "BODY_READ_TIMEOUT": "30s"}})
	body := "grant_type=refresh_token&refresh_token=nope&client_id=nobody"
	conn := rawRequest(t, e.BaseURL, "POST", "/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, len(body), "")
	// 15 pieces 250 ms apart: about 3.5 s in all, longer than the 2 s idle bound.
	for piece := range chunks(body, 15) {
		time.Sleep(250 * time.Millisecond)
		if _, err := io.WriteString(conn, piece); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(liveness))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The request was read whole: the token endpoint judged it (an unknown
	// client), it did not time out reading it.
	if resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `"invalid_client"`) {
		t.Fatalf("status %d %s", resp.StatusCode, b)
	}
}

// TestEventStreamOutlivesTheBodyTimeouts: the standing GET event stream and
// a POST whose answer streams are not cut by the body bounds.
func TestEventStreamOutlivesTheBodyTimeouts(t *testing.T) {
	t.Parallel()
	e := slowEnv(t)
	c := e.Register()
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)
	resp := sessionRequest(t, e, http.MethodGet, c.AccessToken, session, "")
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET stream: status %d", resp.StatusCode)
	}
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		ended <- err
	}()
	// Past every configured bound (idle 1 s, body 8 s, header 2 s), the
	// stream is still open, and the session still serves calls.
	time.Sleep(10 * time.Second)
	select {
	case err := <-ended:
		t.Fatalf("the event stream ended: %v", err)
	default:
	}
	if r, _ := e.CallTool(c.AccessToken, session, "get-user-info"); r.Status != http.StatusOK {
		t.Fatalf("tool call: %d %s", r.Status, r.Body)
	}
}

// chunks splits s into about n pieces.
func chunks(s string, n int) func(func(string) bool) {
	return func(yield func(string) bool) {
		size := (len(s) + n - 1) / n
		for len(s) > 0 {
			k := min(size, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

// TestClientMistakesLogNoErrorAndNoSessionID: a JSON-RPC response POSTed to
// /mcp (an answer to a request the server never sent) is refused with 400
// (an empty result would be acknowledged with 202, as the transport says),
// and however often a client does it, the log gets no ERROR line, no session
// id, and at most a bounded number of lines about it.
func TestClientMistakesLogNoErrorAndNoSessionID(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{})
	c := e.Register()
	e.Login(c, testflow.Choices{})
	session := e.Initialize(c.AccessToken)
	for range 50 {
		resp := sessionRequest(t, e, http.MethodPost, c.AccessToken, session, `{"jsonrpc":"2.0","id":77,"result":{"content":[]}}`)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", resp.StatusCode)
		}
	}
	logs := e.Logs.String()
	if strings.Contains(logs, session) {
		t.Error("the log holds the session id")
	}
	if n := strings.Count(logs, `"level":"ERROR"`); n > 0 {
		t.Errorf("%d ERROR lines for a client's mistake", n)
	}
	if n := strings.Count(logs, "Failed to handle sampling response"); n == 0 || n > 10 {
		t.Errorf("%d lines about the 50 stray responses, want 1 to 10", n)
	}
}

// TestInFlightCapPerAddress: one address cannot hold more than
// MAX_INFLIGHT_PER_IP requests of the authorization server at once; the next
// gets 429 with Retry-After, /mcp and the health endpoints are not counted,
// and the slots come back when the held requests end.
//
// The probe waits for the server to report the three held requests in
// progress (oauth_requests_in_flight) before it asks: probing while they were
// still arriving let a probe take the last slot, the third held request was
// refused instead, and every later probe got in (seen once under load).
func TestInFlightCapPerAddress(t *testing.T) {
	t.Parallel()
	e := e2etest.Start(t, e2etest.Options{Env: map[string]string{
		"MAX_INFLIGHT_PER_IP": "3", "BODY_IDLE_TIMEOUT": "5m", "BODY_READ_TIMEOUT": "5m",
	}})
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	held := make([]net.Conn, 3)
	for i := range held {
		held[i] = rawRequest(t, e.BaseURL, "POST", "/token", form, 1000, "grant_type")
	}
	post := func() *http.Response {
		resp, err := http.Post(e.BaseURL+"/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for deadline := time.Now().Add(liveness); inFlight(t, e) != 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%v requests in progress, want the 3 held", inFlight(t, e))
		}
	}
	resp := post()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d with 3 requests held, want 429", resp.StatusCode)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	for _, path := range []string{"/healthz", "/.well-known/oauth-authorization-server"} {
		if r, err := http.Get(e.BaseURL + path); err != nil || r.StatusCode != http.StatusOK {
			t.Fatalf("%s: %v %v", path, r, err)
		}
	}
	for _, c := range held {
		c.Close()
	}
	for deadline := time.Now().Add(liveness); post().StatusCode == http.StatusTooManyRequests; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slots of ended requests never came back")
		}
	}
}

// sessionRequest sends a request on an MCP session: a POST with body, or
// the GET that opens the session's event stream.
func sessionRequest(t *testing.T, e *e2etest.Env, method, token, session, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, e.BaseURL+"/mcp", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json, text/event-stream")
	if method == http.MethodGet {
		req.Header.Set("Accept", "text/event-stream")
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Mcp-Session-Id", session)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// inFlight is the server's oauth_requests_in_flight gauge.
func inFlight(t *testing.T, e *e2etest.Env) float64 {
	t.Helper()
	families, err := e.App.Metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "clerk_mcp_proxy_oauth_requests_in_flight" {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no oauth_requests_in_flight gauge")
	return 0
}
