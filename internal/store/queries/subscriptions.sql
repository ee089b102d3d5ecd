-- name: SubscriptionByID :one
SELECT sqlc.embed(s), u.email AS customer_email, u.name AS customer_name, p.name AS plan_name
FROM subscriptions s JOIN users u ON u.id = s.user_id JOIN products p ON p.sku = s.sku
WHERE s.id = $1;

-- name: SubscriptionByOrder :one
SELECT sqlc.embed(s), u.email AS customer_email, u.name AS customer_name, p.name AS plan_name
FROM subscriptions s JOIN users u ON u.id = s.user_id JOIN products p ON p.sku = s.sku
WHERE s.order_id = @order_id::uuid;

-- name: SubscriptionIDByOrder :one
SELECT id FROM subscriptions WHERE order_id = @order_id::uuid;

-- OrderPlan reads the plan an order bought, as it was sold.
-- name: OrderPlan :one
SELECT i.sku, p.billing_interval, i.unit_amount, o.currency, p.trial_days
FROM orders o JOIN order_items i ON i.order_id = o.id JOIN products p ON p.sku = i.sku
WHERE o.id = $1 AND p.kind = 'subscription';

-- name: InsertSubscription :one
INSERT INTO subscriptions (user_id, sku, order_id, status, provider, provider_customer_ref, provider_payment_method_ref,
    current_period_start, current_period_end, trial_end, price_amount, currency, billing_interval)
VALUES (@user_id, @sku, @order_id::uuid, @status, @provider, nullif(@customer_ref::text, ''), nullif(@payment_method_ref::text, ''),
    @current_period_start, @current_period_end, @trial_end, @price_amount, @currency, @billing_interval)
RETURNING id;

-- name: InsertSubscriptionEvent :exec
INSERT INTO subscription_events (subscription_id, from_status, to_status, reason)
VALUES (@subscription_id, nullif(@from_status::text, ''), @to_status, @reason);

-- name: SubscriptionHistory :many
SELECT * FROM subscription_events WHERE subscription_id = $1 ORDER BY id;

-- name: LockSubscription :one
SELECT status, current_period_end FROM subscriptions WHERE id = $1 FOR UPDATE;

-- RenewSubscription starts the next period, paid for, and clears the dunning.
-- name: RenewSubscription :execrows
UPDATE subscriptions SET status = 'active', current_period_start = @period_end, current_period_end = @next_period_end,
    dunning_attempts = 0, updated_at = now()
WHERE id = @id AND status IN ('trialing', 'active', 'past_due') AND current_period_end = @period_end;

-- name: MarkSubscriptionPastDue :execrows
UPDATE subscriptions SET status = 'past_due', dunning_attempts = @dunning_attempts, updated_at = now()
WHERE id = @id AND status IN ('trialing', 'active', 'past_due') AND current_period_end = @period_end;

-- CancelSubscription ends a subscription now; canceling twice keeps the first cancellation's time.
-- name: CancelSubscription :execrows
UPDATE subscriptions SET status = 'canceled', canceled_at = coalesce(canceled_at, now()), cancel_at_period_end = false,
    updated_at = now()
WHERE id = @id AND status IN ('trialing', 'active', 'past_due');

-- name: SetCancelAtPeriodEnd :execrows
UPDATE subscriptions SET cancel_at_period_end = @cancel, updated_at = now()
WHERE id = @id AND status <> 'canceled';

-- name: SetPaymentMethod :exec
UPDATE subscriptions SET provider_customer_ref = @customer_ref::text, provider_payment_method_ref = @payment_method_ref::text,
    updated_at = now()
WHERE id = @id;

-- DueSubscriptions pages through live subscriptions by the end of their period, after the keyset
-- position (after_end, after_id). The predicate repeats the partial index's, so that the planner
-- walks subscriptions_due_idx.
-- name: DueSubscriptions :many
SELECT id, current_period_end FROM subscriptions
WHERE status IN ('trialing', 'active', 'past_due') AND current_period_end <= @as_of
  AND (current_period_end, id) > (@after_end::timestamptz, @after_id::uuid)
ORDER BY current_period_end, id
LIMIT @max_rows::bigint;

-- name: TrialsEndingBy :many
SELECT sqlc.embed(s), u.email AS customer_email, u.name AS customer_name, p.name AS plan_name
FROM subscriptions s JOIN users u ON u.id = s.user_id JOIN products p ON p.sku = s.sku
WHERE s.status = 'trialing' AND s.trial_end > @as_of::timestamptz AND s.trial_end <= @until::timestamptz
  AND s.trial_reminder_sent_for IS DISTINCT FROM s.trial_end
ORDER BY s.trial_end, s.id
LIMIT @max_rows::bigint;

-- name: MarkTrialReminded :exec
UPDATE subscriptions SET trial_reminder_sent_for = @trial_end::timestamptz WHERE id = @id;

-- InsertRenewalOrder writes the order that bills a subscription's next period, priced from the
-- subscription, with its one line, and returns its id; nothing (no row) when the workflow
-- already wrote it.
-- name: InsertRenewalOrder :one
WITH sub AS (
    SELECT s.id, s.sku, s.price_amount, s.currency, s.provider, s.user_id, u.email, u.name, p.name AS plan
    FROM subscriptions s JOIN users u ON u.id = s.user_id JOIN products p ON p.sku = s.sku WHERE s.id = @subscription_id
), ins AS (
    INSERT INTO orders (checkout_id, idempotency_key, request_hash, workflow_id, user_id, customer_email, customer_name,
        status, total_amount, currency, provider, kind, subscription_id)
    SELECT @workflow_id, @workflow_id, '', @workflow_id, user_id, email, name, 'pending', price_amount, currency, provider,
        'renewal', id
    FROM sub
    ON CONFLICT DO NOTHING
    RETURNING id, total_amount
), items AS (
    INSERT INTO order_items (order_id, line_no, sku, name, quantity, unit_amount, line_amount)
    SELECT ins.id, 1, sub.sku, sub.plan, 1, ins.total_amount, ins.total_amount FROM ins, sub
)
SELECT id FROM ins;
