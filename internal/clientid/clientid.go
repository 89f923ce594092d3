// Package clientid owns the one rule about what an OAuth client id names: a
// Client ID Metadata Document (an https URL, whose document describes the
// client and is only ever cached) or a registration made at /register (RFC
// 7591, stored), and what follows for a grant whose client has gone away.
// The authorization server and the verifier both ask it, so they cannot
// disagree.
package clientid

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// IsMetadataDocument reports whether id is a Client ID Metadata Document URL:
// https, with a path (the draft forbids a bare origin), no fragment and no
// user info.
func IsMetadataDocument(id string) bool {
	if !strings.HasPrefix(id, "https://") {
		return false
	}
	u, err := url.Parse(id)
	return err == nil && u.Host != "" && u.Path != "" && u.Path != "/" && u.Fragment == "" && u.User == nil
}

// Registrations is the part of the store Gone reads.
type Registrations interface {
	GetClient(ctx context.Context, id string) (store.Client, error)
}

// Gone reports whether the registration a grant was made for is gone:
// deleted (RFC 7592), expired after idling, or lost with the store. A grant
// dies with its client, so its tokens must then be refused everywhere.
// Metadata-document clients have no registration to lose.
func Gone(ctx context.Context, regs Registrations, id string) (bool, error) {
	if IsMetadataDocument(id) {
		return false, nil
	}
	_, err := regs.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	return false, err
}
