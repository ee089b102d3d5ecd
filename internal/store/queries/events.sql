-- name: InsertProviderEvent :execrows
INSERT INTO provider_events (provider, event_id, type, payload) VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING;

-- name: OrderByPaymentRef :one
SELECT * FROM orders WHERE provider = @provider AND provider_payment_ref = @payment_ref::text;

-- name: OrderByIDAndProvider :one
SELECT * FROM orders WHERE id = @id::uuid AND provider = @provider;

-- name: InsertOrderEvent :exec
INSERT INTO order_events (order_id, provider, provider_event_id, type, amount, currency, reason)
VALUES (@order_id, @provider, @provider_event_id, @type,
    nullif(@amount::bigint, 0), nullif(@currency::text, ''), nullif(@reason::text, ''))
ON CONFLICT DO NOTHING;

-- name: OrderEvents :many
SELECT * FROM order_events WHERE order_id = $1 ORDER BY id;

-- OpenOrderDispute keeps a dispute's later state and its largest amount, so that events that
-- arrive out of order never move it backwards.
-- name: OpenOrderDispute :exec
UPDATE orders SET dispute_status = coalesce(dispute_status, 'open'),
    disputed_amount = greatest(disputed_amount, @amount::bigint), updated_at = now()
WHERE id = @id;

-- name: CloseOrderDispute :exec
UPDATE orders SET dispute_status = @outcome::text, updated_at = now() WHERE id = @id;

-- name: CountProviderOutcome :exec
INSERT INTO provider_health (provider, minute, successes, failures)
VALUES (@provider, date_trunc('minute', now()), @successes, @failures)
ON CONFLICT (provider, minute) DO UPDATE
    SET successes = provider_health.successes + @successes, failures = provider_health.failures + @failures;

-- name: ProviderHealth :one
SELECT coalesce(sum(successes), 0)::bigint AS successes, coalesce(sum(failures), 0)::bigint AS failures
FROM provider_health
WHERE provider = @provider AND minute >= date_trunc('minute', @since::timestamptz);
