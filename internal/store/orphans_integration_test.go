//go:build integration

package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// failedOrder writes an order whose charge under key was declined.
func (db *testDB) failedOrder(t *testing.T) (store.Order, string) {
	t.Helper()
	ctx := context.Background()
	o := db.pendingOrder(t)
	key := "charge-" + o.CheckoutID
	if err := db.store.BeginPayment(ctx, store.PaymentAttempt{OrderID: o.ID, Kind: domain.PaymentCharge, Provider: "stripe",
		IdempotencyKey: key, Amount: o.TotalAmount, Currency: o.Currency}); err != nil {
		t.Fatal(err)
	}
	if err := db.store.SettlePayment(ctx, key, store.PaymentOutcome{Status: domain.PaymentFailed,
		Failure: &domain.Failure{Code: "card_declined", Message: "declined"}}); err != nil {
		t.Fatal(err)
	}
	return o, key
}

func TestPaymentStandingsTieEachPaymentToItsOrder(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	paid, _ := db.paidOrder(t) // its charge is pi_<checkout id>
	failed, failedKey := db.failedOrder(t)
	charging := db.pendingOrder(t)
	if err := db.store.BeginPayment(ctx, store.PaymentAttempt{OrderID: charging.ID, Kind: domain.PaymentCharge, Provider: "stripe",
		IdempotencyKey: "charge-" + charging.CheckoutID, Amount: charging.TotalAmount, Currency: "usd"}); err != nil {
		t.Fatal(err)
	}
	bound := db.pendingOrder(t)
	db.exec(t, `INSERT INTO provider_orders (provider, provider_order_id, cart_ref, amount, currency, order_id)
		VALUES ('stripe', 'PO-1', 'cart-1', 6200, 'usd', $1)`, bound.ID)

	links := []store.ProviderPaymentLinks{
		{Ref: "pi_" + paid.CheckoutID},                // the paid order's own charge
		{Ref: "pi_second", OrderID: paid.ID},          // a second payment for the paid order
		{Ref: "pi_by_key", IdempotencyKey: failedKey}, // the failed order's key
		{Ref: "pi_by_order", OrderID: failed.ID},      // the failed order's id alone
		{Ref: "pi_charging", IdempotencyKey: "charge-" + charging.CheckoutID},
		{Ref: "pi_cart", CartRef: "cart-1"},                         // a PayPal-style cart binding
		{Ref: "pi_unknown", IdempotencyKey: "checkout-gone/charge"}, // cartflow's key, no order
		{Ref: "pi_not_uuid", OrderID: "order-42"},                   // an echoed id that is no order id
	}
	got, err := db.store.PaymentStandings(ctx, "stripe", links)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.PaymentStanding{
		{Recorded: true, OrderID: paid.ID, OrderStatus: domain.OrderPaid},
		{OrderID: paid.ID, OrderStatus: domain.OrderPaid},
		{OrderID: failed.ID, OrderStatus: domain.OrderFailed},
		{OrderID: failed.ID, OrderStatus: domain.OrderFailed},
		{OrderID: charging.ID, OrderStatus: domain.OrderCharging},
		{OrderID: bound.ID, OrderStatus: domain.OrderPending},
		{},
		{},
	}
	if len(got) != len(want) {
		t.Fatalf("%d standings for %d payments", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: standing %+v, want %+v", links[i].Ref, got[i], want[i])
		}
	}
	if !got[4].InFlight() || got[3].InFlight() || got[1].InFlight() {
		t.Errorf("in flight: charging %v, failed %v, paid %v", got[4].InFlight(), got[3].InFlight(), got[1].InFlight())
	}
	// Another provider's payment never matches a Stripe order.
	other, err := db.store.PaymentStandings(ctx, "braintree", []store.ProviderPaymentLinks{{Ref: "pi_" + paid.CheckoutID, OrderID: paid.ID}})
	if err != nil || other[0] != (store.PaymentStanding{}) {
		t.Fatalf("braintree standing of a stripe payment: %+v, %v", other, err)
	}
}

