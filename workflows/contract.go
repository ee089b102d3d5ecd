// Package workflows holds cartflow's Temporal workflows. This file is their contract, the part the
// BFF, the schedules and the worker import: the task queue, the workflow types and IDs, the signal,
// update and query names, the inputs, the states and results, and the search attributes.
package workflows

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/cartflow/cartflow/internal/domain"
)

// TaskQueue is the task queue the worker polls for every cartflow workflow and activity but the
// scheduled jobs': checkouts, renewals, refunds, subscription changes and their activities.
const TaskQueue = "cartflow-checkout"

// JobsTaskQueue is the task queue of the scheduled jobs (the renewal sweep, the daily summary,
// the cleanup, the reconciliation of payments) and their activities, which the worker polls
// apart from TaskQueue. A job's workflow tasks then never wait behind the backlog of what it
// started: a sweep that continues as new after starting 50,000 renewals on TaskQueue would
// otherwise wait for all of them to be picked up before its next page.
const JobsTaskQueue = "cartflow-jobs"

// CheckoutWorkflowType is the registered name of the Checkout workflow. It stays "Purchase", its
// name since the first release, so that checkouts already running are not stranded.
const CheckoutWorkflowType = "Purchase"

// CheckoutWorkflowID is the Checkout workflow's ID for a client's Idempotency-Key, so that the
// same key can only ever start one checkout.
func CheckoutWorkflowID(idempotencyKey string) string { return "checkout-" + idempotencyKey }

// UpdateAwaitOutcome is the Update that BFF requests send with Update-With-Start. It is refused
// when the request differs from the one that started the checkout, and otherwise completes
// with the checkout's final state.
const UpdateAwaitOutcome = "await-outcome"

// QueryStatus is the query a Checkout, Renewal or RenewalSweep answers with its current state.
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

