package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/cartflow/cartflow/activities"
)

// SignInLinkWorkflowType is the registered name of the SignInLink workflow.
const SignInLinkWorkflowType = "SignInLink"

// SignInLinkWorkflowID names one sign-in link request; requestID is random per request.
func SignInLinkWorkflowID(requestID string) string { return "sign-in-link-" + requestID }

// SignInLinkRequest is what the BFF starts SignInLink with: a standardized address and where the
// link lands. The BFF starts one for every request, known address or not, so that its answer
// takes the same time either way; the activity decides whether an email goes out.
type SignInLinkRequest struct {
	Email string `json:"email"`
	Next  string `json:"next,omitempty"`
}

// SignInLink emails a sign-in link to a known customer. The activity draws and stores the token,
// so that it never enters this history.
func SignInLink(ctx workflow.Context, in SignInLinkRequest) (activities.EmailResult, error) {
	var res activities.EmailResult
	err := workflow.ExecuteActivity(signInLinkOptions(ctx), a.SendSignInLink, activities.SignInLinkInput{
		RequestID: workflow.GetInfo(ctx).WorkflowExecution.ID, Email: in.Email, Next: in.Next,
	}).Get(ctx, &res)
	return res, err
}
