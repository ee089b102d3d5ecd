package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cartflow/cartflow/activities"
)

// Every activity's timeouts and retry policy are written out here, per activity, rather than
// left to the SDK's defaults.

// standardizeOptions: a pure function; it fails only on bad input, which is final.
func standardizeOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 2 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: time.Second,
			MaximumAttempts: 3, NonRetryableErrorTypes: []string{activities.ErrTypeInvalidCustomer},
		},
	})
}

// orderOptions: short database writes before any money moves. They run as local activities to
// save engine round trips, and keep retrying through a database outage for up to an hour
// because nothing has been charged yet.
func orderOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    5 * time.Second,
		ScheduleToCloseTimeout: time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			NonRetryableErrorTypes: []string{activities.ErrTypeOrderState},
		},
	})
}

// afterChargeOptions: database steps after the charge. If they cannot finish within ten minutes
// the customer is refunded rather than left paid without an account.
func afterChargeOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    5 * time.Second,
		ScheduleToCloseTimeout: 10 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			NonRetryableErrorTypes: []string{activities.ErrTypeOrderState, activities.ErrTypeInvalidCustomer},
		},
	})
}

// chargeOptions: one provider call. The heartbeat timeout notices a dead worker within seconds;
// retries reuse the idempotency key and look the payment up first; declines are final.
func chargeOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		HeartbeatTimeout:       5 * time.Second,
		ScheduleToCloseTimeout: time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: activities.PaymentRefusals,
		},
	})
}

// refundOptions: returning money must eventually happen, so it retries for a day.
func refundOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		HeartbeatTimeout:       5 * time.Second,
		ScheduleToCloseTimeout: 24 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeRefundRejected, activities.ErrTypeUnknownProvider},
		},
	})
}

// dbOptions: short, idempotent database steps of the subscription workflows. They keep retrying
// through a database outage, because the billing they record must not be lost.
func dbOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    5 * time.Second,
		ScheduleToCloseTimeout: 24 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: []string{
				activities.ErrTypeOrderState, activities.ErrTypeSubscriptionState, activities.ErrTypePeriodMoved,
			},
		},
	})
}

// renewalChargeOptions: an off-session charge. Nobody waits for it, so a technical failure is
// retried for three days under the same key before ops are asked to look; declines are final
// for the attempt and handled by dunning.
func renewalChargeOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		HeartbeatTimeout:       5 * time.Second,
		ScheduleToCloseTimeout: 72 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute,
			NonRetryableErrorTypes: append(slices.Clone(activities.PaymentRefusals), activities.ErrTypeOrderState, activities.ErrTypeSubscriptionState),
		},
	})
}

// emailOptions: one email. The activity itself guarantees at most one send per event, so it
// may retry freely; after an hour the email is given up and the run goes on.
func emailOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeInvalidEmail, activities.ErrTypeMailerNotConfigured},
		},
	})
}

// signInLinkOptions: a sign-in link email, which the customer is waiting for. It may retry
// (at most one email per request), but a link that arrives after it expired is no use.
func signInLinkOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 10 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeInvalidEmail, activities.ErrTypeMailerNotConfigured},
		},
	})
}

// sweepOptions: one page of a sweep (a query, or a batch of workflow starts). Retried until it
// works: both are idempotent.
func sweepOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    2 * time.Minute,
		HeartbeatTimeout:       30 * time.Second,
		ScheduleToCloseTimeout: time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
		},
	})
}

// authenticationOptions: one look at a payment waiting for authentication. A failure is not
// retried for long: the next prompt, or the timer, looks again.
func authenticationOptions(ctx workflow.Context) workflow.Context {
	return paymentCheckOptions(ctx, 2*time.Minute, 30*time.Second)
}

// expireOptions: canceling a payment whose authentication timed out must happen, so that no
// late authentication can charge the customer for an expired order: it retries for a day.
func expireOptions(ctx workflow.Context) workflow.Context {
	return paymentCheckOptions(ctx, 24*time.Hour, 5*time.Minute)
}

// paymentCheckOptions: one provider call about an existing payment, retried for up to within,
// backing off to maxInterval; refusals are final.
func paymentCheckOptions(ctx workflow.Context, within, maxInterval time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: within,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: maxInterval,
			NonRetryableErrorTypes: activities.PaymentRefusals,
		},
	})
}

// providerEventOptions: storing a webhook event and applying it to its order, idempotent by the
// provider's event id; retried for a day, because the provider has already been answered.
func providerEventOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 24 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute,
		},
	})
}

// cleanupBatchOptions: one short statement per batch, so a batch that takes a minute is stuck
// (a lock wait, a dead connection) and is better retried. The retries stop after half an hour:
// the cleanup can wait for the next night, and must not still be running then.
func cleanupBatchOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: 30 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeInvalidCleanupBatch},
		},
	})
}

// summaryComputeOptions: a few aggregate queries over one day and an upsert. Both are
// idempotent, so they retry through a database outage for an hour; a malformed day is final.
func summaryComputeOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    2 * time.Minute,
		ScheduleToCloseTimeout: time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeInvalidDay},
		},
	})
}

// summaryEmailOptions: one SMTP session, bounded by the mailer's own timeout. SendEmail sends
// at most once per event key, so retrying is safe; after six hours the run fails and ops can
// see the summary was not mailed.
func summaryEmailOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: 6 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeInvalidEmail, activities.ErrTypeMailerNotConfigured},
		},
	})
}

// reconcileSetupOptions: reading the worker's configuration, which cannot fail but for a bug.
func reconcileSetupOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 5 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: time.Second, MaximumAttempts: 3,
		},
	})
}

// reconcileOptions: listing one provider's payments of the window, which pages through the
// provider's API, and checking them against the ledger in batches. It heartbeats while it
// pages, so a dead worker is noticed within a minute however long the window; a provider
// that cannot be listed for half an hour is left to the next hourly run. Listing and checking
// are idempotent, so a retry starts over.
func reconcileOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    10 * time.Minute,
		HeartbeatTimeout:       time.Minute,
		ScheduleToCloseTimeout: 30 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeUnknownProvider},
		},
	})
}

// reconcileRefundOptions: one orphan payment's refund during a reconciliation. It retries for
// ten minutes only: the orphan stays recorded as refunding, and the next hourly run refunds it
// under the same key, so a provider outage does not keep this run (and, under SKIP, the next
// ones) waiting.
func reconcileRefundOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		HeartbeatTimeout:       5 * time.Second,
		ScheduleToCloseTimeout: 10 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeUnknownProvider},
		},
	})
}
