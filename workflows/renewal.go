package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/domain"
)

// Renewal bills one subscription period: it charges the saved payment method off-session and
// extends the period. A soft decline puts the subscription in dunning, retried on durable
// timers along the DunningPolicy with a new idempotency key per attempt; a hard decline or the
// end of the ladder cancels it. A change of payment method retries at once; a cancellation
// stops further retries.
func Renewal(ctx workflow.Context, in RenewalInput) (RenewalResult, error) {
	r := &renewal{in: in, state: RenewalState{Stage: RenewalStarting}}
	if err := r.setup(ctx); err != nil {
		return RenewalResult{}, err
	}
	return r.run(ctx)
}

type renewal struct {
	in    RenewalInput
	state RenewalState
	sub   activities.Subscription
	order activities.OrderSummary
	// guarded says the run re-reads the subscription under a row lock before each charge and
	// refunds a charge whose renewal is refused after the money moved (runs since that version).
	guarded bool

	paymentMethodUpdated workflow.ReceiveChannel
	changed              workflow.ReceiveChannel
}

func (r *renewal) setup(ctx workflow.Context) error {
	r.paymentMethodUpdated = workflow.GetSignalChannel(ctx, SignalPaymentMethodUpdated)
	r.changed = workflow.GetSignalChannel(ctx, SignalSubscriptionChanged)
	return workflow.SetQueryHandler(ctx, QueryStatus, func() (RenewalState, error) { return r.state, nil })
}

func (r *renewal) run(ctx workflow.Context) (RenewalResult, error) {
	if err := r.load(ctx); err != nil {
		return RenewalResult{}, err
	}
	switch {
	case r.sub.Status == domain.SubscriptionCanceled:
		return r.finish(RenewalSkipped, "the subscription is canceled"), nil
	case !r.sub.CurrentPeriodEnd.Equal(r.in.PeriodEnd):
		return r.finish(RenewalSkipped, "the period was renewed already"), nil
	case r.sub.CancelAtPeriodEnd:
		return r.cancel(ctx, "canceled at the end of the period, as the customer asked", false, nil)
	}

	wfID := workflow.GetInfo(ctx).WorkflowExecution.ID
	if err := workflow.ExecuteLocalActivity(dbOptions(ctx), a.CreateRenewalOrder,
		activities.RenewalOrderInput{SubscriptionID: r.sub.ID, WorkflowID: wfID}).Get(ctx, &r.order); err != nil {
		return RenewalResult{}, err
	}
	r.state.OrderID = r.order.OrderID
	// Runs recorded before the guard charge without the subscription lock and fail, rather than
	// refund, when the renewal is refused after the charge.
	r.guarded = workflow.GetVersion(ctx, "renewal-cancel-guard", workflow.DefaultVersion, 1) == 1

	var firstDecline time.Time
	for attempt := 1; ; attempt++ {
		r.state.Stage, r.state.Attempts = RenewalCharging, attempt
		charge := activities.ChargeInput{
			OrderID: r.order.OrderID, Provider: r.sub.Provider, Token: r.sub.PaymentMethodRef, CustomerRef: r.sub.CustomerRef,
			Amount: r.order.Amount, Currency: r.order.Currency, OffSession: true, KeepOrderOpen: true,
			// Every attempt is a new charge, so it has a key of its own; a retry of one attempt reuses it.
			IdempotencyKey: fmt.Sprintf("%s/charge/%d", wfID, attempt),
			Description:    "cartflow renewal " + r.sub.ID,
		}
		if r.guarded {
			// The charge re-reads the subscription under a row lock and refuses a canceled one.
			charge.SubscriptionID = r.sub.ID
		}
		var paid activities.ChargeResult
		err := workflow.ExecuteActivity(renewalChargeOptions(ctx), a.Charge, charge).Get(ctx, &paid)
		if err == nil {
			return r.renewed(ctx, charge.IdempotencyKey, paid)
		}
		failure, final := finalFailure(err)
		if !final {
			// The outcome stayed unknown through days of retries: trying again under a new key
			// could charge twice, so stop here for ops to resolve.
			return RenewalResult{}, err
		}
		var appErr *temporal.ApplicationError
		if r.guarded && errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeSubscriptionState {
			// Canceled since the renewal loaded it: nothing was charged, and nothing will be.
			return r.stopCanceled(ctx, "canceled before the renewal was charged")
		}
		reason := failure.DeclineCode
		if reason == "" {
			reason = failure.Code
		}
		r.state.LastDecline = reason
		if errors.As(err, &appErr) && appErr.Type() == activities.ErrTypePaymentRequestInvalid {
			// cartflow's own request was wrong, not the customer's card: neither dunning emails nor a
			// cancellation. The run fails, which reports it, and ops reset it once the fix is out.
			return RenewalResult{}, err
		}
		if errors.As(err, &appErr) && appErr.Type() != activities.ErrTypeCardDeclined {
			// A hard decline, or a payment method the provider refuses outright: no retry can succeed.
			return r.cancel(ctx, "renewal declined for good: "+reason, true, &failure)
		}
		if attempt > len(r.in.Dunning.RetryAfter) {
			return r.cancel(ctx, fmt.Sprintf("renewal still declined after %d attempts: %s", attempt, reason), true, &failure)
		}
		if attempt == 1 {
			firstDecline = workflow.Now(ctx)
		}
		nextRetry := firstDecline.Add(r.in.Dunning.RetryAfter[attempt-1])
		if err := workflow.ExecuteLocalActivity(dbOptions(ctx), a.MarkPastDue, activities.SubscriptionChange{
			SubscriptionID: r.sub.ID, PeriodEnd: r.in.PeriodEnd, Attempts: attempt, Reason: "renewal declined: " + reason,
		}).Get(ctx, &r.sub); err != nil {
			return RenewalResult{}, err
		}
		lastRetry := firstDecline.Add(r.in.Dunning.RetryAfter[len(r.in.Dunning.RetryAfter)-1])
		sendEmail(ctx, activities.EmailInput{
			EventKey: fmt.Sprintf("payment-failed/%s/%d", wfID, attempt), To: r.sub.Email,
			PaymentFailed: &activities.PaymentFailedEmail{
				Name: r.sub.Name, Plan: r.sub.PlanName, Amount: r.order.Amount, Currency: r.order.Currency,
				DeclineReason: failure.Message, NextRetry: &nextRetry, CancelsAt: &lastRetry, SubscriptionID: r.sub.ID,
			},
		})

		r.state.Stage, r.state.NextRetryAt = RenewalDunning, &nextRetry
		stop, err := r.waitForRetry(ctx, nextRetry)
		r.state.NextRetryAt = nil
		if err != nil || stop != nil {
			return r.finishWith(stop, err)
		}
		if err := r.load(ctx); err != nil {
			return RenewalResult{}, err
		}
		if r.sub.Status == domain.SubscriptionCanceled {
			return r.stopCanceled(ctx, "canceled during dunning")
		}
	}
}

