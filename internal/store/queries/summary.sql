-- DailyCounts names each subquery's table apart because sqlc resolves a column against every
-- table of the statement.
-- name: DailyCounts :one
SELECT
    (SELECT count(*) FROM orders checkout
        WHERE checkout.kind = 'checkout' AND checkout.status = 'completed'
            AND checkout.created_at >= @day_start AND checkout.created_at < @day_end) AS new_orders,
    -- DISTINCT so that an event recorded twice cannot count a subscription twice.
    (SELECT count(DISTINCT started.subscription_id) FROM subscription_events started
        WHERE started.from_status IS NULL AND started.at >= @day_start AND started.at < @day_end) AS new_subscriptions,
    (SELECT count(*) FROM orders renewal
        WHERE renewal.kind = 'renewal' AND renewal.status = 'completed'
            AND renewal.completed_at >= @day_start AND renewal.completed_at < @day_end) AS renewals_succeeded,
    (SELECT count(*) FROM payments p JOIN orders o ON o.id = p.order_id
        WHERE o.kind = 'renewal' AND p.kind = 'charge' AND p.status = 'failed'
            AND p.updated_at >= @day_start AND p.updated_at < @day_end) AS renewals_failed,
    (SELECT count(DISTINCT canceled.subscription_id) FROM subscription_events canceled
        WHERE canceled.to_status = 'canceled' AND canceled.at >= @day_start AND canceled.at < @day_end) AS cancellations,
    (SELECT count(*) FROM subscriptions past_due WHERE past_due.status = 'past_due') AS in_dunning;

-- DailyRevenue is succeeded charges less succeeded refunds, per currency.
-- name: DailyRevenue :many
SELECT currency, sum(CASE WHEN kind = 'charge' THEN amount ELSE -amount END)::bigint AS amount
FROM payments
WHERE status = 'succeeded' AND updated_at >= @day_start AND updated_at < @day_end
GROUP BY currency
ORDER BY currency;

-- name: UpsertDailySummary :exec
INSERT INTO daily_summaries (day, new_orders, new_subscriptions, renewals_succeeded, renewals_failed, cancellations, in_dunning)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (day) DO UPDATE SET
    new_orders = EXCLUDED.new_orders, new_subscriptions = EXCLUDED.new_subscriptions,
    renewals_succeeded = EXCLUDED.renewals_succeeded, renewals_failed = EXCLUDED.renewals_failed,
    cancellations = EXCLUDED.cancellations, in_dunning = EXCLUDED.in_dunning, computed_at = now();

-- name: DeleteDailyRevenue :exec
DELETE FROM daily_revenue WHERE day = $1;

-- name: InsertDailyRevenue :exec
INSERT INTO daily_revenue (day, currency, amount)
SELECT @day::date, unnest(@currencies::text[]), unnest(@amounts::bigint[]);
