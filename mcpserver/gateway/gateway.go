// Package gateway is gateway mode: the protected /mcp forwards each
// authenticated request to an existing MCP server (streamable HTTP) instead
// of serving the built-in tools, and streams its answer back.
//
// It sits behind mcpserver's Host/Origin guard and bearer middleware (see
// mcpserver.Server.SetHandler), so it only ever sees verified requests.
// What it adds, and why:
//
//   - the client's Authorization and cookies never reach the upstream; the
//     upstream learns who is calling from a short-lived JWT assertion signed
//     with the proxy's keys (assertion.go), verifiable with its JWKS;
//   - Mcp-Session-Id values minted by the upstream are handed to the client
//     wrapped and bound to the user (mcpserver.Server.BindSession), so one
//     user cannot ride another's upstream session, on any replica;
//   - the tool policy (toolpolicy) applies to upstream tools: tools/list
//     answers are filtered, forbidden tools/call refused before they leave;
//   - an upstream that is down, slow to answer or answering garbage gets the
//     client a JSON-RPC error with 502/504, never a hang or a 500 of ours,
//     and an upstream 401/403 is never passed off as the proxy's own.
package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mcpwire"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver/toolpolicy"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

// Header names the upstream reads. Documented in the README; upstreams
// depend on them, so they do not change.
const (
	// AssertionHeader carries the signed identity assertion (always sent).
	AssertionHeader = "X-Clerk-MCP-Assertion"
	// UserHeader and EmailHeader carry the user id and email in plain text,
	// only when ForwardUserHeaders is on (upstreams on a trusted network).
	UserHeader  = "X-Forwarded-User"
	EmailHeader = "X-Forwarded-Email"
	// ClerkTokenHeader carries the user's live Clerk access token, only when
	// ForwardClerkToken is on (upstreams that call Clerk as the user).
	ClerkTokenHeader = "X-Clerk-Access-Token"
)

// Limits on what the gateway holds in memory at once.
const (
	// MaxRequestBody bounds a client's POST body, as the built-in /mcp does.
	MaxRequestBody = 4 << 20
	// maxUpstreamMessage bounds one upstream JSON answer or one SSE event:
	// the gateway reads those whole (to check or filter them), never a
	// whole stream.
	maxUpstreamMessage = 16 << 20
)

// Config configures the gateway.
type Config struct {
	// Upstream is the upstream's full MCP URL (UPSTREAM_MCP_URL). It comes
	// from configuration only, never from a request (no SSRF).
	Upstream string
	// Issuer is the proxy's issuer (BASE_URL): the assertion's iss.
	Issuer string
	// HeaderTimeout bounds the wait for the upstream's response headers. An
	// open event stream is never timed out.
	HeaderTimeout time.Duration
	// Policy decides which upstream tools a user sees and may call.
	Policy *toolpolicy.Policy
	// ForwardUserHeaders adds UserHeader and EmailHeader.
	ForwardUserHeaders bool
	// ForwardClerkToken adds ClerkTokenHeader.
	ForwardClerkToken bool
}

// Resource is what the gateway needs of the protected endpoint in front of
// it (mcpserver.Server).
type Resource interface {
	BindSession(userID, upstreamID string) (string, bool)
	UpstreamSession(userID, id string) (string, bool)
	StepUp(w http.ResponseWriter, held, missing []string)
}

// Deps are the gateway's collaborators.
type Deps struct {
	Resource  Resource
	Signer    Signer
	Logger    *slog.Logger
	Now       func() time.Time
	Transport http.RoundTripper // default: a transport with HeaderTimeout
}

// Gateway is the http.Handler behind /mcp in gateway mode.
type Gateway struct {
	cfg       Config
	upstream  *url.URL
	res       Resource
	asserts   *assertions
	log       *slog.Logger
	now       func() time.Time
	transport http.RoundTripper
}

// ParseUpstream validates an upstream MCP URL: absolute http or https, a
// host, no userinfo (credentials belong in the assertion, not the URL) and
// no fragment. Loopback and private hosts are fine: an upstream on the same
// host or network, unreachable from outside, is the normal deployment.
func ParseUpstream(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%q is not a URL", raw)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q must use http or https", raw)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("%q has no host", raw)
	case u.User != nil:
		return nil, fmt.Errorf("%q must not contain userinfo", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, fmt.Errorf("%q must not have a fragment", raw)
	}
	return u, nil
}

