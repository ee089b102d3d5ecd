//go:build integration

package store_test

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/store"
)

const idemLease = time.Minute

func claimKey(t *testing.T, db *testDB, req store.IdempotencyRequest, lease time.Duration) store.IdempotencyClaim {
	t.Helper()
	c, err := db.store.ClaimIdempotencyKey(context.Background(), req, lease)
	if err != nil {
		t.Fatalf("claim %+v: %v", req, err)
	}
	return c
}

// A key's whole life: claimed, held against a repeat, refused to another request, released by
// an answer that is not final, claimed again, answered, and replayed.
func TestIdempotencyKeyLifecycle(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	req := store.IdempotencyRequest{Key: "idem-lifecycle-1", Scope: "POST /api/v1/checkouts", Fingerprint: "fp-a"}

	first := claimKey(t, db, req, idemLease)
	if first.Outcome != store.IdempotencyClaimed || time.Until(first.LockedUntil) < 30*time.Second {
		t.Fatalf("first claim %+v, want claimed for about a minute", first)
	}
	held := claimKey(t, db, req, idemLease)
	if held.Outcome != store.IdempotencyInProgress || held.RetryAfter <= 0 || held.RetryAfter > idemLease {
		t.Fatalf("repeat while held %+v, want in progress with a retry-after within the lease", held)
	}
	for _, other := range []store.IdempotencyRequest{
		{Key: req.Key, Scope: req.Scope, Fingerprint: "fp-b"},
		{Key: req.Key, Scope: "POST /api/v1/subscriptions/:id/cancel id=x", Fingerprint: req.Fingerprint},
	} {
		if c := claimKey(t, db, other, idemLease); c.Outcome != store.IdempotencyMismatch {
			t.Fatalf("other request %+v: %+v, want a mismatch", other, c)
		}
	}

	// A 202: released, not answered. A stale token frees nothing.
	if err := db.store.ReleaseIdempotencyKey(ctx, req.Key, first.LockedUntil.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if c := claimKey(t, db, req, idemLease); c.Outcome != store.IdempotencyInProgress {
		t.Fatalf("after a release with a stale token: %+v, want still in progress", c)
	}
	if err := db.store.ReleaseIdempotencyKey(ctx, req.Key, first.LockedUntil); err != nil {
		t.Fatal(err)
	}
	if n := db.count(t, `SELECT count(*) FROM idempotency_keys WHERE key = $1 AND locked_until IS NULL AND response_status IS NULL`, req.Key); n != 1 {
		t.Fatalf("released key rows: %d, want 1 without lock or answer", n)
	}
	if c := claimKey(t, db, store.IdempotencyRequest{Key: req.Key, Scope: req.Scope, Fingerprint: "fp-b"}, idemLease); c.Outcome != store.IdempotencyMismatch {
		t.Fatalf("a released key still belongs to its request: %+v", c)
	}
	second := claimKey(t, db, req, idemLease)
	if second.Outcome != store.IdempotencyClaimed {
		t.Fatalf("claim after release %+v", second)
	}

	resp := store.IdempotentResponse{Status: http.StatusCreated,
		Header: map[string][]string{"Content-Type": {"application/json; charset=utf-8"}, "Location": {"/x"}},
		Body:   []byte(`{"checkout_id":"chk_1",  "status":"completed"}`)}
	if err := db.store.SaveIdempotentResponse(ctx, req.Key, resp); err != nil {
		t.Fatal(err)
	}
	// A later answer (from a request whose lease had run out) does not replace the first.
	if err := db.store.SaveIdempotentResponse(ctx, req.Key, store.IdempotentResponse{Status: 500, Body: []byte("no")}); err != nil {
		t.Fatal(err)
	}
	replay := claimKey(t, db, req, idemLease)
	if replay.Outcome != store.IdempotencyReplay || replay.Response.Status != resp.Status ||
		string(replay.Response.Body) != string(resp.Body) || replay.Response.Header["Location"][0] != "/x" {
		t.Fatalf("replay %+v, want the stored answer %+v", replay, resp)
	}
	if n := db.count(t, `SELECT count(*) FROM idempotency_keys WHERE key = $1 AND locked_until IS NULL AND completed_at IS NOT NULL`, req.Key); n != 1 {
		t.Fatalf("answered key rows: %d", n)
	}
	// An answered key is never forgotten.
	if err := db.store.ForgetIdempotencyKey(ctx, req.Key, second.LockedUntil); err != nil {
		t.Fatal(err)
	}
	if c := claimKey(t, db, req, idemLease); c.Outcome != store.IdempotencyReplay {
		t.Fatalf("after forgetting an answered key: %+v, want the replay", c)
	}
}

// A holder whose lease ran out (a BFF that died) loses the key to the next repeat, and its own
// token no longer frees it; a request refused for its input leaves its key free.
func TestIdempotencyKeyLeaseTakeoverAndForget(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	req := store.IdempotencyRequest{Key: "idem-takeover-1", Scope: "POST /api/v1/orders/:id/refunds id=o", Fingerprint: "fp"}
	dead := claimKey(t, db, req, 10*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	next := claimKey(t, db, req, idemLease)
	if next.Outcome != store.IdempotencyClaimed || !next.LockedUntil.After(dead.LockedUntil) {
		t.Fatalf("after the lease ran out: %+v, want a new claim", next)
	}
	if err := db.store.ReleaseIdempotencyKey(ctx, req.Key, dead.LockedUntil); err != nil {
		t.Fatal(err)
	}
	if err := db.store.ForgetIdempotencyKey(ctx, req.Key, dead.LockedUntil); err != nil {
		t.Fatal(err)
	}
	if c := claimKey(t, db, req, idemLease); c.Outcome != store.IdempotencyInProgress {
		t.Fatalf("the dead holder's token freed the key: %+v", c)
	}
	if err := db.store.ForgetIdempotencyKey(ctx, req.Key, next.LockedUntil); err != nil {
		t.Fatal(err)
	}
	if n := db.count(t, `SELECT count(*) FROM idempotency_keys WHERE key = $1`, req.Key); n != 0 {
		t.Fatalf("forgotten key still has %d rows", n)
	}
	other := store.IdempotencyRequest{Key: req.Key, Scope: req.Scope, Fingerprint: "corrected"}
	if c := claimKey(t, db, other, idemLease); c.Outcome != store.IdempotencyClaimed {
		t.Fatalf("a corrected request under a forgotten key: %+v, want claimed", c)
	}
}

// Many requests under one key at once: exactly one claims it.
func TestIdempotencyKeyConcurrentClaims(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	req := store.IdempotencyRequest{Key: "idem-concurrent-1", Scope: "POST /api/v1/checkouts", Fingerprint: "fp"}
	const n = 12
	outcomes := make([]store.IdempotencyOutcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := db.store.ClaimIdempotencyKey(context.Background(), req, idemLease)
			if err != nil {
				t.Errorf("claim %d: %v", i, err)
			}
			outcomes[i] = c.Outcome
		})
	}
	wg.Wait()
	claimed := 0
	for _, o := range outcomes {
		switch o {
		case store.IdempotencyClaimed:
			claimed++
		case store.IdempotencyInProgress:
		default:
			t.Errorf("outcome %v, want claimed or in progress", o)
		}
	}
	if claimed != 1 {
		t.Fatalf("%d of %d concurrent requests claimed the key, want 1: %v", claimed, n, outcomes)
	}
}

