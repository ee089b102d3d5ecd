package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/mailer"
)

// ErrTypeInvalidDay is a day that is not a YYYY-MM-DD date; retrying cannot fix it.
const ErrTypeInvalidDay = "InvalidDay"

// ComputeDailySummary computes the figures of one UTC day (YYYY-MM-DD), stores them in
// daily_summaries and daily_revenue for BI tools, and returns them ready for the summary email.
// Running it again for the same day recomputes and overwrites that day.
func (a *Activities) ComputeDailySummary(ctx context.Context, day string) (mailer.DailySummary, error) {
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		msg := fmt.Sprintf("the day %q is not a YYYY-MM-DD date", day)
		return mailer.DailySummary{}, final(msg, ErrTypeInvalidDay, err, domain.Failure{Code: "invalid_day", Message: msg})
	}
	f, err := a.Store.ComputeDailyFigures(ctx, d)
	if err != nil {
		return mailer.DailySummary{}, err
	}
	if err := a.Store.SaveDailyFigures(ctx, f); err != nil {
		return mailer.DailySummary{}, err
	}
	s := mailer.DailySummary{
		Day: f.Day.Format(time.DateOnly), NewOrders: f.NewOrders, NewSubscriptions: f.NewSubscriptions,
		RenewalsSucceeded: f.RenewalsSucceeded, RenewalsFailed: f.RenewalsFailed, Cancellations: f.Cancellations,
		InDunning: f.InDunning, Revenue: make([]mailer.Money, len(f.Revenue)),
	}
	for i, r := range f.Revenue {
		s.Revenue[i] = mailer.Money{Currency: r.Currency, Amount: r.Amount}
	}
	a.logger(ctx).InfoContext(ctx, "daily summary computed", "day", s.Day, "new_orders", s.NewOrders, "currencies", len(s.Revenue))
	return s, nil
}
