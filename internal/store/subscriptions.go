package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/jackc/pgx/v5"
)

// Subscription is a customer's plan, priced as it was sold.
type Subscription struct {
	ID                 string                    `json:"id"`
	UserID             string                    `json:"user_id"`
	Email              string                    `json:"email"`
	Name               string                    `json:"name"`
	SKU                string                    `json:"sku"`
	PlanName           string                    `json:"plan_name"`
	OrderID            string                    `json:"order_id"`
	Status             domain.SubscriptionStatus `json:"status"`
	Provider           string                    `json:"provider"`
	CustomerRef        string                    `json:"customer_ref"`
	PaymentMethodRef   string                    `json:"payment_method_ref"`
	PriceAmount        int64                     `json:"price_amount"`
	Currency           string                    `json:"currency"`
	BillingInterval    string                    `json:"billing_interval"`
	CurrentPeriodStart time.Time                 `json:"current_period_start"`
	CurrentPeriodEnd   time.Time                 `json:"current_period_end"`
	TrialEnd           *time.Time                `json:"trial_end,omitempty"`
	CancelAtPeriodEnd  bool                      `json:"cancel_at_period_end"`
	CanceledAt         *time.Time                `json:"canceled_at,omitempty"`
	DunningAttempts    int                       `json:"dunning_attempts"`
}

const subscriptionColumns = `s.id::text, s.user_id::text, u.email, u.name, s.sku, p.name, coalesce(s.order_id::text, ''), s.status,
	s.provider, coalesce(s.provider_customer_ref, ''), coalesce(s.provider_payment_method_ref, ''), s.price_amount, s.currency,
	s.billing_interval, s.current_period_start, s.current_period_end, s.trial_end, s.cancel_at_period_end, s.canceled_at,
	s.dunning_attempts`

const subscriptionFrom = ` FROM subscriptions s JOIN users u ON u.id = s.user_id JOIN products p ON p.sku = s.sku `

func scanSubscription(row pgx.Row) (Subscription, error) {
	var s Subscription
	err := row.Scan(&s.ID, &s.UserID, &s.Email, &s.Name, &s.SKU, &s.PlanName, &s.OrderID, &s.Status, &s.Provider,
		&s.CustomerRef, &s.PaymentMethodRef, &s.PriceAmount, &s.Currency, &s.BillingInterval, &s.CurrentPeriodStart,
		&s.CurrentPeriodEnd, &s.TrialEnd, &s.CancelAtPeriodEnd, &s.CanceledAt, &s.DunningAttempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, ErrNotFound
	}
	return s, err
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
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT id::text FROM subscriptions WHERE order_id = $1`, n.OrderID).Scan(&id)
		if err == nil {
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var sku, interval string
		var price int64
		var currency string
		var trialDays int
		if err := tx.QueryRow(ctx, `SELECT i.sku, p.billing_interval, i.unit_amount, o.currency, p.trial_days
			FROM orders o JOIN order_items i ON i.order_id = o.id JOIN products p ON p.sku = i.sku
			WHERE o.id = $1 AND p.kind = 'subscription'`, n.OrderID).Scan(&sku, &interval, &price, &currency, &trialDays); err != nil {
			return fmt.Errorf("read plan of order %s: %w", n.OrderID, err)
		}
		status, end, trialEnd := domain.SubscriptionActive, time.Time{}, (*time.Time)(nil)
		if trialDays > 0 {
			status, end = domain.SubscriptionTrialing, n.Start.AddDate(0, 0, trialDays)
			trialEnd = &end
		} else if end, err = AddInterval(n.Start, interval); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `
			INSERT INTO subscriptions (user_id, sku, order_id, status, provider, provider_customer_ref, provider_payment_method_ref,
				current_period_start, current_period_end, trial_end, price_amount, currency, billing_interval)
			VALUES ($1, $2, $3, $4, $5, nullif($6, ''), nullif($7, ''), $8, $9, $10, $11, $12, $13)
			RETURNING id::text`,
			n.UserID, sku, n.OrderID, status, n.Provider, n.CustomerRef, n.PaymentMethodRef, n.Start, end, trialEnd,
			price, currency, interval).Scan(&id); err != nil {
			return fmt.Errorf("insert subscription: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET provider_customer_ref = coalesce(nullif($2, ''), provider_customer_ref),
			updated_at = now() WHERE id = $1`, n.UserID, n.CustomerRef); err != nil {
			return fmt.Errorf("record provider customer: %w", err)
		}
		return recordTransition(ctx, tx, id, "", status, "purchased in checkout")
	})
	if err != nil {
		return Subscription{}, fmt.Errorf("create subscription for order %s: %w", n.OrderID, err)
	}
	return s.SubscriptionByID(ctx, id)
}