// waitForRetry sleeps on a durable timer until the next dunning attempt. A new payment method
// cuts the wait short; a cancellation ends the renewal (returned as stop).
func (r *renewal) waitForRetry(ctx workflow.Context, until time.Time) (*RenewalResult, error) {
	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	timer := workflow.NewTimer(timerCtx, until.Sub(workflow.Now(ctx)))
	for {
		var wake bool
		var change SubscriptionChangeSignal
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(timer, func(workflow.Future) { wake = true })
		sel.AddReceive(r.paymentMethodUpdated, func(c workflow.ReceiveChannel, _ bool) {
			c.Receive(ctx, nil)
			wake = true
		})
		sel.AddReceive(r.changed, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &change) })
		sel.Select(ctx)
		if wake {
			return nil, nil
		}
		if change.Action == ChangeCancelNow || change.Action == ChangeCancelAtPeriodEnd {
			// The period this renewal bills has already ended, so either cancel takes effect now;
			// the change workflow recorded it, and no retry follows.
			res, err := r.stopCanceled(ctx, "canceled during dunning")
			return &res, err
		}
		// A resume changes nothing for a renewal in dunning: keep waiting.
	}
}

func (r *renewal) finishWith(res *RenewalResult, err error) (RenewalResult, error) {
	if res == nil {
		return RenewalResult{}, err
	}
	return *res, err
}

// stopCanceled ends a renewal whose subscription was canceled while it waited (outcome says
// when): the order fails and nothing more is charged.
func (r *renewal) stopCanceled(ctx workflow.Context, outcome string) (RenewalResult, error) {
	// The change workflow canceled it already; this makes sure of it, in case the signal came first.
	if err := workflow.ExecuteLocalActivity(dbOptions(ctx), a.CancelSubscription, activities.SubscriptionChange{
		SubscriptionID: r.sub.ID, Reason: "canceled by the customer during dunning",
	}).Get(ctx, &r.sub); err != nil {
		return RenewalResult{}, err
	}
	if err := workflow.ExecuteLocalActivity(dbOptions(ctx), a.FailOrder, activities.OrderFailure{Caller: activities.CallerRenewal, OrderID: r.order.OrderID,
		Failure: domain.Failure{Code: "subscription_canceled", Message: "the subscription was canceled before the renewal was paid"}}).Get(ctx, nil); err != nil {
		return RenewalResult{}, err
	}
	return r.finish(RenewalCanceled, outcome), nil
}

