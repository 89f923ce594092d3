// Package svix verifies webhooks signed with the Svix scheme, which Clerk
// uses for its webhooks: HMAC-SHA256, keyed with the base64 part of the
// endpoint's "whsec_" secret, over "<svix-id>.<svix-timestamp>.<body>", sent
// in svix-signature as space-separated "v1,<base64>" entries (several while a
// secret is being rotated).
//
// It is the standard library rather than github.com/svix/svix-webhooks/go:
// that module is Svix's whole generated API client, the check is a few lines,
// and this one takes the time as an argument (tests, and one clock for the
// whole proxy) and reports why a delivery was refused.
package svix

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Tolerance is how far a delivery's timestamp may be from now, either way
// (Svix's own libraries use five minutes). Older deliveries are refused so a
// captured one cannot be replayed after the replay guard has forgotten it.
const Tolerance = 5 * time.Minute

// Header names.
const (
	HeaderID        = "svix-id"
	HeaderTimestamp = "svix-timestamp"
	HeaderSignature = "svix-signature"
)

// Limits on what a sender may make us parse.
const (
	maxIDLen        = 256
	maxSignatureLen = 4096
	maxSignatures   = 16
)

// Why a delivery is refused. Verify wraps them in nothing: compare with ==
// or errors.Is.
var (
	ErrMissingHeaders = errors.New("svix: a svix-id, svix-timestamp or svix-signature header is missing or malformed")
	ErrStale          = errors.New("svix: the timestamp is outside the tolerance")
	ErrNoMatch        = errors.New("svix: no signature matches")
)

// Secret is an endpoint's signing key.
type Secret struct{ key []byte }

// ParseSecret reads a "whsec_<base64>" secret as the Clerk dashboard shows it.
// The error never repeats the secret.
func ParseSecret(s string) (Secret, error) {
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return Secret{}, errors.New("the webhook secret must start with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) < 16 {
		return Secret{}, errors.New("the webhook secret after whsec_ must be base64 of at least 16 bytes")
	}
	return Secret{key: key}, nil
}

// Headers are a delivery's Svix headers, parsed.
type Headers struct {
	ID         string
	Timestamp  time.Time
	timestamp  string   // as sent, since it is part of the signed content
	Signatures [][]byte // the v1 signatures; other versions are skipped
}

// ParseHeaders reads the three headers; ErrMissingHeaders when one is
// absent, empty, oversized or malformed, or no v1 signature is present.
func ParseHeaders(h http.Header) (Headers, error) {
	id, ts, sig := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || len(id) > maxIDLen || ts == "" || sig == "" || len(sig) > maxSignatureLen {
		return Headers{}, ErrMissingHeaders
	}
	for _, c := range []byte(id) {
		// The id is part of the signed content and a replay-guard key: no
		// separators, spaces or control bytes.
		if c <= ' ' || c >= 0x7f || c == '.' {
			return Headers{}, ErrMissingHeaders
		}
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || secs <= 0 || strconv.FormatInt(secs, 10) != ts {
		return Headers{}, ErrMissingHeaders
	}
	out := Headers{ID: id, Timestamp: time.Unix(secs, 0), timestamp: ts}
	for i, entry := range strings.Fields(sig) {
		if i >= maxSignatures {
			break
		}
		version, value, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		mac, err := base64.StdEncoding.DecodeString(value)
		if err != nil || len(mac) != sha256.Size {
			continue
		}
		out.Signatures = append(out.Signatures, mac)
	}
	if len(out.Signatures) == 0 {
		return Headers{}, ErrMissingHeaders
	}
	return out, nil
}

// Verify checks a delivery: its headers parse, its timestamp is within
// Tolerance of now, and one of its v1 signatures is the HMAC of
// "id.timestamp.body" under the secret (compared in constant time).
func (s Secret) Verify(h http.Header, body []byte, now time.Time) (Headers, error) {
	hd, err := ParseHeaders(h)
	if err != nil {
		return Headers{}, err
	}
	if d := now.Sub(hd.Timestamp); d > Tolerance || d < -Tolerance {
		return hd, ErrStale
	}
	want := s.Sign(hd.ID, hd.timestamp, body)
	for _, mac := range hd.Signatures {
		if hmac.Equal(mac, want) {
			return hd, nil
		}
	}
	return hd, ErrNoMatch
}

// Sign returns the raw v1 signature of a delivery. The fake Clerk signs with
// it; the proxy verifies with it.
func (s Secret) Sign(id, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// SignHeaders returns the three headers of a delivery of body at t, as Svix
// sends them.
func (s Secret) SignHeaders(id string, t time.Time, body []byte) http.Header {
	ts := strconv.FormatInt(t.Unix(), 10)
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, "v1,"+base64.StdEncoding.EncodeToString(s.Sign(id, ts, body)))
	return h
}
