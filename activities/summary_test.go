package activities_test

import (
	"errors"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/cartflow/cartflow/activities"
)

func runComputeDailySummary(t *testing.T, acts *activities.Activities, day string) (activities.DailySummaryEmail, error) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	val, err := env.ExecuteActivity(acts.ComputeDailySummary, day)
	var s activities.DailySummaryEmail
	if err == nil {
		if gerr := val.Get(&s); gerr != nil {
			t.Fatal(gerr)
		}
	}
	return s, err
}

func TestComputeDailySummaryRefusesBadDay(t *testing.T) {
	t.Parallel()
	for _, day := range []string{"", "yesterday", "2025-13-01", "2025-02-30", "2025-03-10T00:00:00Z", "10/03/2025"} {
		// No store: a bad day is refused before the database is touched.
		_, err := runComputeDailySummary(t, &activities.Activities{}, day)
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeInvalidDay || !appErr.NonRetryable() {
			t.Errorf("day %q: got %v, want a non-retryable %s error", day, err, activities.ErrTypeInvalidDay)
		}
	}
}
