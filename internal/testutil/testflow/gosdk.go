package testflow

import (
	"context"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// GoSDKHandler is the official go-sdk client's OAuth authorization-code
// handler as a public client registering by DCR with redirect, the person at
// the browser played by a Browser making choices. seen, when set, is told
// each authorization URL the handler opens (one per sign-in).
func GoSDKHandler(name, redirect string, choices Choices, seen func(authURL string)) (*auth.AuthorizationCodeHandler, error) {
	return auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: name, RedirectURIs: []string{redirect}, TokenEndpointAuthMethod: "none",
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		}},
		RedirectURL:         redirect,
		RequestRefreshToken: true,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			if seen != nil {
				seen(args.URL)
			}
			final, err := NewBrowser().Authorize(ctx, args.URL, redirect, choices)
			if err != nil {
				return nil, err
			}
			q := final.Query()
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
	})
}
