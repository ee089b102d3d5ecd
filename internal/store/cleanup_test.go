//go:build integration

package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// cleanupCutoff is the olderThan of every cleanup test; rows are placed around it.
var cleanupCutoff = time.Date(2025, 3, 10, 3, 30, 0, 0, time.UTC)

// cleanupRows writes rows directly with SQL, with the timestamps and statuses a test needs.
// Its methods live on a type of this file's own so that they never clash with other tests' helpers.
type cleanupRows struct {
	t   *testing.T
	db  *testDB
	seq int
}

func newCleanupRows(t *testing.T) *cleanupRows { return &cleanupRows{t: t, db: newTestDB(t)} }

func (r *cleanupRows) next() int { r.seq++; return r.seq }

// order inserts an order of kind (checkout or renewal) in status, created at createdAt, for email.
func (r *cleanupRows) order(status domain.OrderStatus, kind string, createdAt time.Time, email string) string {
	r.t.Helper()
	n := r.next()
	var id string
	err := r.db.pool.QueryRow(context.Background(), `
		INSERT INTO orders (checkout_id, idempotency_key, request_hash, workflow_id, customer_email, customer_name,
			status, total_amount, currency, provider, kind, created_at, updated_at)
		VALUES ($1, $2, 'hash', $3, $4, 'Ada Lovelace', $5, 6200, 'usd', 'stripe', $6, $7, $7)
		RETURNING id::text`,
		fmt.Sprintf("chk_cleanup_%d", n), fmt.Sprintf("idem-cleanup-%d", n), fmt.Sprintf("checkout-chk_cleanup_%d", n),
		email, status, kind, createdAt).Scan(&id)
	if err != nil {
		r.t.Fatalf("insert order: %v", err)
	}
	return id
}

// checkout inserts a checkout order for a customer no user row knows.
func (r *cleanupRows) checkout(status domain.OrderStatus, createdAt time.Time) string {
	r.t.Helper()
	return r.order(status, "checkout", createdAt, fmt.Sprintf("guest%d@example.com", r.next()))
}

// user inserts a user in status created at createdAt and returns its id and email.
func (r *cleanupRows) user(status string, createdAt time.Time) (id, email string) {
	r.t.Helper()
	email = fmt.Sprintf("user%d@example.com", r.next())
	var confirmedAt *time.Time
	if status == store.UserConfirmed {
		confirmedAt = &createdAt
	}
	err := r.db.pool.QueryRow(context.Background(), `
		INSERT INTO users (email, name, status, created_at, updated_at, confirmed_at) VALUES ($1, 'Ada', $2, $3, $3, $4)
		RETURNING id::text`, email, status, createdAt, confirmedAt).Scan(&id)
	if err != nil {
		r.t.Fatalf("insert user: %v", err)
	}
	return id, email
}

// subscription inserts a subscription of userID to the dev catalog's monthly plan.
func (r *cleanupRows) subscription(userID string) {
	r.t.Helper()
	r.db.exec(r.t, `INSERT INTO subscriptions (user_id, sku, status, provider, current_period_start, current_period_end,
			price_amount, currency, billing_interval)
		VALUES ($1, 'plan-monthly', 'canceled', 'stripe', $2, $3, 900, 'usd', 'month')`,
		userID, cleanupCutoff.Add(-60*24*time.Hour), cleanupCutoff.Add(-30*24*time.Hour))
}

// email inserts an emails row in status created at createdAt and returns its event key.
func (r *cleanupRows) email(status string, createdAt time.Time) string {
	r.t.Helper()
	key := fmt.Sprintf("test-event-%d", r.next())
	r.db.exec(r.t, `INSERT INTO emails (event_key, kind, recipient, subject, status, created_at)
		VALUES ($1, 'receipt', 'ada@example.com', 'Your receipt', $2, $3)`, key, status, createdAt)
	return key
}

// event inserts a provider event received at receivedAt and returns its event id.
func (r *cleanupRows) event(receivedAt time.Time) string {
	r.t.Helper()
	id := fmt.Sprintf("evt_%d", r.next())
	r.db.exec(r.t, `INSERT INTO provider_events (provider, event_id, type, payload, received_at)
		VALUES ('stripe', $1, 'invoice.paid', '{"id": "x"}', $2)`, id, receivedAt)
	return id
}

