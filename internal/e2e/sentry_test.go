//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	stripefake "github.com/cartflow/cartflow/internal/dev/fake/stripe"
)

// A checkout whose payment request Stripe refuses as malformed (an unknown parameter: cartflow's
// bug, not the customer's input) fails for the customer with a generic failure, and reaches
// Sentry exactly once, typed, with neither the customer's email nor the payment token.
// The test is not parallel: the fault takes whichever PaymentIntent creation comes next.
func TestMalformedPaymentRequestFailsAndReachesSentryOnce(t *testing.T) {
	key := newKey(t)
	wfID := "checkout-" + key
	email := strings.ToLower(key) + "@example.com"
	const token = "pm_card_visa"
	dev.StripeProxy.AddFault(stripefake.Fault{Method: http.MethodPost, PathPrefix: "/v1/payment_intents", Count: 1,
		Status: http.StatusBadRequest, ErrorCode: "parameter_unknown"})

	code, res := postJSON(t, key, validBody(email, token))
	if code != http.StatusCreated && code != http.StatusAccepted {
		t.Fatalf("purchase: %d %+v", code, res)
	}
	got := waitStatus(t, res.CheckoutID, "failed", 30*time.Second)
	if got.Failure == nil || got.Failure.Code != "payment_request_invalid" || strings.Contains(got.Failure.Message, "injected fault") {
		t.Fatalf("failure %+v, want the generic payment_request_invalid without the provider's developer message", got.Failure)
	}

	var status, failureCode string
	if err := db.QueryRow(context.Background(), `SELECT status, coalesce(failure_code, '') FROM orders WHERE idempotency_key = $1`, key).
		Scan(&status, &failureCode); err != nil {
		t.Fatalf("order row: %v", err)
	}
	if status != "failed" || failureCode != "payment_request_invalid" {
		t.Fatalf("order %s with failure %q, want failed with payment_request_invalid", status, failureCode)
	}
	if scheduled, _ := activityRuns(history(t, wfID), "Charge"); scheduled != 1 {
		t.Errorf("Charge scheduled %d times; a malformed request is final", scheduled)
	}

	waitFor(t, "the Sentry event", 10*time.Second, func() bool { return reported.SentryEventsMentioning(wfID) >= 1 })
	time.Sleep(time.Second) // a duplicate, from the workflow's own failure or a retry, would arrive later
	if n := reported.SentryEventsMentioning(wfID); n != 1 {
		t.Fatalf("%d Sentry events for the failed checkout, want 1", n)
	}
	envelope := reported.EnvelopeMentioning(wfID)
	if tags := envelopeTags(t, envelope); tags["error_type"] != "PaymentRequestInvalid" || tags["workflow_id"] != wfID {
		t.Errorf("event tags %v, want error_type PaymentRequestInvalid for %s", tags, wfID)
	}
	// The team learns what Stripe refused, through the error's cause.
	if !strings.Contains(envelope, "parameter_unknown") {
		t.Errorf("the event does not name the provider's error code: %s", envelope)
	}
	for _, personal := range []string{email, token} {
		if strings.Contains(strings.ToLower(envelope), strings.ToLower(personal)) {
			t.Errorf("the Sentry event carries %q: %s", personal, envelope)
		}
	}
}

// envelopeTags returns the tags of the event item in a Sentry envelope: newline-separated JSON,
// an envelope header, then a header and a payload per item.
func envelopeTags(t *testing.T, envelope string) map[string]string {
	t.Helper()
	for line := range strings.SplitSeq(envelope, "\n") {
		var item struct {
			Tags map[string]string `json:"tags"`
		}
		if json.Unmarshal([]byte(line), &item) == nil && item.Tags != nil {
			return item.Tags
		}
	}
	t.Fatalf("no event with tags in the envelope: %s", envelope)
	return nil
}
