package store

import (
	"context"
	"errors"
	"fmt"
	"github.com/cartflow/cartflow/internal/domain"
	"time"
)

// The cleanup's writes. Each call changes at most limit rows in one short statement: the rows
// are picked oldest first with FOR UPDATE SKIP LOCKED, so a batch never waits on a row that live
// traffic holds (that row is simply left for a later batch or a later night), and the statement
// never holds many locks for long. Each is idempotent: a row it changed no longer matches.
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

// ExpireAbandonedCheckouts moves up to limit checkout orders that are still pending, were created
// before olderThan and were never charged to expired, oldest first, and returns how many it moved.
func (s *Store) ExpireAbandonedCheckouts(ctx context.Context, olderThan time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, errBadLimit
	}
	// The payments check keeps the cutoff from ever racing a charge: a charge attempt moves the
	// order to charging in the transaction that writes its ledger row, so a pending order with a
	// ledger row would be a bug elsewhere, and leaving it alone is the safe side.
	tag, err := s.pool.Exec(ctx, `
		WITH batch AS MATERIALIZED (
			SELECT o.id FROM orders o
			WHERE o.status = 'pending' AND o.kind = 'checkout' AND o.created_at < $1
				AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id)
			ORDER BY o.created_at
			LIMIT $2
			FOR UPDATE SKIP LOCKED)
		UPDATE orders SET status = $3, failure_code = $4, failure_message = $5, updated_at = now()
		WHERE id IN (SELECT id FROM batch) AND status = ANY($6)`,
		olderThan, limit, domain.OrderExpired, ExpiredCheckoutFailure.Code, ExpiredCheckoutFailure.Message, allowedFrom[domain.OrderExpired])
	if err != nil {
		return 0, fmt.Errorf("expire abandoned checkouts: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// DeleteUnconfirmedUsers deletes up to limit users still pending confirmation that were created
// before olderThan and that no order or subscription references, oldest first, and returns how
// many it deleted.
func (s *Store) DeleteUnconfirmedUsers(ctx context.Context, olderThan time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, errBadLimit
	}
	// A returning customer's checkout registers the same pending user again only after its charge,
	// and links the order to the user only at the end; until then the order names the user by
	// email alone. Users with such a checkout still in flight are kept so that one is never
	// deleted between its registration and its confirmation.
	tag, err := s.pool.Exec(ctx, `
		WITH batch AS MATERIALIZED (
			SELECT u.id FROM users u
			WHERE u.status = 'pending' AND u.created_at < $1
				AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id)
				AND NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = u.id)
				AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_email = u.email
					AND o.status IN ('pending', 'charging', 'paid'))
			ORDER BY u.created_at
			LIMIT $2
			FOR UPDATE SKIP LOCKED)
		DELETE FROM users WHERE id IN (SELECT id FROM batch) AND status = 'pending'`,
		olderThan, limit)
	if err != nil {
		return 0, fmt.Errorf("delete unconfirmed users: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// PruneEmailRecords deletes up to limit emails rows created before olderThan whose sending is
// over (sent or failed), oldest first, and returns how many it deleted. These rows are the
// idempotency records of sent emails; pending and sending ones are kept, because an attempt may
// still act on them.
func (s *Store) PruneEmailRecords(ctx context.Context, olderThan time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, errBadLimit
	}
	tag, err := s.pool.Exec(ctx, `
		WITH batch AS MATERIALIZED (
			SELECT id FROM emails
			WHERE created_at < $1 AND status IN ('sent', 'failed')
			ORDER BY created_at
			LIMIT $2
			FOR UPDATE SKIP LOCKED)
		DELETE FROM emails WHERE id IN (SELECT id FROM batch)`,
		olderThan, limit)
	if err != nil {
		return 0, fmt.Errorf("prune email records: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// PruneProviderEvents deletes up to limit provider (webhook) events received before olderThan,
// oldest first, and returns how many it deleted.
func (s *Store) PruneProviderEvents(ctx context.Context, olderThan time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, errBadLimit
	}
	tag, err := s.pool.Exec(ctx, `
		WITH batch AS MATERIALIZED (
			SELECT provider, event_id FROM provider_events
			WHERE received_at < $1
			ORDER BY received_at
			LIMIT $2
			FOR UPDATE SKIP LOCKED)
		DELETE FROM provider_events WHERE (provider, event_id) IN (SELECT provider, event_id FROM batch)`,
		olderThan, limit)
	if err != nil {
		return 0, fmt.Errorf("prune provider events: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
