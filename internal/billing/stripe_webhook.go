package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// Stripe's webhook scheme (https://docs.stripe.com/webhooks#verify-events): the Stripe-Signature
// header carries t=<unix time> and v1=hex(HMAC-SHA256(key=endpoint secret, "<t>.<raw body>")),
// with one v1 per active secret while a secret is being rolled. stripe-go's webhook.ConstructEvent
// checks it, and refuses a signature made more than webhook.DefaultTolerance (300 s) ago, so that
// a captured request cannot be replayed later; a replay within those minutes carries the same
// event id, which the store records once.
//
// ConstructEvent also refuses an event rendered for an API version other than stripe.APIVersion,
// the one stripe-go v76 decodes (2023-10-16): the webhook endpoint at Stripe must be created
// pinned to that version (api_version when creating it), or every event fails here.

// NewStripeWebhookVerifier returns the verifier of the webhook endpoint whose signing secret
// (whsec_…) is secret.
func NewStripeWebhookVerifier(secret string) WebhookVerifier {
	return &stripeWebhookVerifier{secret: secret}
}

type stripeWebhookVerifier struct{ secret string }

// Verify checks the Stripe-Signature header against the raw body and parses the event. A missing,
// malformed, wrong or stale signature, or a body that is not a Stripe event, is ErrBadSignature.
// An event of another API version is a plain error: the signature is genuine and the endpoint is
// misconfigured, so the BFF answers 5xx and Stripe delivers it again once the version is fixed.
func (v *stripeWebhookVerifier) Verify(_ context.Context, header http.Header, body []byte) (domain.WebhookEvent, error) {
	if v.secret == "" {
		// An empty key is one anybody can sign with.
		return domain.WebhookEvent{}, fmt.Errorf("%w: no Stripe webhook secret is configured", ErrBadSignature)
	}
	sig := header.Get("Stripe-Signature")
	if sig == "" {
		return domain.WebhookEvent{}, fmt.Errorf("%w: the Stripe-Signature header is missing", ErrBadSignature)
	}
	ev, err := webhook.ConstructEvent(body, sig, v.secret)
	// ConstructEvent's other errors, a body that is not an event and an API version mismatch,
	// are plain strings; the version is read again to tell them apart.
	var version struct {
		APIVersion string `json:"api_version"`
	}
	switch {
	case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader):
		return domain.WebhookEvent{}, fmt.Errorf("%w: the Stripe-Signature header is malformed", ErrBadSignature)
	case errors.Is(err, webhook.ErrTooOld):
		return domain.WebhookEvent{}, fmt.Errorf("%w: the signature is older than %s", ErrBadSignature, webhook.DefaultTolerance)
	case errors.Is(err, webhook.ErrNoValidSignature):
		return domain.WebhookEvent{}, fmt.Errorf("%w: no signature matches the body", ErrBadSignature)
	case err != nil && json.Unmarshal(body, &version) == nil && version.APIVersion != "" && version.APIVersion != stripe.APIVersion:
		return domain.WebhookEvent{}, fmt.Errorf("stripe webhook event %s has API version %s; the endpoint must be pinned to %s",
			ev.ID, version.APIVersion, stripe.APIVersion)
	case err != nil:
		return domain.WebhookEvent{}, fmt.Errorf("%w: the body is not a Stripe event", ErrBadSignature)
	case ev.ID == "" || ev.Type == "" || ev.Data == nil:
		return domain.WebhookEvent{}, fmt.Errorf("%w: the body is not a Stripe event", ErrBadSignature)
	}
	out, err := stripeWebhookEvent(ev)
	if err != nil {
		return domain.WebhookEvent{}, fmt.Errorf("%w: %s event %s: %v", ErrBadSignature, ev.Type, ev.ID, err)
	}
	return storable(body, out)
}

// stripeWebhookEvent maps the events cartflow acts on; any other type is domain.EventOther.
func stripeWebhookEvent(ev stripe.Event) (domain.WebhookEvent, error) {
	out := domain.WebhookEvent{Provider: ProviderStripe, ID: ev.ID, Type: domain.EventOther, ProviderType: string(ev.Type)}
	switch ev.Type {
	case stripe.EventTypePaymentIntentSucceeded, stripe.EventTypePaymentIntentPaymentFailed:
		var pi stripe.PaymentIntent
		if err := json.Unmarshal(ev.Data.Raw, &pi); err != nil {
			return out, err
		}
		out.Type, out.PaymentRef, out.OrderID = domain.EventPaymentSucceeded, pi.ID, pi.Metadata["order_id"]
		out.Amount, out.Currency = pi.Amount, string(pi.Currency)
		if ev.Type == stripe.EventTypePaymentIntentPaymentFailed {
			out.Type = domain.EventPaymentFailed
			if e := pi.LastPaymentError; e != nil {
				out.Reason = string(e.DeclineCode)
				if out.Reason == "" {
					out.Reason = string(e.Code)
				}
			}
		}
	case stripe.EventTypeChargeRefunded:
		var ch stripe.Charge
		if err := json.Unmarshal(ev.Data.Raw, &ch); err != nil {
			return out, err
		}
		// amount_refunded is everything refunded on the charge so far, not this refund alone: a
		// charge.refunded event carries the charge, and partial refunds each send one. Whoever
		// applies it compares the total with what the ledger already holds.
		out.Type, out.PaymentRef, out.OrderID = domain.EventRefunded, expandableID(ch.PaymentIntent), ch.Metadata["order_id"]
		out.Amount, out.Currency = ch.AmountRefunded, string(ch.Currency)
	case stripe.EventTypeChargeDisputeCreated, stripe.EventTypeChargeDisputeClosed:
		var d stripe.Dispute
		if err := json.Unmarshal(ev.Data.Raw, &d); err != nil {
			return out, err
		}
		out.PaymentRef, out.Amount, out.Currency = expandableID(d.PaymentIntent), d.Amount, string(d.Currency)
		if ev.Type == stripe.EventTypeChargeDisputeCreated {
			out.Type, out.Reason = domain.EventDisputeOpened, string(d.Reason)
		} else {
			// won, lost, or warning_closed for an inquiry that never became a dispute.
			out.Type, out.Reason = domain.EventDisputeClosed, string(d.Status)
		}
	}
	return out, nil
}

// expandableID is the id of a PaymentIntent field that Stripe sends as an id or an expanded object.
func expandableID(pi *stripe.PaymentIntent) string {
	if pi == nil {
		return ""
	}
	return pi.ID
}
