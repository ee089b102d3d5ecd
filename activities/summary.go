package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
)

// ErrTypeInvalidDay is a day that is not a YYYY-MM-DD date; retrying cannot fix it.
const ErrTypeInvalidDay = "InvalidDay"

// ComputeDailySummary computes the figures of one UTC day (YYYY-MM-DD), stores them in
// daily_summaries and daily_revenue for BI tools, and returns them ready for the summary email.
// Running it again for the same day recomputes and overwrites that day.
func (a *Activities) ComputeDailySummary(ctx context.Context, day string) (DailySummaryEmail, error) {
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		msg := fmt.Sprintf("the day %q is not a YYYY-MM-DD date", day)
		return DailySummaryEmail{}, final(msg, ErrTypeInvalidDay, err, domain.Failure{Code: "invalid_day", Message: msg})
	}
	f, err := a.Store.ComputeDailyFigures(ctx, d)
	if err != nil {
		return DailySummaryEmail{}, err
	}
	if err := a.Store.SaveDailyFigures(ctx, f); err != nil {
		return DailySummaryEmail{}, err
	}
	s := DailySummaryEmail{
		Day: f.Day.Format(time.DateOnly), NewOrders: f.NewOrders, NewSubscriptions: f.NewSubscriptions,
		RenewalsSucceeded: f.RenewalsSucceeded, RenewalsFailed: f.RenewalsFailed, Cancellations: f.Cancellations,
		InDunning: f.InDunning, Revenue: make([]Revenue, len(f.Revenue)),
	}
	for i, r := range f.Revenue {
		s.Revenue[i] = Revenue{Currency: r.Currency, Amount: r.Amount}
	}
	a.logger(ctx).InfoContext(ctx, "daily summary computed", "day", s.Day, "new_orders", s.NewOrders, "currencies", len(s.Revenue))
	return s, nil
}
