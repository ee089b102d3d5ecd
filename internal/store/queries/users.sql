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
-- their subscriptions changed. A user with several subscriptions shows the best standing among
-- them. Each status is one probe of subscriptions_user_id_status_idx, so that the cost does not
-- grow with the number of subscriptions the user holds.
-- name: RefreshUserSubscriptionStatus :exec
UPDATE users u SET subscription_status = CASE
        WHEN EXISTS (SELECT FROM subscriptions s WHERE s.user_id = u.id AND s.status = 'active') THEN 'active'
        WHEN EXISTS (SELECT FROM subscriptions s WHERE s.user_id = u.id AND s.status = 'trialing') THEN 'trialing'
        WHEN EXISTS (SELECT FROM subscriptions s WHERE s.user_id = u.id AND s.status = 'past_due') THEN 'past_due'
        WHEN EXISTS (SELECT FROM subscriptions s WHERE s.user_id = u.id AND s.status = 'canceled') THEN 'canceled'
        ELSE 'none' END,
    updated_at = now()
WHERE u.id = (SELECT changed.user_id FROM subscriptions changed WHERE changed.id = @subscription_id);
