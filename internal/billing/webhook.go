package billing

import (
	"context"
	"errors"
	"net/http"
)

// Normalized webhook event types: every provider's events that cartflow acts on map to one of
// these; anything else is stored with EventOther and changes nothing.
const (
	EventPaymentSucceeded = "payment.succeeded"
	EventPaymentFailed    = "payment.failed"
	EventRefunded         = "refund.created"
	EventDisputeOpened    = "dispute.opened"
	EventDisputeClosed    = "dispute.closed"
	EventOther            = "other"
)

// WebhookEvent is a provider's webhook event whose signature was verified.
type WebhookEvent struct {
	Provider string `json:"provider"`
	// ID is the provider's event id, unique per provider; a redelivery carries the same one.
	ID string `json:"id"`
	// Type is one of the Event* constants.
	Type string `json:"type"`
	// ProviderType is the provider's own event type, such as payment_intent.succeeded.
	ProviderType string `json:"provider_type"`
	// PaymentRef is the provider's payment the event is about: the ref that Charge returned
	// (a PaymentIntent id, a PayPal capture id, a Braintree transaction id).
	PaymentRef string `json:"payment_ref,omitempty"`
	// OrderID is cartflow's order id when the provider echoes it (metadata, custom_id, orderId).
	OrderID string `json:"order_id,omitempty"`
	// Amount and Currency are the event's money, when it has one: for a refund, the payment's
	// refunded total so far (not this refund alone); for a dispute, the disputed amount.
	Amount   int64  `json:"amount,omitempty"`
	Currency string `json:"currency,omitempty"`
	// Reason is the provider's reason, such as a decline code or a dispute reason.
	Reason string `json:"reason,omitempty"`
}

// WebhookVerifier checks one provider's webhook request with that provider's own scheme and
// parses it. It returns ErrBadSignature (wrapped) for a missing, stale or wrong signature or a
// tampered body, so that the BFF answers 400 and stores nothing.
type WebhookVerifier interface {
	Verify(ctx context.Context, header http.Header, body []byte) (WebhookEvent, error)
}

// ErrBadSignature means a webhook request could not be verified as coming from the provider.
var ErrBadSignature = errors.New("webhook signature is not valid")
