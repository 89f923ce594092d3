// Package oautherr is the one error model of every HTTP endpoint of the
// product (the authorization server, the protected MCP endpoint, the
// operational endpoints, the fake Clerk): the error codes of RFC 6749 and the
// RFCs around it as constants, an error value that keeps the description a
// client may see apart from the cause that only the log may see, and the one
// writer that puts either on the wire with the headers every answer needs.
//
// Modelled on fosite's errors.go and Pomerium's oauth21/error.go.
package oautherr

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Code is an OAuth error code, the "error" member of an error response.
type Code string

// RFC 6749 §4.1.2.1 and §5.2.
const (
	InvalidRequest          Code = "invalid_request"
	InvalidClient           Code = "invalid_client"
	InvalidGrant            Code = "invalid_grant"
	UnauthorizedClient      Code = "unauthorized_client"
	UnsupportedGrantType    Code = "unsupported_grant_type"
	UnsupportedResponseType Code = "unsupported_response_type"
	InvalidScope            Code = "invalid_scope"
	AccessDenied            Code = "access_denied"
	ServerError             Code = "server_error"
	TemporarilyUnavailable  Code = "temporarily_unavailable"
)

// The RFCs around it.
const (
	InvalidToken          Code = "invalid_token"           // RFC 6750 §3.1
	InsufficientScope     Code = "insufficient_scope"      // RFC 6750 §3.1
	UnsupportedTokenType  Code = "unsupported_token_type"  // RFC 7009 §2.2.1
	InvalidRedirectURI    Code = "invalid_redirect_uri"    // RFC 7591 §3.2.2
	InvalidClientMetadata Code = "invalid_client_metadata" // RFC 7591 §3.2.2
	InvalidTarget         Code = "invalid_target"          // RFC 8707 §2
	ConsentRequired       Code = "consent_required"        // OpenID Connect Core §3.1.2.6
	// NotFound and Unauthorized are no RFC's: the answers to a path no
	// endpoint serves and to a request to /mcp with no token at all (whose
	// challenge, RFC 6750 §3.1, carries no error code), in the same shape as
	// every other error.
	NotFound     Code = "not_found"
	Unauthorized Code = "unauthorized"
)

// BasicChallenge is the WWW-Authenticate value of an invalid_client answer to
// a request that tried HTTP Basic (RFC 6749 §5.2).
const BasicChallenge = `Basic realm="clerk-mcp-proxy", charset="UTF-8"`

// Error is an error response as a value. Handlers return it; Write puts it on
// the wire.
type Error struct {
	Code Code
	// Description is shown to the client, so it never carries a secret, a
	// token or the text of an internal error: that goes in Cause.
	Description string
	Status      int
	// Cause is why, for the log only (Unwrap returns it).
	Cause error
	// Challenge, when set, is sent as WWW-Authenticate.
	Challenge string
	// RetryAfter, when positive, is sent as Retry-After (seconds).
	RetryAfter int
}

// New is an error with its status.
func New(status int, code Code, description string) *Error {
	return &Error{Code: code, Description: description, Status: status}
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return string(e.Code) + ": " + e.Description + ": " + e.Cause.Error()
	}
	return string(e.Code) + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Cause }

// WithCause returns a copy of e that records cause for the log.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.Cause = cause
	return &c
}

// Write writes e as JSON ({"error", "error_description"}) with its status,
// challenge and Retry-After.
func Write(w http.ResponseWriter, e *Error) {
	WriteBody(w, e, map[string]any{"error": e.Code, "error_description": e.Description})
}

// WriteBody writes e's headers and status with a body of the caller's shape
// (an error answer that carries more members, or another server's envelope).
func WriteBody(w http.ResponseWriter, e *Error, body any) {
	if e.Challenge != "" {
		w.Header().Set("WWW-Authenticate", e.Challenge)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	WriteJSON(w, e.Status, body)
}

// WriteJSON writes v as JSON, never cached (tokens and errors must not be,
// RFC 6749 §5.1).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
