package proxy

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// ticketOutcome is what a single-use ticket read from the store (a
// transaction, an upstream state, an authorization code) turned out to be.
type ticketOutcome int

const (
	ticketOK          ticketOutcome = iota // live; its value is decoded
	ticketSpent                            // consumed before; the value is the spent marker's, when it decodes
	ticketUnknown                          // never issued, expired, or unreadable
	ticketUnavailable                      // the store failed; try again later
)

// readTicket classifies the answer of ConsumeTicket or PeekTicket and
// decodes its value into T. The three flows that redeem a ticket (consent,
// Clerk's callback, the code grant) share it, so they agree on what each
// answer means. A store failure is logged and counted under op. A record that
// does not decode, or that valid refuses, is the store's fault, not the
// client's: it is logged as such and reported as unknown.
func readTicket[T any](s *Server, r *http.Request, op string, raw []byte, err error, valid func(*T) bool) (T, ticketOutcome) {
	var v T
	switch {
	case err == nil, errors.Is(err, store.ErrSpent):
		if derr := json.Unmarshal(raw, &v); derr != nil || valid != nil && !valid(&v) {
			if derr == nil {
				derr = errors.New("incomplete record")
			}
			var zero T
			if err == nil {
				s.storeError(r, op, errors.Join(errors.New("unreadable ticket"), derr))
				return zero, ticketUnknown
			}
			return zero, ticketSpent
		}
		if err != nil {
			return v, ticketSpent
		}
		return v, ticketOK
	case errors.Is(err, store.ErrNotFound):
		return v, ticketUnknown
	default:
		s.storeError(r, op, err)
		return v, ticketUnavailable
	}
}

// putTicket encodes v and stores it as a single-use ticket under id. seal,
// when set, encrypts the encoded value first. The error is ready for the
// client: a value that cannot be encoded or sealed is a server error; a store
// failure, logged and counted under op, makes the server temporarily
// unavailable.
func (s *Server) putTicket(r *http.Request, op string, kind store.Kind, id string, v any, ttl time.Duration, seal func([]byte) ([]byte, error)) *oauthError {
	raw, err := json.Marshal(v)
	if err == nil && seal != nil {
		raw, err = seal(raw)
	}
	if err != nil {
		return errServer("could not record the request").WithCause(err)
	}
	if err := s.store.PutTicket(r.Context(), kind, id, raw, ttl); err != nil {
		s.storeError(r, op, err)
		return errUnavailable("the authorization server is temporarily unavailable").WithCause(err)
	}
	return nil
}

// ticketPageShown answers a browser whose ticket is not live: the page says
// the link has expired, or that the server cannot reach its storage. It
// reports whether it answered.
func (s *Server) ticketPageShown(w http.ResponseWriter, r *http.Request, outcome ticketOutcome) bool {
	switch outcome {
	case ticketOK:
		return false
	case ticketUnavailable:
		s.renderError(w, r, pageUnavailable)
	default:
		s.renderError(w, r, pageExpired)
	}
	return true
}
