package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// SavePaymentMethodInput asks to keep the customer's payment method with the provider.
type SavePaymentMethodInput struct {
	// OrderID, for a checkout, is failed with the reason when the card is refused.
	OrderID string `json:"order_id,omitempty"`
	// SubscriptionID, for a change of payment method, records the new one on the subscription.
	SubscriptionID string `json:"subscription_id,omitempty"`
	Provider       string `json:"provider"`
	Token          string `json:"token"`
	// CustomerRef is the provider customer to attach to; empty creates one.
	CustomerRef    string `json:"customer_ref,omitempty"`
	Email          string `json:"email"`
	Name           string `json:"name"`
	IdempotencyKey string `json:"idempotency_key"`
}

// SavePaymentMethod saves the payment method with the provider. A refused card is final and,
// in a checkout, fails the order; a provider that cannot keep payment methods is final too.
func (a *Activities) SavePaymentMethod(ctx context.Context, in SavePaymentMethodInput) (SavedPaymentMethod, error) {
	gw, ok := a.Gateways[in.Provider]
	recurring, canSave := gw.(billing.RecurringGateway)
	if !ok || !canSave {
		err := fmt.Errorf("provider %q cannot keep payment methods", in.Provider)
		return SavedPaymentMethod{}, a.refuseSave(ctx, in.OrderID, ErrTypeUnknownProvider, err,
			domain.Failure{Code: "subscriptions_unsupported", Message: "this payment provider cannot be used for subscriptions"})
	}
	reference := in.SubscriptionID
	if reference == "" {
		reference = in.OrderID
	}
	// The heartbeat covers the card check's provider call too: a provider slower than the
	// heartbeat timeout would otherwise time out every attempt before the save began.
	stop := a.heartbeat(ctx)
	// Saving runs the bank's card check: a $0 trial or a card change is what a card tester
	// would use instead of a charge, so the same velocity limits apply, and its declines count.
	fingerprint, err := a.screenCard(ctx, in.Provider, in.Token)
	if err != nil {
		stop()
		if errors.Is(err, errTooManyDeclines) {
			failure, errType, _ := finalPaymentFailure(err)
			return SavedPaymentMethod{}, a.refuseSave(ctx, in.OrderID, errType, err, failure)
		}
		return SavedPaymentMethod{}, err
	}
	saved, err := recurring.SavePaymentMethod(ctx, billing.SavePaymentMethodRequest{
		IdempotencyKey: in.IdempotencyKey, CustomerRef: in.CustomerRef, Token: in.Token,
		Email: in.Email, Name: in.Name, Reference: reference,
	})
	stop()
	a.recordDecline(ctx, in.Provider, fingerprint, err)
	if err != nil {
		failure, errType, final := finalPaymentFailure(err)
		if !final {
			a.logger(ctx).WarnContext(ctx, "saving the payment method failed, will retry", "error", err)
			return savedPaymentMethodOf(saved), err
		}
		return savedPaymentMethodOf(saved), a.refuseSave(ctx, in.OrderID, errType, err, failure)
	}
	if in.SubscriptionID != "" {
		if _, err := a.Store.SetPaymentMethod(ctx, in.SubscriptionID, saved.CustomerRef, saved.PaymentMethodRef); err != nil {
			return savedPaymentMethodOf(saved), err
		}
	}
	a.logger(ctx).InfoContext(ctx, "payment method saved", "order_id", in.OrderID, "subscription_id", in.SubscriptionID)
	return savedPaymentMethodOf(saved), nil
}

// refuseSave records a refused payment method on the checkout's order, if any, and returns it as final.
func (a *Activities) refuseSave(ctx context.Context, orderID, errType string, err error, failure domain.Failure) error {
	if orderID != "" {
		if ferr := a.Store.FailOrder(ctx, orderID, failure); ferr != nil && !errors.Is(ferr, store.ErrTransition) {
			return ferr
		}
	}
	return final(failure.Message, errType, err, failure)
}

// CreateSubscriptionInput starts the subscription a checkout bought.
type CreateSubscriptionInput struct {
	OrderID          string    `json:"order_id"`
	UserID           string    `json:"user_id"`
	Provider         string    `json:"provider"`
	CustomerRef      string    `json:"customer_ref"`
	PaymentMethodRef string    `json:"payment_method_ref"`
	Start            time.Time `json:"start"`
}

// CreateSubscription starts the subscription an order bought, once per order.
func (a *Activities) CreateSubscription(ctx context.Context, in CreateSubscriptionInput) (Subscription, error) {
	sub, err := a.Store.CreateSubscription(ctx, store.NewSubscription{
		OrderID: in.OrderID, UserID: in.UserID, Provider: in.Provider, CustomerRef: in.CustomerRef,
		PaymentMethodRef: in.PaymentMethodRef, Start: in.Start,
	})
	a.observeSubscription(ctx, FunnelSubscriptionStarted, sub, err, time.Time{}, in.Start)
	return subscriptionOf(sub), err
}

// LoadSubscription reads a subscription. One that does not exist is final.
func (a *Activities) LoadSubscription(ctx context.Context, id string) (Subscription, error) {
	sub, err := a.Store.SubscriptionByID(ctx, id)
	return subscriptionOf(sub), subscriptionError(err)
}

// RenewalOrderInput names the renewal whose order is written.
type RenewalOrderInput struct {
	SubscriptionID string `json:"subscription_id"`
	WorkflowID     string `json:"workflow_id"`
}

