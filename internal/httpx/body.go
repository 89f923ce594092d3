package httpx

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// ErrBodyTimeout is what reading a request body returns once its client
// stopped sending (see BodyDeadline).
var ErrBodyTimeout = errors.New("the request body did not arrive in time")

// BodyDeadline bounds how long a request body may take to arrive. The
// server's ReadHeaderTimeout ends at the blank line after the headers, and a
// server-wide ReadTimeout would also cancel the standing GET event streams
// MCP clients keep open, so without this a client that announced a body and
// then sent nothing held a connection and a goroutine for ever.
//
// A body must keep moving (no gap longer than idle between bytes) and be
// complete within total; a slow upload that keeps sending within the size
// limits is served. Once the body has been read to its end the deadline is
// lifted, so a long-running answer (an MCP event stream) is never cut. On a
// stall the body's Read returns an error matching ErrBodyTimeout, the handler
// answers 408 (ReadBody), and the connection closes because the body was not
// drained.
func BodyDeadline(idle, total time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body == nil || r.Body == http.NoBody || idle <= 0 || total <= 0 {
				next.ServeHTTP(w, r)
				return
			}
			now := time.Now()
			b := &deadlineBody{body: r.Body, rc: http.NewResponseController(w), idle: idle, end: now.Add(total)}
			if b.arm(now) != nil {
				// A writer without deadlines (httptest.ResponseRecorder): nothing to bound.
				next.ServeHTTP(w, r)
				return
			}
			r.Body = b
			next.ServeHTTP(w, r)
		})
	}
}

// deadlineBody moves the connection's read deadline along as bytes arrive.
type deadlineBody struct {
	body io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
	end  time.Time // the body must be complete by then

	armedAt time.Time
	done    bool // read to its end: the deadline is lifted
}

// arm sets the read deadline to the sooner of now+idle and the total bound.
func (b *deadlineBody) arm(now time.Time) error {
	d := now.Add(b.idle)
	if d.After(b.end) {
		d = b.end
	}
	b.armedAt = now
	return b.rc.SetReadDeadline(d)
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	switch {
	case b.done:
	case err == io.EOF:
		// The whole body is in: lift the deadline so the server's check for
		// a hung-up client, which runs while the handler works, never fires.
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case err != nil:
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = errBodyTimeout{err}
		}
	case n > 0:
		// Re-arming costs a timer update; doing it at most every idle/8
		// keeps a steady upload's gap bound within 1/8 of idle.
		if now := time.Now(); now.Sub(b.armedAt) >= b.idle/8 {
			_ = b.arm(now)
		}
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.body.Close() }

// errBodyTimeout keeps the net error (its Timeout method) and matches
// ErrBodyTimeout.
type errBodyTimeout struct{ error }

func (errBodyTimeout) Is(target error) bool { return target == ErrBodyTimeout }

// BodyError says why a request body could not be read, with the status that
// fits: 413 too large, 408 stalled, 400 otherwise.
type BodyError struct {
	Status      int
	Description string
}

func (e *BodyError) Error() string { return e.Description }

// ReadBody reads the whole request body, at most limit bytes. Every handler
// that reads a body goes through it, so a stalled or oversized body gets the
// same answer everywhere.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *BodyError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err == nil {
		return body, nil
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, &BodyError{Status: http.StatusRequestEntityTooLarge, Description: "the request body is too large"}
	case errors.Is(err, ErrBodyTimeout):
		return nil, &BodyError{Status: http.StatusRequestTimeout, Description: "the request body did not arrive in time"}
	default:
		return nil, &BodyError{Status: http.StatusBadRequest, Description: "the request body could not be read"}
	}
}
