package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/cartflow/cartflow/activities"
)

// DailySummaryResult is what one daily summary run computed and whether it mailed it.
type DailySummaryResult struct {
	// Day is the UTC day summarized, as YYYY-MM-DD.
	Day     string                       `json:"day"`
	Figures activities.DailySummaryEmail `json:"figures"`
	// Email is the summary email's outcome; nil when no ops address was given.
	Email *activities.EmailResult `json:"email,omitempty"`
}

// DailySummary computes one UTC day's figures, stores them for BI tools, and mails them to the
// ops address. A Schedule starts it every morning (SUMMARY_CRON, UTC) with an empty Day, which
// means the day before the run started. Running it again for a day recomputes the stored figures,
// and the email, keyed by day and address, still goes out only once.
func DailySummary(ctx workflow.Context, in DailySummaryInput) (DailySummaryResult, error) {
	day := in.Day
	if day == "" {
		// workflow.Now is the run's start time, the same on every replay.
		day = workflow.Now(ctx).UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	}
	res := DailySummaryResult{Day: day}
	if err := workflow.ExecuteActivity(summaryComputeOptions(ctx), a.ComputeDailySummary, day).Get(ctx, &res.Figures); err != nil {
		return res, err
	}
	if in.OpsEmail == "" {
		workflow.GetLogger(ctx).Info("daily summary computed; no ops address to mail it to", "day", day)
		return res, nil
	}
	var email activities.EmailResult
	if err := workflow.ExecuteActivity(summaryEmailOptions(ctx), a.SendEmail, activities.EmailInput{
		EventKey: "daily-summary/" + day + "/" + in.OpsEmail, To: in.OpsEmail, DailySummary: &res.Figures,
	}).Get(ctx, &email); err != nil {
		// The figures are stored; failing the run shows ops, in the Schedule's recent runs, that
		// the email did not arrive.
		return res, err
	}
	res.Email = &email
	return res, nil
}
