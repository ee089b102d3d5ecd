//go:build integration

package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	paypalfake "github.com/cartflow/cartflow/internal/dev/fake/paypal"
)

// An approved PayPal order pays for one checkout only. The storefront has the BFF create the
// order (POST /api/v1/paypal/orders), for the cart's price and bound to a cart reference; the
// buyer approves it at PayPal (the double's ApproveOrder); the checkout's capture claims the
// binding, and PayPal's answers decide whose capture it is.

// paypalOrderAnswer is the BFF's answer to POST /api/v1/paypal/orders, or its error.
type paypalOrderAnswer struct {
	PayPalOrderID string `json:"paypal_order_id"`
	CartRef       string `json:"cart_ref"`
	ApproveURL    string `json:"approve_url"`
	Amount        int64  `json:"amount"`
	Currency      string `json:"currency"`
	Error         *struct {
		Code  string `json:"code"`
		Field string `json:"field"`
	} `json:"error"`
}

// createPayPalOrder asks the BFF for a PayPal order of items under key.
func createPayPalOrder(t *testing.T, key string, items []item) (int, paypalOrderAnswer) {
	t.Helper()
	raw, _ := json.Marshal(map[string]any{"items": items}) // a plain map always marshals
	req, _ := http.NewRequest(http.MethodPost, dev.APIURL+"/api/v1/paypal/orders", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out paypalOrderAnswer
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("POST /api/v1/paypal/orders: %d, not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

// usualCart is the cart of validBody: 62.00 USD.
var usualCart = []item{{SKU: "tshirt-classic", Quantity: 2}, {SKU: "mug-enamel", Quantity: 1}}

// paypalApprovedOrder has the BFF create a PayPal order for items, checks that PayPal holds it
// bound to its cart reference for the cart's price, and has the buyer approve it.
func paypalApprovedOrder(t *testing.T, items ...item) string {
	t.Helper()
	code, o := createPayPalOrder(t, newKey(t), items)
	if code != http.StatusCreated || o.PayPalOrderID == "" || !strings.HasPrefix(o.CartRef, "cart_") || o.ApproveURL == "" {
		t.Fatalf("POST /api/v1/paypal/orders = %d %+v", code, o)
	}
	at := paypalOrder(t, o.PayPalOrderID)
	if at.Status != "CREATED" || at.CustomID != o.CartRef || at.Currency != strings.ToUpper(o.Currency) {
		t.Fatalf("the order at PayPal is %+v, want it created for %s and waiting for the buyer", at, o.CartRef)
	}
	if n := queryInt(t, `SELECT count(*) FROM provider_orders WHERE provider = 'paypal' AND provider_order_id = $1
		AND cart_ref = $2 AND amount = $3 AND currency = $4 AND order_id IS NULL`, o.PayPalOrderID, o.CartRef, o.Amount, o.Currency); n != 1 {
		t.Fatalf("%d unclaimed bindings of %s in Postgres, want 1", n, o.PayPalOrderID)
	}
	if _, err := dev.PayPal.ApproveOrder(o.PayPalOrderID); err != nil {
		t.Fatal(err)
	}
	return o.PayPalOrderID
}

// paypalExecutedCaptures counts the capture requests for an order that PayPal executed, not
// replayed.
func paypalExecutedCaptures(orderID string) int {
	n := 0
	for _, r := range paypalRequests(paypalfake.OpCapture, orderID) {
		if r.Executed && !r.Replayed {
			n++
		}
	}
	return n
}

// wantPayPalRefused checks a checkout refused with code: failed in its answer and in Postgres,
// its charge failed with that code, and no succeeded charge.
func wantPayPalRefused(t *testing.T, key string, code int, res checkoutResp, failure string) {
	t.Helper()
	if code != http.StatusCreated || res.Status != "failed" || res.Failure == nil || res.Failure.Code != failure {
		t.Fatalf("POST = %d %+v failure %+v, want failed with %s", code, res, res.Failure, failure)
	}
	if n := queryInt(t, `SELECT count(*) FROM orders WHERE idempotency_key = $1 AND status = 'failed' AND failure_code = $2
		AND provider_payment_ref IS NULL`, key, failure); n != 1 {
		t.Errorf("%d failed orders with %s for %s, want 1", n, failure, key)
	}
	if n := queryInt(t, `SELECT count(*) FROM payments p JOIN orders o ON o.id = p.order_id
		WHERE o.idempotency_key = $1 AND p.kind = 'charge' AND p.status = 'failed' AND p.failure_code = $2`, key, failure); n != 1 {
		t.Errorf("%d failed charges with %s for %s, want 1", n, failure, key)
	}
	if n := queryInt(t, `SELECT count(*) FROM payments p JOIN orders o ON o.id = p.order_id
		WHERE o.idempotency_key = $1 AND p.kind = 'charge' AND p.status = 'succeeded'`, key); n != 0 {
		t.Errorf("%d succeeded charges for a refused checkout, want 0", n)
	}
	if scheduled, _ := activityRuns(history(t, "checkout-"+key), "Charge"); scheduled != 1 {
		t.Errorf("Charge scheduled %d times; a refusal is final", scheduled)
	}
}

func TestPayPalApprovalPaysForOneCheckoutOnly(t *testing.T) {
	t.Parallel()
	paypalID := paypalApprovedOrder(t, usualCart...)
	keyA, keyB := newKey(t), newKey(t)

	code, first := postJSON(t, keyA, paypalBody(strings.ToLower(keyA)+"@example.com", paypalID))
	if code != http.StatusCreated || first.Status != "completed" {
		t.Fatalf("first checkout: %d %+v", code, first)
	}
	checkoutChargeRows(t, first.CheckoutID).wantPaidWith(t, "paypal", "checkout-"+keyA+"/charge")
	if o := paypalOrder(t, paypalID); len(o.Captures) != 1 || paypalExecutedCaptures(paypalID) != 1 {
		t.Fatalf("the PayPal order is %+v, want one capture", o)
	}

	// Another checkout, with a new key and the approval the first one captured: refused, and
	// no money moves.
	code, second := postJSON(t, keyB, paypalBody(strings.ToLower(keyB)+"@example.com", paypalID))
	wantPayPalRefused(t, keyB, code, second, "payment_already_used")
	o := paypalOrder(t, paypalID)
	if len(o.Captures) != 1 || o.Captures[0].RequestID != "checkout-"+keyA+"/charge" || paypalExecutedCaptures(paypalID) != 1 {
		t.Errorf("the PayPal order is %+v with %d captures executed, want only the first checkout's", o, paypalExecutedCaptures(paypalID))
	}
	if n := queryInt(t, `SELECT count(*) FROM provider_orders po JOIN orders o ON o.id = po.order_id
		WHERE po.provider_order_id = $1 AND o.idempotency_key = $2`, paypalID, keyA); n != 1 {
		t.Errorf("the binding is not the first checkout's")
	}

	// The first checkout's key again: its original result, and nothing more at PayPal.
	code, again := postJSON(t, keyA, paypalBody(strings.ToLower(keyA)+"@example.com", paypalID))
	if code != http.StatusCreated || again.Status != "completed" || again.CheckoutID != first.CheckoutID || again.OrderID != first.OrderID {
		t.Errorf("the first checkout again: %d %+v, want %+v", code, again, first)
	}
	if n := len(paypalOrder(t, paypalID).Captures); n != 1 || paypalExecutedCaptures(paypalID) != 1 {
		t.Errorf("%d captures after the repeat, want 1", n)
	}
}

func TestPayPalOrderCreatedOutsideCartflowIsRefused(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	// The buyer's browser created and approved an order for the right amount, without cartflow.
	paypalID, err := dev.PayPal.CreateApprovedOrder(6200, "usd")
	if err != nil {
		t.Fatal(err)
	}

	code, res := postJSON(t, key, paypalBody(strings.ToLower(key)+"@example.com", paypalID))

	wantPayPalRefused(t, key, code, res, "paypal_order_unknown")
	if o := paypalOrder(t, paypalID); o.Status != "APPROVED" || len(o.Captures) != 0 {
		t.Errorf("the PayPal order is %+v, want it never captured", o)
	}
	if reqs := paypalRequests(paypalfake.OpCapture, paypalID); len(reqs) != 0 {
		t.Errorf("%d capture requests reached PayPal, want none", len(reqs))
	}
}

func TestPayPalOrderCreationIsIdempotent(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	code, first := createPayPalOrder(t, key, usualCart)
	if code != http.StatusCreated || first.Amount != 6200 || first.Currency != "usd" {
		t.Fatalf("POST /api/v1/paypal/orders = %d %+v, want 62.00 usd", code, first)
	}
	code, again := createPayPalOrder(t, key, usualCart)
	if code != http.StatusCreated || again != first {
		t.Errorf("the same key again = %d %+v, want %+v", code, again, first)
	}
	if n := queryInt(t, `SELECT count(*) FROM provider_orders WHERE provider_order_id = $1`, first.PayPalOrderID); n != 1 {
		t.Errorf("%d bindings, want 1", n)
	}
	creates := 0
	for _, r := range dev.PayPal.Requests() {
		if r.Operation == paypalfake.OpCreateOrder && r.RequestID == "paypal-order/"+key && r.Executed && !r.Replayed {
			creates++
		}
	}
	if creates != 1 {
		t.Errorf("%d orders created at PayPal under the key, want 1", creates)
	}
	// The same key for another cart is refused; a cart the catalog refuses names the item.
	if code, other := createPayPalOrder(t, key, []item{{SKU: "mug-enamel", Quantity: 1}}); code != http.StatusUnprocessableEntity || other.Error == nil || other.Error.Code != "idempotency_key_reused" {
		t.Errorf("the key with another cart = %d %+v", code, other.Error)
	}
	if code, bad := createPayPalOrder(t, newKey(t), []item{{SKU: "no-such-thing", Quantity: 1}}); code != http.StatusUnprocessableEntity || bad.Error == nil ||
		bad.Error.Code != "unknown_sku" || bad.Error.Field != "items[0].sku" {
		t.Errorf("an unknown sku = %d %+v", code, bad.Error)
	}
}
