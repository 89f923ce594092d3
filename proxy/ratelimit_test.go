package proxy

import (
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
)

// countingDocs answers 404 to every metadata document request and counts them.
type countingDocs struct{ n atomic.Int64 }

func (c *countingDocs) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return &http.Response{StatusCode: http.StatusNotFound, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

// TestRevokeIntrospectRateLimited: /revoke and /introspect authenticate the
// client, which for an https client_id means fetching its metadata document
// (failures are not cached). They are rate-limited per IP like /token, so no
// one can make the server fetch arbitrary URLs without bound.
func TestRevokeIntrospectRateLimited(t *testing.T) {
	t.Parallel()
	const limit, tries = 3, 10
	for _, path := range []string{"/revoke", "/introspect"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			docs := &countingDocs{}
			e := newAS(t, func(c *Config, d *Deps) {
				c.CIMD.Enabled, c.RateLimits.Token = true, limit
				d.HTTPClient = &http.Client{Transport: docs}
			})
			limited := 0
			for range tries {
				resp, out := e.post(t, path, asClient{ID: "https://victim.example/doc.json"}, url.Values{"token": {"x"}})
				switch {
				case resp.StatusCode == http.StatusTooManyRequests && out["error"] == "temporarily_unavailable":
					limited++
				case resp.StatusCode != http.StatusUnauthorized:
					t.Fatalf("status %d %v", resp.StatusCode, out)
				}
			}
			if limited != tries-limit || docs.n.Load() != limit {
				t.Fatalf("%d of %d requests limited, %d documents fetched; want %d and %d", limited, tries, docs.n.Load(), tries-limit, limit)
			}
		})
	}
}
