package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// metadataKey is the PaymentIntent metadata entry that carries the charge's idempotency key, so
// that a charge whose answer was lost can be found again.
const metadataKey = "cartflow_idempotency_key"

// referenceMetadataKey is the Customer metadata entry naming what the customer was created for
// (a subscription or order), so that ops can trace a Stripe Customer back to cartflow.
const referenceMetadataKey = "cartflow_reference"

// Stripe keeps payment methods for renewals, lets payments wait for 3-D Secure and lists its
// payments for the reconciliation; the compiler holds it to all three.
var (
	_ RecurringGateway      = (*Stripe)(nil)
	_ AuthenticatingGateway = (*Stripe)(nil)
	_ Reconciler            = (*Stripe)(nil)
	_ Fingerprinter         = (*Stripe)(nil)
)

// StripeConfig configures the Stripe gateway.
type StripeConfig struct {
	SecretKey string
	// APIURL is Stripe's API base URL; in development and tests, the local test-mode double (internal/dev/fake/stripe).
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
	logger := orDiscard(cfg.Logger)
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

// Charge takes a payment with a PaymentIntent for the token: a PaymentMethod id (pm_…) or a
// legacy card token (tok_…), which is first turned into a PaymentMethod. With a CustomerRef,
// the token is a PaymentMethod saved by SavePaymentMethod and attached to that customer. When
// the bank asks the customer to authenticate (3-D Secure), nothing is charged yet and the
// result carries the Action for the storefront; PaymentOutcome then tells how it ended, and
// CancelPayment ends it when the customer never finishes.
//
// The PaymentIntent is created unconfirmed under req.IdempotencyKey, recorded through
// req.Created, and only then confirmed, under the key plus "/confirm": no money can move on a
// PaymentIntent whose id the ledger does not hold. A repeated charge finds the earlier attempt's
// PaymentIntent authoritatively, never by search, which Stripe documents as eventually
// consistent (a PaymentIntent is "usually searchable within a minute"), so a search that finds
// nothing proves nothing:
//   - with req.PaymentRef, the ledger's record, the PaymentIntent is read by id and completed;
//   - without it, the create under the same key: for 24 hours Stripe answers it with the
//     original PaymentIntent, which is then read by id, as with a PaymentRef. After that only
//     the ledger's PaymentRef knows it, and the ledger has it from req.Created.
//
// req.Resume is not needed: the lookup by key happens before every create, first attempt or not.
func (s *Stripe) Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error) {
	if req.OffSession && req.CustomerRef == "" {
		// Only a payment method saved on a customer may be charged without the customer.
		return ChargeResult{}, &RejectedError{Code: "customer_required", Message: "an off-session charge needs the customer holding the saved payment method"}
	}
	if req.PaymentRef != "" {
		pi, err := s.getPaymentIntent(ctx, req.PaymentRef)
		if err != nil {
			return ChargeResult{}, err
		}
		s.log.InfoContext(ctx, "stripe charge resumed from the ledger", "payment_intent", pi.ID, "status", pi.Status)
		return s.complete(ctx, req, pi)
	}
	if req.Token == "" {
		// Refused before anything exists at Stripe: a PaymentIntent without a payment method
		// could never be confirmed.
		return ChargeResult{}, &RejectedError{Code: "payment_method_missing", Message: "no payment method was given"}
	}

	paymentMethod, err := s.paymentMethod(ctx, req.Token, req.IdempotencyKey)
	if err != nil {
		return ChargeResult{}, err
	}
	params := &stripe.PaymentIntentParams{
		Amount:             stripe.Int64(req.Amount),
		Currency:           stripe.String(req.Currency),
		PaymentMethod:      stripe.String(paymentMethod),
		PaymentMethodTypes: stripe.StringSlice([]string{string(stripe.PaymentMethodTypeCard)}),
		Description:        stripe.String(req.Description),
	}
	if req.CustomerRef != "" {
		// Stripe refuses a saved payment method unless its customer comes along.
		params.Customer = stripe.String(req.CustomerRef)
		if !req.OffSession {
			// The first, on-session charge of a plan authenticates the card for the renewals
			// that follow, which lowers the chance that the bank declines them.
			params.SetupFutureUsage = stripe.String(string(stripe.PaymentIntentSetupFutureUsageOffSession))
		}
	}
	params.Context = ctx
	params.SetIdempotencyKey(req.IdempotencyKey)
	params.AddMetadata(metadataKey, req.IdempotencyKey)
	params.AddMetadata("order_id", req.OrderID)
	pi, err := s.api.PaymentIntents.New(params)
	if err != nil {
		return ChargeResult{}, classifyStripe(err)
	}
	if req.Created != nil {
		// Called on a replayed create too: the earlier attempt may have stopped before or
		// inside its own call, so recording must be idempotent.
		if err := req.Created(ctx, pi.ID); err != nil {
			return ChargeResult{}, fmt.Errorf("recording stripe payment %s before confirming it, outcome unknown: %w", pi.ID, err)
		}
	}
	if pi.LastResponse != nil && pi.LastResponse.Header.Get("Idempotent-Replayed") == "true" {
		// Stripe replays the create's answer as it was then; the PaymentIntent may have been
		// confirmed, authenticated or canceled since, and only a read tells.
		if pi, err = s.getPaymentIntent(ctx, pi.ID); err != nil {
			return ChargeResult{}, err
		}
		s.log.InfoContext(ctx, "stripe charge resumed from the idempotent create", "payment_intent", pi.ID, "status", pi.Status)
	}
	return s.complete(ctx, req, pi)
}

