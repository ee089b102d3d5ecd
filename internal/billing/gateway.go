// Package billing holds the Billing Gates: one Gateway per payment provider behind a single
// interface, and the error classes that every gateway maps its provider's errors onto.
package billing

import (
	"context"
	"errors"
	"fmt"
)

// Provider names, as the storefront sends them in payment.provider.
const (
	ProviderStripe = "stripe"
)

// Gateway charges and refunds through one payment provider. Every call carries an idempotency
// key so that repeating it (a Temporal retry) can never move money twice.
type Gateway interface {
	// Charge takes a payment. It returns a *DeclineError for a refusal by the customer's bank,
	// a *RejectedError for a request the provider will never accept, and any other error for a
	// technical failure whose outcome is unknown and must be retried with the same key.
	Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error)
	// Refund returns money for an earlier charge, with the same error classes as Charge.
	Refund(ctx context.Context, req RefundRequest) (RefundResult, error)
}

// ChargeRequest is one charge.
type ChargeRequest struct {
	// IdempotencyKey is derived from the workflow ID and the step; the same key is one charge.
	IdempotencyKey string
	Amount         int64
	Currency       string
	// Token is the storefront's provider token; never card data.
	Token       string
	OrderID     string
	Description string
	// Resume says an earlier attempt with this key may have reached the provider: look the
	// payment up first, and only send the charge (again under the same key) if none is found.
	Resume bool
}

// ChargeResult is a charge that succeeded.
type ChargeResult struct {
	// ProviderRef identifies the payment at the provider (a PaymentIntent id for Stripe).
	ProviderRef string `json:"provider_ref"`
}

// RefundRequest is one refund.
type RefundRequest struct {
	IdempotencyKey string
	// PaymentRef is the provider's payment to refund; when empty the payment is looked up by ChargeKey.
	PaymentRef string
	// ChargeKey is the idempotency key the charge was sent with.
	ChargeKey string
	// Amount to refund; zero refunds whatever remains.
	Amount   int64
	Currency string
}

// RefundResult is the outcome of a refund.
type RefundResult struct {
	ProviderRef string `json:"provider_ref"`
	Amount      int64  `json:"amount"`
	// NothingCharged means no successful payment exists for the charge, so there is nothing to return.
	NothingCharged bool `json:"nothing_charged"`
}

// DeclineError is a refusal by the customer's bank. It is final: retrying cannot change it.
type DeclineError struct {
	// Code is the provider's error code, such as card_declined or expired_card.
	Code string
	// DeclineCode is the bank's finer reason, such as insufficient_funds, when the provider gives one.
	DeclineCode string
	// Message is safe to show to the customer.
	Message string
}

func (e *DeclineError) Error() string {
	return fmt.Sprintf("payment declined: %s (%s)", e.Reason(), e.Message)
}

// Reason is the most specific code available: the decline code, else the error code.
func (e *DeclineError) Reason() string {
	if e.DeclineCode != "" {
		return e.DeclineCode
	}
	return e.Code
}

// RejectedError is a request the provider will never accept as sent, such as an unknown or
// already used token. It is final, like a decline, but it is not the bank's decision.
type RejectedError struct {
	Code    string
	Message string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("payment rejected: %s: %s", e.Code, e.Message)
}

// IsFinal reports whether err can never succeed on retry.
func IsFinal(err error) bool {
	var d *DeclineError
	var r *RejectedError
	return errors.As(err, &d) || errors.As(err, &r)
}
