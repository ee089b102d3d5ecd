//go:build integration

package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cartflow/cartflow/internal/ratelimit"
	"github.com/cartflow/cartflow/internal/store"
)

// Two BFF replicas, each with its own pool and limiter over one database, share one count:
// together they allow exactly the limit, however their requests interleave.
func TestRateLimitCountSharedByTwoReplicas(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	other, err := pgxpool.New(ctx, db.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	now := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC) }
	replicas := []*ratelimit.Shared{ratelimit.NewShared(db.store, now), ratelimit.NewShared(store.New(other), now)}
	rule := ratelimit.Rule{Bucket: "checkout_ip", Limit: 20, Window: time.Minute}

	var allowed, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			d, err := replicas[i%2].Allow(ctx, rule, "hash-of-203.0.113.7")
			switch {
			case err != nil:
				t.Error(err)
			case d.Allowed:
				allowed.Add(1)
			default:
				refused.Add(1)
				if d.RetryAfter != 30*time.Second {
					t.Errorf("retry after %v, want the 30 s left in the window", d.RetryAfter)
				}
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 20 || refused.Load() != 20 {
		t.Fatalf("allowed %d, refused %d; want 20 and 20 across both replicas", allowed.Load(), refused.Load())
	}
	if n := db.count(t, `SELECT count FROM rate_limit_counters WHERE bucket = 'checkout_ip'`); n != 40 {
		t.Fatalf("counter %d, want 40 in one row", n)
	}
	// Another window starts afresh.
	later := ratelimit.NewShared(db.store, func() time.Time { return now().Add(time.Minute) })
	if d, err := later.Allow(ctx, rule, "hash-of-203.0.113.7"); err != nil || !d.Allowed || d.Remaining != 19 {
		t.Fatalf("next window: %+v %v", d, err)
	}
}

// A decline is counted against the source the BFF recorded for its workflow, and by card; a
// workflow without a source (a renewal) counts by card only. The cleanup prunes by age.
func TestDeclinesCountBySource(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	src := store.PaymentSource{IPHash: "ip-a", EmailHash: "email-a"}
	for _, wf := range []string{"checkout-k1", "checkout-k2"} {
		if err := db.store.RecordPaymentSource(ctx, wf, src); err != nil {
			t.Fatal(err)
		}
	}
	// The latest request's source wins for a workflow (a card change from another network).
	if err := db.store.RecordPaymentSource(ctx, "checkout-k2", store.PaymentSource{IPHash: "ip-b", EmailHash: "email-a"}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct{ wf, fp string }{{"checkout-k1", "fp1"}, {"checkout-k2", "fp1"}, {"renewal-x", "fp1"}, {"checkout-k1", ""}} {
		if err := db.store.RecordDecline(ctx, d.wf, "stripe", d.fp); err != nil {
			t.Fatal(err)
		}
	}
	since := time.Now().Add(-time.Hour)
	n, err := db.store.CountDeclines(ctx, src, "fp1", since)
	if err != nil {
		t.Fatal(err)
	}
	if n != (store.DeclineCounts{IP: 2, Email: 3, Fingerprint: 3}) {
		t.Fatalf("counts %+v, want ip 2, email 3, card 3", n)
	}
	if n, _ := db.store.CountDeclines(ctx, store.PaymentSource{}, "", since); n != (store.DeclineCounts{}) {
		t.Fatalf("an empty source counts %+v", n)
	}
	if n, _ := db.store.CountDeclines(ctx, src, "fp1", time.Now().Add(time.Minute)); n != (store.DeclineCounts{}) {
		t.Fatalf("declines before the window count: %+v", n)
	}
	got, err := db.store.PaymentSourceOf(ctx, "checkout-k2")
	if err != nil || got.IPHash != "ip-b" {
		t.Fatalf("source %+v %v", got, err)
	}

	// Old rows go; a counter whose window is over goes whatever the record retention.
	if _, err := db.store.IncrementRateCounter(ctx, "b", "k", time.Now().Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.store.IncrementRateCounter(ctx, "b", "k", time.Now().Truncate(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, `UPDATE payment_declines SET at = now() - interval '100 days' WHERE workflow_id = 'renewal-x'`); err != nil {
		t.Fatal(err)
	}
	pruned, err := db.store.PruneRateLimits(ctx, time.Now().Add(-90*24*time.Hour), 10)
	if err != nil || pruned != 1 {
		t.Fatalf("pruned %d, %v; want one of each old kind", pruned, err)
	}
	if c := db.count(t, `SELECT count(*) FROM rate_limit_counters`); c != 1 {
		t.Fatalf("%d counters left, want the live one", c)
	}
	if c := db.count(t, `SELECT count(*) FROM payment_declines`); c != 3 {
		t.Fatalf("%d declines left, want 3", c)
	}
}
