//go:build linux

package replicas

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/e2etest"
)

// users are the fake Clerk's seeded users; worker w signs in as
// users[w%3], so a tool call answered with another worker's user is caught.
var users = []string{"user_2aliceExampleSeededUser0001", "user_2bobExampleSeededUser00002", "user_2carolExampleSeededUser003"}

// traffic is mixed load through nginx from several workers, each in a loop:
// tool calls (checked to answer for the caller's own client and user), two
// refreshes in ten operations, a revocation (then the revoked grant's
// access token is polled until refused, bound 15 s, and the worker signs in
// again), a registration. It counts every outcome, notes invariant
// violations (a 500, a wrong answer, a revoked grant still accepted), keeps
// the time of every answer that was neither a success nor a refusal (the
// error window) and records every acknowledged write that must survive a
// Redis failover, for verify.
type traffic struct {
	e          *e2etest.Env
	mu         sync.Mutex
	table      map[string]map[string]int // op -> outcome -> count
	violations []string
	failures   []time.Time // answers that were errors (5xx, transport)
	writes     []ackedWrite
	finals     []*signedIn
	wg         sync.WaitGroup
	stop       chan struct{}
	halted     sync.Once
}

// ackedWrite is a write the proxy acknowledged (2xx) that must persist.
type ackedWrite struct {
	kind string // "register", "sign-in", "refresh", "revoke"
	at   time.Time
	c    *e2etest.Client
	// refresh is the refresh token the write made current (sign-in,
	// refresh), or the one it revoked (revoke).
	refresh string
}

// startTraffic starts workers; portBase spaces their redirect ports. They
// stop at halt, or at cleanup should the test end first.
func startTraffic(t *testing.T, e *e2etest.Env, workers, portBase int) *traffic {
	tr := &traffic{e: e, table: map[string]map[string]int{}, finals: make([]*signedIn, workers), stop: make(chan struct{})}
	t.Cleanup(tr.halt)
	for w := range workers {
		tr.wg.Add(1)
		go tr.worker(w, portBase+w*500)
	}
	return tr
}

// halt stops the workers and waits for them; later calls do nothing.
func (tr *traffic) halt() {
	tr.halted.Do(func() {
		close(tr.stop)
		tr.wg.Wait()
	})
}

func (tr *traffic) record(op, outcome, violation string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.table[op] == nil {
		tr.table[op] = map[string]int{}
	}
	tr.table[op][outcome]++
	if violation != "" && len(tr.violations) < 50 {
		tr.violations = append(tr.violations, op+": "+violation)
	}
	if outcome == "transport error" || outcome == "failed" || strings.HasPrefix(outcome, "5") {
		tr.failures = append(tr.failures, time.Now())
	}
}

func (tr *traffic) acked(w ackedWrite) {
	w.at = time.Now()
	tr.mu.Lock()
	tr.writes = append(tr.writes, w)
	tr.mu.Unlock()
}

// ops is how many answers the workers have counted.
func (tr *traffic) ops() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, m := range tr.table {
		for _, v := range m {
			n += v
		}
	}
	return n
}

// waitOps waits until the workers have counted n more answers (bounded).
func (tr *traffic) waitOps(t *testing.T, n int) {
	t.Helper()
	target := tr.ops() + n
	for deadline := time.Now().Add(3 * time.Minute); tr.ops() < target; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the traffic made %d of %d operations in 3 minutes", tr.ops(), target)
		}
	}
}

func status500(err error) bool { return err != nil && strings.Contains(err.Error(), " 500") }

func outcome(status int, err error) string {
	if status == 0 && err != nil {
		return "transport error"
	}
	return fmt.Sprint(status)
}