// complete confirms pi when it still waits for confirmation, under the charge's key plus
// "/confirm", and otherwise reports where it stands, as chargeOutcome does. An off-session
// confirm tells the bank the customer is away, so it declines rather than asking for 3-D
// Secure that nobody could complete, and marks the charge as merchant-initiated.
func (s *Stripe) complete(ctx context.Context, req ChargeRequest, pi *stripe.PaymentIntent) (ChargeResult, error) {
	if pi.Status != stripe.PaymentIntentStatusRequiresConfirmation {
		return chargeOutcome(pi)
	}
	params := &stripe.PaymentIntentConfirmParams{}
	if req.OffSession {
		params.OffSession = stripe.Bool(true)
	}
	params.Context = ctx
	params.SetIdempotencyKey(req.IdempotencyKey + "/confirm")
	confirmed, err := s.api.PaymentIntents.Confirm(pi.ID, params)
	if err != nil {
		return ChargeResult{}, classifyStripe(err)
	}
	return chargeOutcome(confirmed)
}

// SavePaymentMethod keeps the token's card at Stripe for off-session charges: it creates the
// Customer when req.CustomerRef is empty, turns a tok_… into a PaymentMethod, attaches the
// PaymentMethod to the Customer and makes it the Customer's default. Each call has its own
// idempotency key under req.IdempotencyKey, so a retry after any failure repeats nothing and
// resumes where the earlier attempt stopped. Attaching runs the bank's card check, so a card
// that is declined fails here with a *DeclineError.
func (s *Stripe) SavePaymentMethod(ctx context.Context, req SavePaymentMethodRequest) (SavedPaymentMethod, error) {
	if req.Token == "" {
		return SavedPaymentMethod{}, &RejectedError{Code: "payment_method_missing", Message: "no payment method was given to save"}
	}
	customer := req.CustomerRef
	if customer == "" {
		params := &stripe.CustomerParams{}
		if req.Email != "" {
			params.Email = stripe.String(req.Email)
		}
		if req.Name != "" {
			params.Name = stripe.String(req.Name)
		}
		if req.Reference != "" {
			params.AddMetadata(referenceMetadataKey, req.Reference)
		}
		params.Context = ctx
		params.SetIdempotencyKey(req.IdempotencyKey + "/customer")
		c, err := s.api.Customers.New(params)
		if err != nil {
			return SavedPaymentMethod{}, classifyStripe(err)
		}
		customer = c.ID
	}

	paymentMethod, err := s.paymentMethod(ctx, req.Token, req.IdempotencyKey)
	if err != nil {
		return SavedPaymentMethod{}, err
	}

	attach := &stripe.PaymentMethodAttachParams{Customer: stripe.String(customer)}
	attach.Context = ctx
	attach.SetIdempotencyKey(req.IdempotencyKey + "/attach")
	pm, err := s.api.PaymentMethods.Attach(paymentMethod, attach)
	if err != nil {
		return SavedPaymentMethod{}, classifyStripe(err)
	}
	// Attaching one of Stripe's test PaymentMethods (pm_card_visa…) yields a new PaymentMethod:
	// the attached id, not the token, is what later charges use.
	saved := SavedPaymentMethod{CustomerRef: customer, PaymentMethodRef: pm.ID}

	update := &stripe.CustomerParams{InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{
		DefaultPaymentMethod: stripe.String(saved.PaymentMethodRef),
	}}
	update.Context = ctx
	update.SetIdempotencyKey(req.IdempotencyKey + "/default")
	if _, err := s.api.Customers.Update(customer, update); err != nil {
		return SavedPaymentMethod{}, classifyStripe(err)
	}
	s.log.InfoContext(ctx, "stripe payment method saved", "customer", saved.CustomerRef, "payment_method", saved.PaymentMethodRef)
	return saved, nil
}