// The cleanup deletes keys older than its cutoff, oldest first in bounded batches, and never a
// key younger than 30 days, whatever the cutoff.
func TestIdempotencyKeysPrunedAfterRetention(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	now := time.Now()
	ages := map[string]time.Duration{
		"idem-age-91d": 91 * 24 * time.Hour, "idem-age-60d": 60 * 24 * time.Hour, "idem-age-31d": 31 * 24 * time.Hour,
		"idem-age-29d": 29 * 24 * time.Hour, "idem-age-1h": time.Hour,
	}
	for key, age := range ages {
		db.exec(t, `INSERT INTO idempotency_keys (key, scope, fingerprint, response_status, response_headers, response_body, created_at, completed_at)
			VALUES ($1, 'POST /api/v1/checkouts', 'fp', 201, '{}', '{}', $2, $2)`, key, now.Add(-age))
	}
	remaining := func() []string {
		rows, err := db.pool.Query(ctx, `SELECT key FROM idempotency_keys ORDER BY key`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var keys []string
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
		return keys
	}

	// 90 days (RECORD_RETENTION's default): only the 91-day-old key, in batches of one.
	n, err := db.store.PruneIdempotencyKeys(ctx, now.Add(-90*24*time.Hour), 1)
	if err != nil || n != 1 {
		t.Fatalf("prune at 90 days: %d, %v; want 1", n, err)
	}
	// A cutoff of now would reach live keys: only those past 30 days go, oldest first.
	if n, err := db.store.PruneIdempotencyKeys(ctx, now, 1); err != nil || n != 1 {
		t.Fatalf("first batch at now: %d, %v", n, err)
	}
	if got := remaining(); !slices.Equal(got, []string{"idem-age-1h", "idem-age-29d", "idem-age-31d"}) {
		t.Fatalf("after two batches of one: %v, want the 60-day-old key gone first", got)
	}
	if n, err := db.store.PruneIdempotencyKeys(ctx, now, 10); err != nil || n != 1 {
		t.Fatalf("second batch at now: %d, %v; want the 31-day-old key", n, err)
	}
	if got := remaining(); !slices.Equal(got, []string{"idem-age-1h", "idem-age-29d"}) {
		t.Fatalf("kept %v, want the keys younger than 30 days", got)
	}
	if _, err := db.store.PruneIdempotencyKeys(ctx, now, 0); err == nil {
		t.Fatal("a batch of no rows is accepted")
	}
}

// A checkout answered 202 before its order existed is noted under the key that started it, once
// however often the 202 repeats, and goes when the cleanup prunes that key.
func TestAcceptedCheckoutLivesWithItsKey(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	const checkoutID = "chk_acceptedcheckoutlivesaaa"
	req := store.IdempotencyRequest{Key: "idem-accepted-1", Scope: "POST /api/v1/checkouts", Fingerprint: "fp"}
	claimKey(t, db, req, idemLease)

	if ok, err := db.store.IsAcceptedCheckout(ctx, checkoutID); err != nil || ok {
		t.Fatalf("before the note: accepted %v, %v; want false", ok, err)
	}
	for range 2 {
		if err := db.store.RecordAcceptedCheckout(ctx, checkoutID, req.Key); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := db.store.IsAcceptedCheckout(ctx, checkoutID); err != nil || !ok {
		t.Fatalf("after the note: accepted %v, %v; want true", ok, err)
	}
	if err := db.store.RecordAcceptedCheckout(ctx, "chk_acceptedwithoutakeyaaaaa", "idem-never-claimed"); err == nil {
		t.Error("a checkout was noted under a key no request holds")
	}

	if _, err := db.pool.Exec(ctx, `UPDATE idempotency_keys SET created_at = now() - interval '31 days' WHERE key = $1`, req.Key); err != nil {
		t.Fatal(err)
	}
	if n, err := db.store.PruneIdempotencyKeys(ctx, time.Now(), 10); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v; want the key", n, err)
	}
	if ok, err := db.store.IsAcceptedCheckout(ctx, checkoutID); err != nil || ok {
		t.Fatalf("after its key was pruned: accepted %v, %v; want false", ok, err)
	}
}
