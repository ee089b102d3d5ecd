// Package schedules declares cartflow's Temporal Schedules as code and syncs them with the
// server. The worker syncs them at every start, so the schedules the Temporal UI shows are always
// the ones in this code and the worker's configuration: the renewal sweep, the daily summary,
// the nightly cleanup and the hourly reconciliation of payments. Ops can trigger any of them by hand from the UI, the CLI or Trigger.
package schedules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/cartflow/cartflow/workflows"
)

// Definition is one schedule as code.
type Definition struct {
	// ID names the schedule in the Temporal UI, e.g. workflows.RenewalSweepScheduleID.
	ID string
	// Spec is when the schedule acts.
	Spec client.ScheduleSpec
	// Action is the workflow it starts: type, arguments, task queue, timeouts, and an ID prefix
	// to which Temporal appends the scheduled time.
	Action *client.ScheduleWorkflowAction
	// Overlap is what happens when an action is due while the previous run still runs.
	Overlap enums.ScheduleOverlapPolicy
	// CatchupWindow is how late a missed action (the server was down) may still be taken.
	CatchupWindow time.Duration
	// Paused is the state the worker's configuration asks for; Sync enforces it.
	Paused bool
	// Note is shown in the UI: what the schedule does.
	Note string
}

// What Sync did to a schedule.
const (
	Created = "created"
	Updated = "updated"
)

// Result is what Sync did to one schedule.
type Result struct {
	ID string
	// Action is Created or Updated.
	Action string
	// PauseChanged reports that Sync paused or unpaused the schedule to match its definition.
	PauseChanged bool
}

// Sync creates every schedule that does not exist and updates every one that does, so that
// running it on every worker start is safe, also when several workers start at once. It
// returns what it did per schedule, and goes on with the others when one fails.
//
// An update replaces the spec, the action and the policies. The paused state is the
// configuration's: a schedule whose state differs from its definition is paused or unpaused to
// match, and one that already matches is left alone, so that its note (an operator's reason for
// a pause, say) survives. A pause made by hand therefore lasts until the next worker start that
// is configured otherwise; a pause meant to last belongs in the configuration.
func Sync(ctx context.Context, c client.Client, defs []Definition, log *slog.Logger) ([]Result, error) {
	if log == nil {
		log = slog.Default()
	}
	seen := make(map[string]bool, len(defs))
	var results []Result
	var errs []error
	for _, d := range defs {
		if err := d.validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[d.ID] {
			errs = append(errs, fmt.Errorf("schedule %s is defined twice", d.ID))
			continue
		}
		seen[d.ID] = true
		r, err := syncOne(ctx, c.ScheduleClient(), d)
		if err != nil {
			errs = append(errs, fmt.Errorf("sync schedule %s: %w", d.ID, err))
			continue
		}
		log.Info("schedule synced", "schedule_id", d.ID, "action", r.Action, "paused", d.Paused, "pause_changed", r.PauseChanged)
		results = append(results, r)
	}
	return results, errors.Join(errs...)
}

func (d Definition) validate() error {
	switch {
	case d.ID == "":
		return errors.New("a schedule definition has no ID")
	case d.Action == nil || d.Action.Workflow == nil || d.Action.TaskQueue == "":
		return fmt.Errorf("schedule %s: the action needs a workflow and a task queue", d.ID)
	case len(d.Spec.Intervals) == 0 && len(d.Spec.CronExpressions) == 0 && len(d.Spec.Calendars) == 0:
		return fmt.Errorf("schedule %s: the spec never fires", d.ID)
	}
	return nil
}

