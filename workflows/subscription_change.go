package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/domain"
)

// SubscriptionChange applies one change a customer asked for through the BFF: cancel now or at
// the end of the period, resume (undo a cancel at period end), or save a new payment method. It
// records the change, confirms a cancellation by email, and tells the subscription's running
// renewal, if any, so that a cancel during dunning stops the retries and a new payment method
// is tried at once.
func SubscriptionChange(ctx workflow.Context, in SubscriptionChangeInput) (SubscriptionChangeResult, error) {
	res := SubscriptionChangeResult{SubscriptionID: in.SubscriptionID}
	var sub activities.Subscription
	if err := workflow.ExecuteLocalActivity(dbOptions(ctx), a.LoadSubscription, in.SubscriptionID).Get(ctx, &sub); err != nil {
		return refused(res, err)
	}
	// The renewal of the current period, if one is running (in dunning, for example).
	renewalID := RenewalWorkflowID(sub.ID, sub.CurrentPeriodEnd)
	wfID := workflow.GetInfo(ctx).WorkflowExecution.ID
	action := in.Action
	if action == ChangeCancelAtPeriodEnd && sub.Status == domain.SubscriptionPastDue {
		// A subscription in dunning is past the end of its period already: the cancel takes effect now.
		action = ChangeCancelNow
	}

	if sub.Status == domain.SubscriptionCanceled && action != ChangeCancelNow {
		// Only a repeated cancel makes sense on a canceled subscription; it changes nothing.
		res.Status, res.FailureCode, res.FailureMessage = sub.Status, "subscription_canceled", "the subscription is canceled"
		return res, nil
	}

	var err error
	signal, payload := SignalSubscriptionChanged, any(SubscriptionChangeSignal{Action: action})
	switch action {
	case ChangeCancelNow:
		err = workflow.ExecuteLocalActivity(dbOptions(ctx), a.CancelSubscription, activities.SubscriptionChange{
			SubscriptionID: sub.ID, Reason: "canceled by the customer",
		}).Get(ctx, &sub)
		if err == nil {
			sendEmail(ctx, activities.EmailInput{EventKey: "cancellation/" + wfID, To: sub.Email,
				Cancellation: &activities.CancellationEmail{Name: sub.Name, Plan: sub.PlanName, EffectiveAt: workflow.Now(ctx), Immediate: true}})
		}
	case ChangeCancelAtPeriodEnd, ChangeResume:
		err = workflow.ExecuteLocalActivity(dbOptions(ctx), a.SetCancelAtPeriodEnd, activities.CancelAtPeriodEndInput{
			SubscriptionID: sub.ID, Cancel: action == ChangeCancelAtPeriodEnd,
		}).Get(ctx, &sub)
		if err == nil && action == ChangeCancelAtPeriodEnd {
			sendEmail(ctx, activities.EmailInput{EventKey: "cancellation/" + wfID, To: sub.Email,
				Cancellation: &activities.CancellationEmail{Name: sub.Name, Plan: sub.PlanName, EffectiveAt: sub.CurrentPeriodEnd}})
		}
	case ChangePaymentMethod:
		signal, payload = SignalPaymentMethodUpdated, nil
		err = workflow.ExecuteActivity(chargeOptions(ctx), a.SavePaymentMethod, activities.SavePaymentMethodInput{
			SubscriptionID: sub.ID, Provider: sub.Provider, Token: in.Payment.Token, CustomerRef: sub.CustomerRef,
			Email: sub.Email, Name: sub.Name, IdempotencyKey: wfID + "/save-payment-method",
		}).Get(ctx, nil)
	default:
		res.FailureCode, res.FailureMessage = "invalid_action", "unknown subscription change "+in.Action
		return res, nil
	}
	if err != nil {
		return refused(res, err)
	}
	res.Status = sub.Status
	// No renewal may be running; then there is nobody to tell, which is fine.
	if serr := workflow.SignalExternalWorkflow(ctx, renewalID, "", signal, payload).Get(ctx, nil); serr != nil {
		workflow.GetLogger(ctx).Debug("no running renewal to notify", "renewal", renewalID)
	}
	return res, nil
}

// refused turns a final activity failure into a refused change; any other error fails the run.
func refused(res SubscriptionChangeResult, err error) (SubscriptionChangeResult, error) {
	f, ok := finalFailure(err)
	if !ok {
		return res, err
	}
	res.FailureCode, res.FailureMessage = f.Code, f.Message
	return res, nil
}

// sendEmail sends an email best-effort: a failure is logged and never fails the business step.
func sendEmail(ctx workflow.Context, in activities.EmailInput) {
	if err := workflow.ExecuteActivity(emailOptions(ctx), a.SendEmail, in).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("email not sent", "event_key", in.EventKey, "error", err)
	}
}
