-- name: EnqueueOutbox :exec
INSERT INTO outbox (topic, event_key, payload) VALUES ($1, $2, $3)
ON CONFLICT (event_key) DO NOTHING;

-- ClaimOutbox leases up to @batch due rows for @lease_seconds and returns them. SKIP LOCKED lets
-- several relays (one per worker) claim side by side without waiting for each other.
-- name: ClaimOutbox :many
UPDATE outbox SET attempts = attempts + 1, available_at = now() + make_interval(secs => @lease_seconds::float8)
WHERE id IN (
    SELECT id FROM outbox WHERE available_at <= now() ORDER BY available_at, id LIMIT @batch FOR UPDATE SKIP LOCKED
)
RETURNING id, topic, event_key, payload, attempts, created_at;

-- name: DeleteOutbox :exec
DELETE FROM outbox WHERE id = $1;

-- name: RetryOutbox :exec
UPDATE outbox SET available_at = now() + make_interval(secs => @delay_seconds::float8), last_error = @last_error::text
WHERE id = @id;

-- name: CountOutbox :one
SELECT count(*) FROM outbox;
