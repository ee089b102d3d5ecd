// Package workflows holds cartflow's Temporal workflows. This file is the contract the BFF
// imports: task queue, workflow IDs, handler names, input and result types, statuses.
package workflows

import (
	"time"

	"github.com/cartflow/cartflow/internal/domain"
)

// TaskQueue is the task queue the worker polls for checkout work.
const TaskQueue = "cartflow-checkout"

// PurchaseWorkflowType is the registered name of the Purchase workflow.
const PurchaseWorkflowType = "Purchase"

// CheckoutWorkflowID is the Purchase workflow's ID for a client's Idempotency-Key, so that the
// same key can only ever start one checkout.
func CheckoutWorkflowID(idempotencyKey string) string { return "checkout-" + idempotencyKey }

// UpdateAwaitOutcome is the Update that BFF requests send with Update-With-Start. It is refused
// when the request differs from the one that started the checkout, and otherwise completes
// with the checkout's final state.
const UpdateAwaitOutcome = "await-outcome"

// QueryStatus is the query that returns the checkout's current CheckoutState.
const QueryStatus = "status"

// MemoCheckoutID is the memo field holding the checkout ID, so that a run can be told apart in the UI
// and the BFF can find the checkout of a run it did not start.
const MemoCheckoutID = "checkout_id"

// ErrTypeIdempotencyKeyReused is the application error type of an UpdateAwaitOutcome refused
// because the same Idempotency-Key came with a different request.
const ErrTypeIdempotencyKeyReused = "IdempotencyKeyReused"

// Item is one cart line: a SKU and a quantity, never a price.
type Item struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// Payment is the storefront's provider token.
type Payment struct {
	Provider string `json:"provider"`
	Token    string `json:"token"`
}

// PurchaseInput starts a Purchase workflow.
type PurchaseInput struct {
	// CheckoutID is the unguessable public identifier of the checkout.
	CheckoutID     string `json:"checkout_id"`
	IdempotencyKey string `json:"idempotency_key"`
	// RequestHash fingerprints the request, to refuse the same key with a different body.
	RequestHash string  `json:"request_hash"`
	Email       string  `json:"email"`
	Name        string  `json:"name"`
	Items       []Item  `json:"items"`
	Payment     Payment `json:"payment"`
	// AuthenticationTimeout bounds the wait for the customer to authenticate (3-D Secure);
	// zero means DefaultAuthenticationTimeout.
	AuthenticationTimeout time.Duration `json:"authentication_timeout,omitempty"`
}

// DefaultAuthenticationTimeout is how long a checkout waits for the customer to authenticate.
const DefaultAuthenticationTimeout = 15 * time.Minute

// UpdateAuthenticationCompleted is the Update the BFF sends when the storefront reports that
// the customer finished authenticating. The workflow asks the provider before it believes it,
// and answers with the checkout's state after that check.
const UpdateAuthenticationCompleted = "authentication-completed"

// SignalPaymentOutcome tells a checkout waiting for authentication that the provider reported
// the payment's outcome by webhook; the payload is a PaymentOutcomeSignal.
const SignalPaymentOutcome = "payment-outcome"

// PaymentOutcomeSignal is the payload of SignalPaymentOutcome.
type PaymentOutcomeSignal struct {
	// EventType is the webhook's normalized type (payment.succeeded or payment.failed).
	EventType  domain.EventType `json:"event_type"`
	PaymentRef string           `json:"payment_ref"`
}

// PaymentAction is what the storefront needs to let the customer authenticate.
type PaymentAction struct {
	ClientSecret string `json:"client_secret"`
	// Type is the provider's next action, such as use_stripe_sdk or redirect_to_url.
	Type        string `json:"type"`
	RedirectURL string `json:"redirect_url,omitempty"`
}

// AwaitOutcomeRequest is the argument of UpdateAwaitOutcome.
type AwaitOutcomeRequest struct {
	RequestHash string `json:"request_hash"`
}

// CheckoutState is the checkout as the workflow sees it; the query and the update return it.
type CheckoutState struct {
	CheckoutID     string             `json:"checkout_id"`
	OrderID        string             `json:"order_id,omitempty"`
	Status         domain.OrderStatus `json:"status"`
	Amount         int64              `json:"amount"`
	Currency       string             `json:"currency,omitempty"`
	FailureCode    string             `json:"failure_code,omitempty"`
	DeclineCode    string             `json:"decline_code,omitempty"`
	FailureMessage string             `json:"failure_message,omitempty"`
	// SubscriptionID is set when the checkout bought a plan and the subscription has started.
	SubscriptionID string `json:"subscription_id,omitempty"`
	// Action is set while Status is requires_action.
	Action *PaymentAction `json:"action,omitempty"`
}

// ProviderEventWorkflowType is the registered name of the ProviderEvent workflow.
const ProviderEventWorkflowType = "ProviderEvent"

// ProviderEventWorkflowID names the handling of one provider event, so that a redelivered
// webhook joins the handling of the first delivery instead of starting another.
func ProviderEventWorkflowID(provider, eventID string) string {
	return "provider-event-" + provider + "-" + eventID
}

// RefundWorkflowType is the registered name of the Refund workflow.
const RefundWorkflowType = "Refund"

// RefundWorkflowID names one refund request: the order and the client's Idempotency-Key.
func RefundWorkflowID(orderID, requestKey string) string {
	return "refund-" + orderID + "-" + requestKey
}

// RefundRequest asks to return money of an order's payment.
type RefundRequest struct {
	OrderID string `json:"order_id"`
	// Amount in minor units; zero refunds whatever has not been refunded yet.
	Amount int64 `json:"amount,omitempty"`
}

// RefundOutcome is how a refund request ended.
type RefundOutcome struct {
	OrderID string `json:"order_id"`
	// Status is succeeded or refused.
	Status      string `json:"status"`
	Amount      int64  `json:"amount"`
	Currency    string `json:"currency,omitempty"`
	ProviderRef string `json:"provider_ref,omitempty"`
	// OrderStatus and RefundedTotal are the order after the refund.
	OrderStatus    domain.OrderStatus `json:"order_status,omitempty"`
	RefundedTotal  int64              `json:"refunded_total"`
	FailureCode    string             `json:"failure_code,omitempty"`
	FailureMessage string             `json:"failure_message,omitempty"`
}

// Refund outcomes.
const (
	RefundSucceeded = "succeeded"
	RefundRefused   = "refused"
)
