//go:build integration

package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/cartflow/cartflow/internal/staffkey"
	"github.com/cartflow/cartflow/internal/store"
	"github.com/cartflow/cartflow/workflows"
)

var (
	// staffKey holds every scope; supportKey only orders:read. TestMain makes them in the stack's
	// database, as the admin command does.
	staffKey, supportKey string
)

// createStaffKeys makes the staff keys the tests use.
func createStaffKeys(ctx context.Context) (all, support string, err error) {
	st := store.New(db)
	for _, k := range []struct {
		key    *string
		name   string
		scopes []string
	}{{&all, "e2e staff", staffkey.Scopes()}, {&support, "e2e support", []string{staffkey.ScopeOrdersRead}}} {
		if *k.key, err = staffkey.Generate(); err != nil {
			return "", "", err
		}
		if _, err = st.CreateStaffKey(ctx, k.name, *k.key, k.scopes); err != nil {
			return "", "", err
		}
	}
	return all, support, nil
}

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
	// A support key may read the order but not refund it.
	if code, body := refundVia(t, orderID, newKey(t), supportKey, `{"amount":1000}`); code != http.StatusForbidden || !strings.Contains(body, `"missing_scope":"refunds"`) {
		t.Fatalf("support key: %d %s", code, body)
	}
	if n := queryInt(t, `SELECT count(*) FROM payments WHERE order_id = $1 AND kind = 'refund'`, orderID); n != 0 {
		t.Fatalf("%d refunds after unauthorized requests", n)
	}
	if code, body := doJSON(t, http.MethodGet, "/api/v1/staff/orders/"+orderID, "", "", "Authorization", "Bearer "+supportKey); code != http.StatusOK || !strings.Contains(body, `"kind":"charge"`) {
		t.Fatalf("support read: %d %s", code, body)
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
	// Every staff action on the order is on record with its key: the forbidden refund and the
	// read by the support key, and the four refund requests by the staff key.
	if n := queryInt(t, `SELECT count(*) FROM staff_audit a JOIN staff_keys k ON k.id = a.staff_key_id
		WHERE a.target = $1 AND k.name = 'e2e support' AND a.outcome IN ('forbidden', 'succeeded')`, orderID); n != 2 {
		t.Fatalf("%d audit rows for the support key, want 2", n)
	}
	if n := queryInt(t, `SELECT count(*) FROM staff_audit a JOIN staff_keys k ON k.id = a.staff_key_id
		WHERE a.target = $1 AND k.name = 'e2e staff' AND a.action = 'refund.create' AND a.outcome <> 'attempted'`, orderID); n != 4 {
		t.Fatalf("%d finished refund audit rows for the staff key, want 4", n)
	}
	recordHistory(t, workflows.RefundWorkflowID(orderID, partialKey), "refund_partial")
	for _, pi := range chargesFor(key) {
		if pi.AmountRefunded != 6200 {
			t.Fatalf("Stripe shows %d refunded of %+v", pi.AmountRefunded, pi)
		}
	}
}
