package staffkey

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestGenerateMakesDistinctWellFormedKeys(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		k, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(k, Prefix) || len(k) != len(Prefix)+43 {
			t.Fatalf("key %q has the wrong shape", k)
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(k, Prefix))
		if err != nil || len(raw) != 32 {
			t.Fatalf("key %q does not hold 32 bytes: %v", k, err)
		}
		if got, err := Parse(k); err != nil || got != k {
			t.Fatalf("Parse(%q) = %q, %v", k, got, err)
		}
		if seen[k] {
			t.Fatalf("key %q generated twice", k)
		}
		seen[k] = true
		if p := DisplayPrefix(k); len(p) != len(Prefix)+8 || !strings.HasPrefix(k, p) || !ValidDisplayPrefix(p) {
			t.Fatalf("display prefix %q of %q", p, k)
		}
	}
}

func TestParseRefusesWhatIsNotAKey(t *testing.T) {
	t.Parallel()
	good, _ := Generate()
	if got, err := Parse("  " + good + "\n"); err != nil || got != good {
		t.Fatalf("surrounding spaces: %q, %v", got, err)
	}
	for name, s := range map[string]string{
		"empty":          "",
		"no prefix":      strings.TrimPrefix(good, Prefix),
		"other prefix":   "sk_live_" + strings.TrimPrefix(good, Prefix),
		"short":          good[:len(good)-1],
		"long":           good + "A",
		"not base64url":  good[:len(good)-1] + "+",
		"the old shared": "staff-secret-key",
		"prefix only":    DisplayPrefix(good),
	} {
		if _, err := Parse(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Parse(%q) = %v, want ErrMalformed", name, s, err)
		}
	}
}

func TestHashIsTheSHA256OfTheKeysText(t *testing.T) {
	t.Parallel()
	a, _ := Generate()
	b, _ := Generate()
	want := sha256.Sum256([]byte(a))
	if !bytes.Equal(Hash(a), want[:]) || len(Hash(a)) != 32 {
		t.Fatalf("Hash(a) = %x, want %x", Hash(a), want)
	}
	if bytes.Equal(Hash(a), Hash(b)) {
		t.Fatal("two keys hash alike")
	}
	if bytes.Contains(Hash(a), []byte(a)) {
		t.Fatal("the hash holds the key")
	}
}

func TestScopes(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"refunds", "orders:read", "ops"} {
		if !ValidScope(s) {
			t.Errorf("%q should be a scope", s)
		}
	}
	for _, s := range []string{"", "admin", "Refunds", "orders", "orders:write"} {
		if ValidScope(s) {
			t.Errorf("%q should not be a scope", s)
		}
	}
}

// fakeStore holds keys by hash and counts the touches.
type fakeStore struct {
	keys    map[string]Key
	err     error
	touched []string
}

func (f *fakeStore) StaffKeyByHash(_ context.Context, hash []byte) (Key, error) {
	if f.err != nil {
		return Key{}, f.err
	}
	k, ok := f.keys[string(hash)]
	if !ok {
		return Key{}, ErrUnknown
	}
	return k, nil
}

func (f *fakeStore) TouchStaffKey(_ context.Context, id string) error {
	f.touched = append(f.touched, id)
	return nil
}

func TestCheckerTellsUnauthenticatedFromForbidden(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	recent, old := now.Add(-10*time.Second), now.Add(-2*time.Minute)
	refunds, _ := Generate()
	ops, _ := Generate()
	revoked, _ := Generate()
	unknown, _ := Generate()
	st := &fakeStore{keys: map[string]Key{
		string(Hash(refunds)): {ID: "k-refunds", Scopes: []string{ScopeRefunds, ScopeOrdersRead}, LastUsedAt: &recent},
		string(Hash(ops)):     {ID: "k-ops", Scopes: []string{ScopeOps}, LastUsedAt: &old},
		string(Hash(revoked)): {ID: "k-revoked", Scopes: []string{ScopeRefunds}, RevokedAt: &old},
	}}
	c := NewChecker(st)
	c.now = func() time.Time { return now }
	ctx := context.Background()

	for name, bearer := range map[string]string{
		"nothing": "", "no key after the scheme": "Bearer ", "malformed": "Bearer staff-secret-key",
		"unknown": "Bearer " + unknown, "revoked": "Bearer " + revoked, "another scheme": "Basic " + refunds,
	} {
		if k, err := c.Check(ctx, bearer, ScopeRefunds); !errors.Is(err, ErrUnauthenticated) || k.ID != "" {
			t.Errorf("%s: %+v, %v; want ErrUnauthenticated", name, k, err)
		}
	}

	k, err := c.Check(ctx, "Bearer "+refunds, ScopeRefunds)
	if err != nil || k.ID != "k-refunds" {
		t.Fatalf("right scope: %+v, %v", k, err)
	}
	if k, err := c.Check(ctx, refunds, ScopeOrdersRead); err != nil || k.ID != "k-refunds" {
		t.Fatalf("bare key: %+v, %v", k, err)
	}
	k, err = c.Check(ctx, "bearer "+refunds, ScopeOps)
	var se *ScopeError
	if !errors.Is(err, ErrForbidden) || errors.Is(err, ErrUnauthenticated) || !errors.As(err, &se) || se.Scope != ScopeOps || k.ID != "k-refunds" {
		t.Fatalf("wrong scope: %+v, %v; want a ScopeError for ops with the key", k, err)
	}
	// Only the key last used long ago is written; the failed checks wrote nothing.
	if len(st.touched) != 0 {
		t.Fatalf("touched %v after uses of a recently used key", st.touched)
	}
	if _, err := c.Check(ctx, "Bearer "+ops, ScopeOps); err != nil {
		t.Fatal(err)
	}
	if len(st.touched) != 1 || st.touched[0] != "k-ops" {
		t.Fatalf("touched %v, want [k-ops]", st.touched)
	}

	down := errors.New("connection refused")
	st.err = down
	if _, err := c.Check(ctx, "Bearer "+refunds, ScopeRefunds); !errors.Is(err, down) || errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("store down: %v, want the store's error, not a 401", err)
	}
}
