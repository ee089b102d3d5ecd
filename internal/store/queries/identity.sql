-- name: InsertSignInToken :exec
INSERT INTO sign_in_tokens (token_hash, user_id, next_path, expires_at) VALUES ($1, $2, $3, $4);

-- UseSignInToken spends a sign-in token: only once, and only before it expires. Two concurrent
-- uses race on the row; the one that loses finds used_at set and gets no row.
-- name: UseSignInToken :one
UPDATE sign_in_tokens SET used_at = now()
WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
RETURNING user_id, next_path;

-- name: InsertSession :one
INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)
RETURNING *;

-- SessionByTokenHash reads a live session: not revoked, within its absolute expiry, and seen
-- within the idle timeout.
-- name: SessionByTokenHash :one
SELECT * FROM sessions
WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now() AND last_seen_at > @seen_after::timestamptz;

-- name: TouchSession :exec
UPDATE sessions SET last_seen_at = now() WHERE id = $1 AND revoked_at IS NULL;

-- name: RevokeSession :exec
UPDATE sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL;

-- name: RevokeUserSessions :execrows
UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now();

-- ClaimGuestOrders gives a signed-in customer the orders placed with their (now verified) email
-- that no account holds yet.
-- name: ClaimGuestOrders :execrows
UPDATE orders SET user_id = @user_id, updated_at = now()
WHERE user_id IS NULL AND customer_email = @email;

-- name: UserByID :one
SELECT * FROM users WHERE id = $1;

-- name: RenameUser :one
UPDATE users SET name = $2, updated_at = now() WHERE id = $1
RETURNING *;

-- UserOrdersPage lists a customer's orders newest first, after the cursor (created_at, id);
-- the first page passes a cursor in the future.
-- name: UserOrdersPage :many
SELECT * FROM orders
WHERE user_id = @user_id AND (created_at, id) < (@before_created_at::timestamptz, @before_id::uuid)
ORDER BY created_at DESC, id DESC
LIMIT @max_rows;

-- name: UserSubscriptions :many
SELECT sqlc.embed(s), u.email AS customer_email, u.name AS customer_name, p.name AS plan_name
FROM subscriptions s JOIN users u ON u.id = s.user_id JOIN products p ON p.sku = s.sku
WHERE s.user_id = $1
ORDER BY s.created_at DESC, s.id DESC;

-- name: DeleteExpiredSignInTokens :execrows
DELETE FROM sign_in_tokens WHERE token_hash IN (
    SELECT token_hash FROM sign_in_tokens t WHERE t.expires_at < @older_than LIMIT @max_rows::bigint);

-- name: DeleteExpiredSessions :execrows
DELETE FROM sessions WHERE id IN (
    SELECT id FROM sessions s WHERE (s.expires_at < @older_than OR s.revoked_at < @older_than) LIMIT @max_rows::bigint);

-- ItemsOfOrders reads the lines of a page of orders in one query.
-- name: ItemsOfOrders :many
SELECT * FROM order_items WHERE order_id = ANY(@order_ids::uuid[]) ORDER BY order_id, line_no;
