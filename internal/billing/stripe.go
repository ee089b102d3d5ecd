package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// metadataKey is the PaymentIntent metadata entry that carries the charge's idempotency key, so
// that a charge whose answer was lost can be found again.
const metadataKey = "cartflow_idempotency_key"

// StripeConfig configures the Stripe gateway.
type StripeConfig struct {
	SecretKey string
	// APIURL is Stripe's API base URL; in development and tests, the local test-mode layer.
	APIURL string
	// Timeout bounds each HTTP call.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Stripe is the Stripe gateway, over stripe-go's per-client API (never the global stripe.Key).
type Stripe struct {
	api *client.API
	log *slog.Logger
}

// NewStripe returns a Stripe gateway. stripe-go's own retries are off: Temporal retries the
// activity instead, with the same idempotency key and a lookup first.
func NewStripe(cfg StripeConfig) *Stripe {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(cfg.APIURL),
		HTTPClient:        &http.Client{Timeout: cfg.Timeout},
		MaxNetworkRetries: stripe.Int64(0),
		// stripe-go's logger would print request errors on its own; the activity logs outcomes instead.
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	api := client.New(cfg.SecretKey, &stripe.Backends{API: backend, Connect: backend, Uploads: backend})
	return &Stripe{api: api, log: logger}
}

// Charge creates and confirms a PaymentIntent for the token: a PaymentMethod id (pm_…) or a
// legacy card token (tok_…), which is first turned into a PaymentMethod.
func (s *Stripe) Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error) {
	if req.Resume {
		pi, err := s.findPaymentIntent(ctx, req.IdempotencyKey)
		if err != nil {
			return ChargeResult{}, err
		}
		if pi != nil {
			s.log.InfoContext(ctx, "stripe charge resumed from lookup", "payment_intent", pi.ID, "status", pi.Status)
			return chargeOutcome(pi)
		}
	}

	paymentMethod := req.Token
	if strings.HasPrefix(req.Token, "tok_") {
		params := &stripe.PaymentMethodParams{
			Type: stripe.String(string(stripe.PaymentMethodTypeCard)),
			Card: &stripe.PaymentMethodCardParams{Token: stripe.String(req.Token)},
		}
		params.Context = ctx
		params.SetIdempotencyKey(req.IdempotencyKey + "/payment-method")
		pm, err := s.api.PaymentMethods.New(params)
		if err != nil {
			return ChargeResult{}, classifyStripe(err)
		}
		paymentMethod = pm.ID
	}

	params := &stripe.PaymentIntentParams{
		Amount:             stripe.Int64(req.Amount),
		Currency:           stripe.String(req.Currency),
		PaymentMethod:      stripe.String(paymentMethod),
		PaymentMethodTypes: stripe.StringSlice([]string{string(stripe.PaymentMethodTypeCard)}),
		Confirm:            stripe.Bool(true),
		Description:        stripe.String(req.Description),
	}
	params.Context = ctx
	params.SetIdempotencyKey(req.IdempotencyKey)
	params.AddMetadata(metadataKey, req.IdempotencyKey)
	params.AddMetadata("order_id", req.OrderID)
	pi, err := s.api.PaymentIntents.New(params)
	if err != nil {
		return ChargeResult{}, classifyStripe(err)
	}
	return chargeOutcome(pi)
}

// Refund refunds a PaymentIntent, found by its id or by the charge's idempotency key.
func (s *Stripe) Refund(ctx context.Context, req RefundRequest) (RefundResult, error) {
	ref := req.PaymentRef
	if ref == "" {
		pi, err := s.findPaymentIntent(ctx, req.ChargeKey)
		if err != nil {
			return RefundResult{}, err
		}
		if pi == nil || pi.Status != stripe.PaymentIntentStatusSucceeded {
			return RefundResult{NothingCharged: true}, nil
		}
		ref = pi.ID
	}
	params := &stripe.RefundParams{PaymentIntent: stripe.String(ref)}
	if req.Amount > 0 {
		params.Amount = stripe.Int64(req.Amount)
	}
	params.Context = ctx
	params.SetIdempotencyKey(req.IdempotencyKey)
	r, err := s.api.Refunds.New(params)
	if err != nil {
		return RefundResult{}, classifyStripe(err)
	}
	if r.Status == stripe.RefundStatusFailed || r.Status == stripe.RefundStatusCanceled {
		return RefundResult{}, &RejectedError{Code: "refund_" + string(r.Status), Message: "the provider did not complete the refund"}
	}
	return RefundResult{ProviderRef: r.ID, Amount: r.Amount}, nil
}

