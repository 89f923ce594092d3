package mockclerk

import "time"

// SetHangLimit shortens how long a timeout fault hangs, so a test can see
// what a client that outwaits it receives.
func (s *Server) SetHangLimit(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.hang = d
}
