package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/mcpwire"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver/toolpolicy"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

// How the tool policy (package toolpolicy) is applied at /mcp:
//
//   - scopes: checked on the HTTP request before mcp-go sees it; a missing
//     one is a 403 insufficient_scope step-up challenge (authenticate);
//   - organisation role / permission: a tools/call the caller may not make
//     is answered with a JSON-RPC error (mcpwire.CodeForbidden) before
//     mcp-go sees it, and the tool is left out of the caller's tools/list
//     (filterTools, with cacheScope "private" on the list);
//   - public tools: with at least one, a request without a token may
//     initialize, list tools and call public ones (anonymous);
//   - every tool handler additionally runs behind enforceTool, so a call
//     that reached mcp-go some other way is still refused.

// anonymousPrincipal owns the sessions opened without a token. It is never
// a Clerk user id, and its session MACs use their own label, so an anonymous
// session id is not usable by a signed-in user, nor the reverse: a client
// that signs in starts a new session (MCP: a 404 on a session means
// "initialize again"). An upgrade in place would let whoever opened the
// anonymous session (and knows its id) keep reading its event stream after
// the user signed in on it (session fixation).
const anonymousPrincipal = "\x00anonymous"

type anonKey struct{}

// isAnonymous says whether ctx is a request admitted without a token.
func isAnonymous(ctx context.Context) bool { v, _ := ctx.Value(anonKey{}).(bool); return v }

// anonymous serves or refuses a request that carries no token.
func (s *Server) anonymous(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if !s.policy.AnyPublic() {
		s.challenge(w, http.StatusUnauthorized, "", "", s.scopesToAuthorize(w, r))
		return
	}
	var msgs []mcpwire.Message
	if r.Method == http.MethodPost {
		var ok bool
		if msgs, _, ok = readMessages(w, r, true); !ok {
			return
		}
	}
	if !s.anonymousMay(r.Method, msgs) {
		s.challenge(w, http.StatusUnauthorized, "", "", s.scopesFor(msgs))
		return
	}
	if !s.sessionUsable(w, r, anonymousPrincipal) {
		return
	}
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), anonKey{}, true)))
}

