//go:build integration

package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	stripefake "github.com/cartflow/cartflow/internal/dev/fake/stripe"
	"github.com/cartflow/cartflow/workflows"
)

// authCheckout starts a checkout with Stripe's card that always asks for 3-D Secure and returns
// the key, the answer and the PaymentIntent waiting for authentication.
func authCheckout(t *testing.T) (string, checkoutResp, stripefake.PaymentIntent) {
	t.Helper()
	key := newKey(t)
	code, res := postJSON(t, key, validBody(strings.ToLower(key)+"@example.com", "pm_card_authenticationRequired"))
	if code != http.StatusCreated || res.Status != "requires_action" || res.Action == nil || res.Action.ClientSecret == "" {
		t.Fatalf("checkout: %d %+v", code, res)
	}
	pis := chargesFor(key)
	if len(pis) != 1 || pis[0].Status != "requires_action" || !strings.HasPrefix(res.Action.ClientSecret, pis[0].ID+"_secret_") {
		t.Fatalf("payment intents %+v for action %+v", pis, res.Action)
	}
	// The public read has the status, and nothing that authorizes: the client secret came in
	// the POST's own answer only.
	if code, got := get(t, "/api/v1/checkouts/"+res.CheckoutID); code != http.StatusOK || got.Status != "requires_action" ||
		got.Action != nil {
		t.Fatalf("GET while waiting: %d %+v, want requires_action without the action", code, got)
	}
	return key, res, pis[0]
}

func TestAuthenticationCompletedByTheProvidersWebhook(t *testing.T) {
	key, res, pi := authCheckout(t)
	if err := dev.StripeProxy.Authenticate(pi.ID, true); err != nil {
		t.Fatal(err)
	}
	// The layer sends payment_intent.succeeded to /webhooks/stripe; nothing else prompts the checkout.
	waitStatus(t, res.CheckoutID, "completed", 20*time.Second)
	if n := queryInt(t, `SELECT count(*) FROM order_events WHERE order_id = $1 AND type = 'payment.succeeded'`, res.OrderID); n != 1 {
		t.Fatalf("%d payment.succeeded events on the order", n)
	}
	if n := executedCreates(key); n != 1 {
		t.Fatalf("%d PaymentIntents created", n)
	}
	if got := chargesFor(key); len(got) != 1 || got[0].Status != "succeeded" {
		t.Fatalf("payment intents %+v", got)
	}
	recordHistory(t, "checkout-"+key, "purchase_3ds_webhook")
	recordHistory(t, latestRun(t, workflows.ProviderEventWorkflowType), "provider_event_payment")
}

func TestAuthenticationReportedByTheStorefront(t *testing.T) {
	_, res, pi := authCheckout(t)
	// Reported before the customer is done: the provider still waits, so the checkout does too.
	code, raw := doJSON(t, http.MethodPost, "/api/v1/checkouts/"+res.CheckoutID+"/authentication", "", "")
	if code != http.StatusOK || !strings.Contains(raw, `"status":"requires_action"`) {
		t.Fatalf("early report: %d %s", code, raw)
	}
	if err := dev.StripeProxy.Authenticate(pi.ID, true); err != nil {
		t.Fatal(err)
	}
	code, raw = doJSON(t, http.MethodPost, "/api/v1/checkouts/"+res.CheckoutID+"/authentication", "", "")
	if code != http.StatusOK || strings.Contains(raw, `"status":"requires_action"`) {
		t.Fatalf("report after authentication: %d %s", code, raw)
	}
	waitStatus(t, res.CheckoutID, "completed", 20*time.Second)
}

func TestAuthenticationFailedFailsTheCheckout(t *testing.T) {
	_, res, pi := authCheckout(t)
	if err := dev.StripeProxy.Authenticate(pi.ID, false); err != nil {
		t.Fatal(err)
	}
	got := waitStatus(t, res.CheckoutID, "failed", 20*time.Second)
	if got.Failure == nil || got.Failure.Code != "payment_intent_authentication_failure" {
		t.Fatalf("failure %+v", got.Failure)
	}
	if n := queryInt(t, `SELECT count(*) FROM users u JOIN orders o ON o.customer_email = u.email WHERE o.id = $1`, res.OrderID); n != 0 {
		t.Fatal("a customer whose payment failed was registered")
	}
}

func TestAuthenticationTimeoutCancelsThePayment(t *testing.T) {
	key, res, _ := authCheckout(t)
	// The e2e stack runs with AUTHENTICATION_TIMEOUT=10s.
	got := waitStatus(t, res.CheckoutID, "expired", 40*time.Second)
	if got.Failure == nil || got.Failure.Code != "authentication_timeout" {
		t.Fatalf("failure %+v", got.Failure)
	}
	if pis := chargesFor(key); len(pis) != 1 || pis[0].Status != "canceled" || pis[0].AmountReceived != 0 {
		t.Fatalf("payment intents %+v", pis)
	}
	recordHistory(t, "checkout-"+key, "purchase_3ds_expired")
	// Authenticating now, too late, charges nothing.
	if err := dev.StripeProxy.Authenticate(chargesFor(key)[0].ID, true); err == nil {
		t.Fatal("a canceled PaymentIntent could still be authenticated")
	}
}

func TestStripeWebhookWithABadSignatureIsRefused(t *testing.T) {
	before := queryInt(t, `SELECT count(*) FROM provider_events`)
	for _, sig := range []string{"", "t=1,v1=deadbeef"} {
		req, _ := http.NewRequest(http.MethodPost, dev.APIURL+"/webhooks/stripe", strings.NewReader(`{"id":"evt_forged","type":"payment_intent.succeeded"}`))
		if sig != "" {
			req.Header.Set("Stripe-Signature", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("signature %q: %d", sig, resp.StatusCode)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if after := queryInt(t, `SELECT count(*) FROM provider_events`); after != before {
		t.Fatalf("provider_events went from %d to %d", before, after)
	}
}
