package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

const (
	fzAppState   = "fuzzAppState0123456789abcdefghijklmnopqrstuv"
	fzAppBinding = "fuzzAppBinding0123456789abcdefghijklmnopqrs"
	fzAppToken   = "fuzz.good.session-token"
)

// fzSessions accepts exactly one session token, for an active session.
type fzSessions struct{}

func (fzSessions) VerifySessionToken(_ context.Context, tok string, _ []string, _ time.Time, _ time.Duration) (clerk.SessionClaims, error) {
	if tok != fzAppToken {
		return clerk.SessionClaims{}, fmt.Errorf("%w: fuzz", clerk.ErrBadSessionToken)
	}
	return clerk.SessionClaims{Subject: "user_fuzz", SessionID: "sess_fuzz"}, nil
}

func (fzSessions) Session(_ context.Context, id string) (clerk.Session, error) {
	return clerk.Session{ID: id, UserID: "user_fuzz", Status: "active"}, nil
}

// FuzzAppCallback: whatever query and cookie reach app mode's /callback, it
// never answers 5xx, redirects only to the registered redirect URI of the
// flow's client, and issues a code only for the live state, from the browser
// holding its binding cookie, with the one good session token and no error;
// the app's error reaches the client as access_denied or server_error.
//
//	go test -run='^$' -fuzz='^FuzzAppCallback$' -fuzztime=20s ./proxy
func FuzzAppCallback(f *testing.F) {
	e := newFzEnv(f, func(c *Config, d *Deps) {
		c.App = AppConfig{URL: "https://app.example", AuthorizedParties: []string{"https://app.example"}}
		d.Sessions = fzSessions{}
	})
	bind := "cmp_bind_" + seal.HashHex(fzAppState)[:16] + "=" + fzAppBinding
	for _, s := range []struct{ query, cookie string }{
		{"state=" + fzAppState + "&clerk_token=" + fzAppToken, bind},
		{"state=" + fzAppState + "&clerk_token=" + fzAppToken, ""},
		{"state=" + fzAppState + "&clerk_token=other", bind},
		{"state=" + fzAppState + "&error=access_denied", bind},
		{"state=" + fzAppState + "&error=x&clerk_token=" + fzAppToken, bind},
		{"state=" + fzAppState + "x&clerk_token=" + fzAppToken, bind},
		{"state=" + fzAppState + "&state=" + fzAppState + "&clerk_token=" + fzAppToken, bind},
		{"%zz", bind}, {"", ""},
	} {
		f.Add(s.query, s.cookie)
	}
	req := authRequest{ClientID: fzPublicID, RedirectURI: fzRedirects[0], State: "client-state", CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		Scopes: []string{"openid"}, Resource: fzIssuer + "/mcp"}
	raw, _ := json.Marshal(upstreamRequest{Request: req, BindingHash: seal.Hash(fzAppBinding)})
	f.Fuzz(func(t *testing.T, query, cookie string) {
		// A live upstream state for every input (a callback consumes it).
		sealed, err := seal.SealWithSecret(fzAppState, raw, []byte(upstreamTicketAD), nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = e.st.PutTicket(context.Background(), store.KindUpstreamState, seal.HashHex(fzAppState), sealed, time.Hour)
		h := http.Header{}
		if cookie != "" {
			h.Set("Cookie", cookie)
		}
		rec := e.serve(http.MethodGet, AppCallbackPath, query, h, nil)
		loc := rec.Header().Get("Location")
		switch rec.Code {
		case http.StatusBadRequest, http.StatusForbidden:
			if loc != "" {
				t.Fatal("an error page redirects")
			}
			return
		case http.StatusFound:
		default:
			t.Fatalf("status %d for %q", rec.Code, query)
		}
		u, err := url.Parse(loc)
		if err != nil || !strings.HasPrefix(loc, fzRedirects[0]+"?") || u.Query().Get("state") != "client-state" {
			t.Fatalf("redirect to %q", loc)
		}
		q, _ := url.ParseQuery(query)
		hasBinding := strings.Contains(cookie, bind)
		switch {
		case u.Query().Get("code") != "":
			if q.Get("state") != fzAppState || !hasBinding || q.Get("clerk_token") != fzAppToken || q.Get("error") != "" {
				t.Fatalf("a code for query %q cookie %q", query, cookie)
			}
		case u.Query().Get("error") == "access_denied" || u.Query().Get("error") == "server_error":
			if q.Get("error") == "" || !hasBinding {
				t.Fatalf("error %q without the app's error for %q", u.Query().Get("error"), query)
			}
		default:
			t.Fatalf("redirect %q", loc)
		}
	})
}