func syncOne(ctx context.Context, sc client.ScheduleClient, d Definition) (Result, error) {
	_, err := sc.Create(ctx, client.ScheduleOptions{
		ID:            d.ID,
		Spec:          d.Spec,
		Action:        d.Action,
		Overlap:       d.Overlap,
		CatchupWindow: d.CatchupWindow,
		Paused:        d.Paused,
		Note:          d.Note,
	})
	if err == nil {
		return Result{ID: d.ID, Action: Created}, nil
	}
	// Creating first and updating on a conflict, rather than describing first, also covers two
	// workers starting together: the loser of the create race updates what the winner made.
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return Result{}, fmt.Errorf("create: %w", err)
	}

	h := sc.GetHandle(ctx, d.ID)
	pauseNote := "Paused by the worker's configuration. " + d.Note
	var paused bool
	err = h.Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			state := client.ScheduleState{}
			if in.Description.Schedule.State != nil {
				state = *in.Description.Schedule.State
			}
			paused = state.Paused
			switch {
			case d.Paused && !state.Paused:
				state.Note = pauseNote
			case !d.Paused:
				state.Note = d.Note
			default: // paused and staying paused: the note, whoever wrote it, stays
			}
			// An update replaces the whole state, and the server may apply a Pause or Unpause
			// that reaches the schedule together with it before the update. So the update
			// carries the configured state itself: no order of the two can undo the pause.
			state.Paused = d.Paused
			spec := d.Spec
			return &client.ScheduleUpdate{Schedule: &client.Schedule{
				Action: d.Action,
				Spec:   &spec,
				Policy: &client.SchedulePolicies{Overlap: d.Overlap, CatchupWindow: d.CatchupWindow},
				State:  &state,
			}}, nil
		},
	})
	if err != nil {
		return Result{}, fmt.Errorf("update: %w", err)
	}
	r := Result{ID: d.ID, Action: Updated}
	switch {
	case d.Paused && !paused:
		err = h.Pause(ctx, client.SchedulePauseOptions{Note: pauseNote})
		r.PauseChanged = true
	case !d.Paused && paused:
		err = h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: d.Note})
		r.PauseChanged = true
	}
	if err != nil {
		return Result{}, fmt.Errorf("set paused=%t: %w", d.Paused, err)
	}
	return r, nil
}

// Trigger starts the schedule's workflow now, for ops and tests. The run may overlap one that
// is already running (ALLOW_ALL): asking by hand is a decision to run, and every cartflow job is
// safe to run twice at once.
func Trigger(ctx context.Context, c client.Client, id string) error {
	err := c.ScheduleClient().GetHandle(ctx, id).Trigger(ctx, client.ScheduleTriggerOptions{
		Overlap: enums.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL,
	})
	if err != nil {
		return fmt.Errorf("trigger schedule %s: %w", id, err)
	}
	return nil
}

// Defaults of Settings' zero values.
const (
	DefaultRenewalSweepInterval = time.Hour
	DefaultSummaryCron          = "0 6 * * *"
	DefaultCleanupCron          = "30 3 * * *"
	// DefaultReconcileInterval finds an orphan payment within the hour, yet keeps the provider
	// calls of a 48-hour window to one listing an hour.
	DefaultReconcileInterval = time.Hour
	// DefaultCatchupWindow rides out a server restart or a short outage, yet keeps a nightly
	// job that missed its time by hours from starting in the middle of the day's traffic.
	DefaultCatchupWindow = time.Hour
)

// Run timeouts of the scheduled workflows. Each run is bounded, and the sweep's and the
// cleanup's continue-as-new chains are bounded as a whole, so that a stuck run cannot hold off
// the next ones for ever under the SKIP overlap policy.
const (
	sweepRunTimeout         = time.Hour
	sweepExecutionTimeout   = 6 * time.Hour
	summaryRunTimeout       = time.Hour
	cleanupRunTimeout       = time.Hour
	cleanupExecutionTimeout = 12 * time.Hour
	reconcileRunTimeout     = time.Hour
)

// Settings are the knobs of cartflow's schedules, from the worker's configuration.
type Settings struct {
	// TaskQueue is where the scheduled workflows run; empty means workflows.JobsTaskQueue.
	TaskQueue string
	// RenewalSweepInterval is how often the renewal sweep runs; zero means an hour.
	RenewalSweepInterval time.Duration
	// SummaryCron is when the daily summary runs, in UTC; empty means 06:00.
	SummaryCron string
	// CleanupCron is when the cleanup runs, in UTC; empty means 03:30.
	CleanupCron string
	// ReconcileInterval is how often the payments are reconciled; zero means an hour.
	ReconcileInterval time.Duration
	// CatchupWindow applies to every schedule; zero means DefaultCatchupWindow.
	CatchupWindow time.Duration
	// Paused pauses every schedule.
	Paused bool
	// SweepInput, SummaryInput and CleanupInput are the scheduled workflows' arguments.
	SweepInput     workflows.RenewalSweepInput
	SummaryInput   workflows.DailySummaryInput
	CleanupInput   workflows.CleanupInput
	ReconcileInput workflows.ReconcileInput
}