// recordTransition writes a state change to the subscription's history and brings the user's
// subscription status in the User Directory up to date, in the caller's transaction.
func recordTransition(ctx context.Context, tx pgx.Tx, subscriptionID string, from, to domain.SubscriptionStatus, reason string) error {
	if _, err := tx.Exec(ctx, `INSERT INTO subscription_events (subscription_id, from_status, to_status, reason)
		VALUES ($1, nullif($2, ''), $3, $4)`, subscriptionID, from, to, reason); err != nil {
		return fmt.Errorf("record subscription event: %w", err)
	}
	// A user with several subscriptions shows the best standing among them.
	if _, err := tx.Exec(ctx, `
		UPDATE users u SET subscription_status = coalesce((
			SELECT s.status FROM subscriptions s WHERE s.user_id = u.id
			ORDER BY array_position(ARRAY['active', 'trialing', 'past_due', 'canceled'], s.status) LIMIT 1), 'none'),
			updated_at = now()
		WHERE u.id = (SELECT user_id FROM subscriptions WHERE id = $1)`, subscriptionID); err != nil {
		return fmt.Errorf("update user subscription status: %w", err)
	}
	return nil
}

// SubscriptionByID returns a subscription with its customer and plan name.
func (s *Store) SubscriptionByID(ctx context.Context, id string) (Subscription, error) {
	sub, err := scanSubscription(s.pool.QueryRow(ctx, `SELECT `+subscriptionColumns+subscriptionFrom+`WHERE s.id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("read subscription %s: %w", id, err)
	}
	return sub, err
}

// SubscriptionByOrder returns the subscription an order bought.
func (s *Store) SubscriptionByOrder(ctx context.Context, orderID string) (Subscription, error) {
	return scanSubscription(s.pool.QueryRow(ctx, `SELECT `+subscriptionColumns+subscriptionFrom+`WHERE s.order_id = $1`, orderID))
}

// SubscriptionEvent is one move between subscription states.
type SubscriptionEvent struct {
	From   domain.SubscriptionStatus `json:"from,omitempty"`
	To     domain.SubscriptionStatus `json:"to"`
	Reason string                    `json:"reason"`
	At     time.Time                 `json:"at"`
}

// SubscriptionHistory lists a subscription's state changes, oldest first.
func (s *Store) SubscriptionHistory(ctx context.Context, id string) ([]SubscriptionEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT coalesce(from_status, ''), to_status, reason, at
		FROM subscription_events WHERE subscription_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("query subscription history: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[SubscriptionEvent])
}

// ErrPeriodMoved means the subscription is no longer in the period a renewal was started for:
// an earlier renewal already extended it, or it ended.
var ErrPeriodMoved = errors.New("subscription is not in this period any more")

// transition moves a subscription that is still in the period ending periodEnd from one of the
// statuses in from to status to, applying set ($3 is the period end, further placeholders start at $4), and records why.
func (s *Store) transition(ctx context.Context, id string, periodEnd time.Time, from []domain.SubscriptionStatus, to domain.SubscriptionStatus, reason, set string, args ...any) (Subscription, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var current domain.SubscriptionStatus
		var end time.Time
		err := tx.QueryRow(ctx, `SELECT status, current_period_end FROM subscriptions WHERE id = $1 FOR UPDATE`, id).Scan(&current, &end)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if !periodEnd.IsZero() && !end.Equal(periodEnd) {
			return ErrPeriodMoved
		}
		allowed := false
		for _, f := range from {
			allowed = allowed || f == current
		}
		if !allowed {
			if current == to {
				return nil // a retry of a move already made
			}
			return fmt.Errorf("subscription %s is %s, not %v: %w", id, current, from, ErrTransition)
		}
		var period *time.Time
		if !periodEnd.IsZero() {
			period = &periodEnd
		}
		all := append([]any{id, to, period}, args...)
		if _, err := tx.Exec(ctx, `UPDATE subscriptions SET status = $2, updated_at = now()`+set+
			` WHERE id = $1 AND ($3::timestamptz IS NULL OR current_period_end = $3)`, all...); err != nil {
			return fmt.Errorf("update subscription: %w", err)
		}
		if current == to {
			return nil // a change within a status (another dunning attempt) is not a transition
		}
		return recordTransition(ctx, tx, id, current, to, reason)
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
	return s.transition(ctx, id, periodEnd, []domain.SubscriptionStatus{domain.SubscriptionTrialing, domain.SubscriptionActive, domain.SubscriptionPastDue},
		domain.SubscriptionActive, reason, `, current_period_start = $3, current_period_end = $4, dunning_attempts = 0`, next)
}

// MarkPastDue records a declined renewal attempt: the subscription is past due with attempts failed so far.
func (s *Store) MarkPastDue(ctx context.Context, id string, periodEnd time.Time, attempts int, reason string) (Subscription, error) {
	return s.transition(ctx, id, periodEnd, []domain.SubscriptionStatus{domain.SubscriptionTrialing, domain.SubscriptionActive, domain.SubscriptionPastDue},
		domain.SubscriptionPastDue, reason, `, dunning_attempts = $4`, attempts)
}

// CancelSubscription ends a subscription now. Canceling twice keeps the first cancellation.
func (s *Store) CancelSubscription(ctx context.Context, id, reason string) (Subscription, error) {
	return s.transition(ctx, id, time.Time{}, []domain.SubscriptionStatus{domain.SubscriptionTrialing, domain.SubscriptionActive, domain.SubscriptionPastDue},
		domain.SubscriptionCanceled, reason, `, canceled_at = coalesce(canceled_at, now()), cancel_at_period_end = false`)
}

// SetCancelAtPeriodEnd schedules (true) or withdraws (false) a cancellation at the end of the
// current period. It refuses a subscription that is already canceled.
func (s *Store) SetCancelAtPeriodEnd(ctx context.Context, id string, cancel bool) (Subscription, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE subscriptions SET cancel_at_period_end = $2, updated_at = now()
		WHERE id = $1 AND status <> 'canceled'`, id, cancel)
	if err != nil {
		return Subscription{}, fmt.Errorf("set cancel at period end: %w", err)
	}
	if tag.RowsAffected() == 0 {
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
	if _, err := s.pool.Exec(ctx, `UPDATE subscriptions SET provider_customer_ref = $2, provider_payment_method_ref = $3,
		updated_at = now() WHERE id = $1`, id, customerRef, paymentMethodRef); err != nil {
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
	// The predicate repeats the partial index's, so that the planner walks subscriptions_due_idx.
	rows, err := s.pool.Query(ctx, `SELECT id::text, current_period_end FROM subscriptions
		WHERE status IN ('trialing', 'active', 'past_due') AND current_period_end <= $1
		  AND (current_period_end, id) > ($2, $3::uuid)
		ORDER BY current_period_end, id LIMIT $4`, asOf, afterEnd, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("query due subscriptions: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[DueSubscription])
}

// TrialsEndingBy lists trialing subscriptions whose trial ends after asOf and at or before until
// and whose reminder for that trial end has not been recorded, at most limit of them.
func (s *Store) TrialsEndingBy(ctx context.Context, asOf, until time.Time, limit int) ([]Subscription, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+subscriptionColumns+subscriptionFrom+`
		WHERE s.status = 'trialing' AND s.trial_end > $1 AND s.trial_end <= $2
		  AND s.trial_reminder_sent_for IS DISTINCT FROM s.trial_end
		ORDER BY s.trial_end, s.id LIMIT $3`, asOf, until, limit)
	if err != nil {
		return nil, fmt.Errorf("query ending trials: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Subscription, error) { return scanSubscription(r) })
}

// MarkTrialReminded records that the reminder for the subscription's trial ending at trialEnd went out.
func (s *Store) MarkTrialReminded(ctx context.Context, id string, trialEnd time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE subscriptions SET trial_reminder_sent_for = $2 WHERE id = $1`, id, trialEnd); err != nil {
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
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			WITH sub AS (
				SELECT s.id, s.sku, s.price_amount, s.currency, s.provider, s.user_id, u.email, u.name, p.name AS plan
				FROM subscriptions s JOIN users u ON u.id = s.user_id JOIN products p ON p.sku = s.sku WHERE s.id = $1
			), ins AS (
				INSERT INTO orders (checkout_id, idempotency_key, request_hash, workflow_id, user_id, customer_email, customer_name,
					status, total_amount, currency, provider, kind, subscription_id)
				SELECT $2, $2, '', $2, user_id, email, name, 'pending', price_amount, currency, provider, 'renewal', id FROM sub
				ON CONFLICT DO NOTHING
				RETURNING id, total_amount
			), items AS (
				INSERT INTO order_items (order_id, line_no, sku, name, quantity, unit_amount, line_amount)
				SELECT ins.id, 1, sub.sku, sub.plan, 1, ins.total_amount, ins.total_amount FROM ins, sub
			)
			SELECT id::text FROM ins`, n.SubscriptionID, n.WorkflowID).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return tx.QueryRow(ctx, `SELECT id::text FROM orders WHERE workflow_id = $1`, n.WorkflowID).Scan(&id)
		}
		return err
	})
	if err != nil {
		return Order{}, fmt.Errorf("create renewal order %s: %w", n.WorkflowID, err)
	}
	return s.orderWhere(ctx, `id = $1`, id)
}
