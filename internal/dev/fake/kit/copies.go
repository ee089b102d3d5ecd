package kit

// The doubles hand out copies of their state, never pointers into it, so that a test can hold
// on to what it was given while the double goes on changing. These helpers make the copies;
// the caller holds the double's lock.

// Map returns view of each element of in, in order. The result is never nil, so that an empty
// listing is [] in JSON rather than null.
func Map[T, U any](in []T, view func(T) U) []U {
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = view(v)
	}
	return out
}

// FlatMap returns the views of each element of in, one after the other; never nil, like Map.
func FlatMap[T, U any](in []T, views func(T) []U) []U {
	out := []U{}
	for _, v := range in {
		out = append(out, views(v)...)
	}
	return out
}

// Lookup returns view of the element of m under key, and whether there is one.
func Lookup[K comparable, T, U any](m map[K]*T, key K, view func(*T) U) (U, bool) {
	v := m[key]
	if v == nil {
		var zero U
		return zero, false
	}
	return view(v), true
}
