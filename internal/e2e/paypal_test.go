//go:build integration

package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	paypalfake "github.com/cartflow/cartflow/internal/dev/fake/paypal"
	"github.com/cartflow/cartflow/workflows"
)

// PayPal end to end: the stack serves the PayPal double (internal/dev/fake/paypal) and hands the
// worker and the BFF its URL, the app's credentials and the webhook id, so the worker captures
// through the PayPal gateway and the BFF verifies the double's webhooks by asking the double, as
// it would ask PayPal. The storefront's part is POST /api/v1/paypal/orders, which creates the
// order, and the buyer approving it in PayPal's window, which is the double's ApproveOrder.

// paypalBody is a checkout paid with an approved PayPal order, without a provider: the BFF tells
// PayPal from the order id's shape.
func paypalBody(email, orderID string) checkoutBody {
	b := validBody(email, orderID)
	b.Payment.Provider = ""
	return b
}

// paypalOrder returns the double's order, failing the test without it.
func paypalOrder(t *testing.T, id string) paypalfake.Order {
	t.Helper()
	o, ok := dev.PayPal.Order(id)
	if !ok {
		t.Fatalf("the PayPal double has no order %s", id)
	}
	return o
}

// paypalRequests returns the requests of an operation about a resource (an order or a capture)
// that the double received with a valid token.
func paypalRequests(op, resource string) []paypalfake.Request {
	var out []paypalfake.Request
	for _, r := range dev.PayPal.Requests() {
		if r.Operation == op && r.Resource == resource && r.Authenticated {
			out = append(out, r)
		}
	}
	return out
}

// paypalPurchase buys the usual cart (62.00 USD) with a newly approved order and returns the
// cartflow order id and the capture id the order recorded.
func paypalPurchase(t *testing.T) (orderID, captureID string) {
	t.Helper()
	key := newKey(t)
	return completedPurchase(t, key, paypalBody(strings.ToLower(key)+"@example.com", paypalApprovedOrder(t, usualCart...)), "paypal")
}

func TestPayPalPurchaseCompletes(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	email := strings.ToLower(key) + "@example.com"
	paypalID := paypalApprovedOrder(t, usualCart...)

	code, res := postJSON(t, key, paypalBody(email, paypalID))

	if code != http.StatusCreated || res.Status != "completed" || res.Amount != 6200 || res.Currency != "usd" || res.RedirectURL == "" {
		t.Fatalf("POST = %d %+v", code, res)
	}
	waitStatus(t, res.CheckoutID, "completed", 10*time.Second)

	chargeKey := "checkout-" + key + "/charge"
	rows := checkoutChargeRows(t, res.CheckoutID)
	rows.wantPaidWith(t, "paypal", chargeKey)
	orderRef := rows.OrderRef

	// At PayPal: the order was captured once, under the charge's key, and that capture is the
	// one the order names.
	o := paypalOrder(t, paypalID)
	if o.Status != "COMPLETED" || len(o.Captures) != 1 {
		t.Fatalf("the PayPal order is %+v, want completed with one capture", o)
	}
	if c := o.Captures[0]; c.ID != orderRef || c.Status != "COMPLETED" || c.Value != "62.00" || c.Currency != "USD" || c.RequestID != chargeKey {
		t.Errorf("capture at PayPal = %+v, want %s of 62.00 USD under %s", c, orderRef, chargeKey)
	}
	executed := 0
	for _, r := range paypalRequests(paypalfake.OpCapture, paypalID) {
		if r.RequestID != chargeKey {
			t.Errorf("a capture request with PayPal-Request-Id %q, want %q", r.RequestID, chargeKey)
		}
		if r.Executed && !r.Replayed {
			executed++
		}
	}
	if executed != 1 {
		t.Errorf("%d capture requests executed at PayPal, want 1", executed)
	}
	if n := providerRequests(key); n != 0 {
		t.Errorf("%d requests reached Stripe for a PayPal checkout", n)
	}
	if scheduled, attempt := activityRuns(history(t, "checkout-"+key), "Charge"); scheduled != 1 || attempt != 1 {
		t.Errorf("Charge scheduled %d times, completed on attempt %d", scheduled, attempt)
	}
}

