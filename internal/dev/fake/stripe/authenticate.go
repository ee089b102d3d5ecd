package stripe

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/cartflow/cartflow/internal/dev/fake/kit"
)

// This file emulates 3-D Secure: a PaymentIntent that waits in requires_action for the customer,
// the customer's answer (which at Stripe comes through Stripe.js, and here through Authenticate),
// and canceling a payment that waits.

// ErrNoSuchPaymentIntent is returned for a PaymentIntent the proxy never made.
var ErrNoSuchPaymentIntent = errors.New("stripefake: no such PaymentIntent")

// ErrNotAwaitingAuthentication is returned by Authenticate for a PaymentIntent that is not in
// requires_action: it already succeeded, failed or was canceled, or never asked.
var ErrNotAwaitingAuthentication = errors.New("stripefake: the PaymentIntent is not waiting for authentication")

// Authenticate plays the customer answering the 3-D Secure challenge of the PaymentIntent piID,
// which must be in requires_action. With ok the bank approves and the charge is made: the
// PaymentIntent succeeds, unless the card's outcome (see SetCardOutcome) declines it. Without ok
// the customer failed the challenge: the PaymentIntent goes back to requires_payment_method with
// last_payment_error payment_intent_authentication_failure, and nothing is charged. Either way,
// when a webhook is set (SetWebhook), the matching event is sent to it.
func (p *Proxy) Authenticate(piID string, ok bool) error {
	_, err := p.authenticate(piID, ok)
	return err
}

// authenticate is Authenticate returning the PaymentIntent's JSON afterwards.
func (p *Proxy) authenticate(piID string, ok bool) ([]byte, error) {
	p.mu.Lock()
	pi, found := p.pis[piID]
	if !found {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", ErrNoSuchPaymentIntent, piID)
	}
	if pi.Status != "requires_action" {
		status := pi.Status
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: %s is %s", ErrNotAwaitingAuthentication, piID, status)
	}
	pm, _ := p.paymentMethod(pi.PaymentMethod)
	o := pm.outcome // read now: the card may have been changed since the payment started
	var change func(obj map[string]any)
	eventType := "payment_intent.payment_failed"
	switch {
	case !ok:
		// No charge is attempted when authentication fails, so there is no latest_charge.
		pi.Status, pi.LastPaymentError = "requires_payment_method", "payment_intent_authentication_failure"
		change = func(obj map[string]any) {
			obj["last_payment_error"] = authenticationFailure(pi.PaymentMethod)
			obj["payment_method"], obj["next_action"] = nil, nil
		}
	case o.code != "":
		pi.Status, pi.LatestCharge, pi.LastPaymentError = "requires_payment_method", newID("ch_"), o.code
		e := cardError(o, pi.PaymentMethod)
		e["charge"] = pi.LatestCharge
		change = func(obj map[string]any) {
			obj["last_payment_error"], obj["latest_charge"] = e, pi.LatestCharge
			obj["payment_method"], obj["next_action"] = nil, nil
		}
	default:
		eventType = "payment_intent.succeeded"
		pi.Status, pi.AmountReceived, pi.LatestCharge = "succeeded", pi.Amount, newID("ch_")
		change = func(obj map[string]any) {
			obj["amount_received"], obj["latest_charge"], obj["next_action"] = pi.Amount, pi.LatestCharge, nil
		}
		p.markSetUp(pi)
	}
	pi.NextAction = ""
	if err := pi.rewrite(change); err != nil {
		p.mu.Unlock()
		return nil, fmt.Errorf("stripefake: rewriting %s: %w", piID, err)
	}
	body := pi.body
	p.queueWebhook(eventType, piID, body)
	p.mu.Unlock()
	return body, nil
}

// markSetUp records that a successful on-session payment set its saved card up for off-session
// payments, as setup_future_usage=off_session asks; the caller holds p.mu.
func (p *Proxy) markSetUp(pi *intent) {
	if pi.Status != "succeeded" || pi.OffSession || pi.SetupFutureUsage != "off_session" {
		return
	}
	if pm, ok := p.pms[pi.PaymentMethod]; ok {
		pm.setUp = true
	}
}

