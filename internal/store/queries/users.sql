-- RegisterUser uses DO UPDATE (a no-op write) rather than DO NOTHING so that RETURNING yields
-- the existing row.
-- name: RegisterUser :one
INSERT INTO users (email, name) VALUES ($1, $2)
ON CONFLICT (email) DO UPDATE SET updated_at = users.updated_at
RETURNING *;

-- name: ConfirmUser :one
UPDATE users SET status = 'confirmed', confirmed_at = coalesce(confirmed_at, now()), updated_at = now()
WHERE id = $1
RETURNING *;

-- name: UserByEmail :one
SELECT * FROM users WHERE email = $1;

-- name: SetUserProviderCustomer :exec
UPDATE users SET provider_customer_ref = coalesce(nullif(@customer_ref::text, ''), provider_customer_ref), updated_at = now()
WHERE id = @id;

-- RefreshUserSubscriptionStatus brings the user's subscription status up to date after one of
-- their subscriptions changed. A user with several subscriptions shows the best standing among them.
-- name: RefreshUserSubscriptionStatus :exec
UPDATE users u SET subscription_status = coalesce((
        SELECT s.status FROM subscriptions s WHERE s.user_id = u.id
        ORDER BY array_position(ARRAY['active', 'trialing', 'past_due', 'canceled'], s.status) LIMIT 1), 'none'),
    updated_at = now()
WHERE u.id = (SELECT changed.user_id FROM subscriptions changed WHERE changed.id = @subscription_id);
