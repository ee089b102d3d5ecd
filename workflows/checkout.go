package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/domain"
)

// Checkout is the purchase funnel: price the cart, create the order, charge, register and confirm the
// customer, complete the order. A step that fails for good after the charge is compensated by
// a refund. Business outcomes (a decline, a refund) end the workflow successfully with the
// final CheckoutState; only an unexpected failure fails it.
func Checkout(ctx workflow.Context, in CheckoutInput) (CheckoutState, error) {
	p := &checkout{in: in, state: CheckoutState{CheckoutID: in.CheckoutID, Status: domain.OrderPending}}
	if err := p.setup(ctx); err != nil {
		return p.state, err
	}
	// Runs since the outbox take the fast shape: one version marker in place of one per change
	// (the SDK upserts a search attribute for each), the receipt queued with the order's
	// completion instead of sent by an activity of its own, and the search attributes set once,
	// at the end. Runs recorded before replay the steps they took.
	p.fast = workflow.GetVersion(ctx, "receipt-outbox", workflow.DefaultVersion, 1) == 1
	// Runs recorded before search attributes existed replay without them.
	p.searchable = p.fast || workflow.GetVersion(ctx, "search-attributes", workflow.DefaultVersion, 1) == 1
	state, err := p.run(ctx)
	if p.fast && p.state.OrderID != "" {
		p.index(ctx, SearchCheckoutStatus.ValueSet(string(p.state.Status)), SearchOrderID.ValueSet(p.state.OrderID),
			SearchAmount.ValueSet(p.state.Amount))
	} else {
		p.index(ctx, SearchCheckoutStatus.ValueSet(string(p.state.Status)))
	}
	// Runs recorded before receipts existed replay without one.
	if !p.fast && err == nil && state.Status == domain.OrderCompleted && workflow.GetVersion(ctx, "receipt-email", workflow.DefaultVersion, 1) == 1 {
		sendEmail(ctx, p.receipt())
	}
	// Let every waiting BFF request receive the outcome before the run closes.
	if werr := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); werr != nil && err == nil {
		err = werr
	}
	return state, err
}

type checkout struct {
	in    CheckoutInput
	state CheckoutState
	// authReports counts the storefront's reports that authentication is done; authChecked is
	// how many of them a check with the provider has answered.
	authReports, authChecked int
	// outcomeSignals counts webhook outcomes received; outcomesSeen those the wait has acted on.
	outcomeSignals, outcomesSeen int
	customer                     activities.Customer
	plan                         *activities.Plan
	// periodEnd is the end of the first period (or the trial) of a plan bought.
	periodEnd *time.Time
	// searchable says the run keeps its search attributes up to date (runs since that version).
	searchable bool
	// fast says the run takes the shape of runs since the outbox (see Checkout).
	fast bool
}

// logger names the checkout's order on its lines, beside the workflow and run ids the SDK adds.
func (p *checkout) logger(ctx workflow.Context) log.Logger {
	return log.With(workflow.GetLogger(ctx), "order_id", p.state.OrderID)
}

// index updates the run's search attributes, so that ops can find it by order, status and
// amount. It never fails the checkout: a search attribute is a convenience for ops.
func (p *checkout) index(ctx workflow.Context, updates ...temporal.SearchAttributeUpdate) {
	if !p.searchable {
		return
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		p.logger(ctx).Warn("search attributes not updated", "error", err)
	}
}

// receipt is the email of a completed checkout.
func (p *checkout) receipt() activities.EmailInput {
	receipt := &activities.ReceiptEmail{
		Name: p.customer.Name, OrderID: p.state.OrderID, Amount: p.state.Amount, Currency: p.state.Currency,
		Description: "your order", PeriodEnd: p.periodEnd,
	}
	if p.plan != nil {
		receipt.Description = p.plan.Name
	}
	return activities.EmailInput{EventKey: "receipt/order/" + p.state.OrderID, To: p.customer.Email, Receipt: receipt}
}