// findPaymentIntent looks a PaymentIntent up by the idempotency key it was created with; nil when there is none.
func (s *Stripe) findPaymentIntent(ctx context.Context, key string) (*stripe.PaymentIntent, error) {
	params := &stripe.PaymentIntentSearchParams{}
	params.Context = ctx
	params.Query = fmt.Sprintf("metadata['%s']:'%s'", metadataKey, strings.ReplaceAll(key, "'", `\'`))
	iter := s.api.PaymentIntents.Search(params)
	var found *stripe.PaymentIntent
	for iter.Next() {
		pi := iter.PaymentIntent()
		// Prefer the one that took money, should a bug ever have made two.
		if found == nil || pi.Status == stripe.PaymentIntentStatusSucceeded {
			found = pi
		}
	}
	if err := iter.Err(); err != nil {
		return nil, classifyStripe(err)
	}
	return found, nil
}

// chargeOutcome turns a PaymentIntent's status into a result or a classified error.
func chargeOutcome(pi *stripe.PaymentIntent) (ChargeResult, error) {
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded:
		return ChargeResult{ProviderRef: pi.ID}, nil
	case stripe.PaymentIntentStatusProcessing:
		return ChargeResult{}, fmt.Errorf("stripe payment %s is still processing", pi.ID)
	case stripe.PaymentIntentStatusRequiresPaymentMethod:
		if e := pi.LastPaymentError; e != nil {
			return ChargeResult{}, &DeclineError{Code: string(e.Code), DeclineCode: string(e.DeclineCode), Message: customerMessage(e.Msg)}
		}
	case stripe.PaymentIntentStatusRequiresAction:
		return ChargeResult{}, &RejectedError{Code: "authentication_required", Message: "the card requires authentication, which this checkout does not support yet"}
	case stripe.PaymentIntentStatusCanceled:
		return ChargeResult{}, &RejectedError{Code: "payment_canceled", Message: "the payment was canceled"}
	}
	return ChargeResult{}, &RejectedError{Code: "payment_incomplete", Message: fmt.Sprintf("the payment ended in status %s", pi.Status)}
}

// classifyStripe maps a stripe-go error onto the gateway's error classes.
func classifyStripe(err error) error {
	var se *stripe.Error
	if !errors.As(err, &se) {
		// A network error or a timeout: the request may or may not have reached Stripe.
		return fmt.Errorf("stripe unreachable, outcome unknown: %w", err)
	}
	switch {
	case se.Type == stripe.ErrorTypeCard:
		return &DeclineError{Code: string(se.Code), DeclineCode: string(se.DeclineCode), Message: customerMessage(se.Msg)}
	case se.HTTPStatusCode == http.StatusTooManyRequests, se.HTTPStatusCode == http.StatusConflict,
		se.HTTPStatusCode >= 500, se.Type == stripe.ErrorTypeAPI:
		// Rate limits, a concurrent request with the same key, and Stripe's own failures pass with time.
		return fmt.Errorf("stripe temporarily failed (status %d, %s)", se.HTTPStatusCode, se.Code)
	case se.HTTPStatusCode == http.StatusUnauthorized, se.HTTPStatusCode == http.StatusForbidden:
		// A wrong or revoked key: retrying lets ops fix the configuration without losing the checkout.
		return fmt.Errorf("stripe refused the API key (status %d)", se.HTTPStatusCode)
	default:
		code := string(se.Code)
		if code == "" {
			code = string(se.Type)
		}
		return &RejectedError{Code: code, Message: customerMessage(se.Msg)}
	}
}

// customerMessage keeps the provider's explanation, which Stripe writes for end users, with a fallback.
func customerMessage(msg string) string {
	if msg == "" {
		return "the payment could not be completed"
	}
	return msg
}
