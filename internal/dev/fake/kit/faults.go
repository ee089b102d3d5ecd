package kit

import (
	"slices"
	"sync"
)

// Faults is an ordered list of injected faults of a double's own Fault type F. Faults apply in
// the order they were added and the first that matches is used. It locks itself: taking a fault
// needs to be atomic only with other fault changes, not with the double's state. The zero value
// is an empty list.
type Faults[F any] struct {
	mu   sync.Mutex
	list []F
}

// Add registers f after the faults already registered.
func (fs *Faults[F]) Add(f F) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.list = append(fs.list, f)
}

// List returns the faults still registered.
func (fs *Faults[F]) List() []F {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return slices.Clone(fs.list)
}

// Clear removes every registered fault.
func (fs *Faults[F]) Clear() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.list = nil
}

// Take returns the first fault that match accepts and uses one of its count, removing it once
// the count runs out. count points into a fault at its Count field, where 0 means the fault
// applies until cleared.
func (fs *Faults[F]) Take(match func(F) bool, count func(*F) *int) (F, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, f := range fs.list {
		if !match(f) {
			continue
		}
		if n := count(&fs.list[i]); *n > 0 {
			if *n--; *n == 0 {
				fs.list = slices.Delete(fs.list, i, i+1)
			}
		}
		return f, true
	}
	var zero F
	return zero, false
}
