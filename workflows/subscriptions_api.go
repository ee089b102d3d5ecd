package workflows

import (
	"fmt"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
)

// This file is the contract of the subscription workflows and of the workflows that Temporal
// Schedules start in place of the old cron runner.

// Workflow type names, as registered by the worker and named by the schedules.
const (
	RenewalWorkflowType      = "Renewal"
	RenewalSweepWorkflowType = "RenewalSweep"
	DailySummaryWorkflowType = "DailySummary"
	CleanupWorkflowType      = "Cleanup"
)

// Schedule IDs, as they show in the Temporal UI's Schedules page.
const (
	RenewalSweepScheduleID = "cartflow-renewal-sweep"
	DailySummaryScheduleID = "cartflow-daily-summary"
	CleanupScheduleID      = "cartflow-cleanup"
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
	// RecordRetention prunes idempotency records (sent-email keys) and webhook events after this long.
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
	Batches             int `json:"batches"`
	ContinuedAsNew      int `json:"continued_as_new"`
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
