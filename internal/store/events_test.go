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

func TestRefundsNeverExceedTheCapturedAmount(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	o, _ := db.paidOrder(t) // 6200 usd
	refund := func(key string, amount int64) error {
		return db.store.BeginRefund(ctx, store.PaymentAttempt{OrderID: o.ID, Kind: domain.PaymentRefund, Provider: "stripe",
			IdempotencyKey: key, Amount: amount, Currency: "usd"})
	}
	settle := func(key string) {
		t.Helper()
		if err := db.store.SettlePayment(ctx, key, store.PaymentOutcome{Status: domain.PaymentSucceeded, ProviderRef: "re_" + key}); err != nil {
			t.Fatal(err)
		}
	}
	if err := refund("r1", 2000); err != nil {
		t.Fatal(err)
	}
	// In flight, r1 already counts: 2000 + 4201 > 6200.
	if err := refund("r2", 4201); !errors.Is(err, store.ErrOverRefund) {
		t.Fatalf("over-refund while r1 is in flight: %v", err)
	}
	settle("r1")
	if got := db.orderRow(t, o.ID); got.Status != string(domain.OrderPartiallyRefunded) || got.RefundedAmount != 2000 {
		t.Fatalf("after a partial refund: %+v", got)
	}
	// A retry of r1 is the same attempt, not a new refund.
	if err := refund("r1", 2000); err != nil {
		t.Fatalf("retry of r1: %v", err)
	}
	if err := refund("r3", 4200); err != nil {
		t.Fatal(err)
	}
	settle("r3")
	if got := db.orderRow(t, o.ID); got.Status != string(domain.OrderRefunded) || got.RefundedAmount != 6200 {
		t.Fatalf("after the rest: %+v", got)
	}
	if err := refund("r4", 1); !errors.Is(err, store.ErrTransition) && !errors.Is(err, store.ErrOverRefund) {
		t.Fatalf("refund of a fully refunded order: %v", err)
	}
	if n := db.count(t, `SELECT count(*) FROM payments WHERE order_id = $1 AND kind = 'refund'`, o.ID); n != 2 {
		t.Fatalf("%d refund rows, want r1 and r3 only", n)
	}
	// An order that was never paid cannot be refunded.
	pending := db.pendingOrder(t)
	if err := db.store.BeginRefund(ctx, store.PaymentAttempt{OrderID: pending.ID, Kind: domain.PaymentRefund, Provider: "stripe",
		IdempotencyKey: "r5", Amount: 100, Currency: "usd"}); !errors.Is(err, store.ErrTransition) {
		t.Fatalf("refund of a pending order: %v", err)
	}
}

func TestAuthenticationWaitThenPaidOrExpired(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	for _, expire := range []bool{false, true} {
		o := db.pendingOrder(t)
		key := "charge-" + o.CheckoutID
		if err := db.store.BeginPayment(ctx, store.PaymentAttempt{OrderID: o.ID, Kind: domain.PaymentCharge, Provider: "stripe",
			IdempotencyKey: key, Amount: o.TotalAmount, Currency: o.Currency}); err != nil {
			t.Fatal(err)
		}
		if err := db.store.MarkRequiresAction(ctx, key, "pi_3ds_"+o.CheckoutID); err != nil {
			t.Fatal(err)
		}
		if got := db.orderRow(t, o.ID).Status; got != string(domain.OrderRequiresAction) {
			t.Fatalf("order %s", got)
		}
		out := store.PaymentOutcome{Status: domain.PaymentSucceeded, ProviderRef: "pi_3ds_" + o.CheckoutID}
		want := domain.OrderPaid
		if expire {
			out = store.PaymentOutcome{Status: domain.PaymentFailed, Expire: true,
				Failure: &domain.Failure{Code: "authentication_timeout", Message: "not authenticated in time"}}
			want = domain.OrderExpired
		}
		if err := db.store.SettlePayment(ctx, key, out); err != nil {
			t.Fatal(err)
		}
		if got := db.orderRow(t, o.ID); got.Status != string(want) {
			t.Fatalf("expire=%v: order %+v, want %s", expire, got, want)
		}
	}
}

