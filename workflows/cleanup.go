package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cartflow/cartflow/activities"
)

// QueryCleanupProgress is the query a Cleanup run answers with its running CleanupCounts,
// the progress carried from earlier runs of the chain included.
const QueryCleanupProgress = "progress"

// Cleanup's defaults for the input's zero values.
const (
	DefaultCleanupBatchSize        = 500
	DefaultCleanupMaxBatchesPerRun = 200
)

// ErrTypeInvalidCleanupInput is a Cleanup input no run can act on.
const ErrTypeInvalidCleanupInput = "InvalidCleanupInput"

// cleanupOrder is the order the tasks run in. Checkouts expire before users are considered, so
// that a pending user's abandoned checkout no longer counts as in flight.
func cleanupOrder() []string {
	return []string{
		activities.CleanupExpireCheckouts,
		activities.CleanupDeleteUnconfirmedUsers,
		activities.CleanupPruneEmailRecords,
		activities.CleanupPruneWebhookEvents,
		activities.CleanupPruneIdempotencyKeys,
		activities.CleanupPruneRateLimits,
		activities.CleanupPruneSessions,
	}
}

// cleanupIdempotencyKeysChange is the change that added the Idempotency-Keys task: runs that
// began before it replay without the task.
const cleanupIdempotencyKeysChange = "cleanup-prune-idempotency-keys"

// cleanupRateLimitsChange is the change that added the rate-limits and the sessions tasks
// (shipped together): runs that began before it replay without them.
const cleanupRateLimitsChange = "cleanup-prune-rate-limits"

// Cleanup expires abandoned checkouts, deletes users never confirmed, and prunes old email
// (idempotency) records, webhook events and the BFF's Idempotency-Keys, each task in bounded batches until a batch comes
// back short. After MaxBatchesPerRun batches it continues as new, carrying its progress, its
// position and AsOf, so that one history stays small however much there is to clean. A task
// whose age is zero is skipped: a zero cutoff age would reach rows that are still live.
func Cleanup(ctx workflow.Context, in CleanupInput) (CleanupCounts, error) {
	c := &cleanup{in: in, counts: in.Progress}
	if err := c.setup(ctx); err != nil {
		return c.counts, err
	}
	return c.run(ctx)
}

type cleanup struct {
	in     CleanupInput
	counts CleanupCounts
}

func (c *cleanup) setup(ctx workflow.Context) error {
	if c.in.AsOf.IsZero() {
		// Fixed once for the whole chain, so that rows that age past the cutoff while the
		// cleanup runs wait for the next night instead of stretching this one.
		c.in.AsOf = workflow.Now(ctx).UTC()
	}
	if c.in.BatchSize <= 0 {
		c.in.BatchSize = DefaultCleanupBatchSize
	}
	if c.in.MaxBatchesPerRun <= 0 {
		c.in.MaxBatchesPerRun = DefaultCleanupMaxBatchesPerRun
	}
	return workflow.SetQueryHandler(ctx, QueryCleanupProgress, func() (CleanupCounts, error) { return c.counts, nil })
}

func (c *cleanup) run(ctx workflow.Context) (CleanupCounts, error) {
	log := workflow.GetLogger(ctx)
	tasks := cleanupOrder()
	if workflow.GetVersion(ctx, cleanupIdempotencyKeysChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		tasks = slices.DeleteFunc(tasks, func(task string) bool { return task == activities.CleanupPruneIdempotencyKeys })
	}
	if workflow.GetVersion(ctx, cleanupRateLimitsChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		tasks = slices.DeleteFunc(tasks, func(task string) bool {
			return task == activities.CleanupPruneRateLimits || task == activities.CleanupPruneSessions
		})
	}
	start := 0
	if c.in.ResumeTask != "" {
		if start = slices.Index(tasks, c.in.ResumeTask); start < 0 {
			return c.counts, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("unknown cleanup task %q to resume", c.in.ResumeTask), ErrTypeInvalidCleanupInput, nil)
		}
	}

	ctx = cleanupBatchOptions(ctx)
	batches := 0 // in this run; c.counts.Batches counts the whole chain
	for _, task := range tasks[start:] {
		age := c.age(task)
		if age <= 0 {
			log.Warn("cleanup task skipped: no age configured", "task", task)
			continue
		}
		olderThan := c.in.AsOf.Add(-age)
		for {
			if batches == c.in.MaxBatchesPerRun {
				next := c.in
				next.ResumeTask = task
				next.Progress = c.counts
				next.Progress.ContinuedAsNew++
				log.Info("cleanup continues as new", "task", task, "as_of", c.in.AsOf, "progress", next.Progress)
				return c.counts, workflow.NewContinueAsNewError(ctx, CleanupWorkflowType, next)
			}
			var n int
			err := workflow.ExecuteActivity(ctx, a.CleanupBatch, activities.CleanupBatchInput{
				Task: task, OlderThan: olderThan, Limit: c.in.BatchSize,
			}).Get(ctx, &n)
			if err != nil {
				return c.counts, err
			}
			batches++
			c.add(task, n)
			// A short batch means the task is done, or that the rest is locked by live traffic
			// and is better left for the next night than waited for.
			if n < c.in.BatchSize {
				break
			}
		}
	}
	log.Info("cleanup finished", "as_of", c.in.AsOf,
		"expired_checkouts", c.counts.ExpiredCheckouts, "deleted_users", c.counts.DeletedUsers,
		"pruned_email_records", c.counts.PrunedEmailRecords, "pruned_webhook_events", c.counts.PrunedWebhookEvents,
		"pruned_idempotency_keys", c.counts.PrunedIdempotencyKeys, "pruned_rate_limits", c.counts.PrunedRateLimits,
		"pruned_sessions", c.counts.PrunedSessions,
		"batches", c.counts.Batches, "continued_as_new", c.counts.ContinuedAsNew)
	return c.counts, nil
}

// age is how old a task's rows must be before it touches them.
func (c *cleanup) age(task string) time.Duration {
	switch task {
	case activities.CleanupExpireCheckouts:
		return c.in.AbandonedCheckoutAge
	case activities.CleanupDeleteUnconfirmedUsers:
		return c.in.UnconfirmedUserAge
	default: // email records, webhook events, Idempotency-Keys and declines share the record retention
		return c.in.RecordRetention
	}
}

// add counts one batch of task that changed n rows.
func (c *cleanup) add(task string, n int) {
	c.counts.Batches++
	switch task {
	case activities.CleanupExpireCheckouts:
		c.counts.ExpiredCheckouts += n
	case activities.CleanupDeleteUnconfirmedUsers:
		c.counts.DeletedUsers += n
	case activities.CleanupPruneEmailRecords:
		c.counts.PrunedEmailRecords += n
	case activities.CleanupPruneWebhookEvents:
		c.counts.PrunedWebhookEvents += n
	case activities.CleanupPruneIdempotencyKeys:
		c.counts.PrunedIdempotencyKeys += n
	case activities.CleanupPruneRateLimits:
		c.counts.PrunedRateLimits += n
	case activities.CleanupPruneSessions:
		c.counts.PrunedSessions += n
	}
}