// Refund refunds a PaymentIntent: req.PaymentRef, which the ledger holds for every
// PaymentIntent a charge created, since Charge records it (ChargeRequest.Created) before it
// confirms it. An empty PaymentRef therefore means no PaymentIntent of the charge was ever
// confirmed, and so NothingCharged. A search by the charge key remains as a safety net that can
// only add a refund: one that finds a succeeded PaymentIntent refunds it, for a charge made
// before the ledger recorded PaymentIntents. A search that finds nothing proves nothing, as
// Stripe's search is eventually consistent, and NothingCharged rests on the ledger alone.
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
		s.log.InfoContext(ctx, "stripe refund found the payment by search", "payment_intent", pi.ID)
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

// PaymentOutcome reads the PaymentIntent ref and reports where it stands, as Charge would have:
// a result without Action once it succeeded, a result with Action while the customer has yet to
// authenticate, a *DeclineError when authentication failed (payment_intent_authentication_failure)
// or the bank declined the charge that followed, a *RejectedError once it was canceled, and a
// retryable error while it is processing or Stripe cannot be reached. A read changes nothing at
// Stripe, so it needs no idempotency key.
func (s *Stripe) PaymentOutcome(ctx context.Context, ref string) (ChargeResult, error) {
	pi, err := s.getPaymentIntent(ctx, ref)
	if err != nil {
		return ChargeResult{}, err
	}
	return chargeOutcome(pi)
}

// CancelPayment cancels the PaymentIntent ref, which waits for the customer to authenticate, so
// that the customer can no longer complete it and nothing is ever charged for it. Stripe cancels
// only a payment that has not ended, and answers payment_intent_unexpected_state otherwise: the
// PaymentIntent is then read to tell a payment that succeeded before the cancel arrived
// (ErrAlreadySucceeded: the money was taken, and the caller must keep or refund it) from one
// already canceled, by an earlier attempt under another key or by Stripe itself, which is what
// was asked (nil). A retry under the same key gets Stripe's first answer again.
func (s *Stripe) CancelPayment(ctx context.Context, ref, key string) error {
	params := &stripe.PaymentIntentCancelParams{
		// abandoned: the customer never finished authenticating within the checkout's time.
		CancellationReason: stripe.String(string(stripe.PaymentIntentCancellationReasonAbandoned)),
	}
	params.Context = ctx
	params.SetIdempotencyKey(key)
	pi, cancelErr := s.api.PaymentIntents.Cancel(ref, params)
	var se *stripe.Error
	switch {
	case cancelErr == nil && pi.Status == stripe.PaymentIntentStatusCanceled:
		s.log.InfoContext(ctx, "stripe payment canceled", "payment_intent", ref)
		return nil
	case cancelErr == nil:
		return fmt.Errorf("stripe answered the cancel of %s with status %s", ref, pi.Status)
	case !errors.As(cancelErr, &se) || se.Code != stripe.ErrorCodePaymentIntentUnexpectedState:
		return classifyStripe(cancelErr)
	}
	pi, err := s.getPaymentIntent(ctx, ref)
	if err != nil {
		return err
	}
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded:
		s.log.InfoContext(ctx, "stripe payment succeeded before it could be canceled", "payment_intent", ref)
		return ErrAlreadySucceeded
	case stripe.PaymentIntentStatusCanceled:
		return nil
	}
	return classifyStripe(cancelErr)
}