// New builds a gateway.
func New(cfg Config, d Deps) (*Gateway, error) {
	u, err := ParseUpstream(cfg.Upstream)
	if err != nil {
		return nil, fmt.Errorf("gateway: upstream: %w", err)
	}
	if d.Resource == nil || d.Signer == nil {
		return nil, errors.New("gateway: a resource and a signer are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = 30 * time.Second
	}
	if d.Transport == nil {
		d.Transport = &http.Transport{
			// No Proxy: the upstream is reached directly, as configured.
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: cfg.HeaderTimeout,
		}
	}
	return &Gateway{
		cfg: cfg, upstream: u, res: d.Resource, log: d.Logger, now: d.Now, transport: d.Transport,
		asserts: newAssertions(d.Signer, cfg.Issuer, cfg.Upstream, d.Now),
	}, nil
}

// exchange is one client request on its way through the gateway.
type exchange struct {
	id      *verifier.Identity
	subject toolpolicy.Subject
	msgs    []mcpwire.Message
	batch   bool
	body    []byte
	// lists holds the ids of tools/list requests, whose answers are filtered.
	lists map[string]bool
	// calls are the tools/call requests, each audited once.
	calls   []mcpwire.Message
	start   time.Time
	private bool // the protocol has cacheScope: mark filtered lists private
}

// ServeHTTP forwards one authenticated request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := mcpserver.IdentityFrom(r.Context())
	if !ok {
		// The bearer middleware always sets one; without it nothing is
		// forwarded (fail closed).
		writeRPCError(w, http.StatusUnauthorized, nil, mcpwire.CodeForbidden, "this MCP endpoint requires a signed-in user")
		return
	}
	switch r.Method {
	case http.MethodPost, http.MethodGet, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeRPCError(w, http.StatusMethodNotAllowed, nil, codeInvalidRequest, "method not allowed on the MCP endpoint")
		return
	}
	x := &exchange{id: id, subject: id.Subject(), start: g.now(), private: isModern(r.Header.Get("MCP-Protocol-Version"))}
	if r.Method == http.MethodPost && !g.readRequest(w, r, x) {
		return
	}
	req, ok := g.upstreamRequest(w, r, x)
	if !ok {
		return
	}
	resp, err := g.transport.RoundTrip(req)
	if err != nil {
		g.upstreamFailed(w, r, x, err)
		return
	}
	defer resp.Body.Close()
	g.relay(w, r, x, resp)
}

// readRequest reads and checks a POST body: JSON-RPC, the 2026-07-28
// headers agree with it, and the policy allows every tool it calls. It
// answers the client itself and returns false when the request stops here.
func (g *Gateway) readRequest(w http.ResponseWriter, r *http.Request, x *exchange) bool {
	body, berr := httpx.ReadBody(w, r, MaxRequestBody)
	if berr != nil {
		writeRPCError(w, berr.Status, nil, codeInvalidRequest, berr.Description)
		return false
	}
	msgs, batch, err := mcpwire.Parse(body)
	if err != nil {
		writeRPCError(w, http.StatusBadRequest, nil, codeParseError, "the body is not a JSON-RPC message")
		return false
	}
	if err := mcpwire.CheckHeaders(r.Header, msgs, batch); err != nil {
		writeRPCError(w, http.StatusBadRequest, msgs[0].ID, mcpwire.HeaderMismatchCode, err.Error())
		return false
	}
	x.body, x.msgs, x.batch = body, msgs, batch
	for _, m := range msgs {
		switch {
		case m.Method == "tools/list" && m.IsRequest():
			if x.lists == nil {
				x.lists = map[string]bool{}
			}
			x.lists[string(compact(m.ID))] = true
		case m.Method == "tools/call":
			x.calls = append(x.calls, m)
		}
	}
	return g.authorizeCalls(w, r, x)
}

// authorizeCalls applies the policy to every tools/call of the body before
// anything reaches the upstream. Scopes are asked for with the same 403
// step-up challenge as the built-in endpoint; an organisation refusal is a
// JSON-RPC error (nothing the client can fix by re-authorizing).
func (g *Gateway) authorizeCalls(w http.ResponseWriter, r *http.Request, x *exchange) bool {
	var stepUp []string
	refused := false
	for _, m := range x.calls {
		d := g.cfg.Policy.Check(m.Name, x.subject)
		if d.Allowed() {
			continue
		}
		g.audit(r.Context(), x, m.Name, d, 0)
		if d.Outcome == toolpolicy.InsufficientScope {
			stepUp = appendNew(stepUp, d.Missing...)
		} else {
			refused = true
		}
	}
	switch {
	case len(stepUp) > 0:
		g.res.StepUp(w, x.id.Scopes, stepUp)
		return false
	case refused:
		// The same answer as the built-in endpoint: a JSON-RPC error with HTTP
		// 200, not a 403 (some clients take a 403 for an authorization failure
		// and start a sign-in that cannot help; Pomerium answers alike).
		oautherr.WriteJSON(w, http.StatusOK, mcpwire.Responses(x.batch, mcpserver.OrgRefusals(g.cfg.Policy, x.msgs, x.batch, x.id)))
		return false
	}
	return true
}

