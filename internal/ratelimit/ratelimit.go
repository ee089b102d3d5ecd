// Package ratelimit decides whether a request is within its limit: Shared counts in a fixed
// window kept by a Counter that every replica shares (PostgreSQL), Local in a per-replica
// in-memory token bucket for cheap reads. Keys are hashed with a keyed hash before they are
// counted or stored, because an IP address or an email is personal data.
package ratelimit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// Rule is one limit: at most Limit requests per key in each Window.
type Rule struct {
	// Bucket names the limit (sign_in_ip, checkout_email, …); it keeps the keys of different
	// limits apart.
	Bucket string
	Limit  int
	Window time.Duration
}

// Policy is the rule as the IETF RateLimit-Policy header spells it: "10;w=60".
func (r Rule) Policy() string {
	return fmt.Sprintf("%d;w=%d", r.Limit, int(math.Ceil(r.Window.Seconds())))
}

// Decision is the outcome of counting one request, with what the RateLimit-* headers report.
type Decision struct {
	Allowed   bool
	Rule      Rule
	Remaining int
	// Reset is how long until the quota is whole again (the window ends, or the bucket refills).
	Reset time.Duration
	// RetryAfter is how long a refused client must wait before it may be allowed; 0 when allowed.
	RetryAfter time.Duration
}

// Seconds rounds d up to whole seconds, at least 1, as Retry-After and RateLimit-Reset give it:
// a client told 0 would retry at once.
func Seconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// Hasher turns an IP, email or key id into the hex HMAC-SHA-256 that is counted and stored. The
// key keeps the hashes from being reversed by hashing every IPv4 address.
type Hasher struct{ key []byte }

// NewHasher returns a Hasher with the secret key.
func NewHasher(key string) Hasher { return Hasher{key: []byte(key)} }

// Hash is the hash of value of the given kind ("ip", "email", "staff_key", …). An email is
// compared case-insensitively and without surrounding spaces, as the User Directory does.
func (h Hasher) Hash(kind, value string) string {
	if kind == "email" {
		value = strings.ToLower(strings.TrimSpace(value))
	}
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil))
}

// Counter adds one request to the shared count of a key's window and returns the new count.
// *store.Store implements it with one upsert.
type Counter interface {
	IncrementRateCounter(ctx context.Context, bucket, keyHash string, windowStart time.Time) (int, error)
}

// Shared is a fixed-window limiter whose counts every replica shares through its Counter, so
// two BFF replicas together allow no more than one would. A fixed window may let through up to
// twice the limit across a window's edge; for the buckets it guards (sign-in links, checkouts)
// that bound is what matters, and one row per key and window keeps it one statement per request.
type Shared struct {
	counter Counter
	now     func() time.Time
}

// NewShared returns a Shared limiter over counter; now is the clock (time.Now when nil).
func NewShared(counter Counter, now func() time.Time) *Shared {
	if now == nil {
		now = time.Now
	}
	return &Shared{counter: counter, now: now}
}

// Allow counts one request of keyHash (already hashed) against rule. A Counter error is
// returned as it is: the caller decides whether the request fails open or closed.
func (s *Shared) Allow(ctx context.Context, rule Rule, keyHash string) (Decision, error) {
	if rule.Limit <= 0 || rule.Window <= 0 {
		return Decision{Allowed: true, Rule: rule, Remaining: math.MaxInt32}, nil
	}
	now := s.now()
	start := now.Truncate(rule.Window)
	n, err := s.counter.IncrementRateCounter(ctx, rule.Bucket, keyHash, start)
	if err != nil {
		return Decision{}, err
	}
	d := Decision{Allowed: n <= rule.Limit, Rule: rule, Remaining: max(0, rule.Limit-n), Reset: start.Add(rule.Window).Sub(now)}
	if !d.Allowed {
		d.RetryAfter = d.Reset
	}
	return d, nil
}

// Local is a per-replica token bucket per key: Limit tokens, refilled at Limit per Window. It
// never leaves the process, so it costs no round trip; it is for cheap reads, where a limit per
// replica (behind the gateway's own) is enough.
type Local struct {
	rule Rule
	now  func() time.Time
	// perToken is the time one token takes to come back.
	perToken time.Duration

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewLocal returns a Local limiter for rule; now is the clock (time.Now when nil).
func NewLocal(rule Rule, now func() time.Time) *Local {
	if now == nil {
		now = time.Now
	}
	l := &Local{rule: rule, now: now, buckets: map[string]*bucket{}}
	if rule.Limit > 0 {
		l.perToken = rule.Window / time.Duration(rule.Limit)
	}
	return l
}

// Allow takes a token for key, if there is one.
func (l *Local) Allow(key string) Decision {
	r := l.rule
	if r.Limit <= 0 || r.Window <= 0 || l.perToken <= 0 {
		return Decision{Allowed: true, Rule: r, Remaining: math.MaxInt32}
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: float64(r.Limit), last: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(float64(r.Limit), b.tokens+float64(now.Sub(b.last))/float64(l.perToken))
	b.last = now
	d := Decision{Rule: r}
	if b.tokens >= 1 {
		b.tokens--
		d.Allowed = true
	} else {
		d.RetryAfter = time.Duration((1 - b.tokens) * float64(l.perToken))
	}
	d.Remaining = int(b.tokens)
	d.Reset = time.Duration((float64(r.Limit) - b.tokens) * float64(l.perToken))
	return d
}

// sweep forgets, at most once a window, the buckets that have refilled: a full bucket is the
// same as none, and without it every IP ever seen would stay in memory.
func (l *Local) sweep(now time.Time) {
	if now.Sub(l.swept) < l.rule.Window {
		return
	}
	l.swept = now
	for k, b := range l.buckets {
		if now.Sub(b.last) >= l.rule.Window {
			delete(l.buckets, k)
		}
	}
}
