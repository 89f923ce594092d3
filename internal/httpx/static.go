package httpx

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"time"
)

// StaticFile serves one embedded file (a stylesheet, a script module): the
// content type from name's extension, nosniff, and an ETag of the content
// with Cache-Control no-cache, so a browser revalidates (304) and a new
// release is picked up at once. extra sets further headers (a CSP) or
// overrides these.
func StaticFile(name string, body []byte, extra http.Header) http.Handler {
	sum := sha256.Sum256(body)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		for k, v := range extra {
			h[k] = v
		}
		h.Set("ETag", etag)
		// ServeContent answers If-None-Match with 304 and HEAD without a body.
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
	})
}
