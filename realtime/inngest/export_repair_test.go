package inngest

// Idle reports whether s has no catch-up due or running, so that a test
// knows no catch-up reads the log while it publishes.
func Idle(s *Subscriber) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.busy && !s.fetchWanted
}
