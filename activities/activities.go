// Package activities holds cartflow's Temporal activities: the User Directory, orders, payments,
// subscriptions, emails and the steps of the scheduled jobs. They are methods on Activities,
// which holds the long-lived clients that the worker builds once.
package activities

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/cartflow/cartflow/internal/analytics"
	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/directory"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/errorreport"
	"github.com/cartflow/cartflow/internal/mailer"
	"github.com/cartflow/cartflow/internal/metrics"
	"github.com/cartflow/cartflow/internal/store"
)

// Application error types. Workflows switch on them, and retry policies list the final ones as
// non-retryable.
const (
	ErrTypeInvalidCustomer = "InvalidCustomer"
	ErrTypeCardDeclined    = "CardDeclined"
	// ErrTypeCardDeclinedHard is a decline that no later retry can turn around (a lost or stolen
	// card, a closed account): a renewal does not enter dunning for it.
	ErrTypeCardDeclinedHard = "CardDeclinedHard"
	ErrTypePaymentRejected  = "PaymentRejected"
	ErrTypeRefundRejected   = "RefundRejected"
	ErrTypeUnknownProvider  = "UnknownProvider"
	ErrTypeOrderState       = "OrderState"
	// ErrTypeSubscriptionState is a subscription that does not exist or cannot make the change.
	ErrTypeSubscriptionState = "SubscriptionState"
	// ErrTypePeriodMoved is a renewal step for a period the subscription has already left.
	ErrTypePeriodMoved = "PeriodMoved"
	// ErrTypePaymentRequestInvalid is a payment refused because cartflow built the request wrong: final, and a bug to report.
	ErrTypePaymentRequestInvalid = "PaymentRequestInvalid"
)

// The groups of error types, defined once here so that the retry policies, the error reporter
// and analytics cannot drift apart.
var (
	// ProviderRefusals are the final answers a payment provider gives to a payment it was asked
	// for: declined or refused. Analytics reports each as payment_failed; an unknown provider is
	// not among them, because no provider was asked.
	ProviderRefusals = []string{ErrTypeCardDeclined, ErrTypeCardDeclinedHard, ErrTypePaymentRejected, ErrTypePaymentRequestInvalid}
	// PaymentRefusals are the final errors of a payment step, the provider's refusals and a
	// provider cartflow does not have: retrying the same call cannot change them, so the payment
	// steps' retry policies list them as non-retryable.
	PaymentRefusals = append(slices.Clone(ProviderRefusals), ErrTypeUnknownProvider)
	// BusinessOutcomes are the final errors that are answers, not bugs: a decline, a refused
	// customer or change, a period the subscription has left. The error reporter does not report
	// them. ErrTypePaymentRequestInvalid is not one: cartflow built the request wrong, and that
	// must reach Sentry; nor is ErrTypeUnknownProvider, a provider missing from the configuration.
	BusinessOutcomes = []string{
		ErrTypeCardDeclined, ErrTypeCardDeclinedHard, ErrTypePaymentRejected, ErrTypeInvalidCustomer,
		ErrTypeRefundRejected, ErrTypeOrderState, ErrTypeSubscriptionState, ErrTypePeriodMoved,
	}
)

// IsProviderRefusal reports whether errType is one of ProviderRefusals.
func IsProviderRefusal(errType string) bool { return slices.Contains(ProviderRefusals, errType) }

