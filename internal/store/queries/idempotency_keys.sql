-- ClaimIdempotencyKey records the first request of a key and takes its lock. It also takes the lock
-- of a key whose earlier request ended without a final answer (released), or whose holder
-- let its lease run out (a BFF that died mid-request), as long as the scope and the fingerprint are the
-- same. It returns no row when the key is held, already answered, or names another request.
-- name: ClaimIdempotencyKey :one
INSERT INTO idempotency_keys AS k ("key", scope, fingerprint, locked_until)
VALUES (@key, @scope, @fingerprint, now() + make_interval(secs => @lease_seconds::float8))
ON CONFLICT (key) DO UPDATE SET locked_until = excluded.locked_until
WHERE k.scope = excluded.scope AND k.fingerprint = excluded.fingerprint AND k.response_status IS NULL
    AND (k.locked_until IS NULL OR k.locked_until <= now())
RETURNING k.locked_until::timestamptz AS locked_until;

-- IdempotencyKey reads a key that could not be claimed, with the clock of the database, so that how
-- long its lease has left never depends on the clock of the BFF.
-- name: IdempotencyKey :one
SELECT scope, fingerprint, locked_until, response_status, response_headers, response_body,
    now()::timestamptz AS db_now
FROM idempotency_keys WHERE key = @key;

-- SaveIdempotentResponse stores a final answer of a request and frees the lock. The first final
-- answer wins: a request that lost its lease and finished after the one that took it over
-- changes nothing.
-- name: SaveIdempotentResponse :execrows
UPDATE idempotency_keys
SET response_status = @status::integer, response_headers = @headers::jsonb, response_body = @body::bytea,
    locked_until = NULL, completed_at = now()
WHERE key = @key AND response_status IS NULL;

-- ReleaseIdempotencyKey frees the lock of a request that ended without a final answer, keeping
-- the scope and fingerprint, so that a retry of the same request runs again.
-- name: ReleaseIdempotencyKey :execrows
UPDATE idempotency_keys SET locked_until = NULL
WHERE key = @key AND locked_until = @locked_until::timestamptz AND response_status IS NULL;

-- ForgetIdempotencyKey deletes the key of a request refused before its endpoint did anything
-- (its input failed validation), as Stripe does: the key is free for a corrected request.
-- name: ForgetIdempotencyKey :execrows
DELETE FROM idempotency_keys
WHERE key = @key AND locked_until = @locked_until::timestamptz AND response_status IS NULL;

-- PruneIdempotencyKeys deletes keys created before older_than, oldest first. Whatever the
-- cutoff, a key younger than 30 days is kept: that is the promise a client retries under.
-- name: PruneIdempotencyKeys :execrows
WITH batch AS MATERIALIZED (
    SELECT ik.key FROM idempotency_keys ik
    WHERE ik.created_at < LEAST(@older_than::timestamptz, now() - interval '30 days')
    ORDER BY ik.created_at
    LIMIT @max_rows::bigint
    FOR UPDATE SKIP LOCKED)
DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM batch);
