package lastused

// Remembered counts the grants this replica remembers writing.
func (r *Recorder) Remembered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}
