// Package billing holds the Billing Gates: one Gateway per payment provider behind a single
// interface, and the error classes that every gateway maps its provider's errors onto.
package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Provider names, as the storefront sends them in payment.provider.
const (
	ProviderStripe    = "stripe"
	ProviderPayPal    = "paypal"
	ProviderBraintree = "braintree"
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

// Fingerprinter is a gateway that can name the card behind a token without charging it: the
// card-testing defence counts declines per card fingerprint, whatever token the card comes in.
type Fingerprinter interface {
	// CardFingerprint is the provider's fingerprint of the token's card, the same for every
	// token of that card number; "" when the token names no card.
	CardFingerprint(ctx context.Context, token string) (string, error)
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
	// PaymentRef is the provider's payment that the ledger already holds for this key, made by
	// an earlier attempt: the gateway reads it (and completes it) instead of creating another.
	// The ledger is authoritative here; a provider search, which may lag, never is.
	PaymentRef string
	// Created, when set, records the provider's payment in the ledger as soon as it exists and
	// before any money can move on it: a gateway calls it before it confirms or captures. An
	// error from it stops the charge with its outcome unknown, and the retry passes the
	// payment back as PaymentRef.
	Created func(ctx context.Context, paymentRef string) error
	// CartRef is the binding that an approved provider order must carry (PayPal's custom_id):
	// set when the checkout pays with an order that POST /api/v1/paypal/orders created. An
	// order that carries another binding, or none, is refused before anything is captured.
	CartRef string
	// CustomerRef is the provider's customer that holds the saved payment method in Token; set
	// for charges of a payment method saved with RecurringGateway.SavePaymentMethod.
	CustomerRef string
	// OffSession says the customer is not present (a renewal), so the bank cannot ask them to
	// authenticate; it needs CustomerRef.
	OffSession bool
}

// RecurringGateway is a Gateway that can keep a customer's payment method for later off-session charges.
type RecurringGateway interface {
	Gateway
	// SavePaymentMethod stores the token's payment method with the provider as the customer's
	// default, creating the customer when req.CustomerRef is empty. It returns a *DeclineError
	// when the bank refuses the card while it is saved, a *RejectedError for a request the
	// provider will never accept, and any other error for a technical failure to retry with
	// the same key.
	SavePaymentMethod(ctx context.Context, req SavePaymentMethodRequest) (SavedPaymentMethod, error)
}

// SavePaymentMethodRequest asks to keep a payment method for later charges.
type SavePaymentMethodRequest struct {
	// IdempotencyKey is derived from the workflow ID and step; every provider call uses it plus a suffix.
	IdempotencyKey string
	// CustomerRef is an existing provider customer, or "" to create one.
	CustomerRef string
	// Token is the storefront's provider token (pm_… or tok_… for Stripe); never card data.
	Token string
	// Email and Name describe a customer that is created.
	Email, Name string
	// Reference, such as the subscription or order id, is stored with a created customer.
	Reference string
}

// SavedPaymentMethod is a payment method kept by the provider for later charges.
type SavedPaymentMethod struct {
	// CustomerRef is the provider's customer (a Stripe Customer id).
	CustomerRef string `json:"customer_ref"`
	// PaymentMethodRef is what to charge later, as ChargeRequest.Token (a Stripe PaymentMethod id).
	PaymentMethodRef string `json:"payment_method_ref"`
}

// ChargeResult is a charge that succeeded, or one that waits for the customer to authenticate.
type ChargeResult struct {
	// ProviderRef identifies the payment at the provider (a PaymentIntent id for Stripe).
	ProviderRef string `json:"provider_ref"`
	// Action, when set, means no money has moved yet: the bank asked the customer to
	// authenticate (3-D Secure), and the payment completes or fails once they have.
	Action *Action `json:"action,omitempty"`
}

// Action is what the storefront needs to let the customer authenticate a payment.
type Action struct {
	// ClientSecret lets the storefront's provider SDK (Stripe.js handleNextAction) run the challenge.
	ClientSecret string `json:"client_secret"`
	// Type is the provider's next action type, such as use_stripe_sdk or redirect_to_url.
	Type string `json:"type"`
	// RedirectURL is where to send the customer when Type is redirect_to_url.
	RedirectURL string `json:"redirect_url,omitempty"`
}

// AuthenticatingGateway is a Gateway whose payments can wait for customer authentication.
type AuthenticatingGateway interface {
	Gateway
	// PaymentOutcome reads a payment's current state at the provider: a result without Action
	// once it succeeded, a result with Action while it still waits, a *DeclineError when
	// authentication or the charge failed, and any other error for a technical failure.
	PaymentOutcome(ctx context.Context, paymentRef string) (ChargeResult, error)
	// CancelPayment cancels a payment that still waits for authentication, under an idempotency
	// key. It returns ErrAlreadySucceeded when the payment completed before the cancel arrived.
	CancelPayment(ctx context.Context, paymentRef, idempotencyKey string) error
}

// Reconciler lists the payments that took money at a provider, so that the reconciliation can
// compare them with the ledger and refund every one that has no paid order.
type Reconciler interface {
	// SucceededPayments lists the payments created at or after since that captured money,
	// refunded since or not, oldest first.
	SucceededPayments(ctx context.Context, since time.Time) ([]ProviderPayment, error)
}

// ProviderPayment is one payment that took money, as its provider reports it.
type ProviderPayment struct {
	// Ref names the payment as ChargeResult.ProviderRef does (a PaymentIntent id, a PayPal
	// capture id, a Braintree transaction's legacy id).
	Ref string
	// IdempotencyKey is the charge's key, when the provider keeps it (Stripe's metadata).
	IdempotencyKey string
	// OrderID is cartflow's order, when the provider keeps it (metadata, orderId).
	OrderID string
	// CartRef is the binding a PayPal order carried as its custom_id, when it had one.
	CartRef string
	Amount  int64
	// Refunded is how much of Amount has been returned already.
	Refunded int64
	Currency string
	Created  time.Time
}

// ErrAlreadySucceeded means a payment could not be canceled because it had already succeeded.
var ErrAlreadySucceeded = errors.New("the payment has already succeeded")

// RefundRequest is one refund.
type RefundRequest struct {
	IdempotencyKey string
	// PaymentRef is the provider's payment to refund; when empty the payment is looked up by ChargeKey.
	PaymentRef string
	// ChargeKey is the idempotency key the charge was sent with.
	ChargeKey string
	// ChargeToken is the storefront token the charge used. PayPal finds a capture through its
	// order (the token), not through the key.
	ChargeToken string
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

// DeclineError is a refusal by the customer's bank. It is final for the attempt: retrying the
// same request cannot change it. Whether a later attempt, such as a renewal's dunning retry
// days later, may succeed is what Hard says.
type DeclineError struct {
	// Code is the provider's error code, such as card_declined or expired_card.
	Code string
	// DeclineCode is the bank's finer reason, such as insufficient_funds, when the provider gives one.
	DeclineCode string
	// Message is safe to show to the customer.
	Message string
}

// Error names the decline's most specific reason and the customer's message.
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

// Hard reports whether charging the same payment method again later can never succeed, so a
// renewal must not be retried and the customer has to give another payment method. Soft
// declines (insufficient funds, a generic decline, a processing error, …) may pass later.
func (e *DeclineError) Hard() bool {
	return hardDeclines[e.DeclineCode] || hardDeclines[e.Code]
}

// hardDeclines lists the codes, both Stripe decline codes and card error codes, that say the
// payment method itself is unusable, following Stripe's decline-code reference
// (https://docs.stripe.com/declines/codes) and the card networks' "never approve" category,
// whose retries the networks fine. A code not listed is soft. Deliberately soft:
// do_not_honor, generic_decline, call_issuer and try_again_later (the bank gives no lasting
// reason); insufficient_funds, card_velocity_exceeded and withdrawal_count_limit_exceeded
// (limits reset); processing_error and reenter_transaction (technical); and
// new_account_information_available, since the issuer is signalling newer card details, which
// the card networks' account updater applies to the saved card in place. An expired_card, by
// contrast, means the updater had nothing newer to apply.
var hardDeclines = map[string]bool{
	// The card is reported lost or stolen, or the bank wants it retained: never charge it again.
	"lost_card":   true,
	"stolen_card": true,
	"pickup_card": true,
	// The bank or Stripe treats the card or the payment as fraud.
	"fraudulent":         true,
	"merchant_blacklist": true,
	"security_violation": true,
	// The card or its account is closed, restricted or cannot pay this merchant.
	"restricted_card":         true,
	"invalid_account":         true,
	"card_not_supported":      true,
	"currency_not_supported":  true,
	"transaction_not_allowed": true,
	// The customer withdrew the authority to charge the card.
	"stop_payment_order":               true,
	"revocation_of_authorization":      true,
	"revocation_of_all_authorizations": true,
	// The saved card's details are wrong or out of date; they do not change by themselves.
	"expired_card":         true,
	"incorrect_number":     true,
	"invalid_number":       true,
	"invalid_expiry_month": true,
	"invalid_expiry_year":  true,
	// The bank wants the customer to authenticate, which an off-session charge cannot do; the
	// customer must come back on-session.
	"authentication_required": true,
}

// RejectedError is a request the provider will never accept as sent, such as an unknown or
// already used token. It is final, like a decline, but it is not the bank's decision.
type RejectedError struct {
	Code    string
	Message string
	// Malformed says the provider found cartflow's request itself wrong (a missing, unknown or
	// invalid parameter): a bug for the team to fix, not something the customer's input caused.
	Malformed bool
}

// Error names the rejection's code and message.
func (e *RejectedError) Error() string {
	return fmt.Sprintf("payment rejected: %s: %s", e.Code, e.Message)
}

// IsFinal reports whether err can never succeed on retry.
func IsFinal(err error) bool {
	var d *DeclineError
	var r *RejectedError
	return errors.As(err, &d) || errors.As(err, &r)
}

// orDiscard is the gateway's logger: the configured one, or one that writes nothing, so that a
// gateway built without a logger (in a test, say) never has to check for nil.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