// renewed records the period that the charge under chargeKey paid for. If the subscription
// refuses it (canceled while the charge ran, or the period was renewed meanwhile), the money
// moved for nothing, so it is refunded.
func (r *renewal) renewed(ctx workflow.Context, chargeKey string, paid activities.ChargeResult) (RenewalResult, error) {
	var sub activities.Subscription
	if err := workflow.ExecuteLocalActivity(dbOptions(ctx), a.RenewSubscription, activities.SubscriptionChange{
		SubscriptionID: r.sub.ID, PeriodEnd: r.in.PeriodEnd, Reason: "renewal paid",
	}).Get(ctx, &sub); err != nil {
		if _, refused := finalFailure(err); refused && r.guarded {
			return r.refundRefused(ctx, chargeKey, paid, err)
		}
		return RenewalResult{}, err
	}
	r.sub = sub
	if err := workflow.ExecuteLocalActivity(dbOptions(ctx), a.CompleteOrder,
		activities.CompleteOrderInput{Caller: activities.CallerRenewal, OrderID: r.order.OrderID, UserID: r.sub.UserID}).Get(ctx, nil); err != nil {
		return RenewalResult{}, err
	}
	periodEnd := r.sub.CurrentPeriodEnd
	sendEmail(ctx, activities.EmailInput{
		EventKey: "receipt/order/" + r.order.OrderID, To: r.sub.Email,
		Receipt: &activities.ReceiptEmail{
			Name: r.sub.Name, OrderID: r.order.OrderID, Description: r.sub.PlanName, Amount: r.order.Amount,
			Currency: r.order.Currency, PeriodEnd: &periodEnd, Renewal: true,
		},
	})
	res := r.finish(RenewalRenewed, "renewal paid")
	res.NewPeriodEnd = &periodEnd
	return res, nil
}

// refundRefused returns the charge of a renewal that the subscription refused after the money
// moved (refusal says why), and tells the customer. It runs on a disconnected context, so that
// the refund completes even if the run is being canceled. A refund that fails for good fails
// the run: money is held without a period to show for it, and ops must look.
func (r *renewal) refundRefused(ctx workflow.Context, chargeKey string, paid activities.ChargeResult, refusal error) (RenewalResult, error) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	wfID := workflow.GetInfo(ctx).WorkflowExecution.ID
	reason := domain.Failure{Code: "subscription_canceled", Message: "the subscription was canceled while the renewal was being charged"}
	var appErr *temporal.ApplicationError
	if errors.As(refusal, &appErr) && appErr.Type() == activities.ErrTypePeriodMoved {
		reason = domain.Failure{Code: "period_already_renewed", Message: "this period of the subscription had been paid for already"}
	}
	workflow.GetLogger(ctx).Warn("renewal refused after the charge; refunding", "order_id", r.order.OrderID, "error", refusal)
	if err := workflow.ExecuteActivity(refundOptions(ctx), a.Refund, activities.RefundInput{
		OrderID: r.order.OrderID, Provider: r.sub.Provider, PaymentRef: paid.ProviderRef, ChargeKey: chargeKey,
		IdempotencyKey: wfID + "/refund", Amount: r.order.Amount, Currency: r.order.Currency, Reason: reason,
	}).Get(ctx, nil); err != nil {
		return RenewalResult{}, fmt.Errorf("refund the renewal refused after %s: %w", reason.Code, err)
	}
	sendEmail(ctx, activities.EmailInput{
		EventKey: "renewal-refunded/" + wfID, To: r.sub.Email,
		RenewalRefunded: &activities.RenewalRefundedEmail{
			Name: r.sub.Name, Plan: r.sub.PlanName, Amount: r.order.Amount, Currency: r.order.Currency, Reason: reason.Message,
		},
	})
	return r.finish(RenewalCanceled, reason.Message+"; the renewal charge was refunded"), nil
}

// cancel ends the subscription now. declined says a charge was refused (failure says how):
// the order fails and the customer is told why. A cancellation the customer asked for was
// confirmed by email when they asked, so it sends nothing more.
func (r *renewal) cancel(ctx workflow.Context, reason string, declined bool, failure *domain.Failure) (RenewalResult, error) {
	if err := workflow.ExecuteLocalActivity(dbOptions(ctx), a.CancelSubscription, activities.SubscriptionChange{
		SubscriptionID: r.sub.ID, Reason: reason,
	}).Get(ctx, &r.sub); err != nil {
		return RenewalResult{}, err
	}
	wfID := workflow.GetInfo(ctx).WorkflowExecution.ID
	now := workflow.Now(ctx)
	if declined {
		if err := workflow.ExecuteLocalActivity(dbOptions(ctx), a.FailOrder,
			activities.OrderFailure{Caller: activities.CallerRenewal, OrderID: r.order.OrderID, Failure: *failure}).Get(ctx, nil); err != nil {
			return RenewalResult{}, err
		}
		sendEmail(ctx, activities.EmailInput{
			EventKey: fmt.Sprintf("payment-failed/%s/final", wfID), To: r.sub.Email,
			PaymentFailed: &activities.PaymentFailedEmail{
				Name: r.sub.Name, Plan: r.sub.PlanName, Amount: r.order.Amount, Currency: r.order.Currency,
				DeclineReason: failure.Message, CancelsAt: &now, Final: true, SubscriptionID: r.sub.ID,
			},
		})
	}
	return r.finish(RenewalCanceled, reason), nil
}

func (r *renewal) load(ctx workflow.Context) error {
	return workflow.ExecuteLocalActivity(dbOptions(ctx), a.LoadSubscription, r.in.SubscriptionID).Get(ctx, &r.sub)
}

func (r *renewal) finish(outcome, reason string) RenewalResult {
	r.state.Stage = RenewalDone
	return RenewalResult{Outcome: outcome, Reason: reason, OrderID: r.order.OrderID, Attempts: r.state.Attempts}
}
