//go:build integration

package e2e

import (
	"context"
	"net/http"
	"testing"
)

// completedPurchase posts body under key, wants the checkout completed in the answer and returns
// the order id and the payment reference that the order recorded from provider.
func completedPurchase(t *testing.T, key string, body checkoutBody, provider string) (orderID, ref string) {
	t.Helper()
	code, res := postJSON(t, key, body)
	if code != http.StatusCreated || res.Status != "completed" {
		t.Fatalf("%s purchase: %d %+v", provider, code, res)
	}
	if err := db.QueryRow(context.Background(), `SELECT provider_payment_ref FROM orders WHERE id = $1 AND provider = $2`,
		res.OrderID, provider).Scan(&ref); err != nil {
		t.Fatalf("order %s: %v", res.OrderID, err)
	}
	return res.OrderID, ref
}

// chargeRows is what Postgres holds for a checkout: its order, the order's charge and its user.
type chargeRows struct {
	OrderStatus, OrderProvider, OrderRef       string
	PaymentStatus, PaymentProvider, PaymentRef string
	PaymentKey                                 string
	Paid                                       int64
	UserStatus                                 string
}

// checkoutChargeRows reads the order, charge and user rows of a checkout.
func checkoutChargeRows(t *testing.T, checkoutID string) chargeRows {
	t.Helper()
	var r chargeRows
	if err := db.QueryRow(context.Background(), `
		SELECT o.status, o.provider, coalesce(o.provider_payment_ref, ''), p.status, p.provider, coalesce(p.provider_ref, ''),
			p.idempotency_key, p.amount, u.status
		FROM orders o JOIN payments p ON p.order_id = o.id AND p.kind = 'charge' JOIN users u ON u.id = o.user_id
		WHERE o.checkout_id = $1`, checkoutID).
		Scan(&r.OrderStatus, &r.OrderProvider, &r.OrderRef, &r.PaymentStatus, &r.PaymentProvider, &r.PaymentRef,
			&r.PaymentKey, &r.Paid, &r.UserStatus); err != nil {
		t.Fatalf("order, payment and user rows: %v", err)
	}
	return r
}

// wantPaidWith fails unless the rows are those of a completed checkout of 6200 charged with
// provider, the charge's reference the order's, and a confirmed user; and, when chargeKey is
// not empty, the charge made under chargeKey.
func (r chargeRows) wantPaidWith(t *testing.T, provider, chargeKey string) {
	t.Helper()
	if r.OrderStatus != "completed" || r.OrderProvider != provider || r.PaymentStatus != "succeeded" || r.PaymentProvider != provider ||
		r.PaymentRef != r.OrderRef || (chargeKey != "" && r.PaymentKey != chargeKey) || r.Paid != 6200 || r.UserStatus != "pending" {
		t.Errorf("rows: order %s %s ref %s, payment %s %s ref %s key %s amount %d, user %s",
			r.OrderStatus, r.OrderProvider, r.OrderRef, r.PaymentStatus, r.PaymentProvider, r.PaymentRef, r.PaymentKey, r.Paid, r.UserStatus)
	}
}