// SucceededPayments lists the PaymentIntents created at or after since that succeeded, oldest
// first, through Stripe's list API (created[gte], paged by stripe-go's iterator), which, unlike
// search, sees every PaymentIntent as soon as it exists. Each one's latest charge is expanded
// for its amount_refunded, which is Refunded; a PaymentIntent takes money with one charge, its
// latest, so that is all that was refunded of it.
func (s *Stripe) SucceededPayments(ctx context.Context, since time.Time) ([]ProviderPayment, error) {
	params := &stripe.PaymentIntentListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	params.Limit = stripe.Int64(100)
	params.AddExpand("data.latest_charge")
	params.Context = ctx
	var out []ProviderPayment
	iter := s.api.PaymentIntents.List(params)
	for iter.Next() {
		pi := iter.PaymentIntent()
		if pi.Status != stripe.PaymentIntentStatusSucceeded {
			continue
		}
		p := ProviderPayment{Ref: pi.ID, IdempotencyKey: pi.Metadata[metadataKey], OrderID: pi.Metadata["order_id"],
			Amount: pi.AmountReceived, Currency: string(pi.Currency), Created: time.Unix(pi.Created, 0).UTC()}
		if pi.LatestCharge != nil {
			p.Refunded = pi.LatestCharge.AmountRefunded
		}
		out = append(out, p)
	}
	if err := iter.Err(); err != nil {
		return nil, classifyStripe(err)
	}
	// Stripe lists newest first.
	slices.Reverse(out)
	return out, nil
}

// getPaymentIntent reads one PaymentIntent, with errors classified.
func (s *Stripe) getPaymentIntent(ctx context.Context, ref string) (*stripe.PaymentIntent, error) {
	params := &stripe.PaymentIntentParams{}
	params.Context = ctx
	pi, err := s.api.PaymentIntents.Get(ref, params)
	if err != nil {
		return nil, classifyStripe(err)
	}
	return pi, nil
}

// paymentMethod returns the PaymentMethod for a storefront token: a pm_… as it is, a legacy
// tok_… turned into a PaymentMethod first (stripe-go v76 cannot put a card token on a
// PaymentIntent), under the step's key plus "/payment-method".
func (s *Stripe) paymentMethod(ctx context.Context, token, key string) (string, error) {
	if !strings.HasPrefix(token, "tok_") {
		return token, nil
	}
	params := &stripe.PaymentMethodParams{
		Type: stripe.String(string(stripe.PaymentMethodTypeCard)),
		Card: &stripe.PaymentMethodCardParams{Token: stripe.String(token)},
	}
	params.Context = ctx
	params.SetIdempotencyKey(key + "/payment-method")
	pm, err := s.api.PaymentMethods.New(params)
	if err != nil {
		return "", classifyStripe(err)
	}
	return pm.ID, nil
}

