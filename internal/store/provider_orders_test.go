//go:build integration

package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// paypalOrder is a provider order for defaultCart (6200 usd).
func paypalOrder(id, cartRef string) store.ProviderOrder {
	return store.ProviderOrder{Provider: "paypal", ProviderOrderID: id, CartRef: cartRef, Amount: 6200, Currency: "usd"}
}

func TestBindProviderOrderIsIdempotent(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	first, err := db.store.BindProviderOrder(ctx, paypalOrder("5O190127TN364715T", "cart_first"))
	if err != nil || first != paypalOrder("5O190127TN364715T", "cart_first") {
		t.Fatalf("bind = %+v, %v", first, err)
	}
	// The same PayPal order again, as a repeated request records it: the row as first recorded.
	again, err := db.store.BindProviderOrder(ctx, paypalOrder("5O190127TN364715T", "cart_second"))
	if err != nil || again != first {
		t.Fatalf("bind again = %+v, %v; want %+v", again, err, first)
	}
	// A cart reference names one order only.
	if _, err := db.store.BindProviderOrder(ctx, paypalOrder("6O190127TN364715T", "cart_first")); !store.IsIntegrityViolation(err) {
		t.Errorf("a second order with the same cart reference: %v, want an integrity violation", err)
	}
	if n := db.count(t, `SELECT count(*) FROM provider_orders`); n != 1 {
		t.Errorf("%d provider_orders rows, want 1", n)
	}
}

func TestClaimProviderOrderOncePerOrder(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	a, b := db.pendingOrder(t), db.pendingOrder(t)
	if _, err := db.store.BindProviderOrder(ctx, paypalOrder("7O190127TN364715T", "cart_claimed")); err != nil {
		t.Fatal(err)
	}

	// Unknown to cartflow, and another amount or currency: refused, and nothing is claimed.
	_, err := db.store.ClaimProviderOrder(ctx, "paypal", "8O190127TN364715T", a.ID, 6200, "usd")
	wantErrIs(t, err, store.ErrProviderOrderUnknown)
	_, err = db.store.ClaimProviderOrder(ctx, "paypal", "7O190127TN364715T", a.ID, 5000, "usd")
	wantErrIs(t, err, store.ErrProviderOrderAmount)
	_, err = db.store.ClaimProviderOrder(ctx, "paypal", "7O190127TN364715T", a.ID, 6200, "eur")
	wantErrIs(t, err, store.ErrProviderOrderAmount)
	if n := db.count(t, `SELECT count(*) FROM provider_orders WHERE order_id IS NOT NULL`); n != 0 {
		t.Fatalf("%d claimed rows after refusals, want 0", n)
	}

	// Two orders race for it: exactly one wins, and the loser is told it is taken.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	refs := make([]string, 2)
	for i, o := range []store.Order{a, b} {
		wg.Go(func() {
			refs[i], errs[i] = db.store.ClaimProviderOrder(ctx, "paypal", "7O190127TN364715T", o.ID, 6200, "usd")
		})
	}
	wg.Wait()
	winner, loser := 0, 1
	if errs[0] != nil {
		winner, loser = 1, 0
	}
	if errs[winner] != nil || refs[winner] != "cart_claimed" || !errors.Is(errs[loser], store.ErrProviderOrderClaimed) {
		t.Fatalf("claims = %q, %v; want one claim of cart_claimed and one ErrProviderOrderClaimed", refs, errs)
	}
	// The winner's retry claims it again; the loser never does.
	orders := []store.Order{a, b}
	if ref, err := db.store.ClaimProviderOrder(ctx, "paypal", "7O190127TN364715T", orders[winner].ID, 6200, "usd"); err != nil || ref != "cart_claimed" {
		t.Errorf("the winner's retry = %q, %v", ref, err)
	}
	_, err = db.store.ClaimProviderOrder(ctx, "paypal", "7O190127TN364715T", orders[loser].ID, 6200, "usd")
	wantErrIs(t, err, store.ErrProviderOrderClaimed)
	if n := db.count(t, `SELECT count(*) FROM provider_orders WHERE order_id = $1 AND claimed_at IS NOT NULL`, orders[winner].ID); n != 1 {
		t.Errorf("the binding is not the winner's")
	}
}

func TestTwoOrdersCannotBePaidWithOneCapture(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	first, second := db.pendingOrder(t), db.pendingOrder(t)
	for _, o := range []store.Order{first, second} {
		if err := db.store.BeginPayment(ctx, store.PaymentAttempt{OrderID: o.ID, Kind: domain.PaymentCharge, Provider: "paypal",
			IdempotencyKey: "charge-" + o.CheckoutID, Amount: o.TotalAmount, Currency: o.Currency}); err != nil {
			t.Fatal(err)
		}
	}
	paid := store.PaymentOutcome{Status: domain.PaymentSucceeded, ProviderRef: "2GG279541U471931P"}
	if err := db.store.SettlePayment(ctx, "charge-"+first.CheckoutID, paid); err != nil {
		t.Fatal(err)
	}
	err := db.store.SettlePayment(ctx, "charge-"+second.CheckoutID, paid)
	wantErrIs(t, err, store.ErrPaymentRefTaken)

	// Nothing of the second settlement stays: its ledger row is still pending and its order unpaid.
	if row := db.paymentRow(t, "charge-"+second.CheckoutID); row.Status != "pending" || row.ProviderRef != nil {
		t.Errorf("the second charge's ledger row = %+v, want pending without a provider ref", row)
	}
	if got := db.orderRow(t, second.ID); got.Status == string(domain.OrderPaid) || got.ProviderPaymentRef != nil {
		t.Errorf("the second order = %s with payment ref %v, want it unpaid", got.Status, deref(got.ProviderPaymentRef))
	}
	if n := db.count(t, `SELECT count(*) FROM orders WHERE provider_payment_ref = $1`, paid.ProviderRef); n != 1 {
		t.Errorf("%d orders name the capture, want 1", n)
	}
	// The orders index holds on its own too, for a write that does not go through the ledger.
	_, err = db.pool.Exec(ctx, `UPDATE orders SET provider_payment_ref = $1 WHERE id = $2`, paid.ProviderRef, second.ID)
	if !store.IsIntegrityViolation(err) {
		t.Errorf("a second order naming the capture: %v, want a unique violation", err)
	}
}
