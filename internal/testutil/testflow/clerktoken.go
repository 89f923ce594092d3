package testflow

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ClerkClient is a client registered at the fake Clerk by DCR.
type ClerkClient struct {
	ID, Secret, RedirectURI string
}

// RegisterAtClerk registers a confidential client at the fake Clerk's
// /oauth/register (its -dcr flag), the way an MCP client does in clerk mode.
func RegisterAtClerk(ctx context.Context, clerkURL, scope string) (ClerkClient, error) {
	redirect := "http://127.0.0.1:41777/callback"
	body, _ := json.Marshal(map[string]any{"client_name": "test client", "redirect_uris": []string{redirect}, "scope": scope,
		"token_endpoint_auth_method": "client_secret_basic"})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, clerkURL+"/oauth/register", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ClerkClient{}, err
	}
	defer resp.Body.Close()
	var out struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&out) != nil {
		return ClerkClient{}, fmt.Errorf("register at Clerk: HTTP %d", resp.StatusCode)
	}
	return ClerkClient{ID: out.ClientID, Secret: out.ClientSecret, RedirectURI: redirect}, nil
}

// ClerkToken signs the preselected user in at the fake Clerk for c (PKCE,
// the RFC 8707 resource when not empty) and redeems the code: Clerk's own
// access token, as an MCP client holds it in clerk mode.
func ClerkToken(ctx context.Context, clerkURL string, c ClerkClient, scope, resource string) (string, error) {
	vb := make([]byte, 32)
	_, _ = rand.Read(vb)
	verifier := base64.RawURLEncoding.EncodeToString(vb)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {c.RedirectURI}, "scope": {scope},
		"state": {"state-" + verifier[:8]}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	if resource != "" {
		q.Set("resource", resource)
	}
	final, err := NewBrowser().Authorize(ctx, clerkURL+"/oauth/authorize?"+q.Encode(), c.RedirectURI, Choices{})
	if err != nil {
		return "", err
	}
	code := final.Query().Get("code")
	if code == "" {
		return "", fmt.Errorf("no code: %s", final.RawQuery)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.RedirectURI}, "code_verifier": {verifier}}
	if resource != "" {
		form.Set("resource", resource)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, clerkURL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&tok) != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("token at Clerk: HTTP %d", resp.StatusCode)
	}
	return tok.AccessToken, nil
}
