//go:build integration

package stripe

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v76"
)

// storedPI returns the proxy's snapshot of the PaymentIntent id.
func (e *env) storedPI(t *testing.T, id string) PaymentIntent {
	t.Helper()
	for _, pi := range e.proxy.PaymentIntents() {
		if pi.ID == id {
			return pi
		}
	}
	t.Fatalf("PaymentIntent %s not stored", id)
	return PaymentIntent{}
}

// requiresAction charges pm on-session and fails unless the PaymentIntent waits for 3-D Secure.
func (e *env) requiresAction(t *testing.T, pm string) *stripe.PaymentIntent {
	t.Helper()
	pi, err := e.charge(pm, "", 1800, map[string]string{"order_id": "o-3ds"})
	if err != nil {
		t.Fatalf("charge %s: %v", pm, err)
	}
	wantRequiresAction(t, pi)
	return pi
}

func wantRequiresAction(t *testing.T, pi *stripe.PaymentIntent) {
	t.Helper()
	if pi.Status != stripe.PaymentIntentStatusRequiresAction || pi.NextAction == nil ||
		pi.NextAction.Type != stripe.PaymentIntentNextActionTypeUseStripeSDK || pi.NextAction.UseStripeSDK == nil ||
		!strings.HasPrefix(pi.ClientSecret, pi.ID+"_secret_") || len(pi.ClientSecret) < len(pi.ID)+len("_secret_")+20 ||
		pi.AmountReceived != 0 || pi.LatestCharge != nil || pi.LastPaymentError != nil || pi.PaymentMethod == nil {
		t.Fatalf("PaymentIntent %+v, want one waiting for 3-D Secure with nothing charged", pi)
	}
}

