-- RecordPaymentAttempt writes an attempt before the provider is called. A retry of the same
-- attempt (same key) counts another try on the same row.
-- name: RecordPaymentAttempt :exec
INSERT INTO payments (order_id, kind, provider, idempotency_key, amount, currency, status)
VALUES ($1, $2, $3, $4, $5, $6, 'pending')
ON CONFLICT (idempotency_key) DO UPDATE SET attempts = payments.attempts + 1, updated_at = now();

-- SettlePayment records the provider's answer for an attempt whose outcome was not known yet.
-- name: SettlePayment :one
UPDATE payments SET status = @status, provider_ref = nullif(@provider_ref::text, ''),
    failure_code = sqlc.narg(failure_code), decline_code = nullif(sqlc.narg(decline_code)::text, ''), updated_at = now()
WHERE idempotency_key = @idempotency_key AND status = 'pending'
RETURNING order_id, kind, amount;

-- AwaitPaymentAction records the provider's payment of a charge that waits for the customer to
-- authenticate; the attempt stays pending.
-- name: AwaitPaymentAction :one
UPDATE payments SET provider_ref = @provider_ref::text, updated_at = now()
WHERE idempotency_key = @idempotency_key AND status = 'pending'
RETURNING order_id;

-- name: PaymentStatus :one
SELECT status FROM payments WHERE idempotency_key = $1;

-- name: PaymentExists :one
SELECT EXISTS (SELECT 1 FROM payments WHERE idempotency_key = $1);

-- CommittedRefunds sums an order's refunds that succeeded or are still in flight.
-- name: CommittedRefunds :one
SELECT coalesce(sum(amount), 0)::bigint FROM payments
WHERE order_id = $1 AND kind = 'refund' AND status IN ('pending', 'succeeded');

-- name: OrderPayments :many
SELECT * FROM payments WHERE order_id = $1 ORDER BY id;