func TestOrphanPaymentIsRecordedOnceAndRefundedOnce(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	failed, _ := db.failedOrder(t)
	orphan := store.NewOrphan{Provider: "stripe", ProviderRef: "pi_orphan", OrderID: failed.ID, Amount: 6200, Currency: "usd",
		FoundBy: store.FoundByWebhook}

	rec, found, err := db.store.RecordOrphanPayment(ctx, orphan)
	if err != nil || !found || rec.Status != store.OrphanRefunding || rec.RefundKey != "orphan/stripe/pi_orphan" || rec.OrderID != failed.ID {
		t.Fatalf("first record: %+v, found %v, %v", rec, found, err)
	}
	// Found again, by the reconciliation: nothing new, and it stays found by the webhook.
	again := orphan
	again.FoundBy = store.FoundByReconciliation
	rec, found, err = db.store.RecordOrphanPayment(ctx, again)
	if err != nil || found || rec.FoundBy != store.FoundByWebhook {
		t.Fatalf("second record: %+v, found %v, %v", rec, found, err)
	}
	if n := db.count(t, `SELECT count(*) FROM orphan_payments`); n != 1 {
		t.Fatalf("%d orphan rows", n)
	}
	if n := db.count(t, `SELECT count(*) FROM order_events WHERE order_id = $1 AND type = 'orphan_payment' AND amount = 6200`, failed.ID); n != 1 {
		t.Fatalf("%d orphan_payment events on the order", n)
	}

	// A refusal first, then a refund that went through; after that nothing moves it.
	if err := db.store.ResolveOrphanPayment(ctx, "stripe", "pi_orphan", store.OrphanRefund{Failed: true}); err != nil {
		t.Fatal(err)
	}
	if rec, _ := db.store.OrphanPayment(ctx, "stripe", "pi_orphan"); rec.Status != store.OrphanRefundFailed || rec.ResolvedAt == nil {
		t.Fatalf("after a refusal: %+v", rec)
	}
	if err := db.store.ResolveOrphanPayment(ctx, "stripe", "pi_orphan", store.OrphanRefund{RefundRef: "re_1", Amount: 6200}); err != nil {
		t.Fatal(err)
	}
	if err := db.store.ResolveOrphanPayment(ctx, "stripe", "pi_orphan", store.OrphanRefund{Failed: true}); err != nil {
		t.Fatal(err)
	}
	rec, err = db.store.OrphanPayment(ctx, "stripe", "pi_orphan")
	if err != nil || rec.Status != store.OrphanRefunded || rec.RefundRef != "re_1" || rec.Amount != 6200 {
		t.Fatalf("after the refund: %+v, %v", rec, err)
	}
	if n := db.count(t, `SELECT count(*) FROM order_events WHERE order_id = $1 AND type = 'orphan_payment.refunded'`, failed.ID); n != 1 {
		t.Fatalf("%d orphan_payment.refunded events on the order", n)
	}
	// The order's own ledger is left alone: it never took this money.
	if got := db.orderRow(t, failed.ID); got.Status != string(domain.OrderFailed) || got.RefundedAmount != 0 {
		t.Fatalf("order after the orphan's refund: %+v", got)
	}

	// An orphan cartflow has no order for is recorded without one.
	if rec, found, err := db.store.RecordOrphanPayment(ctx, store.NewOrphan{Provider: "stripe", ProviderRef: "pi_stray", Amount: 100,
		Currency: "usd", FoundBy: store.FoundByReconciliation}); err != nil || !found || rec.OrderID != "" {
		t.Fatalf("orphan without an order: %+v, %v, %v", rec, found, err)
	}
	if _, err := db.store.OrphanPayment(ctx, "stripe", "pi_none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown orphan: %v", err)
	}
}
