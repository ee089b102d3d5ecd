package activities_test

import (
	"errors"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/mailer"
)

// runSendEmail runs SendEmail the way a worker does, in Temporal's activity test environment.
func runSendEmail(t *testing.T, acts *activities.Activities, in activities.EmailInput) (activities.EmailResult, error) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	val, err := env.ExecuteActivity(acts.SendEmail, in)
	var res activities.EmailResult
	if err == nil {
		if gerr := val.Get(&res); gerr != nil {
			t.Fatal(gerr)
		}
	}
	return res, err
}

const testFrom = "cartflow <shop@example.com>"

func TestSendEmailRefusesBadInput(t *testing.T) {
	t.Parallel()
	// No store: a refusal must happen before anything is claimed.
	acts := &activities.Activities{Mailer: mailer.New(mailer.Config{Addr: "127.0.0.1:1", From: testFrom})}
	receipt, cancel := &activities.ReceiptEmail{OrderID: "o"}, &activities.CancellationEmail{Plan: "p"}
	tests := []struct {
		name    string
		acts    *activities.Activities
		in      activities.EmailInput
		errType string
	}{
		{"no payload", acts, activities.EmailInput{EventKey: "k", To: "ada@example.com"}, activities.ErrTypeInvalidEmail},
		{"two payloads", acts, activities.EmailInput{EventKey: "k", To: "ada@example.com", Receipt: receipt, Cancellation: cancel}, activities.ErrTypeInvalidEmail},
		{"no event key", acts, activities.EmailInput{EventKey: " ", To: "ada@example.com", Receipt: receipt}, activities.ErrTypeInvalidEmail},
		{"bad recipient", acts, activities.EmailInput{EventKey: "k", To: "ada at example.com", Receipt: receipt}, activities.ErrTypeInvalidEmail},
		{"no mailer", &activities.Activities{}, activities.EmailInput{EventKey: "k", To: "ada@example.com", Receipt: receipt}, activities.ErrTypeMailerNotConfigured},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := runSendEmail(t, tc.acts, tc.in)
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || appErr.Type() != tc.errType || !appErr.NonRetryable() {
				t.Fatalf("got %v, want a non-retryable %s error", err, tc.errType)
			}
		})
	}
}
