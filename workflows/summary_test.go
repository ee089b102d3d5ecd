package workflows

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/cartflow/cartflow/activities"
)

// newSummaryEnv returns a test environment for DailySummary that records the activities it
// runs, by name, in order.
func newSummaryEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, func() []string) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(DailySummary)
	env.RegisterActivity(&activities.Activities{})
	var mu sync.Mutex
	var ran []string
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		mu.Lock()
		defer mu.Unlock()
		ran = append(ran, info.ActivityType.Name)
	})
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(ran)
	}
}

var testFigures = activities.DailySummaryEmail{Day: "2025-03-10", NewOrders: 3, NewSubscriptions: 1, RenewalsSucceeded: 4,
	RenewalsFailed: 2, Cancellations: 1, InDunning: 5, Revenue: []activities.Revenue{{Currency: "usd", Amount: 6200}}}

func summaryResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) DailySummaryResult {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	var res DailySummaryResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestDailySummaryDefaultsToYesterdayAndMailsOps(t *testing.T) {
	tests := []struct {
		name  string
		start time.Time
		day   string
	}{
		{"just after midnight UTC", time.Date(2025, 3, 11, 0, 5, 0, 0, time.UTC), "2025-03-10"},
		// 08:00 in Tokyo is still the day before in UTC: days are UTC days.
		{"start time in another zone", time.Date(2025, 3, 11, 8, 0, 0, 0, time.FixedZone("JST", 9*3600)), "2025-03-09"},
		{"across a month end", time.Date(2025, 3, 1, 0, 30, 0, 0, time.UTC), "2025-02-28"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, ran := newSummaryEnv(t)
			env.SetStartTime(tc.start)
			figures := testFigures
			figures.Day = tc.day
			env.OnActivity(a.ComputeDailySummary, mock.Anything, tc.day).Return(figures, nil).Once()
			env.OnActivity(a.SendEmail, mock.Anything, mock.MatchedBy(func(in activities.EmailInput) bool {
				return in.EventKey == "daily-summary/"+tc.day+"/ops@example.com" && in.To == "ops@example.com" &&
					in.DailySummary != nil && in.DailySummary.Day == tc.day && in.DailySummary.InDunning == 5 &&
					slices.Equal(in.DailySummary.Revenue, figures.Revenue) &&
					in.Receipt == nil && in.TrialEnding == nil && in.PaymentFailed == nil && in.Cancellation == nil
			})).Return(activities.EmailResult{Sent: true}, nil).Once()

			env.ExecuteWorkflow(DailySummary, DailySummaryInput{OpsEmail: "ops@example.com"})
			res := summaryResult(t, env)
			if res.Day != tc.day || res.Figures.Day != tc.day || res.Figures.NewOrders != 3 || res.Email == nil || !res.Email.Sent {
				t.Fatalf("result %+v", res)
			}
			if got := ran(); !slices.Equal(got, []string{"ComputeDailySummary", "SendEmail"}) {
				t.Fatalf("activities %v", got)
			}
		})
	}
}

func TestDailySummaryExplicitDayWithoutOpsEmailSendsNothing(t *testing.T) {
	env, ran := newSummaryEnv(t)
	env.SetStartTime(time.Date(2025, 3, 11, 0, 5, 0, 0, time.UTC))
	figures := testFigures
	figures.Day = "2025-01-31"
	env.OnActivity(a.ComputeDailySummary, mock.Anything, "2025-01-31").Return(figures, nil).Once()

	env.ExecuteWorkflow(DailySummary, DailySummaryInput{Day: "2025-01-31"})
	res := summaryResult(t, env)
	if res.Day != "2025-01-31" || res.Figures.NewOrders != 3 || res.Email != nil {
		t.Fatalf("result %+v", res)
	}
	if got := ran(); !slices.Equal(got, []string{"ComputeDailySummary"}) {
		t.Fatalf("activities %v, want only ComputeDailySummary", got)
	}
}

func TestDailySummaryAlreadyMailed(t *testing.T) {
	env, _ := newSummaryEnv(t)
	env.OnActivity(a.ComputeDailySummary, mock.Anything, "2025-03-10").Return(testFigures, nil).Once()
	env.OnActivity(a.SendEmail, mock.Anything, mock.Anything).Return(activities.EmailResult{AlreadyHandled: true}, nil).Once()
	env.ExecuteWorkflow(DailySummary, DailySummaryInput{Day: "2025-03-10", OpsEmail: "ops@example.com"})
	if res := summaryResult(t, env); res.Email == nil || res.Email.Sent || !res.Email.AlreadyHandled {
		t.Fatalf("result %+v", res)
	}
}

func TestDailySummaryFailures(t *testing.T) {
	t.Run("a bad day fails the run without retrying or mailing", func(t *testing.T) {
		env, ran := newSummaryEnv(t)
		env.OnActivity(a.ComputeDailySummary, mock.Anything, "2025-13-01").
			Return(activities.DailySummaryEmail{}, temporal.NewNonRetryableApplicationError("bad day", activities.ErrTypeInvalidDay, nil)).Once()
		env.ExecuteWorkflow(DailySummary, DailySummaryInput{Day: "2025-13-01", OpsEmail: "ops@example.com"})
		var appErr *temporal.ApplicationError
		if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeInvalidDay {
			t.Fatalf("workflow error %v, want %s", err, activities.ErrTypeInvalidDay)
		}
		if got := ran(); !slices.Equal(got, []string{"ComputeDailySummary"}) {
			t.Fatalf("activities %v", got)
		}
	})

	t.Run("a database hiccup is retried", func(t *testing.T) {
		env, ran := newSummaryEnv(t)
		env.OnActivity(a.ComputeDailySummary, mock.Anything, "2025-03-10").Return(activities.DailySummaryEmail{}, errors.New("connection reset")).Once()
		env.OnActivity(a.ComputeDailySummary, mock.Anything, "2025-03-10").Return(testFigures, nil).Once()
		env.OnActivity(a.SendEmail, mock.Anything, mock.Anything).Return(activities.EmailResult{Sent: true}, nil).Once()
		env.ExecuteWorkflow(DailySummary, DailySummaryInput{Day: "2025-03-10", OpsEmail: "ops@example.com"})
		if res := summaryResult(t, env); res.Email == nil || !res.Email.Sent {
			t.Fatalf("result %+v", res)
		}
		if got := ran(); !slices.Equal(got, []string{"ComputeDailySummary", "ComputeDailySummary", "SendEmail"}) {
			t.Fatalf("activities %v", got)
		}
	})

	t.Run("an email that cannot be sent fails the run", func(t *testing.T) {
		env, _ := newSummaryEnv(t)
		env.OnActivity(a.ComputeDailySummary, mock.Anything, "2025-03-10").Return(testFigures, nil).Once()
		env.OnActivity(a.SendEmail, mock.Anything, mock.Anything).
			Return(activities.EmailResult{}, temporal.NewNonRetryableApplicationError("bad address", activities.ErrTypeInvalidEmail, nil)).Once()
		env.ExecuteWorkflow(DailySummary, DailySummaryInput{Day: "2025-03-10", OpsEmail: "not-an-address"})
		var appErr *temporal.ApplicationError
		if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeInvalidEmail {
			t.Fatalf("workflow error %v, want %s", err, activities.ErrTypeInvalidEmail)
		}
	})
}
