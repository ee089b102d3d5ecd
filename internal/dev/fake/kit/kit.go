// Package kit holds what cartflow's local provider doubles (internal/dev/fake/braintree,
// paypal and stripe) do the same way: the webhook outbox that queues, posts, retries and
// records their messages, injecting faults, recording requests, and the JSON plumbing of their
// admin API under /__cartflow/. Each double keeps its own wire format and signature; only the
// shape-independent mechanics live here.
package kit

import (
	"context"
	"log/slog"
	"strings"
	"time"
)

// AdminPrefix is where every double serves its admin API, so that one set of curl habits works
// against all of them.
const AdminPrefix = "/__cartflow/"

// MaxBody bounds a request body; the gateways' requests and the admin API's bodies are a few KiB.
const MaxBody = 1 << 20

// Logger returns l, or a logger that discards everything when l is nil, so that a double
// configured without a logger can log unconditionally.
func Logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Sleep waits ms milliseconds unless ctx ends first; it reports whether the wait completed, so
// that an injected delay can tell a hang the client gave up on from one it waited out.
func Sleep(ctx context.Context, ms int) bool {
	if ms <= 0 {
		return true
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// PathSegment returns the single, non-empty path segment between prefix and suffix, or "" when
// path is not of that form.
func PathSegment(path, prefix, suffix string) string {
	id, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return ""
	}
	if id, ok = strings.CutSuffix(id, suffix); !ok || id == "" || strings.Contains(id, "/") {
		return ""
	}
	return id
}
