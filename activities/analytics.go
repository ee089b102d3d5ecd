package activities

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/cartflow/cartflow/internal/analytics"
	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// Funnel events sent to Mixpanel, one per business fact, from the activity that makes it happen.
const (
	FunnelCheckoutStarted      = "checkout_started"
	FunnelPaymentSucceeded     = "payment_succeeded"
	FunnelPaymentFailed        = "payment_failed"
	FunnelUserRegistered       = "user_registered"
	FunnelCheckoutCompleted    = "checkout_completed"
	FunnelSubscriptionStarted  = "subscription_started"
	FunnelSubscriptionRenewed  = "subscription_renewed"
	FunnelSubscriptionPastDue  = "subscription_past_due"
	FunnelSubscriptionCanceled = "subscription_canceled"
	FunnelRefundIssued         = "refund_issued"
)

// analyticsLookupTimeout bounds the read an event needs, so analytics never holds up an activity for long.
const analyticsLookupTimeout = time.Second

// customer is who an event belongs to. The distinct id is the user id once the customer is a
// registered user, and before that the SHA-256 of their standardized email (analytics.EmailID),
// so that no address reaches Mixpanel. Every event also carries $device_id (the email hash) and,
// when known, $user_id: with Mixpanel's Simplified ID Merge that links a customer's events from
// before registration (checkout_started, payment_*) to the user they became.
type customer struct {
	userID, email string
}

func (c customer) distinctID() string {
	if c.userID != "" {
		return c.userID
	}
	if c.email != "" {
		return analytics.EmailID(c.email)
	}
	return ""
}

// track queues a funnel event. Its $insert_id is derived from idParts and the event's name,
// which must name this one occurrence whatever retries or replays run the activity again (a
// workflow ID, an idempotency key, a subscription and its period). at must be as stable as the
// id, because Mixpanel deduplicates on the name, distinct id, time and $insert_id together;
// when at is zero the activity's first scheduled time is used, which the Temporal server keeps
// across retries of a regular activity (a local activity re-run after a lost workflow task
// gets a new one, and Mixpanel's daily compaction still matches it by insert id). Analytics is
// best-effort: nothing here blocks or fails the activity.
func (a *Activities) track(ctx context.Context, name string, who customer, at time.Time, props map[string]any, idParts ...string) {
	if !a.Analytics.Enabled() || len(idParts) == 0 {
		return
	}
	if at.IsZero() {
		at = firstScheduled(ctx)
	}
	p := make(map[string]any, len(props)+2)
	for k, v := range props {
		p[k] = v
	}
	if who.email != "" {
		p["$device_id"] = analytics.EmailID(who.email)
	}
	if who.userID != "" {
		p["$user_id"] = who.userID
	}
	a.Analytics.Track(analytics.Event{
		Name: name, DistinctID: who.distinctID(), InsertID: analytics.InsertID(append(idParts, name)...),
		Time: at, Properties: p,
	})
}

// firstScheduled is when the running activity was first scheduled, or now outside an activity.
func firstScheduled(ctx context.Context) time.Time {
	if activity.IsActivity(ctx) {
		if t := activity.GetInfo(ctx).ScheduledTime; !t.IsZero() {
			return t
		}
	}
	return time.Now()
}

// runningWorkflowID is the ID of the workflow running the activity, or empty outside one.
func runningWorkflowID(ctx context.Context) string {
	if activity.IsActivity(ctx) {
		return activity.GetInfo(ctx).WorkflowExecution.ID
	}
	return ""
}

// analyticsOrder reads an order for an event's customer and figures. It is bounded in time and
// detached from the activity's cancellation, and a failure only costs the event.
func (a *Activities) analyticsOrder(ctx context.Context, orderID string) (store.Order, bool) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), analyticsLookupTimeout)
	defer cancel()
	o, err := a.Store.OrderHeader(lctx, orderID)
	if err != nil {
		a.logger(ctx).DebugContext(ctx, "analytics event skipped: order not read", "order_id", orderID, "error", err)
		return o, false
	}
	return o, true
}

func orderProperties(o store.Order) map[string]any {
	return map[string]any{
		"order_id": o.ID, "amount": o.TotalAmount,
		"currency": o.Currency, "provider": o.Provider,
	}
}

// trackCheckoutStarted sends checkout_started for a priced order, once per checkout workflow.
func (a *Activities) trackCheckoutStarted(ctx context.Context, in CreateOrderInput, createdAt time.Time, s OrderSummary) {
	if !a.Analytics.Enabled() {
		return
	}
	// The checkout's workflow ID, as written on the order; the running one is the same.
	wfID := in.WorkflowID
	if wfID == "" {
		wfID = runningWorkflowID(ctx)
	}
	props := map[string]any{
		"order_id": s.OrderID, "amount": s.Amount,
		"currency": s.Currency, "provider": in.Provider,
	}
	if s.Plan != nil {
		props["plan_sku"] = s.Plan.SKU
	}
	// The order's creation time is stored once, so every retry reports the same time.
	a.track(ctx, FunnelCheckoutStarted, customer{email: in.Customer.Email}, createdAt, props, wfID)
}