// Activities holds the dependencies of every activity.
type Activities struct {
	Store *store.Store
	// Gateways maps a provider name (billing.ProviderStripe, …) to its gateway.
	Gateways map[string]billing.Gateway
	// Reconcilers are the gateways that can list their payments, by provider, for the
	// reconciliation that finds orphan payments; a provider without one is not reconciled.
	Reconcilers map[string]billing.Reconciler
	Logger      *slog.Logger
	// Mailer sends customer and ops emails; SendEmail refuses to run without one.
	Mailer *mailer.Mailer
	// Temporal starts the workflows that sweeps fan out to.
	Temporal client.Client
	// HeartbeatInterval is how often provider calls heartbeat, so that a worker that dies mid-call
	// is noticed within the activity's heartbeat timeout instead of its whole start-to-close timeout.
	HeartbeatInterval time.Duration
	// Analytics sends the funnel events to Mixpanel, best-effort; nil sends none.
	Analytics *analytics.Client
	// Metrics counts business outcomes (charges, refunds, renewals) for Prometheus; nil counts nothing.
	Metrics *metrics.Registry
	// Reporter raises ops alerts in Sentry (an orphan payment); nil raises none.
	Reporter *errorreport.Reporter
	// Links makes the storefront links that emails carry.
	Links Links
	// Declines are the card-testing defence's limits (declines.go); zero checks none.
	Declines DeclineLimits

	// outboxWake tells the worker's outbox relay that a message was just committed; nil when no
	// relay runs in this process (one elsewhere finds the message by polling).
	outboxWake func()
}

// CustomerInput is the customer as the storefront sent it.
type CustomerInput struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

// StandardizeCustomer applies the User Directory's rules to the customer's email and name.
// Invalid input is final.
func (a *Activities) StandardizeCustomer(_ context.Context, in CustomerInput) (Customer, error) {
	std, err := directory.Standardize(in.Email, in.Name)
	c := customerOf(std)
	switch {
	case errors.Is(err, directory.ErrInvalidEmail):
		return c, final("the email address is not valid", ErrTypeInvalidCustomer, err, domain.Failure{Code: "invalid_email", Message: "the email address is not valid"})
	case errors.Is(err, directory.ErrInvalidName):
		return c, final("the name is not valid", ErrTypeInvalidCustomer, err, domain.Failure{Code: "invalid_name", Message: "the name is empty or too long"})
	}
	return c, err
}

// RegisterUser registers the customer, pending until confirmed. The same email twice is one user.
// A registration the directory refuses outright is final, so that the purchase is refunded
// rather than retried for nothing.
func (a *Activities) RegisterUser(ctx context.Context, c Customer) (string, error) {
	u, err := a.registerUser(ctx, c)
	a.observeRegistration(ctx, u, err)
	return u.ID, err
}

func (a *Activities) registerUser(ctx context.Context, c Customer) (store.User, error) {
	u, err := a.Store.RegisterUser(ctx, c.Email, c.Name)
	if store.IsIntegrityViolation(err) {
		return store.User{}, final("the user directory refused the registration", ErrTypeInvalidCustomer, err,
			domain.Failure{Code: "registration_rejected", Message: "the account could not be registered"})
	}
	return u, err
}

// ConfirmUser confirms a registered user's account. Checkouts recorded before sign-in links
// confirmed after payment with it; a customer is now confirmed by following a sign-in link.
func (a *Activities) ConfirmUser(ctx context.Context, userID string) error {
	_, err := a.Store.ConfirmUser(ctx, userID)
	return err
}

// final wraps err as a non-retryable application error of errType carrying failure as details.
func final(msg, errType string, err error, failure domain.Failure) error {
	return temporal.NewNonRetryableApplicationError(msg, errType, err, failure)
}

// heartbeat records a heartbeat every interval until the returned stop is called.
func (a *Activities) heartbeat(ctx context.Context) (stop func()) {
	if a.HeartbeatInterval <= 0 || !activity.IsActivity(ctx) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(a.HeartbeatInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}

func (a *Activities) logger(ctx context.Context) *slog.Logger {
	l := a.Logger
	if l == nil {
		l = slog.Default()
	}
	if activity.IsActivity(ctx) {
		info := activity.GetInfo(ctx)
		l = l.With("workflow_id", info.WorkflowExecution.ID, "run_id", info.WorkflowExecution.RunID,
			"activity", info.ActivityType.Name, "attempt", info.Attempt)
	}
	return l
}