// upstreamRequest builds the request to the upstream: the client's method,
// body and MCP headers, none of its credentials, and the identity.
func (g *Gateway) upstreamRequest(w http.ResponseWriter, r *http.Request, x *exchange) (*http.Request, bool) {
	var body io.Reader = http.NoBody
	if x.body != nil {
		body = bytes.NewReader(x.body)
	}
	// The client's context: its disconnect cancels the upstream request.
	req, err := http.NewRequestWithContext(r.Context(), r.Method, g.upstream.String(), body)
	if err != nil {
		writeRPCError(w, http.StatusBadGateway, nil, codeUpstream, "the upstream MCP server cannot be reached")
		return nil, false
	}
	copyHeaders(req.Header, r.Header, dropRequest)
	if x.body != nil {
		req.ContentLength = int64(len(x.body))
	}
	if sid := r.Header.Get("Mcp-Session-Id"); sid != "" {
		up, ok := g.res.UpstreamSession(x.id.UserID, sid)
		if !ok {
			// Only ids this gateway bound reach here (the middleware checked
			// ownership), but fail closed all the same.
			writeRPCError(w, http.StatusNotFound, nil, codeInvalidRequest, "unknown MCP session")
			return nil, false
		}
		req.Header.Set("Mcp-Session-Id", up)
	}
	assertion, err := g.asserts.get(x.id)
	if err != nil {
		g.log.ErrorContext(r.Context(), "gateway: cannot sign the identity assertion", "error", err.Error(), "request_id", httpx.RequestID(r.Context()))
		writeRPCError(w, http.StatusServiceUnavailable, nil, codeUpstream, "the gateway cannot vouch for the user right now; retry shortly")
		return nil, false
	}
	req.Header.Set(AssertionHeader, assertion)
	if g.cfg.ForwardUserHeaders {
		req.Header.Set(UserHeader, x.id.UserID)
		if x.id.Email != "" {
			req.Header.Set(EmailHeader, x.id.Email)
		}
	}
	if g.cfg.ForwardClerkToken && x.id.ClerkToken != "" {
		req.Header.Set(ClerkTokenHeader, x.id.ClerkToken)
	}
	return req, true
}

// upstreamFailed answers a request the upstream did not answer: 504 when it
// was too slow to send its headers, 502 otherwise. A client that went away
// gets nothing (there is nobody to answer).
func (g *Gateway) upstreamFailed(w http.ResponseWriter, r *http.Request, x *exchange, err error) {
	if r.Context().Err() != nil {
		g.auditCalls(r.Context(), x, 499)
		return
	}
	status, msg := http.StatusBadGateway, "the upstream MCP server cannot be reached"
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		status, msg = http.StatusGatewayTimeout, "the upstream MCP server did not answer in time"
	}
	g.log.WarnContext(r.Context(), "gateway: upstream request failed", "status", status, "error", err.Error(), "request_id", httpx.RequestID(r.Context()))
	g.auditCalls(r.Context(), x, status)
	writeRPCError(w, status, firstID(x), codeUpstream, msg)
}

