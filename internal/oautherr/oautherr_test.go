package oautherr

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.7:6379: connection refused")
	for _, tc := range []struct {
		name        string
		err         *Error
		wantHeaders map[string]string
	}{
		{"plain", New(http.StatusBadRequest, InvalidRequest, "code is required"), nil},
		{"basic challenge", func() *Error {
			e := New(http.StatusUnauthorized, InvalidClient, "unknown client")
			e.Challenge = BasicChallenge
			return e
		}(), map[string]string{"WWW-Authenticate": BasicChallenge}},
		{"retry after", func() *Error {
			e := New(http.StatusServiceUnavailable, TemporarilyUnavailable, "try again")
			e.RetryAfter = 5
			return e
		}(), map[string]string{"Retry-After": "5"}},
		{"cause stays out of the body", New(http.StatusServiceUnavailable, TemporarilyUnavailable, "try again").WithCause(cause), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Write(rec, tc.err)
			if rec.Code != tc.err.Status {
				t.Fatalf("status %d, want %d", rec.Code, tc.err.Status)
			}
			for k, v := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"} {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for k, v := range tc.wantHeaders {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body["error"] != string(tc.err.Code) || body["error_description"] != tc.err.Description || len(body) != 2 {
				t.Fatalf("body %v", body)
			}
			if strings.Contains(rec.Body.String(), "10.0.0.7") {
				t.Fatal("the cause reached the client")
			}
		})
	}
}

func TestCause(t *testing.T) {
	cause := errors.New("redis down")
	e := New(http.StatusServiceUnavailable, TemporarilyUnavailable, "try again")
	withCause := e.WithCause(cause)
	if !errors.Is(withCause, cause) || e.Cause != nil {
		t.Fatal("WithCause must wrap the cause in a copy")
	}
	if got := withCause.Error(); !strings.Contains(got, "redis down") || !strings.HasPrefix(got, "temporarily_unavailable: ") {
		t.Fatalf("Error() = %q", got)
	}
}
