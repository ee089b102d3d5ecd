package kit

// Recorder keeps the requests a double received, oldest first, as pointers so that a request
// answered late can still complete its record. It does no locking of its own: the double calls
// it under its own lock, so that a request's record and the state change it made are seen
// together. The zero value is empty.
type Recorder[R any] struct {
	list []*R
}

// Add records rec; after that the double changes rec only under its lock.
func (rc *Recorder[R]) Add(rec *R) {
	rc.list = append(rc.list, rec)
}

// Snapshot returns shallow copies of the records, oldest first.
func (rc *Recorder[R]) Snapshot() []R {
	out := make([]R, len(rc.list))
	for i, r := range rc.list {
		out[i] = *r
	}
	return out
}

// Clear forgets the records.
func (rc *Recorder[R]) Clear() {
	rc.list = nil
}
