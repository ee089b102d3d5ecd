-- ExpireAbandonedCheckouts expires checkout orders still pending that were never charged. The
-- payments check keeps the cutoff from ever racing a charge: a charge attempt moves the order to
-- charging in the transaction that writes its ledger row, so a pending order with a ledger row
-- would be a bug elsewhere, and leaving it alone is the safe side. The final status check is
-- ExpireOrder's.
-- name: ExpireAbandonedCheckouts :execrows
WITH batch AS MATERIALIZED (
    SELECT o.id FROM orders o
    WHERE o.status = 'pending' AND o.kind = 'checkout' AND o.created_at < @older_than
        AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id)
    ORDER BY o.created_at
    LIMIT @max_rows::bigint
    FOR UPDATE SKIP LOCKED)
UPDATE orders SET status = 'expired', failure_code = @failure_code::text, failure_message = @failure_message::text,
    updated_at = now()
WHERE id IN (SELECT id FROM batch) AND status IN ('pending', 'requires_action', 'expired');

-- DeleteUnconfirmedUsers deletes users still pending confirmation that no order or subscription
-- references. A returning customer's checkout registers the same pending user again only after
-- its charge, and links the order to the user only at the end; until then the order names the
-- user by email alone. Users with such a checkout still in flight are kept so that one is never
-- deleted between its registration and its confirmation.
-- name: DeleteUnconfirmedUsers :execrows
WITH batch AS MATERIALIZED (
    SELECT u.id FROM users u
    WHERE u.status = 'pending' AND u.created_at < @older_than
        AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id)
        AND NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = u.id)
        AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_email = u.email
            AND o.status IN ('pending', 'charging', 'paid'))
    ORDER BY u.created_at
    LIMIT @max_rows::bigint
    FOR UPDATE SKIP LOCKED)
DELETE FROM users WHERE id IN (SELECT id FROM batch) AND status = 'pending';

-- PruneEmailRecords deletes emails whose sending is over (sent or failed); pending and sending
-- ones are kept, because an attempt may still act on them.
-- name: PruneEmailRecords :execrows
WITH batch AS MATERIALIZED (
    SELECT e.id FROM emails e
    WHERE e.created_at < @older_than AND e.status IN ('sent', 'failed')
    ORDER BY e.created_at
    LIMIT @max_rows::bigint
    FOR UPDATE SKIP LOCKED)
DELETE FROM emails WHERE id IN (SELECT id FROM batch);

-- name: PruneProviderEvents :execrows
WITH batch AS MATERIALIZED (
    SELECT pe.provider, pe.event_id FROM provider_events pe
    WHERE pe.received_at < @older_than
    ORDER BY pe.received_at
    LIMIT @max_rows::bigint
    FOR UPDATE SKIP LOCKED)
DELETE FROM provider_events WHERE (provider, event_id) IN (SELECT provider, event_id FROM batch);