func (p *checkout) setup(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (CheckoutState, error) { return p.state, nil }); err != nil {
		return err
	}
	// Webhook outcomes may arrive before the checkout waits for them (even before the charge
	// answers); they are counted here and acted on when the wait begins.
	outcomes := workflow.GetSignalChannel(ctx, SignalPaymentOutcome)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			outcomes.Receive(ctx, nil)
			p.outcomeSignals++
		}
	})
	if err := workflow.SetUpdateHandler(ctx, UpdateAuthenticationCompleted, func(ctx workflow.Context) (CheckoutState, error) {
		p.authReports++
		report := p.authReports
		err := workflow.Await(ctx, func() bool { return p.authChecked >= report || p.state.Status != domain.OrderRequiresAction })
		return p.state, err
	}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateAwaitOutcome,
		func(ctx workflow.Context, _ AwaitOutcomeRequest) (CheckoutState, error) {
			// The storefront needs the outcome, or what to show the customer to authenticate.
			err := workflow.Await(ctx, func() bool { return p.state.Status.Final() || p.state.Status == domain.OrderRequiresAction })
			return p.state, err
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, req AwaitOutcomeRequest) error {
			if req.RequestHash != p.in.RequestHash {
				return temporal.NewApplicationError("this Idempotency-Key was used for a different checkout request", ErrTypeIdempotencyKeyReused)
			}
			return nil
		}},
	)
}

func (p *checkout) run(ctx workflow.Context) (CheckoutState, error) {
	workflowID := workflow.GetInfo(ctx).WorkflowExecution.ID

	var customer activities.Customer
	var rejection *domain.Failure
	err := workflow.ExecuteLocalActivity(standardizeOptions(ctx), a.StandardizeCustomer,
		activities.CustomerInput{Email: p.in.Email, Name: p.in.Name}).Get(ctx, &customer)
	if err != nil {
		f, ok := finalFailure(err)
		if !ok {
			return p.state, err
		}
		// The order is still written, as failed, so that a repeat of this request finds its outcome.
		rejection, customer = &f, activities.Customer{Email: p.in.Email, Name: p.in.Name}
	}

	lines := make([]activities.Line, len(p.in.Items))
	for i, it := range p.in.Items {
		lines[i] = activities.Line{SKU: it.SKU, Quantity: it.Quantity}
	}
	var order activities.OrderSummary
	if err := workflow.ExecuteLocalActivity(orderOptions(ctx), a.CreateOrder, activities.CreateOrderInput{
		CheckoutID: p.in.CheckoutID, IdempotencyKey: p.in.IdempotencyKey, RequestHash: p.in.RequestHash,
		WorkflowID: workflowID, Customer: customer, Provider: p.in.Payment.Provider, Lines: lines, Rejection: rejection,
	}).Get(ctx, &order); err != nil {
		return p.state, err
	}
	p.state.OrderID, p.state.Amount, p.state.Currency = order.OrderID, order.Amount, order.Currency
	if !p.fast {
		p.index(ctx, SearchOrderID.ValueSet(order.OrderID), SearchAmount.ValueSet(order.Amount))
	}
	p.customer, p.plan = customer, order.Plan
	if order.Failure != nil {
		return p.fail(*order.Failure), nil
	}

	if order.Plan != nil {
		return p.subscribe(ctx, customer, order)
	}

	chargeKey := workflowID + "/charge"
	charge, done, err := p.charge(ctx, activities.ChargeInput{Token: p.in.Payment.Token, IdempotencyKey: chargeKey}, order)
	if done {
		return p.state, err
	}
	if err := p.registerAndComplete(ctx, customer, order.OrderID, nil); err != nil {
		p.logger(ctx).Error("registration failed after payment; refunding", "error", err)
		return p.compensate(ctx, chargeKey, charge.ProviderRef, registrationFailed)
	}
	p.state.Status = domain.OrderCompleted
	return p.state, nil
}