// relay sends the upstream's answer to the client: JSON answers checked (and
// tools/list filtered) whole, event streams event by event, 202 and empty
// answers as they are. Upstream refusals of the gateway itself (401/403) and
// server errors become 502: passed through, the client would take them for
// the proxy's own and start a new sign-in, or blame the wrong server.
func (g *Gateway) relay(w http.ResponseWriter, r *http.Request, x *exchange, resp *http.Response) {
	ctx := r.Context()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		g.log.WarnContext(ctx, "gateway: the upstream refused the gateway's request; does it accept the identity assertion?", "upstream_status", resp.StatusCode, "request_id", httpx.RequestID(ctx))
		g.auditCalls(ctx, x, resp.StatusCode)
		writeRPCError(w, http.StatusBadGateway, firstID(x), codeUpstream, fmt.Sprintf("the upstream MCP server refused the gateway (HTTP %d): it does not accept the gateway's identity assertion", resp.StatusCode))
		return
	case resp.StatusCode >= 500:
		g.log.WarnContext(ctx, "gateway: upstream server error", "upstream_status", resp.StatusCode, "request_id", httpx.RequestID(ctx))
		g.auditCalls(ctx, x, resp.StatusCode)
		writeRPCError(w, http.StatusBadGateway, firstID(x), codeUpstream, fmt.Sprintf("the upstream MCP server failed (HTTP %d)", resp.StatusCode))
		return
	}
	// The upstream's headers wait in h until the answer is known to be
	// usable; a gateway error is written without them.
	h := http.Header{}
	copyHeaders(h, resp.Header, dropResponse)
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
		bound, ok := g.res.BindSession(x.id.UserID, sid)
		if !ok {
			g.auditCalls(ctx, x, resp.StatusCode)
			writeRPCError(w, http.StatusBadGateway, firstID(x), codeUpstream, "the upstream MCP server sent an unusable session id")
			return
		}
		h.Set("Mcp-Session-Id", bound)
	}
	ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	mediaType := strings.ToLower(strings.TrimSpace(ct))
	if mediaType == "text/event-stream" {
		commit(w, h)
		w.WriteHeader(resp.StatusCode)
		// Errors mid-stream cannot change the status any more; the client
		// sees the stream end, as it would had the upstream closed it.
		if err := copyEvents(w, resp.Body, x.rewrite(g.cfg.Policy)); err != nil && ctx.Err() == nil {
			g.log.WarnContext(ctx, "gateway: upstream event stream ended badly", "error", err.Error(), "request_id", httpx.RequestID(ctx))
		}
		// After the stream: the audit line's duration is the whole call's.
		g.auditCalls(ctx, x, resp.StatusCode)
		return
	}
	raw, err := readBounded(resp.Body, maxUpstreamMessage)
	empty := err == nil && len(bytes.TrimSpace(raw)) == 0
	var body []byte
	if err == nil && !empty && mediaType == "application/json" {
		body, err = rewriteJSON(raw, x.rewrite(g.cfg.Policy))
	}
	switch {
	case empty && resp.StatusCode < 300:
		// 202 for a notification or response, 200 for a DELETE: no body,
		// whatever the content type says.
		g.auditCalls(ctx, x, resp.StatusCode)
		h.Del("Content-Type")
		commit(w, h)
		w.WriteHeader(resp.StatusCode)
	case err == nil && body != nil:
		g.auditCalls(ctx, x, resp.StatusCode)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		commit(w, h)
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
	case resp.StatusCode >= 400:
		// 400, 404 (an unknown or expired session: the client must start a
		// new one), 405, 406...: the status tells the client what to do, so
		// it is kept; the body, often plain text, becomes JSON-RPC.
		g.auditCalls(ctx, x, resp.StatusCode)
		writeRPCError(w, resp.StatusCode, firstID(x), codeUpstream, fmt.Sprintf("the upstream MCP server answered HTTP %d", resp.StatusCode))
	default:
		reason := fmt.Sprintf("content type %q", mediaType)
		switch {
		case errors.Is(err, errNotJSONRPC):
			reason = "a body that is not JSON-RPC"
		case errors.Is(err, errTooLarge):
			reason = "an answer over the gateway's size limit"
		case err != nil:
			reason = "a body that could not be read"
		}
		g.log.WarnContext(ctx, "gateway: unusable upstream answer", "reason", reason, "upstream_status", resp.StatusCode, "request_id", httpx.RequestID(ctx))
		g.auditCalls(ctx, x, http.StatusBadGateway)
		writeRPCError(w, http.StatusBadGateway, firstID(x), codeUpstream, fmt.Sprintf("the upstream MCP server answered HTTP %d with %s, not MCP", resp.StatusCode, reason))
	}
}

// rewrite says how answers to this exchange are rewritten; nil when they
// pass untouched (no tools/list in the request).
func (x *exchange) rewrite(p *toolpolicy.Policy) *listFilter {
	// Only organisation rules hide tools (toolpolicy.Visible): without any,
	// and without a cacheScope to set, answers pass byte for byte.
	if len(x.lists) == 0 || !p.AnyOrg() && !x.private {
		return nil
	}
	return &listFilter{ids: x.lists, visible: func(tool string) bool { return p.Visible(tool, x.subject) }, private: x.private}
}

func firstID(x *exchange) []byte {
	if len(x.msgs) == 1 {
		return x.msgs[0].ID
	}
	return nil
}

func appendNew(list []string, items ...string) []string {
	for _, s := range items {
		found := false
		for _, have := range list {
			found = found || have == s
		}
		if !found {
			list = append(list, s)
		}
	}
	return list
}

var errTooLarge = errors.New("upstream answer too large")

func readBounded(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errTooLarge
	}
	return b, nil
}