// Cartflow returns cartflow's four schedules: the renewal sweep, the daily summary, the
// cleanup and the reconciliation of payments. Each workflow ID starts with its schedule's ID,
// so runs are easy to find in the UI.
//
// All four skip a run that falls due while the previous one still runs. Two sweeps or two
// cleanups at once would only compete for the same rows; a reconciliation still running holds
// the same window's orphans, so the next one would find nothing it will not. For the summary, BUFFER_ONE was
// considered: a run is bounded to an hour of a 24-hour period, so a scheduled summary can only
// find one still running after a manual trigger, and that one summarizes the same day; a
// buffered second run would just do it again.
func Cartflow(s Settings) []Definition {
	if s.TaskQueue == "" {
		s.TaskQueue = workflows.JobsTaskQueue
	}
	if s.RenewalSweepInterval <= 0 {
		s.RenewalSweepInterval = DefaultRenewalSweepInterval
	}
	if s.SummaryCron == "" {
		s.SummaryCron = DefaultSummaryCron
	}
	if s.CleanupCron == "" {
		s.CleanupCron = DefaultCleanupCron
	}
	if s.ReconcileInterval <= 0 {
		s.ReconcileInterval = DefaultReconcileInterval
	}
	if s.CatchupWindow <= 0 {
		s.CatchupWindow = DefaultCatchupWindow
	}
	// job is one scheduled workflow: skipped while its previous run still runs, with the shared
	// catch-up window and paused state, and a workflow ID that starts with the schedule's ID.
	job := func(id string, spec client.ScheduleSpec, workflowType string, arg any, runTimeout, executionTimeout time.Duration, note string) Definition {
		return Definition{
			ID: id, Spec: spec,
			Action: &client.ScheduleWorkflowAction{
				ID: id, Workflow: workflowType, Args: []any{arg}, TaskQueue: s.TaskQueue,
				WorkflowRunTimeout: runTimeout, WorkflowExecutionTimeout: executionTimeout,
			},
			Overlap: enums.SCHEDULE_OVERLAP_POLICY_SKIP, CatchupWindow: s.CatchupWindow, Paused: s.Paused, Note: note,
		}
	}
	cron := func(expr string) client.ScheduleSpec {
		return client.ScheduleSpec{CronExpressions: []string{expr}, TimeZoneName: "UTC"}
	}
	return []Definition{
		job(workflows.RenewalSweepScheduleID,
			client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: s.RenewalSweepInterval}}},
			workflows.RenewalSweepWorkflowType, s.SweepInput, sweepRunTimeout, sweepExecutionTimeout,
			fmt.Sprintf("Every %s: starts one renewal per subscription whose period has ended, and sends trial-ending reminders.",
				s.RenewalSweepInterval)),
		job(workflows.DailySummaryScheduleID, cron(s.SummaryCron),
			workflows.DailySummaryWorkflowType, s.SummaryInput, summaryRunTimeout, summaryRunTimeout,
			fmt.Sprintf("Cron %q UTC: computes the previous day's figures, stores them for BI and emails them to ops.", s.SummaryCron)),
		job(workflows.CleanupScheduleID, cron(s.CleanupCron),
			workflows.CleanupWorkflowType, s.CleanupInput, cleanupRunTimeout, cleanupExecutionTimeout,
			fmt.Sprintf("Cron %q UTC: expires abandoned checkouts, deletes users never confirmed, prunes old email and webhook records.",
				s.CleanupCron)),
		job(workflows.ReconcileScheduleID,
			client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: s.ReconcileInterval}}},
			workflows.ReconcileWorkflowType, s.ReconcileInput, reconcileRunTimeout, reconcileRunTimeout,
			fmt.Sprintf("Every %s: compares each provider's payments of the last 48 h with the ledger, refunds every orphan payment and alerts ops.",
				s.ReconcileInterval)),
	}
}
