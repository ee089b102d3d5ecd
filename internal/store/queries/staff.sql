-- CreateStaffKey records a new staff key by its hash; the key itself is never stored.
-- name: CreateStaffKey :one
INSERT INTO staff_keys (name, prefix, key_hash, scopes)
VALUES (@name, @prefix, @key_hash, @scopes::text[])
RETURNING id, name, prefix, scopes, created_at, revoked_at, last_used_at;

-- StaffKeyByHash finds the active key with this hash: a revoked key is not found.
-- name: StaffKeyByHash :one
SELECT id, name, prefix, scopes, created_at, revoked_at, last_used_at
FROM staff_keys WHERE key_hash = @key_hash AND revoked_at IS NULL;

-- TouchStaffKey records a use of the key at most once a minute, so that a busy key does not
-- rewrite its row on every request.
-- name: TouchStaffKey :exec
UPDATE staff_keys SET last_used_at = now()
WHERE id = @id AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');

-- ListStaffKeys lists every key, revoked ones included, newest first.
-- name: ListStaffKeys :many
SELECT id, name, prefix, scopes, created_at, revoked_at, last_used_at
FROM staff_keys ORDER BY created_at DESC, id;

-- StaffKeysByRef finds the keys an admin names by id or by display prefix (at most a few: a
-- prefix is not unique, and revoking then needs the id).
-- name: StaffKeysByRef :many
SELECT id, name, prefix, scopes, created_at, revoked_at, last_used_at
FROM staff_keys WHERE prefix = @ref::text OR id::text = @ref::text
ORDER BY created_at LIMIT 5;

-- RevokeStaffKey revokes a key; revoking it again keeps the first time.
-- name: RevokeStaffKey :one
UPDATE staff_keys SET revoked_at = coalesce(revoked_at, now())
WHERE id = @id
RETURNING id, name, prefix, scopes, created_at, revoked_at, last_used_at;

-- BeginStaffAudit records a staff action as attempted, before it acts.
-- name: BeginStaffAudit :one
INSERT INTO staff_audit (staff_key_id, action, target, request_id, outcome, status, detail, finished_at)
VALUES (@staff_key_id, @action, @target, @request_id, @outcome, sqlc.narg('status')::integer, @detail::jsonb,
    CASE WHEN @outcome::text = 'attempted' THEN NULL ELSE now() END)
RETURNING id;

-- FinishStaffAudit records the outcome of an attempted action, once.
-- name: FinishStaffAudit :execrows
UPDATE staff_audit SET outcome = @outcome, status = @status::integer, detail = detail || @detail::jsonb, finished_at = now()
WHERE id = @id AND outcome = 'attempted';

-- StaffAudit lists audit rows newest first, before a cursor (0: from the newest), optionally for
-- one key or one target.
-- name: StaffAudit :many
SELECT a.id, a.staff_key_id, k.name AS staff_name, k.prefix, a.action, a.target, a.request_id, a.outcome,
    a.status, a.detail, a.created_at, a.finished_at
FROM staff_audit a JOIN staff_keys k ON k.id = a.staff_key_id
WHERE (@before::bigint = 0 OR a.id < @before::bigint)
  AND (@staff_key_id::text = '' OR a.staff_key_id::text = @staff_key_id::text)
  AND (@target::text = '' OR a.target = @target::text)
ORDER BY a.id DESC
LIMIT @max_rows::integer;