func TestProviderEventsApplyOnceAndNeverBackwards(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	o, _ := db.paidOrder(t) // provider ref pi_<checkout id>, 6200 usd
	ref := "pi_" + o.CheckoutID
	record := func(e domain.WebhookEvent) store.AppliedEvent {
		t.Helper()
		e.Provider, e.PaymentRef, e.Payload = "stripe", ref, []byte(`{}`)
		applied, err := db.store.RecordProviderEvent(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		return applied
	}
	a := record(domain.WebhookEvent{ID: "evt_1", Type: domain.EventRefunded, Amount: 1000, Currency: "usd"})
	if a.OrderID != o.ID || a.WorkflowID != o.WorkflowID || a.Duplicate {
		t.Fatalf("applied %+v", a)
	}
	if got := db.orderRow(t, o.ID); got.Status != string(domain.OrderPartiallyRefunded) || got.RefundedAmount != 1000 {
		t.Fatalf("after an outside refund: %+v", got)
	}
	if a := record(domain.WebhookEvent{ID: "evt_1", Type: domain.EventRefunded, Amount: 1000, Currency: "usd"}); !a.Duplicate {
		t.Fatal("a redelivered event is not a duplicate")
	}
	// An older event with a smaller refunded total, delivered late, changes nothing.
	record(domain.WebhookEvent{ID: "evt_0", Type: domain.EventRefunded, Amount: 500, Currency: "usd"})
	if got := db.orderRow(t, o.ID); got.RefundedAmount != 1000 {
		t.Fatalf("a late event moved the refund total to %d", got.RefundedAmount)
	}
	// A dispute closed before its opening arrives stays closed.
	record(domain.WebhookEvent{ID: "evt_3", Type: domain.EventDisputeClosed, Reason: "won"})
	record(domain.WebhookEvent{ID: "evt_2", Type: domain.EventDisputeOpened, Amount: 6200, Reason: "fraudulent"})
	var dispute string
	if err := db.pool.QueryRow(ctx, `SELECT dispute_status FROM orders WHERE id = $1`, o.ID).Scan(&dispute); err != nil || dispute != "won" {
		t.Fatalf("dispute %q (%v)", dispute, err)
	}
	events, err := db.store.OrderEvents(ctx, o.ID)
	if err != nil || len(events) != 4 {
		t.Fatalf("order events %+v (%v)", events, err)
	}
	if n := db.count(t, `SELECT count(*) FROM provider_events WHERE provider = 'stripe'`); n != 4 {
		t.Fatalf("%d stored provider events", n)
	}
	// A provider that posts a form (Braintree) has its body kept verbatim.
	form := []byte("bt_signature=a%7Cb&bt_payload=PG5vdGlmaWNhdGlvbj4%3D")
	if _, err := db.store.RecordProviderEvent(ctx, domain.WebhookEvent{Provider: "braintree", ID: "bt_1", Type: "other", Payload: form}); err != nil {
		t.Fatalf("form body: %v", err)
	}
	var raw string
	if err := db.pool.QueryRow(ctx, `SELECT payload->>'raw' FROM provider_events WHERE provider = 'braintree' AND event_id = 'bt_1'`).Scan(&raw); err != nil || raw != string(form) {
		t.Fatalf("stored form %q (%v)", raw, err)
	}
	// An event about an unknown payment is stored and applies to nothing.
	if a, err := db.store.RecordProviderEvent(ctx, domain.WebhookEvent{Provider: "stripe", ID: "evt_x", Type: domain.EventRefunded,
		PaymentRef: "pi_unknown", Amount: 5, Payload: []byte(`{}`)}); err != nil || a.OrderID != "" {
		t.Fatalf("unknown payment: %+v %v", a, err)
	}
}

func TestProviderHealthCountsTechnicalOutcomes(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	for _, ok := range []bool{true, true, false} {
		if err := db.store.RecordProviderOutcome(ctx, "stripe", ok); err != nil {
			t.Fatal(err)
		}
	}
	s, f, err := db.store.ProviderHealth(ctx, "stripe", time.Now().Add(-time.Minute))
	if err != nil || s != 2 || f != 1 {
		t.Fatalf("health %d/%d (%v)", s, f, err)
	}
	if s, f, _ := db.store.ProviderHealth(ctx, "braintree", time.Now().Add(-time.Minute)); s != 0 || f != 0 {
		t.Fatalf("braintree health %d/%d", s, f)
	}
}
