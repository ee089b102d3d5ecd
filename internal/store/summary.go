package store

import (
	"context"
	"fmt"
	"time"

	"github.com/cartflow/cartflow/internal/store/db"
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
	span := db.DailyCountsParams{DayStart: f.Day, DayEnd: f.Day.Add(24 * time.Hour)}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		c, err := q.DailyCounts(ctx, span)
		if err != nil {
			return fmt.Errorf("count daily figures: %w", err)
		}
		f.NewOrders, f.NewSubscriptions, f.RenewalsSucceeded = int(c.NewOrders), int(c.NewSubscriptions), int(c.RenewalsSucceeded)
		f.RenewalsFailed, f.Cancellations, f.InDunning = int(c.RenewalsFailed), int(c.Cancellations), int(c.InDunning)
		revenue, err := q.DailyRevenue(ctx, db.DailyRevenueParams(span))
		if err != nil {
			return fmt.Errorf("sum daily revenue: %w", err)
		}
		f.Revenue = convert(revenue, func(r db.DailyRevenueRow) CurrencyAmount {
			return CurrencyAmount{Currency: r.Currency, Amount: r.Amount}
		})
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
	revenue := db.InsertDailyRevenueParams{Day: day, Currencies: make([]string, len(f.Revenue)), Amounts: make([]int64, len(f.Revenue))}
	for i, r := range f.Revenue {
		revenue.Currencies[i], revenue.Amounts[i] = r.Currency, r.Amount
	}
	return s.inTx(ctx, func(q *db.Queries) error {
		if err := q.UpsertDailySummary(ctx, db.UpsertDailySummaryParams{
			Day: day, NewOrders: int32(f.NewOrders), NewSubscriptions: int32(f.NewSubscriptions),
			RenewalsSucceeded: int32(f.RenewalsSucceeded), RenewalsFailed: int32(f.RenewalsFailed),
			Cancellations: int32(f.Cancellations), InDunning: int32(f.InDunning),
		}); err != nil {
			return fmt.Errorf("save daily summary %s: %w", day.Format(time.DateOnly), err)
		}
		if err := q.DeleteDailyRevenue(ctx, day); err != nil {
			return fmt.Errorf("replace daily revenue %s: %w", day.Format(time.DateOnly), err)
		}
		if err := q.InsertDailyRevenue(ctx, revenue); err != nil {
			return fmt.Errorf("save daily revenue %s: %w", day.Format(time.DateOnly), err)
		}
		return nil
	})
}
