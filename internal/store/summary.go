package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// CurrencyAmount is an amount of minor units of a lowercase ISO 4217 currency.
type CurrencyAmount struct {
	Currency string
	Amount   int64
}

// DailyFigures are one UTC day's business figures, as the daily summary reports them and the
// daily_summaries and daily_revenue tables keep them for BI tools.
type DailyFigures struct {
	// Day is the UTC day, as midnight UTC.
	Day time.Time
	// NewOrders counts checkouts created that day that are completed. A checkout that was paid
	// and then refunded is not counted: the sale did not stand, and its refund already comes
	// off the revenue.
	NewOrders int
	// NewSubscriptions counts subscriptions whose first state (no previous status) was entered that day.
	NewSubscriptions int
	// RenewalsSucceeded counts renewal orders completed that day.
	RenewalsSucceeded int
	// RenewalsFailed counts failed renewal charge attempts settled that day; each declined
	// dunning attempt is one.
	RenewalsFailed int
	// Cancellations counts subscriptions that moved to canceled that day.
	Cancellations int
	// InDunning counts subscriptions past due when the figures were computed: a snapshot, since
	// the tables keep no history of how many were past due at the end of an earlier day.
	InDunning int
	// Revenue is, per currency, succeeded charges less succeeded refunds settled that day,
	// ordered by currency. A currency with no movement is absent.
	Revenue []CurrencyAmount
}

// utcDay returns midnight UTC at the start of t's UTC day.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// ComputeDailyFigures computes the figures of the UTC day that contains day, [midnight,
// midnight+24h). Every figure is read from one snapshot of the database, so they agree with
// each other even while orders keep arriving.
func (s *Store) ComputeDailyFigures(ctx context.Context, day time.Time) (DailyFigures, error) {
	f := DailyFigures{Day: utcDay(day)}
	start, end := f.Day, f.Day.Add(24*time.Hour)
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			SELECT
				(SELECT count(*) FROM orders
					WHERE kind = 'checkout' AND status = 'completed' AND created_at >= $1 AND created_at < $2),
				-- DISTINCT so that an event recorded twice cannot count a subscription twice.
				(SELECT count(DISTINCT subscription_id) FROM subscription_events
					WHERE from_status IS NULL AND at >= $1 AND at < $2),
				(SELECT count(*) FROM orders
					WHERE kind = 'renewal' AND status = 'completed' AND completed_at >= $1 AND completed_at < $2),
				(SELECT count(*) FROM payments p JOIN orders o ON o.id = p.order_id
					WHERE o.kind = 'renewal' AND p.kind = 'charge' AND p.status = 'failed' AND p.updated_at >= $1 AND p.updated_at < $2),
				(SELECT count(DISTINCT subscription_id) FROM subscription_events
					WHERE to_status = 'canceled' AND at >= $1 AND at < $2),
				(SELECT count(*) FROM subscriptions WHERE status = 'past_due')`, start, end).
			Scan(&f.NewOrders, &f.NewSubscriptions, &f.RenewalsSucceeded, &f.RenewalsFailed, &f.Cancellations, &f.InDunning)
		if err != nil {
			return fmt.Errorf("count daily figures: %w", err)
		}
		rows, err := tx.Query(ctx, `
			SELECT currency, sum(CASE WHEN kind = 'charge' THEN amount ELSE -amount END)::bigint
			FROM payments
			WHERE status = 'succeeded' AND updated_at >= $1 AND updated_at < $2
			GROUP BY currency ORDER BY currency`, start, end)
		if err != nil {
			return fmt.Errorf("sum daily revenue: %w", err)
		}
		f.Revenue, err = pgx.CollectRows(rows, pgx.RowToStructByPos[CurrencyAmount])
		if err != nil {
			return fmt.Errorf("sum daily revenue: %w", err)
		}
		return nil
	})
	if err != nil {
		return DailyFigures{}, err
	}
	return f, nil
}

// SaveDailyFigures stores f as its day's row in daily_summaries and its revenue rows in
// daily_revenue, in one transaction. Saving a day again replaces what was stored for it, so a
// recomputed day never keeps a stale currency.
func (s *Store) SaveDailyFigures(ctx context.Context, f DailyFigures) error {
	day := utcDay(f.Day)
	currencies := make([]string, len(f.Revenue))
	amounts := make([]int64, len(f.Revenue))
	for i, r := range f.Revenue {
		currencies[i], amounts[i] = r.Currency, r.Amount
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO daily_summaries (day, new_orders, new_subscriptions, renewals_succeeded, renewals_failed, cancellations, in_dunning)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (day) DO UPDATE SET
				new_orders = EXCLUDED.new_orders, new_subscriptions = EXCLUDED.new_subscriptions,
				renewals_succeeded = EXCLUDED.renewals_succeeded, renewals_failed = EXCLUDED.renewals_failed,
				cancellations = EXCLUDED.cancellations, in_dunning = EXCLUDED.in_dunning, computed_at = now()`,
			day, f.NewOrders, f.NewSubscriptions, f.RenewalsSucceeded, f.RenewalsFailed, f.Cancellations, f.InDunning); err != nil {
			return fmt.Errorf("save daily summary %s: %w", day.Format(time.DateOnly), err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM daily_revenue WHERE day = $1`, day); err != nil {
			return fmt.Errorf("replace daily revenue %s: %w", day.Format(time.DateOnly), err)
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO daily_revenue (day, currency, amount)
			SELECT $1, currency, amount FROM unnest($2::text[], $3::bigint[]) AS r(currency, amount)`,
			day, currencies, amounts); err != nil {
			return fmt.Errorf("save daily revenue %s: %w", day.Format(time.DateOnly), err)
		}
		return nil
	})
}
