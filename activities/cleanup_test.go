package activities_test

import (
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/domain"
)

// Input that can never succeed fails for good at once, before the store is touched (it is nil here).
func TestCleanupBatchRefusesInvalidInput(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   activities.CleanupBatchInput
		code string
	}{
		{"unknown task", activities.CleanupBatchInput{Task: "drop_everything", OlderThan: time.Now(), Limit: 10}, "unknown_cleanup_task"},
		{"zero limit", activities.CleanupBatchInput{Task: activities.CleanupExpireCheckouts, OlderThan: time.Now()}, "invalid_cleanup_batch"},
		{"negative limit", activities.CleanupBatchInput{Task: activities.CleanupPruneWebhookEvents, Limit: -1}, "invalid_cleanup_batch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestActivityEnvironment()
			env.RegisterActivity(&activities.Activities{})
			_, err := env.ExecuteActivity((&activities.Activities{}).CleanupBatch, tc.in)
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeInvalidCleanupBatch || !appErr.NonRetryable() {
				t.Fatalf("got %v, want a non-retryable %s error", err, activities.ErrTypeInvalidCleanupBatch)
			}
			var f domain.Failure
			if err := appErr.Details(&f); err != nil || f.Code != tc.code {
				t.Fatalf("details %+v (%v), want code %s", f, err, tc.code)
			}
		})
	}
}