func TestPayPalAmountMismatchIsRefused(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	email := strings.ToLower(key) + "@example.com"
	// The order was created for a cart of 50.00; the checkout's cart costs 62.00.
	paypalID := paypalApprovedOrder(t, item{SKU: "tshirt-classic", Quantity: 2})

	code, res := postJSON(t, key, paypalBody(email, paypalID))

	if code != http.StatusCreated || res.Status != "failed" || res.Failure == nil || res.Failure.Code != "amount_mismatch" || res.RedirectURL != "" {
		t.Fatalf("POST = %d %+v failure %+v", code, res, res.Failure)
	}
	if got := waitStatus(t, res.CheckoutID, "failed", 5*time.Second); got.Failure == nil || got.Failure.Code != "amount_mismatch" {
		t.Errorf("GET failure = %+v", got.Failure)
	}
	if o := paypalOrder(t, paypalID); o.Status != "APPROVED" || len(o.Captures) != 0 {
		t.Errorf("the PayPal order is %+v, want it approved and never captured", o)
	}
	if reqs := paypalRequests(paypalfake.OpCapture, paypalID); len(reqs) != 0 {
		t.Errorf("%d capture requests reached PayPal, want none: the amount is checked first", len(reqs))
	}
	if n := queryInt(t, `SELECT count(*) FROM provider_orders WHERE provider_order_id = $1 AND order_id IS NULL`, paypalID); n != 1 {
		t.Errorf("the binding was claimed by a checkout that was refused")
	}
	if n := queryInt(t, `SELECT count(*) FROM payments p JOIN orders o ON o.id = p.order_id
		WHERE o.idempotency_key = $1 AND p.provider = 'paypal' AND p.status = 'failed' AND p.failure_code = 'amount_mismatch'`, key); n != 1 {
		t.Errorf("%d failed PayPal ledger rows with amount_mismatch, want 1", n)
	}
	if n := queryInt(t, `SELECT count(*) FROM users WHERE email = $1`, email); n != 0 {
		t.Errorf("%d users registered for a refused checkout, want 0", n)
	}
	if scheduled, _ := activityRuns(history(t, "checkout-"+key), "Charge"); scheduled != 1 {
		t.Errorf("Charge scheduled %d times; a refusal is final", scheduled)
	}
}

func TestPayPalRefundsThroughTheBFFShowInPostgresAndAtTheDouble(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	orderID, captureID := paypalPurchase(t)

	partialKey, restKey := newKey(t), newKey(t)
	if code, body := refundVia(t, orderID, partialKey, staffKey, `{"amount":2000}`); code != http.StatusCreated || !strings.Contains(body, `"partially_refunded"`) {
		t.Fatalf("partial refund: %d %s", code, body)
	}
	// The same key again is the same refund.
	if code, body := refundVia(t, orderID, partialKey, staffKey, `{"amount":2000}`); code != http.StatusCreated {
		t.Fatalf("repeated partial refund: %d %s", code, body)
	}
	if code, body := refundVia(t, orderID, newKey(t), staffKey, `{"amount":999999}`); code != http.StatusUnprocessableEntity || !strings.Contains(body, "refund_exceeds_captured") {
		t.Fatalf("over-refund: %d %s", code, body)
	}
	if code, body := refundVia(t, orderID, restKey, staffKey, ``); code != http.StatusCreated || !strings.Contains(body, `"order_status":"refunded"`) {
		t.Fatalf("refund of the rest: %d %s", code, body)
	}

	var status string
	var refunded int64
	if err := db.QueryRow(ctx, `SELECT status, refunded_amount FROM orders WHERE id = $1`, orderID).Scan(&status, &refunded); err != nil {
		t.Fatal(err)
	}
	if status != "refunded" || refunded != 6200 {
		t.Errorf("order %s, refunded %d; want refunded 6200", status, refunded)
	}
	rows, err := db.Query(ctx, `SELECT idempotency_key, coalesce(provider_ref, ''), amount FROM payments
		WHERE order_id = $1 AND kind = 'refund' AND status = 'succeeded'`, orderID)
	if err != nil {
		t.Fatal(err)
	}
	ledger := map[string]struct {
		ref    string
		amount int64
	}{}
	for rows.Next() {
		var key, ref string
		var amount int64
		if err := rows.Scan(&key, &ref, &amount); err != nil {
			t.Fatal(err)
		}
		ledger[key] = struct {
			ref    string
			amount int64
		}{ref, amount}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	// At PayPal: two refunds of the capture, each under its refund's key, and the capture
	// refunded in full. The ledger names them.
	c, ok := dev.PayPal.Capture(captureID)
	if !ok || c.Status != "REFUNDED" || c.RefundedValue != "62.00" || len(c.Refunds) != 2 {
		t.Fatalf("capture at PayPal = %+v, want refunded in full by two refunds", c)
	}
	want := []struct {
		key, value string
		amount     int64
	}{
		{workflows.RefundWorkflowID(orderID, partialKey) + "/refund", "20.00", 2000},
		{workflows.RefundWorkflowID(orderID, restKey) + "/refund", "42.00", 4200},
	}
	if len(ledger) != 2 {
		t.Errorf("succeeded refund rows %v, want 2", ledger)
	}
	for i, w := range want {
		r := c.Refunds[i]
		if r.RequestID != w.key || r.Value != w.value || r.RequestedValue != w.value {
			t.Errorf("refund %d at PayPal = %+v, want %s under %s", i, r, w.value, w.key)
		}
		if row := ledger[w.key]; row.ref != r.ID || row.amount != w.amount {
			t.Errorf("ledger row %s = %+v, want PayPal's refund %s of %d", w.key, row, r.ID, w.amount)
		}
	}
}

// paypalDelivered returns the BFF's answer to the event's last delivery, failing the test
// unless the BFF accepted it.
func paypalDelivered(t *testing.T, ev paypalfake.Event) webhookAnswer {
	t.Helper()
	if len(ev.Deliveries) == 0 {
		t.Fatalf("event %s was never delivered", ev.ID)
	}
	d := ev.Deliveries[len(ev.Deliveries)-1]
	return webhookAccepted(t, d.Status, d.Response, d.Error, ev.ID)
}

func TestPayPalRefundMadeAtPayPalIsRecordedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	orderID, captureID := paypalPurchase(t)

	// The merchant refunds the payment in PayPal's dashboard; PayPal tells the BFF.
	ev, err := dev.PayPal.SendWebhook(ctx, paypalfake.EventCaptureRefunded, captureID)
	if err != nil {
		t.Fatalf("SendWebhook: %v (deliveries %+v)", err, ev.Deliveries)
	}
	if first := paypalDelivered(t, ev); first.Duplicate {
		t.Errorf("the first delivery was reported as a duplicate")
	}
	waitFor(t, "the refund on the order", 20*time.Second, func() bool {
		return queryInt(t, `SELECT count(*) FROM orders WHERE id = $1 AND refunded_amount = 6200 AND status = 'refunded'`, orderID) == 1
	})

	// PayPal delivers the same event again, in a transmission of its own.
	again, err := dev.PayPal.ResendWebhook(ctx, ev.ID)
	if err != nil {
		t.Fatalf("ResendWebhook: %v", err)
	}
	paypalDelivered(t, again)
	// Once the first delivery's workflow is done, nothing more can land.
	typ, amount, currency, _ := providerEventOnce(t, "paypal", ev.ID, orderID)
	if typ != "refund.created" || amount != 6200 || currency != "usd" {
		t.Errorf("order event %s %d %s, want refund.created 6200 usd", typ, amount, currency)
	}
	var status string
	var refunded int64
	if err := db.QueryRow(ctx, `SELECT status, refunded_amount FROM orders WHERE id = $1`, orderID).Scan(&status, &refunded); err != nil {
		t.Fatal(err)
	}
	if status != "refunded" || refunded != 6200 {
		t.Errorf("after the redelivery: order %s, refunded %d; want refunded 6200", status, refunded)
	}

	// The refund was PayPal's own: cartflow asked for none.
	if c, _ := dev.PayPal.Capture(captureID); c.Status != "REFUNDED" || len(c.Refunds) != 1 || c.Refunds[0].RequestID != "" {
		t.Errorf("capture at PayPal = %+v, want one refund made at PayPal", c)
	}
	if reqs := paypalRequests(paypalfake.OpRefund, captureID); len(reqs) != 0 {
		t.Errorf("cartflow sent %d refund requests for a refund made at PayPal", len(reqs))
	}
}

