-- PaymentStandings reads what the ledger says of a batch of provider payments that took money:
-- whether a charge that succeeded names it, and which order it belongs to and in what status.
-- The order is found by the most authoritative link first: the order's recorded payment, a
-- ledger charge naming the payment, the charge's idempotency key, the PayPal order's cart
-- binding, and last the order id the provider echoes. Row n answers the n-th payment.
-- name: PaymentStandings :many
SELECT p.n::bigint AS n,
    EXISTS (SELECT 1 FROM payments c
            WHERE c.kind = 'charge' AND c.status = 'succeeded' AND c.provider = @provider AND c.provider_ref = p.ref) AS recorded,
    coalesce(o.id::text, '')::text AS order_id,
    coalesce(o.status, '')::text AS order_status
FROM (
    SELECT i AS n, (@refs::text[])[i] AS ref, (@idempotency_keys::text[])[i] AS idempotency_key,
        (@order_ids::text[])[i] AS order_id, (@cart_refs::text[])[i] AS cart_ref
    FROM generate_subscripts(@refs::text[], 1) AS i
) p
LEFT JOIN LATERAL (
    SELECT lo.id, lo.status FROM (
        SELECT 1 AS rank, x.id FROM orders x WHERE x.provider = @provider AND x.provider_payment_ref = p.ref
        UNION ALL
        SELECT 2, c.order_id FROM payments c WHERE c.kind = 'charge' AND c.provider = @provider AND c.provider_ref = p.ref
        UNION ALL
        SELECT 3, c.order_id FROM payments c WHERE c.kind = 'charge' AND c.idempotency_key = p.idempotency_key
        UNION ALL
        SELECT 4, po.order_id FROM provider_orders po
        WHERE po.provider = @provider AND po.cart_ref = p.cart_ref AND po.order_id IS NOT NULL
        UNION ALL
        SELECT 5, x.id FROM orders x WHERE x.provider = @provider
            AND x.id = CASE WHEN p.order_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN p.order_id::uuid END
    ) link JOIN orders lo ON lo.id = link.id
    ORDER BY link.rank LIMIT 1
) o ON true
ORDER BY p.n;

-- InsertOrphanPayment records an orphan once per provider payment; a payment found again (by
-- the webhook and then the reconciliation, or by a second run) inserts nothing.
-- name: InsertOrphanPayment :execrows
INSERT INTO orphan_payments (provider, provider_ref, order_id, amount, currency, found_by, refund_key)
VALUES (@provider, @provider_ref, sqlc.narg(order_id)::uuid, @amount, @currency, @found_by, @refund_key)
ON CONFLICT (provider, provider_ref) DO NOTHING;

-- name: OrphanPayment :one
SELECT * FROM orphan_payments WHERE provider = @provider AND provider_ref = @provider_ref;

-- ResolveOrphanPayment records the refund's outcome; a refunded orphan stays refunded.
-- name: ResolveOrphanPayment :execrows
UPDATE orphan_payments SET status = @status, refund_ref = coalesce(sqlc.narg(refund_ref)::text, refund_ref),
    amount = CASE WHEN @refunded_amount::bigint > 0 THEN @refunded_amount::bigint ELSE amount END, resolved_at = now()
WHERE provider = @provider AND provider_ref = @provider_ref AND status <> 'refunded';
