package httpx

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestStaticFile: the content type follows the name, nosniff is always set,
// the ETag revalidates (304 without a body), extra headers are added and may
// override the default caching, and HEAD has no body.
func TestStaticFile(t *testing.T) {
	extra := http.Header{"Content-Security-Policy": {"default-src 'none'"}, "Cache-Control": {"no-store"}}
	for _, tc := range []struct {
		name, file, wantType, wantCache string
		extra                           http.Header
	}{
		{"module", "try.js", "text/javascript; charset=utf-8", "no-cache", nil},
		{"stylesheet", "pages.css", "text/css; charset=utf-8", "no-cache", nil},
		{"page with its own headers", "index.html", "text/html; charset=utf-8", "no-store", extra},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := StaticFile(tc.file, []byte("body of "+tc.file), tc.extra)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
			etag := rec.Header().Get("ETag")
			if rec.Code != http.StatusOK || rec.Body.String() != "body of "+tc.file || rec.Header().Get("Content-Type") != tc.wantType ||
				rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("Cache-Control") != tc.wantCache || etag == "" {
				t.Fatalf("GET: %d %q %v", rec.Code, rec.Body.String(), rec.Header())
			}
			if tc.extra != nil && rec.Header().Get("Content-Security-Policy") != "default-src 'none'" {
				t.Errorf("extra header missing: %v", rec.Header())
			}
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			req.Header.Set("If-None-Match", etag)
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
				t.Errorf("If-None-Match: %d %q", rec.Code, rec.Body.String())
			}
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/x", nil))
			if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
				t.Errorf("HEAD: %d %q", rec.Code, rec.Body.String())
			}
		})
	}
	if a, b := StaticFile("a.js", []byte("one"), nil), StaticFile("a.js", []byte("two"), nil); etagOf(a) == etagOf(b) {
		t.Error("different content, same ETag")
	}
}

func etagOf(h http.Handler) string {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
	return rec.Header().Get("ETag")
}
