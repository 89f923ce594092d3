package store

import (
	"bytes"
	"slices"
)

// CloneClient returns a deep copy of c. Backends copy records on the way in
// and out so a caller mutating a slice it handed over or got back can never
// change what is stored (or what another caller sees). nil slices stay nil.
func CloneClient(c Client) Client {
	c.SecretHash = bytes.Clone(c.SecretHash)
	c.RegistrationTokenHash = bytes.Clone(c.RegistrationTokenHash)
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.ResponseTypes = slices.Clone(c.ResponseTypes)
	return c
}

// CloneGrant returns a deep copy of g, for the same reason as CloneClient.
func CloneGrant(g Grant) Grant {
	g.Scopes = slices.Clone(g.Scopes)
	g.Upstream = bytes.Clone(g.Upstream)
	g.Refresh = cloneRefreshChain(g.Refresh)
	return g
}

func cloneRefreshChain(r RefreshChain) RefreshChain {
	r.Current = bytes.Clone(r.Current)
	r.Previous = bytes.Clone(r.Previous)
	r.CurrentSealedForPrevious = bytes.Clone(r.CurrentSealedForPrevious)
	if r.Retired != nil {
		retired := make([][]byte, len(r.Retired))
		for i, h := range r.Retired {
			retired[i] = bytes.Clone(h)
		}
		r.Retired = retired
	}
	return r
}
