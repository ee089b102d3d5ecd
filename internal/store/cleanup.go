package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store/db"
)

// The cleanup's writes (queries/cleanup.sql). Each call changes at most limit rows in one short
// statement: the rows are picked oldest first with FOR UPDATE SKIP LOCKED, so a batch never
// waits on a row that live traffic holds (that row is simply left for a later batch or a later
// night), and the statement never holds many locks for long. Each is idempotent: a row it
// changed no longer matches.
//
// The batch is picked in a MATERIALIZED CTE rather than in `WHERE id IN (SELECT … LIMIT n)`:
// PostgreSQL may plan the IN as a nested-loop semi-join that runs the LIMIT subquery again for
// every outer row, and since each run skips the rows this statement already changed, one
// "batch" then changes every matching row. A CTE is run exactly once.

// ExpiredCheckoutFailure is what an expired checkout tells the customer.
var ExpiredCheckoutFailure = domain.Failure{
	Code:    "checkout_expired",
	Message: "this checkout expired before it was paid; nothing was charged, please start a new one",
}

var errBadLimit = errors.New("cleanup batch limit must be positive")

// batch runs one cleanup query, whose params allow it at most limit rows, and returns how many
// rows it changed; what names the batch in errors.
func batch[P any](ctx context.Context, limit int, what string, run func(context.Context, P) (int64, error), params P) (int, error) {
	if limit <= 0 {
		return 0, errBadLimit
	}
	n, err := run(ctx, params)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return int(n), nil
}

// ExpireAbandonedCheckouts moves up to limit checkout orders that are still pending, were created
// before olderThan and were never charged to expired, oldest first, and returns how many it moved.
func (s *Store) ExpireAbandonedCheckouts(ctx context.Context, olderThan time.Time, limit int) (int, error) {
	return batch(ctx, limit, "expire abandoned checkouts", s.q.ExpireAbandonedCheckouts, db.ExpireAbandonedCheckoutsParams{
		OlderThan: olderThan, MaxRows: int64(limit),
		FailureCode: ExpiredCheckoutFailure.Code, FailureMessage: ExpiredCheckoutFailure.Message,
	})
}

// DeleteUnconfirmedUsers deletes up to limit users still pending confirmation that were created
// before olderThan and that no order or subscription references, oldest first, and returns how
// many it deleted.
func (s *Store) DeleteUnconfirmedUsers(ctx context.Context, olderThan time.Time, limit int) (int, error) {
	return batch(ctx, limit, "delete unconfirmed users", s.q.DeleteUnconfirmedUsers,
		db.DeleteUnconfirmedUsersParams{OlderThan: olderThan, MaxRows: int64(limit)})
}

// PruneEmailRecords deletes up to limit emails rows created before olderThan whose sending is
// over (sent or failed), oldest first, and returns how many it deleted. These rows are the
// idempotency records of sent emails; pending and sending ones are kept, because an attempt may
// still act on them.
func (s *Store) PruneEmailRecords(ctx context.Context, olderThan time.Time, limit int) (int, error) {
	return batch(ctx, limit, "prune email records", s.q.PruneEmailRecords,
		db.PruneEmailRecordsParams{OlderThan: olderThan, MaxRows: int64(limit)})
}

// PruneProviderEvents deletes up to limit provider (webhook) events received before olderThan,
// oldest first, and returns how many it deleted.
func (s *Store) PruneProviderEvents(ctx context.Context, olderThan time.Time, limit int) (int, error) {
	return batch(ctx, limit, "prune provider events", s.q.PruneProviderEvents,
		db.PruneProviderEventsParams{OlderThan: olderThan, MaxRows: int64(limit)})
}