func TestThreeDSecureCardsRequireAction(t *testing.T) {
	e := newEnv(t)
	tok, err := e.sc.PaymentMethods.New(&stripe.PaymentMethodParams{Type: stripe.String("card"),
		Card: &stripe.PaymentMethodCardParams{Token: stripe.String("tok_threeDSecure2Required")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, pm := range []string{"pm_card_authenticationRequired", "pm_card_authenticationRequiredOnSetup",
		"pm_card_authenticationRequiredSetupForOffSession", "pm_card_threeDSecure2Required", tok.ID} {
		pi := e.requiresAction(t, pm)
		if pi.PaymentMethod.ID != pm {
			t.Fatalf("%s: payment_method %s, want it kept while the customer authenticates", pm, pi.PaymentMethod.ID)
		}
		got, err := e.sc.PaymentIntents.Get(pi.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		wantRequiresAction(t, got)
		if got.ClientSecret != pi.ClientSecret {
			t.Fatalf("GET gave client secret %q, want %q", got.ClientSecret, pi.ClientSecret)
		}
		if s := e.storedPI(t, pi.ID); s.Status != "requires_action" || s.NextAction != "use_stripe_sdk" ||
			s.ClientSecret != pi.ClientSecret || s.AmountReceived != 0 {
			t.Fatalf("stored %+v", s)
		}
		// Nothing was charged, so nothing can be refunded.
		_, err = e.sc.Refunds.New(&stripe.RefundParams{PaymentIntent: stripe.String(pi.ID)})
		if se := stripeErr(t, err); se.Code != stripe.ErrorCodePaymentIntentUnexpectedState {
			t.Fatalf("refund of a waiting payment: %+v", se)
		}
	}
	// Client secrets are per PaymentIntent.
	pis := e.proxy.PaymentIntents()
	if pis[0].ClientSecret == pis[1].ClientSecret {
		t.Fatal("two PaymentIntents share a client secret")
	}
}

func TestAuthenticateSucceeds(t *testing.T) {
	e := newEnv(t)
	pi := e.requiresAction(t, "pm_card_authenticationRequired")
	if err := e.proxy.Authenticate(pi.ID, true); err != nil {
		t.Fatal(err)
	}
	got, err := e.sc.PaymentIntents.Get(pi.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != stripe.PaymentIntentStatusSucceeded || got.AmountReceived != 1800 || got.LatestCharge == nil ||
		!strings.HasPrefix(got.LatestCharge.ID, "ch_") || got.NextAction != nil || got.ClientSecret != pi.ClientSecret ||
		got.Metadata["order_id"] != "o-3ds" {
		t.Fatalf("after authentication: %+v", got)
	}
	if s := e.storedPI(t, pi.ID); s.Status != "succeeded" || s.AmountReceived != 1800 || s.NextAction != "" {
		t.Fatalf("stored %+v", s)
	}
	// A search finds the PaymentIntent as it is now.
	it := e.sc.PaymentIntents.Search(&stripe.PaymentIntentSearchParams{SearchParams: stripe.SearchParams{Query: `metadata['order_id']:'o-3ds'`}})
	if !it.Next() || it.PaymentIntent().Status != stripe.PaymentIntentStatusSucceeded {
		t.Fatalf("search: %v", it.Err())
	}
	// The money moved, so it can be refunded.
	if re, err := e.sc.Refunds.New(&stripe.RefundParams{PaymentIntent: stripe.String(pi.ID)}); err != nil || re.Amount != 1800 {
		t.Fatalf("refund: %+v %v", re, err)
	}
	if err := e.proxy.Authenticate(pi.ID, true); !errors.Is(err, ErrNotAwaitingAuthentication) {
		t.Fatalf("second authentication: %v", err)
	}
	if err := e.proxy.Authenticate("pi_unknown", true); !errors.Is(err, ErrNoSuchPaymentIntent) {
		t.Fatalf("unknown PaymentIntent: %v", err)
	}
}

// postAuthenticate calls the admin endpoint and returns its status and body.
func (e *env) postAuthenticate(t *testing.T, id, body string) (int, []byte) {
	t.Helper()
	res, err := http.Post(e.url+"/__cartflow/payment_intents/"+id+"/authenticate", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var raw json.RawMessage
	_ = json.NewDecoder(res.Body).Decode(&raw)
	return res.StatusCode, raw
}

func TestAuthenticateFailsOverTheAdminAPI(t *testing.T) {
	e := newEnv(t)
	pi := e.requiresAction(t, "pm_card_authenticationRequiredOnSetup")
	status, body := e.postAuthenticate(t, pi.ID, `{"outcome":"failed"}`)
	var answered stripe.PaymentIntent
	if err := json.Unmarshal(body, &answered); status != http.StatusOK || err != nil || answered.ID != pi.ID ||
		answered.Status != stripe.PaymentIntentStatusRequiresPaymentMethod {
		t.Fatalf("admin authenticate: %d %s", status, body)
	}
	got, err := e.sc.PaymentIntents.Get(pi.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	lpe := got.LastPaymentError
	if got.Status != stripe.PaymentIntentStatusRequiresPaymentMethod || got.AmountReceived != 0 || got.LatestCharge != nil ||
		got.NextAction != nil || got.PaymentMethod != nil || lpe == nil ||
		lpe.Code != stripe.ErrorCodePaymentIntentAuthenticationFailure || lpe.Type != stripe.ErrorTypeInvalidRequest ||
		lpe.Msg == "" || lpe.PaymentMethod == nil || lpe.PaymentMethod.ID != "pm_card_authenticationRequiredOnSetup" {
		t.Fatalf("after a failed challenge: %+v (last_payment_error %+v)", got, lpe)
	}
	if s := e.storedPI(t, pi.ID); s.LastPaymentError != "payment_intent_authentication_failure" || s.PaymentMethod == "" {
		t.Fatalf("stored %+v", s)
	}

	visa, err := e.charge("pm_card_visa", "", 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id, body string
		status   int
	}{
		{pi.ID, `{"outcome":"succeeded"}`, http.StatusConflict},   // already failed
		{visa.ID, `{"outcome":"succeeded"}`, http.StatusConflict}, // never asked
		{"pi_unknown", `{"outcome":"succeeded"}`, http.StatusNotFound},
		{pi.ID, `{"outcome":"maybe"}`, http.StatusBadRequest},
		{pi.ID, `{"result":"succeeded"}`, http.StatusBadRequest},
	} {
		if status, body := e.postAuthenticate(t, tc.id, tc.body); status != tc.status {
			t.Errorf("authenticate %s with %s: %d %s, want %d", tc.id, tc.body, status, body, tc.status)
		}
	}
	if s := e.storedPI(t, visa.ID); s.Status != "succeeded" || s.AmountReceived != 100 {
		t.Fatalf("a refused authentication changed %+v", s)
	}
}

// chargeOnSession charges a saved card with its customer present, setting it up for later.
func (e *env) chargeOnSession(t *testing.T, pm, customer string) *stripe.PaymentIntent {
	t.Helper()
	pi, err := e.chargeSaved(pm, customer, false)
	if err != nil {
		t.Fatalf("on-session charge of %s: %v", pm, err)
	}
	return pi
}

func TestAuthenticatedChargeCanStillDecline(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer(t, "")
	pm, err := e.attach("pm_card_authenticationRequired", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.paymentMethod(t, pm.ID); got.Authentication != "always" || got.SetUp {
		t.Fatalf("attached 3-D Secure card %+v", got)
	}
	if err := e.proxy.SetCardOutcome(pm.ID, "card_declined", "insufficient_funds"); err != nil {
		t.Fatal(err)
	}
	pi := e.chargeOnSession(t, pm.ID, c.ID)
	wantRequiresAction(t, pi)
	if err := e.proxy.Authenticate(pi.ID, true); err != nil {
		t.Fatal(err)
	}
	got, err := e.sc.PaymentIntents.Get(pi.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lpe := got.LastPaymentError; got.Status != stripe.PaymentIntentStatusRequiresPaymentMethod || got.AmountReceived != 0 ||
		lpe == nil || lpe.Type != stripe.ErrorTypeCard || lpe.Code != stripe.ErrorCodeCardDeclined || lpe.DeclineCode != "insufficient_funds" ||
		got.LatestCharge == nil || lpe.ChargeID != got.LatestCharge.ID {
		t.Fatalf("authenticated but declined: %+v", got)
	}
	if got := e.paymentMethod(t, pm.ID); got.SetUp {
		t.Fatal("a declined payment set the card up")
	}
}

func TestOffSessionAuthentication(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer(t, "")
	save := func(source string) string {
		t.Helper()
		pm, err := e.attach(source, c.ID)
		if err != nil {
			t.Fatalf("attach %s: %v", source, err)
		}
		return pm.ID
	}
	wantAuthenticationRequired := func(t *testing.T, pm string) {
		t.Helper()
		_, err := e.chargeSaved(pm, c.ID, true)
		se := stripeErr(t, err)
		if se.HTTPStatusCode != 402 || se.Type != stripe.ErrorTypeCard || se.Code != stripe.ErrorCodeAuthenticationRequired ||
			se.DeclineCode != "authentication_required" || se.Msg != "Your card was declined. This transaction requires authentication." ||
			se.PaymentIntent == nil || se.PaymentIntent.Status != stripe.PaymentIntentStatusRequiresPaymentMethod {
			t.Fatalf("off-session charge of %s: %+v", pm, se)
		}
		if s := e.storedPI(t, se.PaymentIntent.ID); !s.OffSession || s.AmountReceived != 0 || s.LastPaymentError != "authentication_required" {
			t.Fatalf("stored %+v", s)
		}
	}
	wantOffSessionSuccess := func(t *testing.T, pm string) {
		t.Helper()
		pi, err := e.chargeSaved(pm, c.ID, true)
		if err != nil || pi.Status != stripe.PaymentIntentStatusSucceeded || pi.AmountReceived != 1500 {
			t.Fatalf("off-session charge of %s: %+v %v", pm, pi, err)
		}
	}

	t.Run("always authenticate", func(t *testing.T) {
		pm := save("pm_card_authenticationRequired")
		wantAuthenticationRequired(t, pm)
		// Authenticating on-session does not spare the renewals.
		pi := e.chargeOnSession(t, pm, c.ID)
		if err := e.proxy.Authenticate(pi.ID, true); err != nil {
			t.Fatal(err)
		}
		wantAuthenticationRequired(t, pm)
	})
	t.Run("authenticate unless set up", func(t *testing.T) {
		pm := save("pm_card_authenticationRequiredOnSetup")
		wantAuthenticationRequired(t, pm)
		// A failed challenge sets nothing up.
		failed := e.chargeOnSession(t, pm, c.ID)
		wantRequiresAction(t, failed)
		if err := e.proxy.Authenticate(failed.ID, false); err != nil {
			t.Fatal(err)
		}
		wantAuthenticationRequired(t, pm)
		// The customer authenticates the first charge of the plan: renewals then pass.
		first := e.chargeOnSession(t, pm, c.ID)
		wantRequiresAction(t, first)
		if err := e.proxy.Authenticate(first.ID, true); err != nil {
			t.Fatal(err)
		}
		if got := e.paymentMethod(t, pm); !got.SetUp || got.Authentication != "unless_set_up" {
			t.Fatalf("PaymentMethod after the authenticated first charge: %+v", got)
		}
		wantOffSessionSuccess(t, pm)
		// On-session the bank still asks.
		wantRequiresAction(t, e.chargeOnSession(t, pm, c.ID))
	})
	t.Run("already set up", func(t *testing.T) {
		pm := save("pm_card_authenticationRequiredSetupForOffSession")
		wantOffSessionSuccess(t, pm)
		wantRequiresAction(t, e.chargeOnSession(t, pm, c.ID))
	})
	t.Run("3-D Secure 2 token", func(t *testing.T) {
		tok, err := e.sc.PaymentMethods.New(&stripe.PaymentMethodParams{Type: stripe.String("card"),
			Card: &stripe.PaymentMethodCardParams{Token: stripe.String("tok_threeDSecure2Required")}})
		if err != nil {
			t.Fatal(err)
		}
		wantAuthenticationRequired(t, save(tok.ID))
	})
}

func TestCancelPaymentIntent(t *testing.T) {
	e := newEnv(t)
	cancel := func(id, key, reason string) (*stripe.PaymentIntent, error) {
		params := &stripe.PaymentIntentCancelParams{}
		if reason != "" {
			params.CancellationReason = stripe.String(reason)
		}
		if key != "" {
			params.SetIdempotencyKey(key)
		}
		return e.sc.PaymentIntents.Cancel(id, params)
	}
	wantUnexpectedState := func(t *testing.T, err error, id, status string) {
		t.Helper()
		se := stripeErr(t, err)
		if se.HTTPStatusCode != 400 || se.Type != stripe.ErrorTypeInvalidRequest || se.Code != stripe.ErrorCodePaymentIntentUnexpectedState ||
			!strings.Contains(se.Msg, "status of "+status) || se.PaymentIntent == nil || se.PaymentIntent.ID != id ||
			string(se.PaymentIntent.Status) != status {
			t.Fatalf("got %+v, want payment_intent_unexpected_state for a %s PaymentIntent", se, status)
		}
	}

	waiting := e.requiresAction(t, "pm_card_authenticationRequired")
	canceled, err := cancel(waiting.ID, "cancel-1", "abandoned")
	if err != nil {
		t.Fatal(err)
	}
	if canceled.ID != waiting.ID || canceled.Status != stripe.PaymentIntentStatusCanceled || canceled.CanceledAt == 0 ||
		canceled.CancellationReason != stripe.PaymentIntentCancellationReasonAbandoned || canceled.NextAction != nil || canceled.AmountReceived != 0 {
		t.Fatalf("canceled %+v", canceled)
	}
	if s := e.storedPI(t, waiting.ID); s.Status != "canceled" || s.CancellationReason != "abandoned" || s.NextAction != "" {
		t.Fatalf("stored %+v", s)
	}
	// The same key replays the first answer.
	again, err := cancel(waiting.ID, "cancel-1", "abandoned")
	if err != nil || again.LastResponse.Header.Get("Idempotent-Replayed") != "true" || again.Status != stripe.PaymentIntentStatusCanceled {
		t.Fatalf("replayed cancel: %+v %v", again, err)
	}
	// Another key meets Stripe's rule: a canceled PaymentIntent cannot be canceled again.
	_, err = cancel(waiting.ID, "cancel-2", "abandoned")
	wantUnexpectedState(t, err, waiting.ID, "canceled")
	// The customer can no longer complete a canceled payment.
	if err := e.proxy.Authenticate(waiting.ID, true); !errors.Is(err, ErrNotAwaitingAuthentication) {
		t.Fatalf("authenticating a canceled payment: %v", err)
	}
	if s := e.storedPI(t, waiting.ID); s.Status != "canceled" || s.AmountReceived != 0 {
		t.Fatalf("stored after a late authentication: %+v", s)
	}

	// A succeeded PaymentIntent cannot be canceled: the money moved.
	paid := e.requiresAction(t, "pm_card_threeDSecure2Required")
	if err := e.proxy.Authenticate(paid.ID, true); err != nil {
		t.Fatal(err)
	}
	_, err = cancel(paid.ID, "cancel-3", "abandoned")
	wantUnexpectedState(t, err, paid.ID, "succeeded")
	if s := e.storedPI(t, paid.ID); s.Status != "succeeded" {
		t.Fatalf("stored %+v", s)
	}

	// A declined one waits for another payment method and can be canceled, without a reason too.
	_, err = e.charge("pm_card_chargeDeclined", "", 500, nil)
	declined := stripeErr(t, err).PaymentIntent
	if got, err := cancel(declined.ID, "", ""); err != nil || got.Status != stripe.PaymentIntentStatusCanceled || got.CancellationReason != "" {
		t.Fatalf("cancel of a declined payment: %+v %v", got, err)
	}

	_, err = cancel("pi_unknown", "", "abandoned")
	if se := stripeErr(t, err); se.HTTPStatusCode != 404 || se.Code != stripe.ErrorCodeResourceMissing {
		t.Fatalf("cancel of an unknown PaymentIntent: %+v", se)
	}
	// stripe-mock still checks the request's shape.
	_, err = cancel(e.requiresAction(t, "pm_card_authenticationRequired").ID, "", "bored")
	if se := stripeErr(t, err); se.HTTPStatusCode != 400 || !strings.Contains(se.Msg, "cancellation_reason") {
		t.Fatalf("invalid cancellation_reason: %+v", se)
	}
}
