-- IncrementRateCounter counts one request in its window and returns the window's count so far.
-- name: IncrementRateCounter :one
INSERT INTO rate_limit_counters AS c (bucket, key_hash, window_start, count)
VALUES (@bucket, @key_hash, @window_start, 1)
ON CONFLICT (bucket, key_hash, window_start) DO UPDATE SET count = c.count + 1
RETURNING c.count;

-- RecordCheckoutSource records where a workflow's payment request came from; the latest request
-- wins, because a subscription's workflow takes card changes from wherever the customer is.
-- name: RecordCheckoutSource :exec
INSERT INTO checkout_sources (workflow_id, ip_hash, email_hash)
VALUES (@workflow_id, @ip_hash, @email_hash)
ON CONFLICT (workflow_id) DO UPDATE SET ip_hash = excluded.ip_hash, email_hash = excluded.email_hash, created_at = now();

-- RecordDecline writes one decline, attributed to the source the BFF recorded for the workflow,
-- if any.
-- name: RecordDecline :exec
INSERT INTO payment_declines (workflow_id, ip_hash, email_hash, fingerprint, provider)
SELECT @workflow_id::text, cs.ip_hash, cs.email_hash, sqlc.narg('fingerprint')::text, @provider::text
FROM (SELECT 1) AS one
LEFT JOIN checkout_sources cs ON cs.workflow_id = @workflow_id::text;

-- CountDeclines counts the declines since @since by the source's IP, email and card fingerprint;
-- an empty value counts nothing.
-- name: CountDeclines :one
SELECT
    (SELECT count(*) FROM payment_declines d WHERE d.ip_hash = @ip_hash::text AND d.at >= @since)::bigint AS by_ip,
    (SELECT count(*) FROM payment_declines d WHERE d.email_hash = @email_hash::text AND d.at >= @since)::bigint AS by_email,
    (SELECT count(*) FROM payment_declines d WHERE d.fingerprint = @fingerprint::text AND d.at >= @since)::bigint AS by_fingerprint;

-- SourceOfWorkflow is the source the BFF recorded for a workflow.
-- name: SourceOfWorkflow :one
SELECT ip_hash, email_hash FROM checkout_sources WHERE workflow_id = @workflow_id;

-- PruneRateCounters deletes counters whose window started before @older_than.
-- name: PruneRateCounters :execrows
WITH batch AS MATERIALIZED (
    SELECT c.bucket, c.key_hash, c.window_start FROM rate_limit_counters c
    WHERE c.window_start < @older_than
    ORDER BY c.window_start
    LIMIT @max_rows::bigint
    FOR UPDATE SKIP LOCKED)
DELETE FROM rate_limit_counters WHERE (bucket, key_hash, window_start) IN (SELECT bucket, key_hash, window_start FROM batch);

-- PruneDeclines deletes declines recorded before @older_than.
-- name: PruneDeclines :execrows
WITH batch AS MATERIALIZED (
    SELECT d.id FROM payment_declines d
    WHERE d.at < @older_than
    ORDER BY d.at
    LIMIT @max_rows::bigint
    FOR UPDATE SKIP LOCKED)
DELETE FROM payment_declines WHERE id IN (SELECT id FROM batch);

-- PruneCheckoutSources deletes sources recorded before @older_than.
-- name: PruneCheckoutSources :execrows
WITH batch AS MATERIALIZED (
    SELECT s.workflow_id FROM checkout_sources s
    WHERE s.created_at < @older_than
    ORDER BY s.created_at
    LIMIT @max_rows::bigint
    FOR UPDATE SKIP LOCKED)
DELETE FROM checkout_sources WHERE workflow_id IN (SELECT workflow_id FROM batch);