// CardFingerprint reads the card's fingerprint from the token: a PaymentMethod (pm_…) or a legacy
// card token (tok_…), each a read that charges nothing and needs no idempotency key. Its errors
// are classified as a charge's are: a token Stripe does not know is a final RejectedError.
func (s *Stripe) CardFingerprint(ctx context.Context, token string) (string, error) {
	switch {
	case strings.HasPrefix(token, "pm_"):
		params := &stripe.PaymentMethodParams{}
		params.Context = ctx
		pm, err := s.api.PaymentMethods.Get(token, params)
		if err != nil {
			return "", classifyStripe(err)
		}
		if pm.Card == nil {
			return "", nil
		}
		return pm.Card.Fingerprint, nil
	case strings.HasPrefix(token, "tok_"):
		params := &stripe.TokenParams{}
		params.Context = ctx
		tok, err := s.api.Tokens.Get(token, params)
		if err != nil {
			return "", classifyStripe(err)
		}
		if tok.Card == nil {
			return "", nil
		}
		return tok.Card.Fingerprint, nil
	}
	return "", nil
}

// findPaymentIntent searches for a PaymentIntent by the idempotency key it was created with. A
// nil answer means the search found none, not that none exists: Stripe's search is eventually
// consistent, so only a PaymentIntent it finds counts.
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
		// A decline, or a failed 3-D Secure challenge (payment_intent_authentication_failure,
		// which Stripe types as an invalid request): either way this attempt is over, and only
		// another payment method can pay.
		if e := pi.LastPaymentError; e != nil {
			return ChargeResult{}, &DeclineError{Code: string(e.Code), DeclineCode: string(e.DeclineCode), Message: customerMessage(e.Msg)}
		}
	case stripe.PaymentIntentStatusRequiresAction:
		// The bank asked the customer to authenticate (3-D Secure) and nothing is charged until
		// they have. Only on-session charges get here: off-session, Stripe declines with
		// authentication_required instead, which classifyStripe makes a *DeclineError.
		return ChargeResult{ProviderRef: pi.ID, Action: nextAction(pi)}, nil
	case stripe.PaymentIntentStatusCanceled:
		return ChargeResult{}, &RejectedError{Code: "payment_canceled", Message: "the payment was canceled"}
	}
	return ChargeResult{}, &RejectedError{Code: "payment_incomplete", Message: fmt.Sprintf("the payment ended in status %s", pi.Status)}
}

// nextAction is what the storefront needs to let the customer authenticate the PaymentIntent.
func nextAction(pi *stripe.PaymentIntent) *Action {
	a := &Action{ClientSecret: pi.ClientSecret}
	if na := pi.NextAction; na != nil {
		a.Type = string(na.Type)
		if na.RedirectToURL != nil {
			a.RedirectURL = na.RedirectToURL.URL
		}
	}
	return a
}

// classifyStripe maps a stripe-go error onto the gateway's error classes.
func classifyStripe(err error) error {
	var se *stripe.Error
	if !errors.As(err, &se) {
		// A network error, a timeout, or the activity's context canceled or past its deadline:
		// the request may or may not have reached Stripe, so it is retried under the same key.
		// Errors stripe-go raises before sending anything are retried the same way, harmlessly.
		// The wrapped text holds no secret: the API key travels in a header, and net/http's
		// url.Error names only the URL, with any password stripped.
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
		return &RejectedError{Code: code, Message: customerMessage(se.Msg), Malformed: malformedRequest(se)}
	}
}

// malformedRequest reports whether Stripe refused the request's parameters themselves
// (parameter_missing, parameter_unknown, parameter_invalid_*, parameters_exclusive): only a bug
// in how cartflow builds the request causes those. Other invalid requests, such as an unknown
// token (resource_missing), come from what the storefront sent.
func malformedRequest(se *stripe.Error) bool {
	code := string(se.Code)
	return se.Type == stripe.ErrorTypeInvalidRequest &&
		(strings.HasPrefix(code, "parameter_") || code == "parameters_exclusive")
}

// customerMessage keeps the provider's explanation, which Stripe writes for end users, with a fallback.
func customerMessage(msg string) string {
	if msg == "" {
		return "the payment could not be completed"
	}
	return msg
}