func TestPayPalWebhookWithABadSignatureIsRefused(t *testing.T) {
	t.Parallel()
	eventID := "WH-FORGED" + strings.ToUpper(strings.TrimPrefix(newKey(t), "e2e-"))
	body := `{"id":"` + eventID + `","event_type":"PAYMENT.CAPTURE.REFUNDED","resource_type":"refund",
		"resource":{"id":"1R000000000000000","amount":{"currency_code":"USD","value":"62.00"},"status":"COMPLETED"}}`
	// Signed as the double signs, but with a key that is not the double's: PayPal says FAILURE.
	sent, transmission := time.Now().UTC().Format(time.RFC3339), "6d8e5a9c-0b3f-4c1e-9a7d-2f4b8c6e1a30"
	req, err := http.NewRequest(http.MethodPost, dev.APIURL+"/webhooks/paypal", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("PAYPAL-TRANSMISSION-ID", transmission)
	req.Header.Set("PAYPAL-TRANSMISSION-TIME", sent)
	req.Header.Set("PAYPAL-TRANSMISSION-SIG", paypalfake.Sign("not-the-double's-key", transmission, sent, dev.PayPal.WebhookID(), []byte(body)))
	req.Header.Set("PAYPAL-CERT-URL", "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-forged")
	req.Header.Set("PAYPAL-AUTH-ALGO", "SHA256withRSA")
	// The forger repeats it: PayPal's quota pays for the first delivery only.
	for i := range 20 {
		resp, err := http.DefaultClient.Do(req.Clone(context.Background()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("forged delivery %d answered %d, want 400", i, resp.StatusCode)
		}
		req.Body = io.NopCloser(strings.NewReader(body))
	}
	// The BFF asked PayPal once, which refused the signature.
	asked, calls := false, 0
	for _, r := range dev.PayPal.Requests() {
		if r.Operation == paypalfake.OpVerify && strings.Contains(string(r.Body), eventID) {
			asked = r.Authenticated && r.Status == http.StatusOK
			calls++
		}
	}
	if !asked || calls != 1 {
		t.Errorf("the BFF asked the PayPal double %d times to verify the delivery (last answered: %v), want once", calls, asked)
	}
	if n := queryInt(t, `SELECT count(*) FROM provider_events WHERE provider = 'paypal' AND event_id = $1`, eventID); n != 0 {
		t.Errorf("%d provider_events rows for a forged event", n)
	}
	if workflowExists(t, workflows.ProviderEventWorkflowID("paypal", eventID)) {
		t.Errorf("a forged event started a workflow")
	}
}
