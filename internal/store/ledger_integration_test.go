//go:build integration

package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// The ledger comes first: a charge recorded as succeeded comes back as it is, a paid (or
// completed, or refunded) order refuses a charge under a new key and records nothing, and the
// provider payment an attempt made is recorded once, never replaced by another.
func TestBeginChargeReadsTheLedgerFirst(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	o, err := db.store.CreateOrder(ctx, newOrder(store.LineRequest{SKU: "tshirt-classic", Quantity: 1}))
	if err != nil {
		t.Fatal(err)
	}
	attempt := store.PaymentAttempt{OrderID: o.ID, Kind: domain.PaymentCharge, Provider: "stripe", IdempotencyKey: o.WorkflowID + "/charge",
		Amount: o.TotalAmount, Currency: o.Currency}
	row, err := db.store.BeginCharge(ctx, attempt)
	if err != nil || row.Status != domain.PaymentPending || row.ProviderRef != "" || row.Attempts != 1 {
		t.Fatalf("first attempt: %+v %v", row, err)
	}
	if err := db.store.RecordProviderPayment(ctx, attempt.IdempotencyKey, "pi_1"); err != nil {
		t.Fatal(err)
	}
	if err := db.store.RecordProviderPayment(ctx, attempt.IdempotencyKey, "pi_1"); err != nil {
		t.Fatalf("recording the same payment again: %v", err)
	}
	if err := db.store.RecordProviderPayment(ctx, attempt.IdempotencyKey, "pi_other"); !errors.Is(err, store.ErrOtherPayment) {
		t.Fatalf("recording another payment for the key: %v, want ErrOtherPayment", err)
	}
	// The retry learns the payment the first attempt made.
	if row, err = db.store.BeginCharge(ctx, attempt); err != nil || row.ProviderRef != "pi_1" || row.Attempts != 2 {
		t.Fatalf("retry: %+v %v", row, err)
	}
	if err := db.store.SettlePayment(ctx, attempt.IdempotencyKey, store.PaymentOutcome{Status: domain.PaymentSucceeded, ProviderRef: "pi_1"}); err != nil {
		t.Fatal(err)
	}
	for _, status := range []domain.OrderStatus{domain.OrderPaid, domain.OrderCompleted, domain.OrderRefunded, domain.OrderPartiallyRefunded} {
		if _, err := db.pool.Exec(ctx, `UPDATE orders SET status = $2 WHERE id = $1`, o.ID, status); err != nil {
			t.Fatal(err)
		}
		// Its own key: the recorded result, nothing counted again.
		if row, err = db.store.BeginCharge(ctx, attempt); err != nil || row.Status != domain.PaymentSucceeded || row.ProviderRef != "pi_1" || row.Attempts != 2 {
			t.Fatalf("order %s, same key: %+v %v", status, row, err)
		}
		// A new key: refused, and nothing recorded.
		again := attempt
		again.IdempotencyKey = o.WorkflowID + "/charge/again"
		if _, err := db.store.BeginCharge(ctx, again); !errors.Is(err, store.ErrAlreadyPaid) {
			t.Fatalf("order %s, new key: %v, want ErrAlreadyPaid", status, err)
		}
		if n := db.count(t, `SELECT count(*) FROM payments WHERE order_id = $1`, o.ID); n != 1 {
			t.Fatalf("order %s: %d ledger rows after a refused charge, want 1", status, n)
		}
	}
}

// A renewal charge re-reads its subscription under a row lock: a canceled one refuses a first
// attempt and records nothing, while a retry of an attempt already recorded is let through,
// since an earlier try may have moved money that must be resolved (and then refunded).
func TestBeginChargeRefusesACanceledSubscription(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	sub := db.trialSubscription(t, time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC))
	o, err := db.store.CreateRenewalOrder(ctx, store.NewRenewalOrder{SubscriptionID: sub.ID, WorkflowID: "renewal-lock"})
	if err != nil {
		t.Fatal(err)
	}
	first := store.PaymentAttempt{OrderID: o.ID, Kind: domain.PaymentCharge, Provider: "stripe", IdempotencyKey: "renewal-lock/charge/1",
		Amount: 900, Currency: "usd", SubscriptionID: sub.ID}
	if _, err := db.store.BeginCharge(ctx, first); err != nil {
		t.Fatal(err)
	}
	if _, err := db.store.CancelSubscription(ctx, sub.ID, "canceled by the customer"); err != nil {
		t.Fatal(err)
	}
	second := first
	second.IdempotencyKey = "renewal-lock/charge/2"
	if _, err := db.store.BeginCharge(ctx, second); !errors.Is(err, store.ErrNotRenewable) {
		t.Fatalf("a new attempt on a canceled subscription: %v, want ErrNotRenewable", err)
	}
	if n := db.count(t, `SELECT count(*) FROM payments WHERE idempotency_key = $1`, second.IdempotencyKey); n != 0 {
		t.Fatalf("the refused attempt left %d ledger rows", n)
	}
	if row, err := db.store.BeginCharge(ctx, first); err != nil || row.Attempts != 2 {
		t.Fatalf("a retry of the attempt already recorded: %+v %v", row, err)
	}

	// The lock: a cancel waits for a charge attempt being recorded, and is seen by the next one.
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // rolled back on purpose
	var status string
	if err := tx.QueryRow(ctx, `SELECT status FROM subscriptions WHERE id = $1 FOR UPDATE`, sub.ID).Scan(&status); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := db.store.BeginCharge(ctx, store.PaymentAttempt{OrderID: o.ID, Kind: domain.PaymentCharge, Provider: "stripe",
			IdempotencyKey: "renewal-lock/charge/3", Amount: 900, Currency: "usd", SubscriptionID: sub.ID})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("BeginCharge did not wait for the subscription's row lock: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, store.ErrNotRenewable) {
		t.Fatalf("after the lock was released: %v, want ErrNotRenewable", err)
	}
}
