//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/cartflow/cartflow/workflows"
)

// Helpers shared by the end-to-end tests of the provider doubles (Braintree, PayPal): what the
// BFF answered a webhook delivery, and how a provider event landed in Postgres.

// webhookAnswer is the BFF's answer to a webhook delivery.
type webhookAnswer struct {
	Received  bool   `json:"received"`
	EventID   string `json:"event_id"`
	Duplicate bool   `json:"duplicate"`
}

// webhookAccepted decodes the BFF's answer to a delivery that a double recorded (its status,
// response and error), failing the test unless the BFF accepted it as event wantEventID; an
// empty wantEventID accepts any event id, for providers whose deliveries carry none.
func webhookAccepted(t *testing.T, status int, response, deliveryErr, wantEventID string) webhookAnswer {
	t.Helper()
	var a webhookAnswer
	if err := json.Unmarshal([]byte(response), &a); err != nil || status != http.StatusOK || !a.Received || a.EventID == "" ||
		(wantEventID != "" && a.EventID != wantEventID) {
		t.Fatalf("the BFF answered the delivery of %q with %d %q (%s)", wantEventID, status, response, deliveryErr)
	}
	return a
}

// providerEventOnce waits until the workflow of the provider's event has finished, so that no
// redelivery can still land, then checks that the event was stored once and made exactly one
// order event on the order, and returns that order event's type, amount, currency and reason.
func providerEventOnce(t *testing.T, provider, eventID, orderID string) (typ string, amount int64, currency, reason string) {
	t.Helper()
	waitFor(t, "the event's workflow to finish", 20*time.Second, func() bool {
		return !workflowRunning(t, workflows.ProviderEventWorkflowID(provider, eventID))
	})
	if n := queryInt(t, `SELECT count(*) FROM provider_events WHERE provider = $1 AND event_id = $2`, provider, eventID); n != 1 {
		t.Errorf("%d provider_events rows for the event, want 1", n)
	}
	rows := queryInt(t, `SELECT count(*) FROM order_events WHERE order_id = $1`, orderID)
	if err := db.QueryRow(context.Background(), `SELECT type, coalesce(amount, 0), coalesce(currency, ''), coalesce(reason, '')
		FROM order_events WHERE order_id = $1 AND provider = $2 AND provider_event_id = $3`, orderID, provider, eventID).
		Scan(&typ, &amount, &currency, &reason); err != nil || rows != 1 {
		t.Fatalf("%d order_events rows; the event's: %v", rows, err)
	}
	return typ, amount, currency, reason
}

// workflowRunning reports whether the workflow is still running; it fails the test when
// Temporal does not know it.
func workflowRunning(t *testing.T, workflowID string) bool {
	t.Helper()
	desc, err := temporal.DescribeWorkflowExecution(context.Background(), workflowID, "")
	if err != nil {
		t.Fatalf("describe %s: %v", workflowID, err)
	}
	return desc.GetWorkflowExecutionInfo().GetCloseTime() == nil
}