// ids returns the first column of a query's rows, sorted.
func (r *cleanupRows) ids(sql string, args ...any) []string {
	r.t.Helper()
	rows, err := r.db.pool.Query(context.Background(), sql, args...)
	if err != nil {
		r.t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			r.t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func cleanupSorted(s ...string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func cleanupWantCount(t *testing.T, what string, got int, err error, want int) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got != want {
		t.Fatalf("%s = %d, want %d", what, got, want)
	}
}

func TestCleanupExpireAbandonedCheckouts(t *testing.T) {
	t.Parallel()
	r := newCleanupRows(t)
	ctx := context.Background()
	before := func(d time.Duration) time.Time { return cleanupCutoff.Add(-d) }

	stale := []string{r.checkout(domain.OrderPending, before(48*time.Hour)), r.checkout(domain.OrderPending, before(time.Second))}
	// Every other status, however old, is left alone, and so is a pending checkout at or after the cutoff.
	kept := map[string]domain.OrderStatus{}
	for _, status := range []domain.OrderStatus{domain.OrderCharging, domain.OrderPaid, domain.OrderCompleted, domain.OrderFailed, domain.OrderRefunded} {
		kept[r.checkout(status, before(72*time.Hour))] = status
	}
	kept[r.checkout(domain.OrderPending, cleanupCutoff)] = domain.OrderPending
	kept[r.checkout(domain.OrderPending, cleanupCutoff.Add(time.Hour))] = domain.OrderPending
	// A pending renewal is the renewal workflow's business, not an abandoned checkout.
	kept[r.order(domain.OrderPending, "renewal", before(72*time.Hour), "renewer@example.com")] = domain.OrderPending
	// A pending order with a ledger row is never expired, whatever led to it.
	charged := r.checkout(domain.OrderPending, before(72*time.Hour))
	r.db.exec(t, `INSERT INTO payments (order_id, kind, provider, idempotency_key, amount, currency, status)
		VALUES ($1, 'charge', 'stripe', 'charge-cleanup', 6200, 'usd', 'pending')`, charged)
	kept[charged] = domain.OrderPending

	n, err := r.db.store.ExpireAbandonedCheckouts(ctx, cleanupCutoff, 100)
	cleanupWantCount(t, "ExpireAbandonedCheckouts", n, err, 2)
	if got := r.ids(`SELECT id::text FROM orders WHERE status = 'expired'`); !slices.Equal(got, cleanupSorted(stale...)) {
		t.Fatalf("expired orders %v, want %v", got, cleanupSorted(stale...))
	}
	for _, id := range stale {
		row := r.db.orderRow(t, id)
		if deref(row.FailureCode) != "checkout_expired" || deref(row.FailureMessage) != store.ExpiredCheckoutFailure.Message ||
			row.CompletedAt != nil || row.TotalAmount != 6200 {
			t.Fatalf("expired order %s: %+v", id, row)
		}
		if n := r.db.count(t, `SELECT count(*) FROM orders WHERE id = $1 AND updated_at > created_at + interval '1 day'`, id); n != 1 {
			t.Fatalf("expired order %s: updated_at not moved to the expiry", id)
		}
	}
	for id, status := range kept {
		if row := r.db.orderRow(t, id); row.Status != string(status) || row.FailureCode != nil {
			t.Fatalf("order %s (%s) changed to %+v", id, status, row)
		}
	}

	// The read model reports the expiry with its reason.
	var checkoutID string
	if err := r.db.pool.QueryRow(ctx, `SELECT checkout_id FROM orders WHERE id = $1`, stale[0]).Scan(&checkoutID); err != nil {
		t.Fatal(err)
	}
	got, err := r.db.store.CheckoutByID(ctx, checkoutID)
	if err != nil || got.Status != domain.OrderExpired || got.FailureCode != "checkout_expired" {
		t.Fatalf("CheckoutByID of an expired checkout = %+v, %v", got, err)
	}

	n, err = r.db.store.ExpireAbandonedCheckouts(ctx, cleanupCutoff, 100)
	cleanupWantCount(t, "ExpireAbandonedCheckouts with nothing left", n, err, 0)
}

func TestCleanupDeleteUnconfirmedUsers(t *testing.T) {
	t.Parallel()
	r := newCleanupRows(t)
	old := cleanupCutoff.Add(-40 * 24 * time.Hour)

	gone1, _ := r.user(store.UserPending, old)
	gone2, _ := r.user(store.UserPending, cleanupCutoff.Add(-time.Second))
	// A customer whose checkout was refunded after a failed registration is still removable:
	// the finished order names them by email only.
	gone3, refundedEmail := r.user(store.UserPending, old)
	r.order(domain.OrderRefunded, "checkout", old, refundedEmail)

	atCutoff, _ := r.user(store.UserPending, cleanupCutoff)
	recent, _ := r.user(store.UserPending, cleanupCutoff.Add(time.Hour))
	confirmed, _ := r.user(store.UserConfirmed, old)
	withOrder, withOrderEmail := r.user(store.UserPending, old)
	linked := r.order(domain.OrderFailed, "checkout", old, withOrderEmail)
	r.db.exec(t, `UPDATE orders SET user_id = $2 WHERE id = $1`, linked, withOrder)
	withSub, _ := r.user(store.UserPending, old)
	r.subscription(withSub)
	// A returning customer mid-checkout: the order is paid but not yet linked to the user.
	inFlight, inFlightEmail := r.user(store.UserPending, old)
	r.order(domain.OrderPaid, "checkout", cleanupCutoff.Add(time.Hour), inFlightEmail)

	t.Logf("users to delete: %v %v %v", gone1, gone2, gone3)
	r.wantCleanup(t, "DeleteUnconfirmedUsers", 3, atCutoff, recent, confirmed, withOrder, withSub, inFlight)
}

func TestCleanupPruneEmailRecords(t *testing.T) {
	t.Parallel()
	r := newCleanupRows(t)
	old := cleanupCutoff.Add(-100 * 24 * time.Hour)

	r.email("sent", old)
	r.email("failed", cleanupCutoff.Add(-time.Second))
	want := cleanupSorted(
		r.email("pending", old), // not sent yet: its send may still happen
		r.email("sending", old), // outcome unknown: the key is what stops a second send
		r.email("sent", cleanupCutoff),
		r.email("failed", cleanupCutoff.Add(time.Hour)),
	)

	r.wantCleanup(t, "PruneEmailRecords", 2, want...)
}

func TestCleanupPruneProviderEvents(t *testing.T) {
	t.Parallel()
	r := newCleanupRows(t)

	r.event(cleanupCutoff.Add(-100 * 24 * time.Hour))
	r.event(cleanupCutoff.Add(-time.Second))
	want := cleanupSorted(r.event(cleanupCutoff), r.event(cleanupCutoff.Add(time.Minute)))

	r.wantCleanup(t, "PruneProviderEvents", 2, want...)
}

// cleanupTask is a cleanup method with a way to add a row it removes and a query of the rows left.
type cleanupTask struct {
	name  string
	run   func(*store.Store, context.Context, time.Time, int) (int, error)
	add   func(r *cleanupRows, at time.Time) string
	query string // the keys of the rows the task has not removed
}

// cleanupTasks pairs each cleanup method with a way to add a row it removes and a query of the rows left.
var cleanupTasks = []cleanupTask{
	{"ExpireAbandonedCheckouts", (*store.Store).ExpireAbandonedCheckouts,
		func(r *cleanupRows, at time.Time) string { return r.checkout(domain.OrderPending, at) },
		`SELECT id::text FROM orders WHERE status = 'pending'`},
	{"DeleteUnconfirmedUsers", (*store.Store).DeleteUnconfirmedUsers,
		func(r *cleanupRows, at time.Time) string { id, _ := r.user(store.UserPending, at); return id },
		`SELECT id::text FROM users`},
	{"PruneEmailRecords", (*store.Store).PruneEmailRecords,
		func(r *cleanupRows, at time.Time) string { return r.email("sent", at) },
		`SELECT event_key FROM emails`},
	{"PruneProviderEvents", (*store.Store).PruneProviderEvents,
		func(r *cleanupRows, at time.Time) string { return r.event(at) },
		`SELECT event_id FROM provider_events`},
}

// wantCleanup runs the cleanup task named task over cleanupCutoff in a batch of 100, wants it to
// remove removed rows and leave the rows with the keys left, then runs it again and wants it to
// remove nothing.
func (r *cleanupRows) wantCleanup(t *testing.T, task string, removed int, left ...string) {
	t.Helper()
	i := slices.IndexFunc(cleanupTasks, func(c cleanupTask) bool { return c.name == task })
	if i < 0 {
		t.Fatalf("no cleanup task %s", task)
	}
	c := cleanupTasks[i]
	n, err := c.run(r.db.store, context.Background(), cleanupCutoff, 100)
	cleanupWantCount(t, task, n, err, removed)
	if got, want := r.ids(c.query), cleanupSorted(left...); !slices.Equal(got, want) {
		t.Fatalf("%s left %v, want %v", task, got, want)
	}
	n, err = c.run(r.db.store, context.Background(), cleanupCutoff, 100)
	cleanupWantCount(t, task+" with nothing left", n, err, 0)
}

func TestCleanupBatchesHonorLimitOldestFirst(t *testing.T) {
	t.Parallel()
	for _, task := range cleanupTasks {
		t.Run(task.name, func(t *testing.T) {
			t.Parallel()
			r := newCleanupRows(t)
			ctx := context.Background()
			// Inserted newest first, so that a batch taken in insertion (or id) order would be caught.
			keys := make([]string, 5)
			for i := range keys {
				keys[i] = task.add(r, cleanupCutoff.Add(-time.Duration(i+1)*time.Hour))
			}
			slices.Reverse(keys) // keys[0] is now the oldest row
			for i, want := range []int{2, 2, 1, 0} {
				n, err := task.run(r.db.store, ctx, cleanupCutoff, 2)
				cleanupWantCount(t, fmt.Sprintf("batch %d", i+1), n, err, want)
				removed := min(2*(i+1), len(keys))
				if got := r.ids(task.query); !slices.Equal(got, cleanupSorted(keys[removed:]...)) {
					t.Fatalf("after batch %d left %v, want the newest %v", i+1, got, cleanupSorted(keys[removed:]...))
				}
			}
			if _, err := task.run(r.db.store, ctx, cleanupCutoff, 0); err == nil {
				t.Fatal("a zero limit was accepted")
			}
		})
	}
}

// A batch never waits for rows that live traffic holds: it skips them and takes the next ones.
func TestCleanupSkipsLockedRows(t *testing.T) {
	t.Parallel()
	r := newCleanupRows(t)
	ctx := context.Background()
	oldest := r.checkout(domain.OrderPending, cleanupCutoff.Add(-3*time.Hour))
	second := r.checkout(domain.OrderPending, cleanupCutoff.Add(-2*time.Hour))
	third := r.checkout(domain.OrderPending, cleanupCutoff.Add(-1*time.Hour))

	tx, err := r.db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT 1 FROM orders WHERE id = $1 FOR UPDATE`, oldest); err != nil {
		t.Fatal(err)
	}

	// Were the lock waited for, this would block until the deadline.
	bounded, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := r.db.store.ExpireAbandonedCheckouts(bounded, cleanupCutoff, 1)
	cleanupWantCount(t, "ExpireAbandonedCheckouts beside a locked row", n, err, 1)
	if got := r.ids(`SELECT id::text FROM orders WHERE status = 'expired'`); !slices.Equal(got, []string{second}) {
		t.Fatalf("expired %v, want only the oldest unlocked order %s", got, second)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	n, err = r.db.store.ExpireAbandonedCheckouts(ctx, cleanupCutoff, 10)
	cleanupWantCount(t, "ExpireAbandonedCheckouts after the lock is gone", n, err, 2)
	if got := r.ids(`SELECT id::text FROM orders WHERE status = 'expired'`); !slices.Equal(got, cleanupSorted(oldest, second, third)) {
		t.Fatalf("expired %v, want all three", got)
	}
}
