package app

import (
	"context"
	"fmt"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/config"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver/gateway"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver/toolpolicy"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

// mount is one protected resource the proxy serves: /mcp (the built-in
// tools, or UPSTREAM_MCP_URL), or an upstream of UPSTREAMS at its own path.
// Each has its own RFC 9728 metadata, token audience, scopes and tool
// policy; one authorization server issues the tokens of all.
type mount struct {
	resource string
	name     string // resource_name; empty: the default
	scopes   []string
	policy   *toolpolicy.Policy
	// upstream, when set, is the MCP server the mount forwards to.
	upstream                    string
	timeout                     time.Duration
	forwardUser, forwardClerkAT bool
	noDemoTools                 bool
}

// resourceMounts lists the resources to serve, /mcp first.
func resourceMounts(cfg config.Config, policy *toolpolicy.Policy, noDemoTools bool) []mount {
	out := []mount{{
		resource: cfg.Resource(), scopes: cfg.ScopesSupported, policy: policy, noDemoTools: noDemoTools,
		upstream: cfg.UpstreamURL, timeout: cfg.UpstreamTimeout, forwardUser: cfg.UpstreamUserHeaders, forwardClerkAT: cfg.UpstreamClerkToken,
	}}
	for _, u := range cfg.Upstreams() {
		out = append(out, mount{
			resource: cfg.UpstreamResource(u.Path), name: u.Name, scopes: u.Scopes, policy: u.Policy(), noDemoTools: true,
			upstream: u.URL, timeout: u.Timeout, forwardUser: u.ForwardUserHeaders, forwardClerkAT: u.ForwardClerkToken,
		})
	}
	return out
}

// anyOrgRule says whether some mount's tool policy depends on the user's
// organisation role (asked per request: rules may be attached while
// serving).
func anyOrgRule(mounts []mount) bool {
	for _, m := range mounts {
		if m.policy.AnyOrg() {
			return true
		}
	}
	return false
}

// serveResource builds the protected endpoint of one mount: the same
// Host/Origin guard, bearer middleware and metadata for every resource, in
// front of the built-in tools or a gateway to the mount's upstream. Its
// verifier refuses tokens issued for another resource.
func serveResource(cfg config.Config, m mount, d mcpserver.Deps, signer gateway.Signer) (*mcpserver.Server, error) {
	if cfg.AuthMode != config.AuthClerk {
		d.Verifier = audienceVerifier{next: d.Verifier, resource: m.resource}
	}
	rs := mcpserver.New(mcpserver.Config{
		Issuer: cfg.Issuer(), Resource: m.resource, Scopes: m.scopes, Policy: m.policy, ServiceName: m.name,
		AllowedOrigins: cfg.AllowedOrigins, Version: Version, NoDemoTools: m.noDemoTools, AuthorizationServer: authorizationServer(cfg),
		SessionIdleTTL: cfg.SessionIdleTTL,
	}, d)
	if m.upstream == "" {
		return rs, nil
	}
	gw, err := gateway.New(gateway.Config{
		Upstream: m.upstream, Issuer: cfg.Issuer(), HeaderTimeout: m.timeout, Policy: m.policy,
		ForwardUserHeaders: m.forwardUser, ForwardClerkToken: m.forwardClerkAT,
	}, gateway.Deps{Resource: rs, Signer: signer, Logger: d.Logger, Now: d.Now})
	if err != nil {
		return nil, err
	}
	rs.SetHandler(gw)
	return rs, nil
}

// audienceVerifier accepts only tokens issued for resource (RFC 8707: the
// token's aud). The verifier accepts the tokens of every resource of this
// authorization server; each endpoint refuses the others' with the same
// 401 invalid_token as any bad token, its challenge naming its own metadata,
// so a client signs in for this resource.
type audienceVerifier struct {
	next     mcpserver.Verifier
	resource string
}

func (v audienceVerifier) Verify(ctx context.Context, token string) (*verifier.Identity, error) {
	id, err := v.next.Verify(ctx, token)
	if err == nil && id.Resource != v.resource {
		return nil, fmt.Errorf("%w: the token was issued for another resource (%s)", verifier.ErrInvalidToken, id.Resource)
	}
	return id, err
}