var registrationFailed = domain.Failure{
	Code: "registration_failed", Message: "we could not set up your account, so your payment has been refunded",
}

// charge takes the order's amount. When done is true the checkout is over (declined, or
// compensated after an unknown outcome) and p.state and err are its result.
func (p *checkout) charge(ctx workflow.Context, in activities.ChargeInput, order activities.OrderSummary) (activities.ChargeResult, bool, error) {
	in.OrderID, in.Provider, in.Amount, in.Currency = order.OrderID, p.in.Payment.Provider, order.Amount, order.Currency
	in.Description = "cartflow checkout " + p.in.CheckoutID
	p.state.Status = domain.OrderCharging
	var charge activities.ChargeResult
	err := workflow.ExecuteActivity(chargeOptions(ctx), a.Charge, in).Get(ctx, &charge)
	if err != nil {
		if f, ok := finalFailure(err); ok {
			// The charge activity recorded the refusal on the order already.
			p.fail(f)
			return charge, true, nil
		}
		// Retries ran out with the outcome unknown: money may have moved, so compensate.
		_, err := p.compensate(ctx, in.IdempotencyKey, "", domain.Failure{
			Code: "payment_unavailable", Message: "the payment could not be completed; any amount taken has been refunded",
		})
		return charge, true, err
	}
	if charge.Action != nil {
		if done, err := p.authenticate(ctx, in, charge); done || err != nil {
			return charge, true, err
		}
	}
	p.state.Status = domain.OrderPaid
	return charge, false, nil
}

// authenticate waits, on a durable timer, for the customer to authenticate the payment. The
// storefront's report (an update) and the provider's webhook (a signal) each only prompt a
// check with the provider, which alone settles the payment; when the timer runs out the payment
// is canceled and the order expires. done is true when the checkout ended here.
func (p *checkout) authenticate(ctx workflow.Context, charge activities.ChargeInput, res activities.ChargeResult) (done bool, err error) {
	p.state.Status = domain.OrderRequiresAction
	// The wait may be long, so ops find the run by its order before it ends.
	p.index(ctx, SearchCheckoutStatus.ValueSet(string(domain.OrderRequiresAction)), SearchOrderID.ValueSet(p.state.OrderID),
		SearchAmount.ValueSet(p.state.Amount))
	p.state.Action = &PaymentAction{ClientSecret: res.Action.ClientSecret, Type: res.Action.Type, RedirectURL: res.Action.RedirectURL}
	timeout := p.in.AuthenticationTimeout
	if timeout <= 0 {
		timeout = DefaultAuthenticationTimeout
	}
	timerCtx, stopTimer := workflow.WithCancel(ctx)
	defer stopTimer()
	timer := workflow.NewTimer(timerCtx, timeout)
	timedOut := false
	workflow.Go(ctx, func(ctx workflow.Context) { timedOut = timer.Get(ctx, nil) == nil })

	in := activities.AuthenticationInput{OrderID: charge.OrderID, Provider: charge.Provider, PaymentRef: res.ProviderRef, ChargeKey: charge.IdempotencyKey}
	for {
		if err := workflow.Await(ctx, func() bool {
			return timedOut || p.outcomeSignals > p.outcomesSeen || p.authReports > p.authChecked
		}); err != nil {
			return true, err
		}
		reports := p.authReports
		p.outcomesSeen = p.outcomeSignals
		check, opts := a.VerifyAuthentication, authenticationOptions(ctx)
		if timedOut {
			check, opts = a.ExpireAuthentication, expireOptions(ctx)
		}
		var outcome activities.AuthenticationResult
		err := workflow.ExecuteActivity(opts, check, in).Get(ctx, &outcome)
		p.authChecked = reports
		if err != nil {
			if f, ok := finalFailure(err); ok {
				// The activity recorded the decline on the order.
				p.state.Action = nil
				p.fail(f)
				return true, nil
			}
			if timedOut {
				return true, err // the cancel itself kept failing: ops must look
			}
			// The provider could not be asked just now; the next prompt or the timer tries again.
			p.logger(ctx).Warn("authentication check failed", "error", err)
			continue
		}
		switch outcome.Status {
		case activities.AuthenticationSucceeded:
			p.state.Action = nil
			return false, nil
		case activities.AuthenticationExpired:
			p.state.Action = nil
			p.state.Status, p.state.FailureCode = domain.OrderExpired, "authentication_timeout"
			p.state.FailureMessage = "the payment was not authenticated in time and has been canceled; nothing was charged"
			return true, nil
		}
		// Still waiting for the customer.
	}
}

