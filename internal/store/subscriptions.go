package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store/db"
	"github.com/jackc/pgx/v5"
)

// Subscription is a customer's plan as sold; no JSON names, since activities and the BFF send views of their own.
type Subscription struct {
	ID                 string
	UserID             string
	Email              string
	Name               string
	SKU                string
	PlanName           string
	OrderID            string
	Status             domain.SubscriptionStatus
	Provider           string
	CustomerRef        string
	PaymentMethodRef   string
	PriceAmount        int64
	Currency           string
	BillingInterval    string
	CurrentPeriodStart time.Time
	CurrentPeriodEnd   time.Time
	TrialEnd           *time.Time
	CancelAtPeriodEnd  bool
	CanceledAt         *time.Time
	DunningAttempts    int
}

// subscriptionFrom builds a Subscription from its row and the customer and plan names joined to it.
func subscriptionFrom(r db.Subscription, email, name, plan string) Subscription {
	return Subscription{
		ID: r.ID, UserID: r.UserID, Email: email, Name: name, SKU: r.Sku, PlanName: plan, OrderID: deref(r.OrderID),
		Status: r.Status, Provider: r.Provider, CustomerRef: deref(r.ProviderCustomerRef),
		PaymentMethodRef: deref(r.ProviderPaymentMethodRef), PriceAmount: r.PriceAmount, Currency: r.Currency,
		BillingInterval: r.BillingInterval, CurrentPeriodStart: r.CurrentPeriodStart, CurrentPeriodEnd: r.CurrentPeriodEnd,
		TrialEnd: r.TrialEnd, CancelAtPeriodEnd: r.CancelAtPeriodEnd, CanceledAt: r.CanceledAt,
		DunningAttempts: int(r.DunningAttempts),
	}
}

// AddInterval moves t forward by one billing interval.
func AddInterval(t time.Time, interval string) (time.Time, error) {
	switch interval {
	case "day":
		return t.AddDate(0, 0, 1), nil
	case "week":
		return t.AddDate(0, 0, 7), nil
	case "month":
		return t.AddDate(0, 1, 0), nil
	case "year":
		return t.AddDate(1, 0, 0), nil
	}
	return t, fmt.Errorf("unknown billing interval %q", interval)
}

// NewSubscription is a plan bought in a checkout.
type NewSubscription struct {
	OrderID          string
	UserID           string
	Provider         string
	CustomerRef      string
	PaymentMethodRef string
	// Start is when the subscription begins: the checkout's time, from the workflow.
	Start time.Time
}

// CreateSubscription starts the subscription bought by an order: a trial when the plan has one,
// else a first period that the order paid for. The plan's price, currency and interval are taken
// from the order line, so that a later catalog change does not reprice it. It is idempotent per
// order: a retry returns the subscription the first call created.
func (s *Store) CreateSubscription(ctx context.Context, n NewSubscription) (Subscription, error) {
	var id string
	err := s.inTx(ctx, func(q *db.Queries) error {
		var err error
		id, err = q.SubscriptionIDByOrder(ctx, n.OrderID)
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		plan, err := q.OrderPlan(ctx, n.OrderID)
		if err != nil {
			return fmt.Errorf("read plan of order %s: %w", n.OrderID, err)
		}
		interval := deref(plan.BillingInterval)
		status, end, trialEnd := domain.SubscriptionActive, time.Time{}, (*time.Time)(nil)
		if plan.TrialDays > 0 {
			status, end = domain.SubscriptionTrialing, n.Start.AddDate(0, 0, int(plan.TrialDays))
			trialEnd = &end
		} else if end, err = AddInterval(n.Start, interval); err != nil {
			return err
		}
		id, err = q.InsertSubscription(ctx, db.InsertSubscriptionParams{
			UserID: n.UserID, Sku: plan.Sku, OrderID: n.OrderID, Status: status, Provider: n.Provider,
			CustomerRef: n.CustomerRef, PaymentMethodRef: n.PaymentMethodRef,
			CurrentPeriodStart: n.Start, CurrentPeriodEnd: end, TrialEnd: trialEnd,
			PriceAmount: plan.UnitAmount, Currency: deref(plan.Currency), BillingInterval: interval,
		})
		if err != nil {
			return fmt.Errorf("insert subscription: %w", err)
		}
		if err := q.SetUserProviderCustomer(ctx, db.SetUserProviderCustomerParams{ID: n.UserID, CustomerRef: n.CustomerRef}); err != nil {
			return fmt.Errorf("record provider customer: %w", err)
		}
		return recordTransition(ctx, q, id, "", status, "purchased in checkout")
	})
	if err != nil {
		return Subscription{}, fmt.Errorf("create subscription for order %s: %w", n.OrderID, err)
	}
	return s.SubscriptionByID(ctx, id)
}

