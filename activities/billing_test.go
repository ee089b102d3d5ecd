//go:build integration

package activities_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// malformedMessage is the developer message fakeGateway's provider answers a malformed request with.
const malformedMessage = "Received unknown parameter: cartflow_injected_fault"

// A request the provider refuses as malformed is cartflow's bug: the charge fails for good
// under its own error type, which the worker reports, while the customer, the order and the
// funnel see a generic failure and never the provider's developer message.
func TestChargeMalformedRequestFailsGenerically(t *testing.T) {
	t.Parallel()
	pool := pg.NewDB(t)
	mp := startIngestion(t)
	w := newFunnelWorker(t, store.New(pool), mp.url)
	order := w.createOrder(t, "malformed")

	err := w.charge(t, "malformed", "malformed", order)

	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypePaymentRequestInvalid || !appErr.NonRetryable() {
		t.Fatalf("Charge error = %v, want a non-retryable %s", err, activities.ErrTypePaymentRequestInvalid)
	}
	var f domain.Failure
	if err := appErr.Details(&f); err != nil || f.Code != "payment_request_invalid" || f.Message != "the payment could not be completed" {
		t.Fatalf("failure details %+v (%v), want the generic payment_request_invalid", f, err)
	}
	if strings.Contains(appErr.Message(), malformedMessage) {
		t.Errorf("the error's message %q carries the provider's developer message", appErr.Message())
	}
	var status, code, message string
	if err := pool.QueryRow(context.Background(), `SELECT status, failure_code, failure_message FROM orders WHERE id = $1`,
		order.OrderID).Scan(&status, &code, &message); err != nil {
		t.Fatal(err)
	}
	if status != "failed" || code != f.Code || message != f.Message {
		t.Errorf("order %s %s %q, want failed with the generic failure", status, code, message)
	}
	w.close(t)
	events, _ := mp.got()
	if len(events) != 2 || events[1].Event != activities.FunnelPaymentFailed || events[1].Properties["failure_code"] != f.Code {
		t.Fatalf("funnel events %+v, want checkout_started then payment_failed with %s", events, f.Code)
	}
}
