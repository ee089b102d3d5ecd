package billing_test

import (
	"testing"

	"github.com/cartflow/cartflow/internal/billing"
)

// wantRetryable fails unless err is a technical failure: not nil, and not final.
func wantRetryable(t *testing.T, err error) {
	t.Helper()
	if err == nil || billing.IsFinal(err) {
		t.Fatalf("error = %v, want a retryable error", err)
	}
}

// filter returns the elements of xs that keep accepts, in their order; nil when none does.
func filter[S ~[]E, E any](xs S, keep func(E) bool) S {
	var out S
	for _, x := range xs {
		if keep(x) {
			out = append(out, x)
		}
	}
	return out
}
