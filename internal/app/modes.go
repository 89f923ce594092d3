package app

import (
	"strings"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/config"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/mcpserver"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/proxy"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/verifier"
)

// The parts that differ between AUTH_MODEs; everything else is assembled
// the same way in every mode, so /mcp, its tools and the tool policy cannot
// drift apart.

// introspector is how the verifier asks Clerk about an access token:
// /oauth/token_info with the confidential application's credentials, or, in
// clerk mode without them, the Backend API verify call with the secret key.
func introspector(cfg config.Config, cl *clerk.Client) verifier.Clerk {
	if cfg.AuthMode == config.AuthClerk && cfg.ClerkClientID == "" {
		return clerk.BackendIntrospector{Client: cl}
	}
	return cl
}

// authorizationServer is the issuer the protected-resource metadata names:
// the proxy, or Clerk in clerk mode.
func authorizationServer(cfg config.Config) string {
	if cfg.AuthMode == config.AuthClerk {
		return cfg.ClerkIssuer
	}
	return cfg.Issuer()
}

// mcpVerifier checks the bearer tokens /mcp receives: the proxy's own
// tokens, or Clerk's in clerk mode (on the same caches).
func mcpVerifier(cfg config.Config, v *verifier.Verifier, cl *clerk.Client) mcpserver.Verifier {
	if cfg.AuthMode == config.AuthClerk {
		return verifier.NewClerkMode(v, verifier.ClerkModeConfig{
			Resource: cfg.Resource(), AllowedClients: cfg.ClerkAllowedClients, RequiredScopes: cfg.ClerkModeRequiredScopes(),
		}, cl)
	}
	return v
}

// appConfig is app mode's sign-in through the team's web app: its URL, and
// its origin as the one azp its session tokens may carry. Empty otherwise.
func appConfig(cfg config.Config) proxy.AppConfig {
	if cfg.AuthMode != config.AuthApp {
		return proxy.AppConfig{}
	}
	return proxy.AppConfig{URL: cfg.AppURL, AuthorizedParties: []string{cfg.AppOrigin()}}
}

// exchangeConfig is RFC 8693 token exchange: the upstreams' clients the
// operator allowed, the assertions' audiences (every upstream URL), and
// Clerk as the only target of the token handed out.
func exchangeConfig(cfg config.Config) proxy.ExchangeConfig {
	if len(cfg.TokenExchangeClients) == 0 {
		return proxy.ExchangeConfig{}
	}
	return proxy.ExchangeConfig{Clients: cfg.TokenExchangeClients, Audiences: cfg.UpstreamURLs(),
		Targets: []string{cfg.ClerkIssuer, strings.TrimSuffix(cfg.ClerkAPIURL, "/")}}
}