// recordTransition writes a state change to the subscription's history and brings the user's
// subscription status in the User Directory up to date, in the caller's transaction.
func recordTransition(ctx context.Context, q *db.Queries, subscriptionID string, from, to domain.SubscriptionStatus, reason string) error {
	if err := q.InsertSubscriptionEvent(ctx, db.InsertSubscriptionEventParams{
		SubscriptionID: subscriptionID, FromStatus: string(from), ToStatus: to, Reason: reason,
	}); err != nil {
		return fmt.Errorf("record subscription event: %w", err)
	}
	if err := q.RefreshUserSubscriptionStatus(ctx, subscriptionID); err != nil {
		return fmt.Errorf("update user subscription status: %w", err)
	}
	return nil
}

// SubscriptionByID returns a subscription with its customer and plan name.
func (s *Store) SubscriptionByID(ctx context.Context, id string) (Subscription, error) {
	r, err := s.q.SubscriptionByID(ctx, id)
	if err != nil {
		return Subscription{}, readFailed(err, "subscription "+id)
	}
	return subscriptionFrom(r.Subscription, r.CustomerEmail, r.CustomerName, r.PlanName), nil
}

// SubscriptionByOrder returns the subscription an order bought.
func (s *Store) SubscriptionByOrder(ctx context.Context, orderID string) (Subscription, error) {
	r, err := s.q.SubscriptionByOrder(ctx, orderID)
	if err != nil {
		return Subscription{}, notFound(err)
	}
	return subscriptionFrom(r.Subscription, r.CustomerEmail, r.CustomerName, r.PlanName), nil
}

// SubscriptionEvent is one move between subscription states.
type SubscriptionEvent struct {
	From   domain.SubscriptionStatus `json:"from,omitempty"`
	To     domain.SubscriptionStatus `json:"to"`
	Reason string                    `json:"reason"`
	At     time.Time                 `json:"at"`
}

func eventFrom(r db.SubscriptionEvent) SubscriptionEvent {
	return SubscriptionEvent{From: deref(r.FromStatus), To: r.ToStatus, Reason: r.Reason, At: r.At}
}

// SubscriptionHistory lists a subscription's state changes, oldest first.
func (s *Store) SubscriptionHistory(ctx context.Context, id string) ([]SubscriptionEvent, error) {
	rows, err := s.q.SubscriptionHistory(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("query subscription history: %w", err)
	}
	return convert(rows, eventFrom), nil
}

// ErrPeriodMoved means the subscription is no longer in the period a renewal was started for:
// an earlier renewal already extended it, or it ended.
var ErrPeriodMoved = errors.New("subscription is not in this period any more")

