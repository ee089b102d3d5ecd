package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// Cleanup tasks, in the order the Cleanup workflow runs them.
const (
	CleanupExpireCheckouts        = "expire_checkouts"
	CleanupDeleteUnconfirmedUsers = "delete_unconfirmed_users"
	CleanupPruneEmailRecords      = "prune_email_records"
	CleanupPruneWebhookEvents     = "prune_webhook_events"
	CleanupPruneIdempotencyKeys   = "prune_idempotency_keys"
	// CleanupPruneRateLimits deletes rate-limit counters whose window is over and the payment
	// declines and sources older than the cutoff: hashed IPs and emails kept no longer than needed.
	CleanupPruneRateLimits = "prune_rate_limits"
	// CleanupPruneSessions deletes the customer sessions and sign-in links that ended a day ago.
	CleanupPruneSessions = "prune_sessions"
)

// ErrTypeInvalidCleanupBatch is a CleanupBatch asked for a task it does not know, or for a batch
// of no rows; retrying the same input cannot help.
const ErrTypeInvalidCleanupBatch = "InvalidCleanupBatch"

// CleanupBatchInput is one bounded batch of one cleanup task.
type CleanupBatchInput struct {
	// Task is one of the Cleanup* task names.
	Task string `json:"task"`
	// OlderThan is the cutoff: only rows from before it are touched.
	OlderThan time.Time `json:"older_than"`
	// Limit is the most rows the batch changes.
	Limit int `json:"limit"`
}

// CleanupBatch runs one batch of a cleanup task and returns how many rows it expired or deleted.
// A batch is one short statement, so a retry after a failure simply takes the next batch.
func (a *Activities) CleanupBatch(ctx context.Context, in CleanupBatchInput) (int, error) {
	if in.Limit <= 0 {
		return 0, final(fmt.Sprintf("cleanup batch limit %d is not positive", in.Limit), ErrTypeInvalidCleanupBatch, nil,
			domain.Failure{Code: "invalid_cleanup_batch", Message: "the cleanup batch limit must be positive"})
	}
	var run func(*store.Store, context.Context, time.Time, int) (int, error)
	switch in.Task {
	case CleanupExpireCheckouts:
		run = (*store.Store).ExpireAbandonedCheckouts
	case CleanupDeleteUnconfirmedUsers:
		run = (*store.Store).DeleteUnconfirmedUsers
	case CleanupPruneEmailRecords:
		run = (*store.Store).PruneEmailRecords
	case CleanupPruneWebhookEvents:
		run = (*store.Store).PruneProviderEvents
	case CleanupPruneIdempotencyKeys:
		run = (*store.Store).PruneIdempotencyKeys
	case CleanupPruneRateLimits:
		run = (*store.Store).PruneRateLimits
	case CleanupPruneSessions:
		run = (*store.Store).PruneSessions
	default:
		return 0, final(fmt.Sprintf("unknown cleanup task %q", in.Task), ErrTypeInvalidCleanupBatch, nil,
			domain.Failure{Code: "unknown_cleanup_task", Message: "the cleanup task is not known"})
	}
	n, err := run(a.Store, ctx, in.OlderThan, in.Limit)
	if err != nil {
		return 0, err
	}
	a.logger(ctx).InfoContext(ctx, "cleanup batch", "task", in.Task, "older_than", in.OlderThan, "limit", in.Limit, "count", n)
	return n, nil
}