// trackPayment sends payment_succeeded when err is nil and payment_failed when err is a final
// refusal of the charge under key (one of ProviderRefusals); any other error is a retry to come
// and sends nothing.
func (a *Activities) trackPayment(ctx context.Context, orderID, key string, offSession bool, err error) {
	if !a.Analytics.Enabled() {
		return
	}
	name := FunnelPaymentSucceeded
	var failure domain.Failure
	if err != nil {
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || !appErr.NonRetryable() || !IsProviderRefusal(appErr.Type()) {
			return
		}
		if appErr.HasDetails() {
			_ = appErr.Details(&failure)
		}
		name = FunnelPaymentFailed
	}
	o, ok := a.analyticsOrder(ctx, orderID)
	if !ok {
		return
	}
	props := orderProperties(o)
	props["off_session"] = offSession
	if name == FunnelPaymentFailed {
		props["failure_code"] = failure.Code
		if failure.DeclineCode != "" {
			props["decline_code"] = failure.DeclineCode
		}
	}
	// The idempotency key names the workflow, the step and (for a renewal) the attempt.
	a.track(ctx, name, customer{userID: o.UserID, email: o.Email}, time.Time{}, props, key)
}

// trackUserRegistered sends user_registered when the checkout made a new account: once per
// user, keyed by the user and timed by the account's creation, both stored once, so that any
// retry or re-run resends an exact duplicate. A returning customer's account (already
// confirmed by an earlier checkout) sends nothing.
func (a *Activities) trackUserRegistered(ctx context.Context, u store.User) {
	if u.ConfirmedAt != nil || !a.Analytics.Enabled() {
		return
	}
	a.track(ctx, FunnelUserRegistered, customer{userID: u.ID, email: u.Email}, u.CreatedAt, nil, u.ID)
}

// trackCheckoutCompleted sends checkout_completed for a checkout's order (observeOrderCompleted
// sends nothing for the renewal orders that CompleteOrder also completes).
func (a *Activities) trackCheckoutCompleted(ctx context.Context, orderID string) {
	if !a.Analytics.Enabled() {
		return
	}
	o, ok := a.analyticsOrder(ctx, orderID)
	if !ok {
		return
	}
	at := time.Time{}
	if o.CompletedAt != nil {
		at = *o.CompletedAt // set once, so a retry reports the same time
	}
	a.track(ctx, FunnelCheckoutCompleted, customer{userID: o.UserID, email: o.Email}, at, orderProperties(o), o.WorkflowID)
}

// trackSubscription sends a subscription event. period names the billing period the change
// belongs to (zero for a change that happens once per subscription), and at is its time when
// the subscription records one.
func (a *Activities) trackSubscription(ctx context.Context, name string, sub store.Subscription, period, at time.Time) {
	if !a.Analytics.Enabled() {
		return
	}
	ids := []string{sub.ID}
	switch {
	case !period.IsZero():
		ids = append(ids, period.UTC().Format(time.RFC3339))
	case name == FunnelSubscriptionRenewed || name == FunnelSubscriptionPastDue:
		// A per-period event without its period: the renewal workflow's ID names the period.
		wfID := runningWorkflowID(ctx)
		if wfID == "" {
			return
		}
		ids = append(ids, wfID)
	}
	props := map[string]any{
		"subscription_id": sub.ID, "plan_sku": sub.SKU, "amount": sub.PriceAmount,
		"currency": sub.Currency, "provider": sub.Provider,
	}
	if sub.OrderID != "" {
		props["order_id"] = sub.OrderID
	}
	if name == FunnelSubscriptionPastDue {
		props["dunning_attempts"] = sub.DunningAttempts
	}
	a.track(ctx, name, customer{userID: sub.UserID, email: sub.Email}, at, props, ids...)
}

// trackRefund sends refund_issued for a refund that returned money, once per refund key.
func (a *Activities) trackRefund(ctx context.Context, in RefundInput, res billing.RefundResult) {
	if res.NothingCharged || !a.Analytics.Enabled() {
		return
	}
	o, ok := a.analyticsOrder(ctx, in.OrderID)
	if !ok {
		return
	}
	amount := res.Amount
	if amount == 0 {
		amount = in.Amount
	}
	props := orderProperties(o)
	props["amount"], props["currency"] = amount, in.Currency
	props["requested"] = in.Requested
	if in.Reason.Code != "" {
		props["reason_code"] = in.Reason.Code
	}
	a.track(ctx, FunnelRefundIssued, customer{userID: o.UserID, email: o.Email}, time.Time{}, props, in.IdempotencyKey)
}

// canceledAt is when the subscription was canceled, which the store records once, or zero.
func canceledAt(sub store.Subscription) time.Time {
	if sub.CanceledAt != nil {
		return *sub.CanceledAt
	}
	return time.Time{}
}