// anonymousMay says whether a request without a token may go on: the
// session's own stream and its end (GET, DELETE), and POSTs whose every
// message is one of the lifecycle messages, a tools/list, a call of a public
// tool, or a call of a protected one from an Apps SDK client (answered by
// enforceTool with a sign-in result, not run). Anything else — resources,
// prompts, a protected tool from any other client, an unreadable body — is
// the 401 challenge, as with no public tool at all.
func (s *Server) anonymousMay(method string, msgs []mcpwire.Message) bool {
	switch method {
	case http.MethodGet, http.MethodDelete:
		return true
	case http.MethodPost:
	default:
		return false
	}
	if len(msgs) == 0 {
		return false
	}
	for _, m := range msgs {
		switch {
		case m.Method == "": // the client's answer to a server request
		case m.Method == string(mcp.MethodInitialize), m.Method == string(mcp.MethodPing),
			m.Method == string(mcp.MethodToolsList), strings.HasPrefix(m.Method, "notifications/"):
		case m.Method == string(mcp.MethodToolsCall):
			if !s.policy.Rule(m.Name).Public && !appsSDKClient(m) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// appsSDKClient says whether a tools/call comes from a client of the OpenAI
// Apps SDK convention (ChatGPT), which expects a protected tool called
// without a token to answer with a tool error result carrying
// _meta["mcp/www_authenticate"] rather than an HTTP 401 in the middle of a
// conversation. Such clients mark their calls with "openai/..." keys in
// params._meta (openai/userAgent, openai/locale, openai/subject, ...);
// other clients get the 401 the MCP authorization spec prescribes.
func appsSDKClient(m mcpwire.Message) bool {
	for k := range m.Meta() {
		if strings.HasPrefix(k, "openai/") {
			return true
		}
	}
	return false
}

// orgRefusals answers the tools/calls of msgs that the caller's
// organisation role or permissions do not allow. A batch with one refused
// call is refused whole: its other requests were not run either.
func (s *Server) orgRefusals(msgs []mcpwire.Message, batch bool, id *verifier.Identity) []mcpwire.Error {
	return OrgRefusals(s.policy, msgs, batch, id)
}

// OrgRefusals are the JSON-RPC errors answering the tools/call requests of
// msgs that p forbids id for its organisation role or permissions (none when
// all are allowed). In a batch with a refusal every request gets an error:
// nothing of it runs. The gateway answers its refusals with it too.
func OrgRefusals(p *toolpolicy.Policy, msgs []mcpwire.Message, batch bool, id *verifier.Identity) []mcpwire.Error {
	sub := id.Subject()
	var refused []mcpwire.Error
	for _, m := range msgs {
		if m.Method != string(mcp.MethodToolsCall) || !m.IsRequest() {
			continue
		}
		if d := p.Check(m.Name, sub); d.Outcome == toolpolicy.ForbiddenOrg {
			refused = append(refused, mcpwire.Error{ID: m.ID, Code: mcpwire.CodeForbidden, Message: orgMessage(m.Name, id, d),
				Data: map[string]any{"tool": m.Name, "missing": d.Missing}})
		}
	}
	if len(refused) == 0 || !batch {
		return refused
	}
	var all []mcpwire.Error
	for _, m := range msgs {
		if !m.IsRequest() {
			continue
		}
		e := mcpwire.Error{ID: m.ID, Code: mcpwire.CodeForbidden, Message: "not run: this batch also calls a tool you may not use"}
		for _, r := range refused {
			if string(r.ID) == string(m.ID) {
				e = r
			}
		}
		all = append(all, e)
	}
	return all
}

// orgMessage says why, and what the user can do about it.
func orgMessage(tool string, id *verifier.Identity, d toolpolicy.Decision) string {
	switch {
	case id != nil && id.OrgRoleUnknown:
		return fmt.Sprintf("the tool %q needs %s in your Clerk organisation, and Clerk cannot be asked for your role right now; retry shortly", tool, strings.Join(d.Missing, ", "))
	case id == nil || id.OrgID == "":
		return fmt.Sprintf("the tool %q needs an active Clerk organisation with %s; sign in again and choose an organisation", tool, strings.Join(d.Missing, ", "))
	}
	return fmt.Sprintf("the tool %q needs %s in your active Clerk organisation; ask an organisation admin for access", tool, strings.Join(d.Missing, ", "))
}

// filterTools is the tools/list a caller sees: without the tools its
// organisation role or permissions rule out. When some tool is public,
// every tool also says how it may be called, in the Apps SDK form
// _meta.securitySchemes: [{type: noauth}] for public tools, [{type: oauth2,
// scopes}] for the others, so clients can tell before calling which ones
// need sign-in. mcp-go also runs this filter on each call (a hidden tool is
// "not found"), behind the clearer refusal of orgRefusals.
func (s *Server) filterTools(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
	id, _ := IdentityFrom(ctx)
	sub := id.Subject()
	annotate := s.policy.AnyPublic()
	out := make([]mcp.Tool, 0, len(tools))
	for _, t := range tools {
		if !s.policy.Visible(t.Name, sub) {
			continue
		}
		if annotate {
			t = s.withSecuritySchemes(t)
		}
		out = append(out, t)
	}
	return out
}

// withSecuritySchemes returns t with its Apps SDK security schemes in _meta
// (a copy: the registered tool is shared by every caller).
func (s *Server) withSecuritySchemes(t mcp.Tool) mcp.Tool {
	meta := map[string]any{}
	if t.Meta != nil {
		for k, v := range t.Meta.AdditionalFields {
			meta[k] = v
		}
	}
	rule := s.policy.Rule(t.Name)
	scheme := map[string]any{"type": "noauth"}
	if !rule.Public {
		scheme = map[string]any{"type": "oauth2", "scopes": without(s.scopesFor([]mcpwire.Message{{Method: string(mcp.MethodToolsCall), Name: t.Name}}), []string{offlineAccess})}
	}
	meta["securitySchemes"] = []any{scheme}
	m := mcp.NewMetaFromMap(meta)
	if t.Meta != nil {
		m.ProgressToken = t.Meta.ProgressToken
	}
	t.Meta = m
	return t
}

// enforceTool runs around every tool handler: the policy once more (the
// HTTP layer answered every refusal a client can cause, but a handler must
// never run for a caller the policy refuses), and the sign-in result for an
// anonymous Apps SDK call of a protected tool.
func (s *Server) enforceTool(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id, _ := IdentityFrom(ctx)
		d := s.policy.Check(req.Params.Name, id.Subject())
		switch d.Outcome {
		case toolpolicy.Allowed:
			return next(ctx, req)
		case toolpolicy.Unauthenticated:
			return s.signInResult(req.Params.Name), nil
		case toolpolicy.ForbiddenOrg:
			return nil, errors.New(orgMessage(req.Params.Name, id, d))
		default:
			return nil, fmt.Errorf("the tool %q needs the scope %s", req.Params.Name, strings.Join(d.Missing, " "))
		}
	}
}

// signInResult is the Apps SDK answer to a protected tool called without a
// token: a tool error whose _meta["mcp/www_authenticate"] holds the same
// challenge the HTTP 401 would carry, which makes ChatGPT start sign-in.
func (s *Server) signInResult(tool string) *mcp.CallToolResult {
	scopes := s.scopesFor([]mcpwire.Message{{Method: string(mcp.MethodToolsCall), Name: tool}})
	res := mcp.NewToolResultError(fmt.Sprintf("Sign in to use %q: this tool needs an authorized Clerk account.", tool))
	res.Meta = mcp.NewMetaFromMap(map[string]any{"mcp/www_authenticate": []string{s.challengeHeader("", "", scopes)}})
	return res
}

// recoverTool turns a panicking tool handler into a JSON-RPC internal error
// for that call. It replaces mcp-go's WithRecovery, which puts the panic
// value (possibly internal data) in the error message the client sees; here
// it goes to the log with the stack, and the client gets a plain message.
func (s *Server) recoverTool(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (res *mcp.CallToolResult, err error) {
		defer func() {
			if p := recover(); p != nil {
				s.log.ErrorContext(ctx, "tool handler panicked", "tool", req.Params.Name, "panic", fmt.Sprint(p),
					"stack", string(debug.Stack()), "request_id", httpx.RequestID(ctx))
				res, err = nil, fmt.Errorf("the tool %q failed unexpectedly", req.Params.Name)
			}
		}()
		return next(ctx, req)
	}
}