// transition moves a subscription to status to with move, one of the transition queries in
// queries/subscriptions.sql, and records why. Each query lists in its WHERE the statuses it may
// start from; the row is locked first so that a move that matches nothing can be told apart: a
// retry of a move already made (the subscription is in to) succeeds, anything else is refused
// with ErrTransition. A non-zero periodEnd names the period the move is for, and a subscription
// that has left it gets ErrPeriodMoved.
func (s *Store) transition(ctx context.Context, id string, periodEnd time.Time, to domain.SubscriptionStatus, reason string,
	move func(q *db.Queries) (int64, error)) (Subscription, error) {
	err := s.inTx(ctx, func(q *db.Queries) error {
		current, err := q.LockSubscription(ctx, id)
		if err != nil {
			return notFound(err)
		}
		if !periodEnd.IsZero() && !current.CurrentPeriodEnd.Equal(periodEnd) {
			return ErrPeriodMoved
		}
		rows, err := move(q)
		if err != nil {
			return fmt.Errorf("update subscription: %w", err)
		}
		if rows == 0 {
			if current.Status == to {
				return nil // a retry of a move already made
			}
			return fmt.Errorf("subscription %s is %s: %w", id, current.Status, ErrTransition)
		}
		if current.Status == to {
			return nil // a change within a status (another dunning attempt) is not a transition
		}
		return recordTransition(ctx, q, id, current.Status, to, reason)
	})
	if err != nil {
		return Subscription{}, fmt.Errorf("move subscription %s to %s: %w", id, to, err)
	}
	return s.SubscriptionByID(ctx, id)
}

// RenewSubscription extends a subscription paid for the period ending periodEnd by one interval,
// makes it active and clears its dunning. Renewing the same period twice changes nothing.
func (s *Store) RenewSubscription(ctx context.Context, id string, periodEnd time.Time, reason string) (Subscription, error) {
	sub, err := s.SubscriptionByID(ctx, id)
	if err != nil {
		return sub, err
	}
	if sub.CurrentPeriodStart.Equal(periodEnd) && sub.Status == domain.SubscriptionActive {
		return sub, nil // this period was renewed already
	}
	next, err := AddInterval(periodEnd, sub.BillingInterval)
	if err != nil {
		return sub, err
	}
	return s.transition(ctx, id, periodEnd, domain.SubscriptionActive, reason, func(q *db.Queries) (int64, error) {
		return q.RenewSubscription(ctx, db.RenewSubscriptionParams{ID: id, PeriodEnd: periodEnd, NextPeriodEnd: next})
	})
}

// MarkPastDue records a declined renewal attempt: the subscription is past due with attempts failed so far.
func (s *Store) MarkPastDue(ctx context.Context, id string, periodEnd time.Time, attempts int, reason string) (Subscription, error) {
	return s.transition(ctx, id, periodEnd, domain.SubscriptionPastDue, reason, func(q *db.Queries) (int64, error) {
		return q.MarkSubscriptionPastDue(ctx, db.MarkSubscriptionPastDueParams{ID: id, PeriodEnd: periodEnd, DunningAttempts: int32(attempts)})
	})
}

// CancelSubscription ends a subscription now. Canceling twice keeps the first cancellation.
func (s *Store) CancelSubscription(ctx context.Context, id, reason string) (Subscription, error) {
	return s.transition(ctx, id, time.Time{}, domain.SubscriptionCanceled, reason, func(q *db.Queries) (int64, error) {
		return q.CancelSubscription(ctx, id)
	})
}

// SetCancelAtPeriodEnd schedules (true) or withdraws (false) a cancellation at the end of the
// current period. It refuses a subscription that is already canceled.
func (s *Store) SetCancelAtPeriodEnd(ctx context.Context, id string, cancel bool) (Subscription, error) {
	rows, err := s.q.SetCancelAtPeriodEnd(ctx, db.SetCancelAtPeriodEndParams{ID: id, Cancel: cancel})
	if err != nil {
		return Subscription{}, fmt.Errorf("set cancel at period end: %w", err)
	}
	if rows == 0 {
		sub, err := s.SubscriptionByID(ctx, id)
		if err != nil {
			return sub, err
		}
		return sub, fmt.Errorf("subscription %s is canceled: %w", id, ErrTransition)
	}
	return s.SubscriptionByID(ctx, id)
}