// useStripeSDK is the next_action of a PaymentIntent waiting for 3-D Secure, in the shape Stripe
// gives for a server-side confirmation without a return_url. Stripe.js reads use_stripe_sdk; here
// nothing can run it, so cartflow_authenticate names the admin endpoint that plays the customer.
func useStripeSDK(piID string) map[string]any {
	return map[string]any{
		"type": "use_stripe_sdk",
		"use_stripe_sdk": map[string]any{
			"type":                  "three_d_secure_redirect",
			"source":                newID("src_"),
			"cartflow_authenticate": "/__cartflow/payment_intents/" + piID + "/authenticate",
		},
	}
}

// authenticationFailure is Stripe's last_payment_error after a failed 3-D Secure challenge. Stripe
// types it as an invalid_request_error, not a card_error: the bank declined nothing.
func authenticationFailure(pmID string) map[string]any {
	return map[string]any{
		"type":           "invalid_request_error",
		"code":           "payment_intent_authentication_failure",
		"doc_url":        "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
		"message":        "The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again.",
		"payment_method": map[string]any{"id": pmID, "object": "payment_method", "type": "card"},
	}
}

// cancelable are the statuses Stripe lets a PaymentIntent be canceled from.
var cancelable = []string{"requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing"}

// cancelPaymentIntent is POST /v1/payment_intents/{id}/cancel. As at Stripe, only a PaymentIntent
// that has not reached an end can be canceled: a succeeded or an already canceled one answers 400
// payment_intent_unexpected_state, with the PaymentIntent in the error so the caller sees why.
func (p *Proxy) cancelPaymentIntent(up *response, form url.Values, id string) *response {
	p.mu.Lock()
	defer p.mu.Unlock()
	pi, refused := p.intentInState(id, "cancel", "canceled", cancelable)
	if refused != nil {
		return refused
	}
	reason := form.Get("cancellation_reason")
	pi.Status, pi.NextAction, pi.CancellationReason = "canceled", "", reason
	if err := pi.rewrite(func(obj map[string]any) {
		obj["canceled_at"], obj["cancellation_reason"], obj["next_action"] = time.Now().Unix(), nilIfEmpty(reason), nil
	}); err != nil {
		return stripeError(http.StatusInternalServerError, "api_error", "", "", "stripefake: "+err.Error())
	}
	return rawResponse(http.StatusOK, up, pi.body)
}

// withPaymentIntent adds the PaymentIntent to an error answer, as Stripe does for errors about one.
func withPaymentIntent(res *response, piBody []byte) *response {
	var v struct {
		Error map[string]any `json:"error"`
	}
	if json.Unmarshal(res.body, &v) != nil || v.Error == nil {
		return res
	}
	v.Error["payment_intent"] = json.RawMessage(piBody)
	return jsonResponse(res.status, res, v)
}

// serveAuthenticate is POST /__cartflow/payment_intents/{id}/authenticate with
// {"outcome":"succeeded"} or {"outcome":"failed"}; it answers the PaymentIntent afterwards.
func (p *Proxy) serveAuthenticate(w http.ResponseWriter, r *http.Request, id string) {
	var body struct {
		Outcome string `json:"outcome"`
	}
	if err := kit.DecodeJSON(w, r, &body); err != nil || (body.Outcome != "succeeded" && body.Outcome != "failed") {
		http.Error(w, `invalid authentication: want {"outcome":"succeeded"} or {"outcome":"failed"}`, http.StatusBadRequest)
		return
	}
	pi, err := p.authenticate(id, body.Outcome == "succeeded")
	switch {
	case errors.Is(err, ErrNoSuchPaymentIntent):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, ErrNotAwaitingAuthentication):
		http.Error(w, err.Error(), http.StatusConflict)
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(pi)
	}
}
