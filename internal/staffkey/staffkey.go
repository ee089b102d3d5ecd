// Package staffkey makes, reads and checks the keys that identify cartflow's staff: the BFF's
// staff routes, the admin command and the worker's codec server all use it. A key is 32 random
// bytes, shown once as cfsk_<base64url>; only its SHA-256 is stored. It needs the standard
// library alone, so that any process can check a key over a store of its own.
package staffkey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The scopes a key may hold; each staff route needs one.
const (
	// ScopeRefunds allows refunding orders.
	ScopeRefunds = "refunds"
	// ScopeOrdersRead allows reading an order with its payments and events, for support.
	ScopeOrdersRead = "orders:read"
	// ScopeOps allows operations: the audit log and the Temporal codec server.
	ScopeOps = "ops"
)

// Scopes lists every scope, in the order they are documented.
func Scopes() []string { return []string{ScopeRefunds, ScopeOrdersRead, ScopeOps} }

// ValidScope reports whether s names a scope.
func ValidScope(s string) bool { return slices.Contains(Scopes(), s) }

// Prefix starts every key, so that a key pasted in the wrong place is recognised (secret
// scanners match it) and a key is never mistaken for another credential.
const Prefix = "cfsk_"

const (
	secretBytes = 32
	// encodedLen is the length of the base64url text of secretBytes, without padding.
	encodedLen = 43
	// displayLen is how much of the encoded secret the display prefix shows: 48 bits, enough to
	// tell keys apart in a list, far too little to guess the rest.
	displayLen = 8
)

// ErrMalformed is a text that is not a staff key.
var ErrMalformed = errors.New("staffkey: not a staff key")

// Generate returns a new key's text, from crypto/rand.
func Generate() (string, error) {
	var b [secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("staffkey: random bytes: %w", err)
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Parse checks that key has a staff key's shape and returns it without surrounding spaces.
func Parse(key string) (string, error) {
	key = strings.TrimSpace(key)
	rest, ok := strings.CutPrefix(key, Prefix)
	if !ok || len(rest) != encodedLen {
		return "", ErrMalformed
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != secretBytes {
		return "", ErrMalformed
	}
	return key, nil
}

// Hash is what the store keeps of a key and looks it up by: the SHA-256 of its text.
func Hash(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// DisplayPrefix is the part of a well-formed key that lists show and revocation accepts.
func DisplayPrefix(key string) string {
	if len(key) < len(Prefix)+displayLen {
		return key
	}
	return key[:len(Prefix)+displayLen]
}

// ValidDisplayPrefix reports whether p has the shape DisplayPrefix gives.
func ValidDisplayPrefix(p string) bool {
	rest, ok := strings.CutPrefix(p, Prefix)
	if !ok || len(rest) != displayLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(rest[:displayLen])
	return err == nil
}

// Key is a staff key as stored: never its secret.
type Key struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// Has reports whether the key holds scope.
func (k Key) Has(scope string) bool { return slices.Contains(k.Scopes, scope) }

// ErrUnknown is the lookup's answer for a hash that names no active key: none was made, or it
// was revoked.
var ErrUnknown = errors.New("staffkey: no active key has this hash")

// Store is what the Checker needs of the database.
type Store interface {
	// StaffKeyByHash returns the active (unrevoked) key with this hash, or an error that
	// errors.Is ErrUnknown.
	StaffKeyByHash(ctx context.Context, hash []byte) (Key, error)
	// TouchStaffKey records that the key was just used; it may skip the write when the key was
	// used a moment ago.
	TouchStaffKey(ctx context.Context, id string) error
}

// ErrUnauthenticated is a request with no key, a malformed key, or one that is unknown or
// revoked: HTTP 401.
var ErrUnauthenticated = errors.New("staffkey: a valid staff key is required")

// ErrForbidden is a known key without the scope the action needs: HTTP 403. The error
// Check returns is a *ScopeError, which names the scope.
var ErrForbidden = errors.New("staffkey: the key lacks the scope")

// ScopeError is a key that lacks Scope.
type ScopeError struct {
	Key   Key
	Scope string
}

func (e *ScopeError) Error() string { return "staffkey: the key lacks scope " + e.Scope }

// Is makes a ScopeError match ErrForbidden.
func (e *ScopeError) Is(target error) bool { return target == ErrForbidden }

// touchEvery is how stale last_used_at may get: the checker writes it at most this often per key,
// so that a busy key does not cost a write on every request.
const touchEvery = time.Minute

// Checker authenticates staff keys against a Store and checks their scopes.
type Checker struct {
	store Store
	now   func() time.Time
}

// NewChecker returns a Checker over store.
func NewChecker(store Store) *Checker { return &Checker{store: store, now: time.Now} }

// Check authenticates bearer, an Authorization header's value ("Bearer cfsk_…") or the bare key,
// and checks that the key holds scope. It returns an error that errors.Is ErrUnauthenticated
// (401) when the key is missing, malformed, unknown or revoked, a *ScopeError matching
// ErrForbidden (403) along with the key when it lacks scope, and the store's error when the
// key could not be looked up (a database down: 503, never a 401).
func (c *Checker) Check(ctx context.Context, bearer, scope string) (Key, error) {
	token := bearer
	if scheme, rest, ok := strings.Cut(strings.TrimSpace(bearer), " "); ok && strings.EqualFold(scheme, "Bearer") {
		token = rest
	}
	key, err := Parse(token)
	if err != nil {
		return Key{}, ErrUnauthenticated
	}
	k, err := c.store.StaffKeyByHash(ctx, Hash(key))
	if errors.Is(err, ErrUnknown) {
		return Key{}, ErrUnauthenticated
	}
	if err != nil {
		return Key{}, fmt.Errorf("staffkey: look up key: %w", err)
	}
	if k.RevokedAt != nil {
		// A store that returns revoked keys is still refused here.
		return Key{}, ErrUnauthenticated
	}
	if k.LastUsedAt == nil || c.now().Sub(*k.LastUsedAt) >= touchEvery {
		// last_used_at is a hint for ops (which keys are idle and can go); failing to record it
		// must not refuse a staff member whose key is valid.
		_ = c.store.TouchStaffKey(ctx, k.ID)
	}
	if !k.Has(scope) {
		return k, &ScopeError{Key: k, Scope: scope}
	}
	return k, nil
}
