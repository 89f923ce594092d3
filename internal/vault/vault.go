// Package vault seals Clerk's token set inside a grant record: AES-256-GCM
// under a key derived from PROXY_SECRET, with the grant id as associated data
// so a ciphertext copied into another grant cannot be opened. The proxy seals
// at sign-in; the verifier opens on the hot path and re-seals after refreshing
// Clerk's tokens. Nothing else ever sees Clerk's tokens.
package vault

import (
	"encoding/json"
	"io"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/clerk"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/seal"
)

// Vault seals and opens upstream token sets.
type Vault struct{ box *seal.Box }

// New derives the grant key from the master secret.
func New(master []byte, random io.Reader) (*Vault, error) {
	box, err := seal.NewBox(seal.DeriveKey(master, seal.PurposeGrant), random)
	if err != nil {
		return nil, err
	}
	return &Vault{box: box}, nil
}

// Seal encrypts ts for grant gid.
func (v *Vault) Seal(gid string, ts clerk.TokenSet) ([]byte, error) {
	raw, err := json.Marshal(ts)
	if err != nil {
		return nil, err
	}
	return v.box.Seal(raw, []byte(gid))
}

// Open decrypts the token set of grant gid.
func (v *Vault) Open(gid string, sealed []byte) (clerk.TokenSet, error) {
	var ts clerk.TokenSet
	raw, err := v.box.Open(sealed, []byte(gid))
	if err != nil {
		return ts, err
	}
	err = json.Unmarshal(raw, &ts)
	return ts, err
}