// SetPaymentMethod records the customer's new saved payment method.
func (s *Store) SetPaymentMethod(ctx context.Context, id, customerRef, paymentMethodRef string) (Subscription, error) {
	if err := s.q.SetPaymentMethod(ctx, db.SetPaymentMethodParams{
		ID: id, CustomerRef: customerRef, PaymentMethodRef: paymentMethodRef,
	}); err != nil {
		return Subscription{}, fmt.Errorf("set payment method: %w", err)
	}
	return s.SubscriptionByID(ctx, id)
}

// DueSubscription is a subscription whose period has ended, as the sweep pages through them.
type DueSubscription struct {
	ID        string    `json:"id"`
	PeriodEnd time.Time `json:"period_end"`
}

// DueSubscriptions pages, in index order, through live subscriptions whose period ended at or
// before asOf, starting after the keyset position (afterEnd, afterID).
func (s *Store) DueSubscriptions(ctx context.Context, asOf, afterEnd time.Time, afterID string, limit int) ([]DueSubscription, error) {
	if afterID == "" {
		afterID = "00000000-0000-0000-0000-000000000000"
	}
	rows, err := s.q.DueSubscriptions(ctx, db.DueSubscriptionsParams{
		AsOf: asOf, AfterEnd: afterEnd, AfterID: afterID, MaxRows: int64(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("query due subscriptions: %w", err)
	}
	return convert(rows, func(r db.DueSubscriptionsRow) DueSubscription {
		return DueSubscription{ID: r.ID, PeriodEnd: r.CurrentPeriodEnd}
	}), nil
}

// TrialsEndingBy lists trialing subscriptions whose trial ends after asOf and at or before until
// and whose reminder for that trial end has not been recorded, at most limit of them.
func (s *Store) TrialsEndingBy(ctx context.Context, asOf, until time.Time, limit int) ([]Subscription, error) {
	rows, err := s.q.TrialsEndingBy(ctx, db.TrialsEndingByParams{AsOf: asOf, Until: until, MaxRows: int64(limit)})
	if err != nil {
		return nil, fmt.Errorf("query ending trials: %w", err)
	}
	return convert(rows, func(r db.TrialsEndingByRow) Subscription {
		return subscriptionFrom(r.Subscription, r.CustomerEmail, r.CustomerName, r.PlanName)
	}), nil
}

// MarkTrialReminded records that the reminder for the subscription's trial ending at trialEnd went out.
func (s *Store) MarkTrialReminded(ctx context.Context, id string, trialEnd time.Time) error {
	if err := s.q.MarkTrialReminded(ctx, db.MarkTrialRemindedParams{ID: id, TrialEnd: trialEnd}); err != nil {
		return fmt.Errorf("mark trial reminded: %w", err)
	}
	return nil
}

// NewRenewalOrder is the order that bills one subscription period.
type NewRenewalOrder struct {
	SubscriptionID string
	// WorkflowID is the renewal workflow's ID; it is also the order's checkout id and idempotency key.
	WorkflowID string
}

// CreateRenewalOrder writes the order for a renewal, priced from the subscription, once per workflow.
func (s *Store) CreateRenewalOrder(ctx context.Context, n NewRenewalOrder) (Order, error) {
	var id string
	err := s.inTx(ctx, func(q *db.Queries) error {
		var err error
		id, err = q.InsertRenewalOrder(ctx, db.InsertRenewalOrderParams{SubscriptionID: n.SubscriptionID, WorkflowID: n.WorkflowID})
		if errors.Is(err, pgx.ErrNoRows) {
			id, err = q.OrderIDByWorkflow(ctx, n.WorkflowID)
		}
		return err
	})
	if err != nil {
		return Order{}, fmt.Errorf("create renewal order %s: %w", n.WorkflowID, err)
	}
	row, err := s.q.OrderByID(ctx, id)
	return s.withLines(ctx, row, err)
}