// CreateRenewalOrder writes the order that bills a subscription period, once per renewal workflow.
func (a *Activities) CreateRenewalOrder(ctx context.Context, in RenewalOrderInput) (OrderSummary, error) {
	o, err := a.Store.CreateRenewalOrder(ctx, store.NewRenewalOrder{SubscriptionID: in.SubscriptionID, WorkflowID: in.WorkflowID})
	if err != nil {
		return OrderSummary{}, err
	}
	return OrderSummary{OrderID: o.ID, Status: o.Status, Amount: o.TotalAmount, Currency: o.Currency}, nil
}

// SubscriptionChange is a state change of one subscription in one period.
type SubscriptionChange struct {
	SubscriptionID string `json:"subscription_id"`
	// PeriodEnd is the period the change belongs to; zero applies it whatever the period.
	PeriodEnd time.Time `json:"period_end,omitempty"`
	// Attempts is the number of declined renewal attempts, for MarkPastDue.
	Attempts int    `json:"attempts,omitempty"`
	Reason   string `json:"reason"`
}

// RenewSubscription extends a paid subscription by one period and makes it active.
func (a *Activities) RenewSubscription(ctx context.Context, in SubscriptionChange) (Subscription, error) {
	sub, err := a.Store.RenewSubscription(ctx, in.SubscriptionID, in.PeriodEnd, in.Reason)
	a.observeSubscription(ctx, FunnelSubscriptionRenewed, sub, err, in.PeriodEnd, time.Time{})
	return subscriptionOf(sub), subscriptionError(err)
}

// MarkPastDue records a declined renewal attempt.
func (a *Activities) MarkPastDue(ctx context.Context, in SubscriptionChange) (Subscription, error) {
	sub, err := a.Store.MarkPastDue(ctx, in.SubscriptionID, in.PeriodEnd, in.Attempts, in.Reason)
	a.observeSubscription(ctx, FunnelSubscriptionPastDue, sub, err, in.PeriodEnd, time.Time{})
	return subscriptionOf(sub), subscriptionError(err)
}

// CancelSubscription ends a subscription now.
func (a *Activities) CancelSubscription(ctx context.Context, in SubscriptionChange) (Subscription, error) {
	sub, err := a.Store.CancelSubscription(ctx, in.SubscriptionID, in.Reason)
	a.observeSubscription(ctx, FunnelSubscriptionCanceled, sub, err, time.Time{}, canceledAt(sub))
	return subscriptionOf(sub), subscriptionError(err)
}

// CancelAtPeriodEndInput schedules or withdraws a cancellation at the end of the period.
type CancelAtPeriodEndInput struct {
	SubscriptionID string `json:"subscription_id"`
	Cancel         bool   `json:"cancel"`
}

// SetCancelAtPeriodEnd schedules (Cancel) or withdraws a cancellation at the end of the period.
func (a *Activities) SetCancelAtPeriodEnd(ctx context.Context, in CancelAtPeriodEndInput) (Subscription, error) {
	sub, err := a.Store.SetCancelAtPeriodEnd(ctx, in.SubscriptionID, in.Cancel)
	return subscriptionOf(sub), subscriptionError(err)
}

// subscriptionError makes the errors that no retry can fix final.
func subscriptionError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return final(err.Error(), ErrTypeSubscriptionState, err, domain.Failure{Code: "subscription_not_found", Message: "no such subscription"})
	case errors.Is(err, store.ErrPeriodMoved):
		return final(err.Error(), ErrTypePeriodMoved, err, domain.Failure{Code: "period_moved", Message: "the subscription has moved on from this period"})
	case errors.Is(err, store.ErrTransition):
		return final(err.Error(), ErrTypeSubscriptionState, err, domain.Failure{Code: "subscription_state", Message: "the subscription cannot make this change"})
	}
	return err
}

// DuePage asks for one page of due subscriptions after a keyset position.
type DuePage struct {
	AsOf     time.Time `json:"as_of"`
	AfterEnd time.Time `json:"after_end"`
	AfterID  string    `json:"after_id"`
	Limit    int       `json:"limit"`
}

// DueSubscriptions returns one page of subscriptions whose period ended by AsOf, in index order.
func (a *Activities) DueSubscriptions(ctx context.Context, in DuePage) ([]DueSubscription, error) {
	due, err := a.Store.DueSubscriptions(ctx, in.AsOf, in.AfterEnd, in.AfterID, in.Limit)
	return dueSubscriptionsOf(due), err
}

// TrialReminderBatch asks for the reminders of trials ending within Before of AsOf.
type TrialReminderBatch struct {
	AsOf   time.Time     `json:"as_of"`
	Before time.Duration `json:"before"`
	Limit  int           `json:"limit"`
}

// SendTrialReminders emails the customers whose trial ends within the window, at most Limit of
// them, and returns how many it handled. Each reminder is keyed by the subscription and its
// trial end, so a retry never sends one twice.
func (a *Activities) SendTrialReminders(ctx context.Context, in TrialReminderBatch) (int, error) {
	subs, err := a.Store.TrialsEndingBy(ctx, in.AsOf, in.AsOf.Add(in.Before), in.Limit)
	if err != nil {
		return 0, err
	}
	for _, sub := range subs {
		trialEnd := *sub.TrialEnd
		if _, err := a.SendEmail(ctx, EmailInput{
			EventKey: "trial-ending/" + sub.ID + "/" + trialEnd.UTC().Format(time.RFC3339), To: sub.Email,
			TrialEnding: &TrialEndingEmail{Name: sub.Name, Plan: sub.PlanName, TrialEnd: trialEnd, Amount: sub.PriceAmount, Currency: sub.Currency,
				SubscriptionID: sub.ID},
		}); err != nil {
			return 0, err
		}
		if err := a.Store.MarkTrialReminded(ctx, sub.ID, trialEnd); err != nil {
			return 0, err
		}
	}
	return len(subs), nil
}
