// Package archtest holds no code, only a test that keeps docs/architecture.md honest: its package
// table must list exactly the module's packages, each package may import only what its row
// allows, no production package may depend on internal/dev, and no non-test file may import
// "testing". It needs Go alone, so it runs with every `go test ./...`.
package archtest
