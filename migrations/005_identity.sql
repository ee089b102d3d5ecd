-- Customer identity: single-use sign-in links (magic links) and server-side sessions.
-- Neither table holds a secret: the link's token and the session's cookie value are stored as
-- their SHA-256, so that a read of the database signs nobody in.

CREATE TABLE sign_in_tokens (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- next_path is where the storefront lands after signing in: a path of the storefront's own.
    next_path  text NOT NULL DEFAULT '' CHECK (next_path = '' OR next_path ~ '^/[a-z0-9/_-]*$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX sign_in_tokens_expires_at_idx ON sign_in_tokens (expires_at);
CREATE INDEX sign_in_tokens_user_id_idx ON sign_in_tokens (user_id);

CREATE TABLE sessions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- last_seen_at moves the idle expiry; it is written at most once a minute per session.
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    -- expires_at is the absolute expiry, fixed at sign-in.
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

-- The customer's order list pages newest first by (created_at, id).
CREATE INDEX orders_user_id_created_at_idx ON orders (user_id, created_at DESC, id DESC) WHERE user_id IS NOT NULL;
-- Signing in claims the guest orders placed with the same email.
CREATE INDEX orders_unclaimed_email_idx ON orders (customer_email) WHERE user_id IS NULL;

---- create above / drop below ----

DROP INDEX orders_unclaimed_email_idx;
DROP INDEX orders_user_id_created_at_idx;
DROP TABLE sessions;
DROP TABLE sign_in_tokens;