func (tr *traffic) worker(w, port int) {
	defer tr.wg.Done()
	e := tr.e
	user := users[w%len(users)]
	var u *signedIn
	for n := 0; ; n++ {
		select {
		case <-tr.stop:
			tr.finals[w] = u
			return
		default:
		}
		if u == nil {
			v, err := loginAs(e, port+n%500, user)
			switch {
			case err == nil:
				tr.record("sign-in", "ok", "")
				tr.acked(ackedWrite{kind: "sign-in", c: v.c, refresh: v.c.RefreshToken})
				u = v
			case status500(err):
				tr.record("sign-in", "500", err.Error())
			default:
				tr.record("sign-in", "failed", "")
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		switch n % 10 {
		case 6, 7:
			status, out, err := e.TryPostForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {u.c.RefreshToken}}, u.c)
			tr.record("refresh", outcome(status, err), map[bool]string{true: "500"}[status == http.StatusInternalServerError])
			if err == nil && status == http.StatusOK {
				u.c.AccessToken, u.c.RefreshToken, u.session = out["access_token"].(string), out["refresh_token"].(string), ""
				tr.acked(ackedWrite{kind: "refresh", c: u.c, refresh: u.c.RefreshToken})
			}
		case 8:
			status, _, err := e.TryPostForm("/revoke", url.Values{"token": {u.c.RefreshToken}, "token_type_hint": {"refresh_token"}}, u.c)
			tr.record("revoke", outcome(status, err), map[bool]string{true: "500"}[status == http.StatusInternalServerError])
			if status != http.StatusOK {
				continue
			}
			tr.acked(ackedWrite{kind: "revoke", c: u.c, refresh: u.c.RefreshToken})
			revoked := &signedIn{c: u.c, user: u.user}
			u = nil // sign in again
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				st, err := revoked.toolCall(e)
				if st == http.StatusUnauthorized {
					tr.record("revoked token", "refused", "")
					break
				}
				if st == http.StatusOK && err != nil {
					tr.record("revoked token", "wrong answer", err.Error())
				}
				if time.Now().After(deadline) {
					if st == http.StatusOK {
						tr.record("revoked token", "still accepted", "a revoked grant still answers 15s after its revocation")
					} else {
						// Redis is failing over (503) or a replica is down:
						// not an answer either way; verify checks the grant
						// after the run.
						tr.record("revoked token", fmt.Sprintf("undecided (%s at the deadline)", outcome(st, err)), "")
					}
					break
				}
			}
		case 5:
			c, err := e.TryRegister(fmt.Sprintf("http://127.0.0.1:%d/callback", port+499))
			viol := ""
			if status500(err) {
				viol = err.Error()
			}
			tr.record("register", map[bool]string{true: "201", false: "failed"}[err == nil], viol)
			if err == nil {
				tr.acked(ackedWrite{kind: "register", c: c})
			}
		default:
			status, err := u.toolCall(e)
			viol := ""
			if status == http.StatusInternalServerError {
				viol = "500"
			} else if status == http.StatusOK && err != nil {
				viol = err.Error() // answered for another client or user
			}
			if status != http.StatusOK {
				u.session = ""
			}
			tr.record("tools/call", outcome(status, err), viol)
		}
	}
}

// lostWrite is an acknowledged write that did not survive.
type lostWrite struct {
	ackedWrite
	why string
}

// verify checks, after the traffic stopped, that every acknowledged write
// still holds: each registration reads back (RFC 7592 GET); each revoked
// refresh token is refused; for every grant not revoked, the refresh token
// of its last acknowledged sign-in or rotation is accepted (which proves
// the grant, its client and that rotation survived). It returns the writes
// that did not hold, and how many it checked.
func (tr *traffic) verify(t *testing.T) (lost []lostWrite, checked int) {
	t.Helper()
	tr.mu.Lock()
	writes := slices.Clone(tr.writes)
	tr.mu.Unlock()
	e := tr.e
	revoked := map[string]bool{}
	last := map[string]ackedWrite{} // client id -> its grant's last sign-in or rotation
	for _, w := range writes {
		switch w.kind {
		case "revoke":
			revoked[w.c.ID] = true
		case "sign-in", "refresh":
			last[w.c.ID] = w
		}
	}
	for _, w := range writes {
		switch w.kind {
		case "register":
			checked++
			status, err := tr.readRegistration(w.c)
			switch {
			case err != nil || (status != http.StatusOK && status != http.StatusUnauthorized && status != http.StatusNotFound):
				t.Errorf("could not check registration %s: %d %v", w.c.ID, status, err)
			case status != http.StatusOK:
				lost = append(lost, lostWrite{w, fmt.Sprintf("registration gone (%d)", status)})
			}
		case "revoke":
			checked++
			status, _, err := e.TryPostForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {w.refresh}}, w.c)
			switch {
			case err != nil || status >= 500:
				t.Errorf("could not check revocation for %s: %d %v", w.c.ID, status, err)
			case status == http.StatusOK:
				lost = append(lost, lostWrite{w, "revoked refresh token accepted again"})
			}
		}
	}
	for id, w := range last {
		if revoked[id] {
			continue
		}
		checked++
		status, out, err := e.TryPostForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {w.refresh}}, w.c)
		switch {
		case err != nil || status >= 500:
			t.Errorf("could not check the grant of %s: %d %v", id, status, err)
		case status != http.StatusOK:
			lost = append(lost, lostWrite{w, fmt.Sprintf("the %s's refresh token refused: %d %v", w.kind, status, out["error"])})
		}
	}
	return lost, checked
}

// readRegistration reads a client's registration back (RFC 7592 §2.1).
func (tr *traffic) readRegistration(c *e2etest.Client) (int, error) {
	req, err := http.NewRequest(http.MethodGet, c.RegistrationURI, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.RegistrationToken)
	resp, err := tr.e.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// summary is the outcome table, one line per operation.
func (tr *traffic) summary() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	ops := make([]string, 0, len(tr.table))
	for op := range tr.table {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	var b strings.Builder
	fmt.Fprintf(&b, "  %-14s %s\n", "operation", "outcomes")
	for _, op := range ops {
		fmt.Fprintf(&b, "  %-14s %v\n", op, tr.table[op])
	}
	return b.String()
}

// errorWindow is the span of failed answers from since on: the first and
// the last, relative to since, and how many.
func (tr *traffic) errorWindow(since time.Time) (first, last time.Duration, n int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, at := range tr.failures {
		if at.Before(since) {
			continue
		}
		if n == 0 {
			first = at.Sub(since)
		}
		last, n = at.Sub(since), n+1
	}
	return first, last, n
}

// checkViolations fails the test for every invariant broken.
func (tr *traffic) checkViolations(t *testing.T) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, v := range tr.violations {
		t.Errorf("invariant broken: %s", v)
	}
}
