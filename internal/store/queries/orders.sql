-- name: OrderByCheckoutID :one
SELECT * FROM orders WHERE checkout_id = $1;

-- name: CheckoutWithItems :many
-- A checkout's order with its lines in one round trip, for the status read the storefront polls:
-- a row per line, in line order, or a single row without a line.
SELECT sqlc.embed(o), i.line_no, i.sku, i.name AS item_name, i.quantity, i.unit_amount, i.line_amount
FROM orders o LEFT JOIN order_items i ON i.order_id = o.id
WHERE o.checkout_id = $1
ORDER BY i.line_no;

-- name: OrderByIdempotencyKey :one
SELECT * FROM orders WHERE idempotency_key = $1;

-- name: OrderByID :one
SELECT * FROM orders WHERE id = $1;

-- name: OrderIDByWorkflow :one
SELECT id FROM orders WHERE workflow_id = $1;

-- name: OrderStatus :one
SELECT status FROM orders WHERE id = $1;

-- LockOrder reads what a refund is checked against, holding the order until the transaction ends.
-- name: LockOrder :one
SELECT status, total_amount, refunded_amount FROM orders WHERE id = $1 FOR UPDATE;

-- InsertOrder writes a checkout's order, or nothing when it exists: a concurrent twin of the
-- transaction (an overlapping retry) conflicts on checkout_id and idempotency_key alike, so any
-- unique conflict counts.
-- name: InsertOrder :one
INSERT INTO orders (checkout_id, idempotency_key, request_hash, workflow_id, customer_email, customer_name,
    status, total_amount, currency, provider, failure_code, failure_message)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT DO NOTHING
RETURNING *;

-- name: InsertOrderItem :exec
INSERT INTO order_items (order_id, line_no, sku, name, quantity, unit_amount, line_amount)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: OrderItems :many
SELECT * FROM order_items WHERE order_id = $1 ORDER BY line_no;

-- name: MarkOrderCharging :execrows
UPDATE orders SET status = 'charging', updated_at = now()
WHERE id = $1 AND status IN ('pending', 'charging');

-- name: MarkOrderRequiresAction :execrows
UPDATE orders SET status = 'requires_action', provider_payment_ref = @provider_payment_ref::text, updated_at = now()
WHERE id = @id AND status IN ('charging', 'requires_action');

-- name: MarkOrderPaid :execrows
UPDATE orders SET status = 'paid', provider_payment_ref = @provider_payment_ref::text, updated_at = now()
WHERE id = @id AND status IN ('pending', 'charging', 'requires_action', 'paid');

-- MarkFreeOrderPaid counts an order with nothing due (a plan that starts with a trial) as paid.
-- name: MarkFreeOrderPaid :exec
UPDATE orders SET status = 'paid', updated_at = now()
WHERE id = $1 AND status = 'pending' AND total_amount = 0;

-- FailOrder records a failure before any money moved; the decline code is left alone.
-- name: FailOrder :execrows
UPDATE orders SET status = 'failed', failure_code = @failure_code::text, failure_message = @failure_message::text,
    updated_at = now()
WHERE id = @id AND status IN ('pending', 'charging', 'requires_action', 'failed');

-- FailOrderCharge records a charge that failed, with the bank's decline code (NULL when it gave none).
-- name: FailOrderCharge :execrows
UPDATE orders SET status = 'failed', failure_code = @failure_code::text, failure_message = @failure_message::text,
    decline_code = nullif(@decline_code::text, ''), updated_at = now()
WHERE id = @id AND status IN ('pending', 'charging', 'requires_action', 'failed');

-- name: CompleteOrder :execrows
UPDATE orders SET status = 'completed', user_id = @user_id::uuid, completed_at = coalesce(completed_at, now()),
    updated_at = now()
WHERE id = @id AND status IN ('paid', 'completed');

-- name: ExpireOrder :execrows
UPDATE orders SET status = 'expired', failure_code = @failure_code::text, failure_message = @failure_message::text,
    updated_at = now()
WHERE id = @id AND status IN ('pending', 'requires_action', 'expired');

-- RefundOrder and PartiallyRefundOrder add a refund that succeeded. A reason (a compensation)
-- replaces the failure fields; without one (a refund staff asked for) they are left alone.
-- name: RefundOrder :execrows
UPDATE orders SET status = 'refunded', refunded_amount = refunded_amount + @amount::bigint,
    failure_code = coalesce(sqlc.narg(failure_code)::text, failure_code),
    failure_message = coalesce(sqlc.narg(failure_message)::text, failure_message), updated_at = now()
WHERE id = @id AND status IN ('charging', 'paid', 'completed', 'failed', 'partially_refunded', 'refunded');

-- name: PartiallyRefundOrder :execrows
UPDATE orders SET status = 'partially_refunded', refunded_amount = refunded_amount + @amount::bigint,
    failure_code = coalesce(sqlc.narg(failure_code)::text, failure_code),
    failure_message = coalesce(sqlc.narg(failure_message)::text, failure_message), updated_at = now()
WHERE id = @id AND status IN ('paid', 'completed', 'partially_refunded');