// subscribe sells a plan: save the customer's payment method with the provider, charge the
// first period unless the plan starts with a trial, then register the customer and start the
// subscription. If that fails after money moved, the charge is refunded.
func (p *checkout) subscribe(ctx workflow.Context, customer activities.Customer, order activities.OrderSummary) (CheckoutState, error) {
	workflowID := workflow.GetInfo(ctx).WorkflowExecution.ID
	var saved activities.SavedPaymentMethod
	err := workflow.ExecuteActivity(chargeOptions(ctx), a.SavePaymentMethod, activities.SavePaymentMethodInput{
		OrderID: order.OrderID, Provider: p.in.Payment.Provider, Token: p.in.Payment.Token,
		Email: customer.Email, Name: customer.Name, IdempotencyKey: workflowID + "/save-payment-method",
	}).Get(ctx, &saved)
	if err != nil {
		if f, ok := finalFailure(err); ok {
			// The activity recorded the refusal on the order already.
			return p.fail(f), nil
		}
		// Saving a card moves no money, so giving up needs no refund.
		unavailable := domain.Failure{Code: "payment_unavailable", Message: "your payment method could not be saved; nothing was charged"}
		if err := workflow.ExecuteLocalActivity(orderOptions(ctx), a.FailOrder,
			activities.OrderFailure{Caller: activities.CallerCheckout, OrderID: order.OrderID, Failure: unavailable}).Get(ctx, nil); err != nil {
			return p.state, err
		}
		return p.fail(unavailable), nil
	}

	chargeKey := workflowID + "/charge"
	var charge activities.ChargeResult
	if order.Amount > 0 {
		var done bool
		charge, done, err = p.charge(ctx, activities.ChargeInput{
			Token: saved.PaymentMethodRef, CustomerRef: saved.CustomerRef, IdempotencyKey: chargeKey,
		}, order)
		if done {
			return p.state, err
		}
	}
	if err := p.registerAndComplete(ctx, customer, order.OrderID, &saved); err != nil {
		p.logger(ctx).Error("registration failed after the payment method was saved", "error", err)
		if order.Amount > 0 {
			return p.compensate(ctx, chargeKey, charge.ProviderRef, registrationFailed)
		}
		noAccount := domain.Failure{Code: "registration_failed", Message: "we could not set up your account; nothing was charged"}
		if err := workflow.ExecuteLocalActivity(orderOptions(ctx), a.FailOrder,
			activities.OrderFailure{Caller: activities.CallerCheckout, OrderID: order.OrderID, Failure: noAccount}).Get(ctx, nil); err != nil {
			return p.state, err
		}
		return p.fail(noAccount), nil
	}
	p.state.Status = domain.OrderCompleted
	return p.state, nil
}