// CheckoutInput starts a Checkout workflow.
type CheckoutInput struct {
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

// The subscription workflows, and the workflows that Temporal Schedules start in place of the
// old cron runner.

// Workflow type names, as registered by the worker and named by the schedules.
const (
	RenewalWorkflowType      = "Renewal"
	RenewalSweepWorkflowType = "RenewalSweep"
	DailySummaryWorkflowType = "DailySummary"
	CleanupWorkflowType      = "Cleanup"
	ReconcileWorkflowType    = "ReconcilePayments"
)

// Schedule IDs, as they show in the Temporal UI's Schedules page.
const (
	RenewalSweepScheduleID = "cartflow-renewal-sweep"
	DailySummaryScheduleID = "cartflow-daily-summary"
	CleanupScheduleID      = "cartflow-cleanup"
	ReconcileScheduleID    = "cartflow-reconcile-payments"
)

// RenewalWorkflowID names the renewal of one subscription's period. The period end is part of
// the ID so that a period can only ever be renewed by one workflow, however often it is swept.
func RenewalWorkflowID(subscriptionID string, periodEnd time.Time) string {
	return fmt.Sprintf("renewal-%s-%s", subscriptionID, periodEnd.UTC().Format("20060102T150405Z"))
}

// DunningPolicy is how a renewal that was declined is retried.
type DunningPolicy struct {
	// RetryAfter lists the waits before each retry, counted from the first decline; after the
	// last one fails, the subscription is canceled.
	RetryAfter []time.Duration `json:"retry_after"`
}

// RenewalInput starts the renewal of one subscription period.
type RenewalInput struct {
	SubscriptionID string        `json:"subscription_id"`
	PeriodEnd      time.Time     `json:"period_end"`
	Dunning        DunningPolicy `json:"dunning"`
}

// RenewalSweepInput starts, or continues as new, a renewal sweep.
type RenewalSweepInput struct {
	// AsOf is the instant the sweep renews up to; it is fixed when the sweep begins and carried
	// across continue-as-new so that one sweep sees one consistent set.
	AsOf time.Time `json:"as_of"`
	// BatchSize is how many due subscriptions one page holds.
	BatchSize int `json:"batch_size"`
	// MaxPagesPerRun bounds the history of one run before it continues as new.
	MaxPagesPerRun int           `json:"max_pages_per_run"`
	Dunning        DunningPolicy `json:"dunning"`
	// TrialReminderBefore is how long before a trial ends its reminder email goes out.
	TrialReminderBefore time.Duration `json:"trial_reminder_before"`
	// Cursor is where the previous run stopped; empty on the first run.
	Cursor *SweepCursor `json:"cursor,omitempty"`
	// Progress so far, carried across continue-as-new.
	Progress SweepProgress `json:"progress"`
}

// SweepCursor is a keyset position in the due-subscriptions index.
type SweepCursor struct {
	PeriodEnd      time.Time `json:"period_end"`
	SubscriptionID string    `json:"subscription_id"`
}

// SweepProgress counts what a sweep has done.
type SweepProgress struct {
	Due            int `json:"due"`
	Started        int `json:"started"`
	AlreadyStarted int `json:"already_started"`
	RemindersSent  int `json:"reminders_sent"`
	ContinuedAsNew int `json:"continued_as_new"`
}

// DailySummaryInput starts the daily summary.
type DailySummaryInput struct {
	// Day is the UTC day to summarize, as YYYY-MM-DD; empty means the day before the workflow starts.
	Day string `json:"day,omitempty"`
	// OpsEmail receives the summary.
	OpsEmail string `json:"ops_email"`
}

// CleanupInput starts, or continues as new, a cleanup run.
type CleanupInput struct {
	// AbandonedCheckoutAge expires checkouts still pending, never charged, after this long.
	AbandonedCheckoutAge time.Duration `json:"abandoned_checkout_age"`
	// UnconfirmedUserAge deletes users never confirmed after this long.
	UnconfirmedUserAge time.Duration `json:"unconfirmed_user_age"`
	// RecordRetention prunes idempotency records (sent-email keys, the BFF's Idempotency-Keys) and
	// webhook events after this long. The store keeps Idempotency-Keys 30 days at least, whatever it says.
	RecordRetention time.Duration `json:"record_retention"`
	// BatchSize bounds each delete or update, so that no statement holds locks for long.
	BatchSize int `json:"batch_size"`
	// MaxBatchesPerRun bounds the history of one run before it continues as new.
	MaxBatchesPerRun int `json:"max_batches_per_run"`
	// AsOf is fixed when the cleanup begins and carried across continue-as-new.
	AsOf time.Time `json:"as_of"`
	// ResumeTask is the task the previous run stopped in; empty on the first run. Without it a
	// new run would start over at the first task and, with a small MaxBatchesPerRun, never get
	// past the tasks that are already done.
	ResumeTask string `json:"resume_task,omitempty"`
	// Progress so far, carried across continue-as-new.
	Progress CleanupCounts `json:"progress"`
}

// CleanupCounts is what a cleanup removed or expired.
type CleanupCounts struct {
	ExpiredCheckouts    int `json:"expired_checkouts"`
	DeletedUsers        int `json:"deleted_users"`
	PrunedEmailRecords  int `json:"pruned_email_records"`
	PrunedWebhookEvents int `json:"pruned_webhook_events"`
	// PrunedIdempotencyKeys counts the BFF's Idempotency-Keys deleted.
	PrunedIdempotencyKeys int `json:"pruned_idempotency_keys,omitempty"`
	// PrunedRateLimits counts the rate-limit counters, payment declines and payment sources deleted.
	PrunedRateLimits int `json:"pruned_rate_limits,omitempty"`
	// PrunedSessions counts the ended sessions and sign-in links deleted (the larger of the two per batch).
	PrunedSessions int `json:"pruned_sessions,omitempty"`
	Batches        int `json:"batches"`
	ContinuedAsNew int `json:"continued_as_new"`
}

// SignalPaymentMethodUpdated tells a running renewal that the customer saved a new payment
// method: a renewal in dunning retries at once with it.
const SignalPaymentMethodUpdated = "payment-method-updated"

// SignalSubscriptionChanged tells a running renewal that the subscription was changed through
// the BFF; its payload is a SubscriptionChangeSignal.
const SignalSubscriptionChanged = "subscription-changed"

// Subscription changes a customer can ask for.
const (
	ChangeCancelNow         = "cancel_now"
	ChangeCancelAtPeriodEnd = "cancel_at_period_end"
	ChangeResume            = "resume"
	ChangePaymentMethod     = "update_payment_method"
)

// SubscriptionChangeSignal is the payload of SignalSubscriptionChanged.
type SubscriptionChangeSignal struct {
	Action string `json:"action"`
}

// Renewal stages, as the status query reports them.
const (
	RenewalStarting = "starting"
	RenewalCharging = "charging"
	RenewalDunning  = "dunning"
	RenewalDone     = "done"
)

// RenewalState is a running renewal as its status query reports it.
type RenewalState struct {
	Stage    string `json:"stage"`
	OrderID  string `json:"order_id,omitempty"`
	Attempts int    `json:"attempts"`
	// NextRetryAt is when the next dunning attempt is due, while the renewal waits for it.
	NextRetryAt *time.Time `json:"next_retry_at,omitempty"`
	LastDecline string     `json:"last_decline,omitempty"`
}

// Renewal outcomes.
const (
	RenewalRenewed  = "renewed"
	RenewalCanceled = "canceled"
	RenewalSkipped  = "skipped"
)

// RenewalResult is how a renewal ended.
type RenewalResult struct {
	Outcome  string `json:"outcome"`
	Reason   string `json:"reason"`
	OrderID  string `json:"order_id,omitempty"`
	Attempts int    `json:"attempts"`
	// NewPeriodEnd is the end of the period the renewal paid for.
	NewPeriodEnd *time.Time `json:"new_period_end,omitempty"`
}

// SubscriptionChangeWorkflowType is the registered name of the SubscriptionChange workflow.
const SubscriptionChangeWorkflowType = "SubscriptionChange"

// SubscriptionChangeWorkflowID names one change request; requestKey is the client's
// Idempotency-Key, so that a repeated request joins the change it repeats.
func SubscriptionChangeWorkflowID(subscriptionID, requestKey string) string {
	return "subscription-change-" + subscriptionID + "-" + requestKey
}

// SubscriptionChangeInput asks for one change of a subscription.
type SubscriptionChangeInput struct {
	SubscriptionID string `json:"subscription_id"`
	// Action is one of the Change* constants.
	Action string `json:"action"`
	// Payment is the new payment method, for ChangePaymentMethod.
	Payment Payment `json:"payment,omitempty"`
}

// SubscriptionChangeResult is how a change request ended. A refused change (a card declined
// while saving it, a resume of a canceled subscription) is a result, not a workflow failure.
type SubscriptionChangeResult struct {
	SubscriptionID string                    `json:"subscription_id"`
	Status         domain.SubscriptionStatus `json:"status"`
	// FailureCode and FailureMessage say why the change was refused; empty when it was made.
	FailureCode    string `json:"failure_code,omitempty"`
	FailureMessage string `json:"failure_message,omitempty"`
}

// Custom search attributes, so that ops find a customer's runs in the Temporal UI and CLI:
//
//	CustomerEmail = 'ada@example.com'   (or its hash, per SEARCH_EMAIL_MODE)
//	OrderId = '…'   CheckoutStatus = 'failed'   Amount > 10000
//
// The BFF sets CustomerEmail and CheckoutStatus when it starts a checkout; the workflow keeps
// OrderId, Amount and CheckoutStatus up to date. The worker makes sure they exist at start.
var (
	SearchCustomerEmail  = temporal.NewSearchAttributeKeyKeyword("CustomerEmail")
	SearchOrderID        = temporal.NewSearchAttributeKeyKeyword("OrderId")
	SearchCheckoutStatus = temporal.NewSearchAttributeKeyKeyword("CheckoutStatus")
	SearchAmount         = temporal.NewSearchAttributeKeyInt64("Amount")
)

// SearchAttributes lists cartflow's custom search attributes with their types, for registering and checking them.
var SearchAttributes = map[string]enumspb.IndexedValueType{
	SearchCustomerEmail.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SearchOrderID.GetName():        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SearchCheckoutStatus.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SearchAmount.GetName():         enumspb.INDEXED_VALUE_TYPE_INT,
}
