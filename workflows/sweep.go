package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/cartflow/cartflow/activities"
)

// Defaults for a sweep started with zero settings.
const (
	defaultSweepBatchSize      = 500
	defaultSweepPagesPerRun    = 100
	defaultTrialReminderBefore = 3 * 24 * time.Hour
)

// RenewalSweep is the job the renewal Schedule starts. It pages through the subscriptions whose
// period ended by AsOf, in the order of their index, and starts one Renewal workflow per
// subscription and period, on TaskQueue whatever queue the sweep runs on (the schedule runs it on
// JobsTaskQueue). A Renewal's ID names the subscription and the period, and Temporal
// refuses an ID used before, so sweeps that overlap or run again start nothing twice. Then it
// sends the trial-ending reminders that are due. After MaxPagesPerRun pages it continues as new
// with its cursor, so that any number of due subscriptions fits in bounded histories.
func RenewalSweep(ctx workflow.Context, in RenewalSweepInput) (SweepProgress, error) {
	if in.AsOf.IsZero() {
		in.AsOf = workflow.Now(ctx)
	}
	if in.BatchSize <= 0 {
		in.BatchSize = defaultSweepBatchSize
	}
	if in.MaxPagesPerRun <= 0 {
		in.MaxPagesPerRun = defaultSweepPagesPerRun
	}
	if in.TrialReminderBefore <= 0 {
		in.TrialReminderBefore = defaultTrialReminderBefore
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (SweepProgress, error) { return in.Progress, nil }); err != nil {
		return in.Progress, err
	}
	ctx = sweepOptions(ctx)

	for page := 0; page < in.MaxPagesPerRun; page++ {
		req := activities.DuePage{AsOf: in.AsOf, Limit: in.BatchSize}
		if in.Cursor != nil {
			req.AfterEnd, req.AfterID = in.Cursor.PeriodEnd, in.Cursor.SubscriptionID
		}
		var due []activities.DueSubscription
		if err := workflow.ExecuteActivity(ctx, a.DueSubscriptions, req).Get(ctx, &due); err != nil {
			return in.Progress, err
		}
		if len(due) > 0 {
			starts := make([]activities.WorkflowStart, len(due))
			for i, d := range due {
				starts[i] = activities.WorkflowStart{
					ID:  RenewalWorkflowID(d.ID, d.PeriodEnd),
					Arg: RenewalInput{SubscriptionID: d.ID, PeriodEnd: d.PeriodEnd, Dunning: in.Dunning},
				}
			}
			var res activities.StartWorkflowsResult
			if err := workflow.ExecuteActivity(ctx, a.StartWorkflows, activities.StartWorkflowsInput{
				WorkflowType: RenewalWorkflowType, TaskQueue: TaskQueue, Starts: starts,
			}).Get(ctx, &res); err != nil {
				return in.Progress, err
			}
			last := due[len(due)-1]
			in.Cursor = &SweepCursor{PeriodEnd: last.PeriodEnd, SubscriptionID: last.ID}
			in.Progress.Due += len(due)
			in.Progress.Started += res.Started
			in.Progress.AlreadyStarted += res.AlreadyStarted
		}
		if len(due) < in.BatchSize {
			return sendTrialReminders(ctx, in)
		}
	}
	in.Progress.ContinuedAsNew++
	return in.Progress, workflow.NewContinueAsNewError(ctx, RenewalSweepWorkflowType, in)
}

// sendTrialReminders sends, page by page, the reminders of trials that end within TrialReminderBefore.
func sendTrialReminders(ctx workflow.Context, in RenewalSweepInput) (SweepProgress, error) {
	for {
		var sent int
		if err := workflow.ExecuteActivity(ctx, a.SendTrialReminders, activities.TrialReminderBatch{
			AsOf: in.AsOf, Before: in.TrialReminderBefore, Limit: in.BatchSize,
		}).Get(ctx, &sent); err != nil {
			return in.Progress, err
		}
		in.Progress.RemindersSent += sent
		if sent < in.BatchSize {
			workflow.GetLogger(ctx).Info("renewal sweep done", "due", in.Progress.Due, "started", in.Progress.Started,
				"already_started", in.Progress.AlreadyStarted, "reminders", in.Progress.RemindersSent)
			return in.Progress, nil
		}
	}
}
