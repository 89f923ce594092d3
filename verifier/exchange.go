package verifier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clientid"
)

// ClerkToken returns the live Clerk access token of grant gid, refreshed at
// Clerk first when it is about to expire or Clerk no longer takes it, and
// when it expires (zero: unknown). It is what RFC 8693 token exchange hands
// an upstream (proxy/exchange.go), so it answers only while the grant is
// alive: active, still of userID and clientID, its client registered, and
// Clerk still accepting its token. Errors wrap ErrInvalidToken (the grant or
// its Clerk session has ended) or ErrUnavailable (Clerk or the store cannot
// be reached).
func (v *Verifier) ClerkToken(ctx context.Context, gid, userID, clientID string) (string, time.Time, error) {
	g, ts, err := v.upstream(ctx, gid)
	if err != nil {
		return "", time.Time{}, err
	}
	switch {
	case !g.Active || g.UserID != userID || g.ClientID != clientID:
		return "", time.Time{}, fmt.Errorf("%w: the grant does not match", ErrInvalidToken)
	case g.ClerkSession != "":
		return "", time.Time{}, fmt.Errorf("%w: the grant holds no Clerk OAuth token (signed in through the app)", ErrInvalidToken)
	}
	if gone, err := clientid.Gone(ctx, v.store, g.ClientID); err != nil {
		v.metrics.StoreError(ctx, v.log, "get_client", err)
		return "", time.Time{}, fmt.Errorf("%w: storage", ErrUnavailable)
	} else if gone {
		return "", time.Time{}, fmt.Errorf("%w: the client's registration was deleted or has expired", ErrInvalidToken)
	}
	expires := g.UpstreamExpiresAt
	refresh := func() error {
		fresh, err := v.refreshUpstream(ctx, g, ts)
		if err != nil {
			return err
		}
		ts, expires = fresh, fresh.ExpiresAt(v.now())
		return nil
	}
	if !expires.IsZero() && !v.now().Add(v.cfg.RefreshSkew).Before(expires) {
		if err := refresh(); err != nil {
			return "", time.Time{}, err
		}
	}
	// Clerk decides whether the token still works (cached for
	// IntrospectionTTL): a revoked session is never handed out.
	_, err = v.introspect(ctx, newClerkToken(ts.AccessToken))
	if errors.Is(err, errInactive) && ts.RefreshToken != "" {
		if err := refresh(); err != nil {
			return "", time.Time{}, err
		}
		_, err = v.introspect(ctx, newClerkToken(ts.AccessToken))
	}
	if err != nil {
		return "", time.Time{}, err
	}
	return ts.AccessToken, expires, nil
}