// registerAndComplete registers the customer in the User Directory, starts the
// subscription when the order bought a plan (saved is its payment method), and completes the order.
func (p *checkout) registerAndComplete(ctx workflow.Context, customer activities.Customer, orderID string, saved *activities.SavedPaymentMethod) error {
	ctx = afterChargeOptions(ctx)
	var userID string
	if err := workflow.ExecuteLocalActivity(ctx, a.RegisterUser, customer).Get(ctx, &userID); err != nil {
		return fmt.Errorf("register user: %w", err)
	}
	// The User Directory's confirm used to follow the payment; since sign-in by magic link, a
	// customer is confirmed when they follow a link, which proves the address. Checkouts
	// recorded before keep their step.
	if !p.fast && workflow.GetVersion(ctx, "confirm-on-sign-in", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		if err := workflow.ExecuteLocalActivity(ctx, a.ConfirmUser, userID).Get(ctx, nil); err != nil {
			return fmt.Errorf("confirm user: %w", err)
		}
	}
	if saved != nil {
		var sub activities.Subscription
		if err := workflow.ExecuteLocalActivity(ctx, a.CreateSubscription, activities.CreateSubscriptionInput{
			OrderID: orderID, UserID: userID, Provider: p.in.Payment.Provider, CustomerRef: saved.CustomerRef,
			PaymentMethodRef: saved.PaymentMethodRef, Start: workflow.Now(ctx),
		}).Get(ctx, &sub); err != nil {
			return fmt.Errorf("create subscription: %w", err)
		}
		p.state.SubscriptionID, p.periodEnd = sub.ID, &sub.CurrentPeriodEnd
	}
	complete := activities.CompleteOrderInput{Caller: activities.CallerCheckout, OrderID: orderID, UserID: userID}
	if p.fast {
		receipt := p.receipt()
		complete.Receipt = &receipt
	}
	if err := workflow.ExecuteLocalActivity(ctx, a.CompleteOrder, complete).Get(ctx, nil); err != nil {
		return fmt.Errorf("complete order: %w", err)
	}
	return nil
}

// compensate refunds whatever the charge took. It runs on a disconnected context so that it
// completes even if the workflow is being canceled.
func (p *checkout) compensate(ctx workflow.Context, chargeKey, paymentRef string, reason domain.Failure) (CheckoutState, error) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	var refund activities.RefundResult
	err := workflow.ExecuteActivity(refundOptions(ctx), a.Refund, activities.RefundInput{
		OrderID: p.state.OrderID, Provider: p.in.Payment.Provider, PaymentRef: paymentRef, ChargeKey: chargeKey,
		ChargeToken:    p.in.Payment.Token,
		IdempotencyKey: workflow.GetInfo(ctx).WorkflowExecution.ID + "/refund", Amount: p.state.Amount,
		Currency: p.state.Currency, Reason: reason,
	}).Get(ctx, &refund)
	if err != nil {
		// Money may be held without an order to show for it: fail the run so that ops see it.
		p.state.FailureCode, p.state.FailureMessage = "refund_failed", "the refund could not be completed"
		return p.state, fmt.Errorf("refund after %s: %w", reason.Code, err)
	}
	if refund.NothingCharged {
		if err := workflow.ExecuteLocalActivity(orderOptions(ctx), a.FailOrder,
			activities.OrderFailure{Caller: activities.CallerCheckout, OrderID: p.state.OrderID, Failure: reason}).Get(ctx, nil); err != nil {
			return p.state, err
		}
		return p.fail(reason), nil
	}
	p.state.Status, p.state.FailureCode, p.state.FailureMessage = domain.OrderRefunded, reason.Code, reason.Message
	return p.state, nil
}

func (p *checkout) fail(f domain.Failure) CheckoutState {
	p.state.Status, p.state.FailureCode, p.state.DeclineCode, p.state.FailureMessage = domain.OrderFailed, f.Code, f.DeclineCode, f.Message
	return p.state
}

// finalFailure extracts the Failure carried by a final application error.
func finalFailure(err error) (domain.Failure, bool) {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() {
		return domain.Failure{}, false
	}
	var f domain.Failure
	if !appErr.HasDetails() || appErr.Details(&f) != nil || f.Code == "" {
		f = domain.Failure{Code: "failed", Message: appErr.Message()}
	}
	return f, true
}
