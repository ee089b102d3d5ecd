// Package tb names the part of *testing.T and *testing.M that the test helpers under
// internal/dev use. The helpers take these interfaces rather than the testing package's types
// so that no non-test file imports "testing", which would link it into every binary that
// imports a helper (the dev command among them).
package tb

// T is the part of testing.TB the helpers call; *testing.T and *testing.B satisfy it.
type T interface {
	Helper()
	Name() string
	Cleanup(func())
	Error(args ...any)
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// M is the part of *testing.M that a TestMain helper calls.
type M interface {
	Run() int
}
