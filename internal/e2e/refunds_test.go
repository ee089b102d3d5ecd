//go:build integration

package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/cartflow/cartflow/workflows"
)

// staffKey is the staff API key the e2e stack's BFF is started with.
const staffKey = "e2e-staff-key-not-secret"

func refundVia(t *testing.T, orderID, key, apiKey, body string) (int, string) {
	t.Helper()
	return doJSON(t, http.MethodPost, "/api/v1/orders/"+orderID+"/refunds", key, body, "Authorization", "Bearer "+apiKey)
}

func TestRefundsThroughTheBFFShowInPostgresAndAtStripe(t *testing.T) {
	key := newKey(t)
	code, res := postJSON(t, key, validBody(strings.ToLower(key)+"@example.com", "pm_card_visa"))
	if code != http.StatusCreated || res.Status != "completed" {
		t.Fatalf("purchase: %d %+v", code, res)
	}
	orderID := res.OrderID

	// Without the staff key nothing starts.
	if code, body := refundVia(t, orderID, newKey(t), "", `{"amount":1000}`); code != http.StatusUnauthorized {
		t.Fatalf("no key: %d %s", code, body)
	}
	if code, body := refundVia(t, orderID, newKey(t), "wrong-key", `{"amount":1000}`); code != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d %s", code, body)
	}
	if n := queryInt(t, `SELECT count(*) FROM payments WHERE order_id = $1 AND kind = 'refund'`, orderID); n != 0 {
		t.Fatalf("%d refunds after unauthorized requests", n)
	}

	partialKey := newKey(t)
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
	if code, body := refundVia(t, orderID, newKey(t), staffKey, ``); code != http.StatusCreated || !strings.Contains(body, `"order_status":"refunded"`) {
		t.Fatalf("rest refunded: %d %s", code, body)
	}

	var status string
	var refunded int64
	if err := db.QueryRow(context.Background(), `SELECT status, refunded_amount FROM orders WHERE id = $1`, orderID).Scan(&status, &refunded); err != nil {
		t.Fatal(err)
	}
	if status != "refunded" || refunded != 6200 {
		t.Fatalf("order %s, refunded %d", status, refunded)
	}
	if n := queryInt(t, `SELECT count(*) FROM payments WHERE order_id = $1 AND kind = 'refund' AND status = 'succeeded'`, orderID); n != 2 {
		t.Fatalf("%d succeeded refunds in the ledger, want 2", n)
	}
	recordHistory(t, workflows.RefundWorkflowID(orderID, partialKey), "refund_partial")
	for _, pi := range chargesFor(key) {
		if pi.AmountRefunded != 6200 {
			t.Fatalf("Stripe shows %d refunded of %+v", pi.AmountRefunded, pi)
		}
	}
}
