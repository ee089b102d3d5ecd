-- The catalog, the User Directory, orders with their items, the payments ledger and subscriptions.
-- Money is always integer minor units plus an ISO-4217 currency code.

CREATE TABLE products (
    sku              text PRIMARY KEY CHECK (sku ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    name             text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('one_off', 'subscription')),
    price_amount     bigint NOT NULL CHECK (price_amount >= 0),
    currency         text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    billing_interval text CHECK (billing_interval IN ('day', 'week', 'month', 'year')),
    trial_days       integer NOT NULL DEFAULT 0 CHECK (trial_days >= 0),
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- Only subscriptions bill on an interval, and only they can have a trial.
    CHECK ((kind = 'subscription') = (billing_interval IS NOT NULL)),
    CHECK (kind = 'subscription' OR trial_days = 0)
);

CREATE TABLE users (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Stored normalized (trimmed, lower case) so that the same address is one user.
    email        text NOT NULL UNIQUE CHECK (email = lower(btrim(email))),
    name         text NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    confirmed_at timestamptz
);

-- One order per checkout. It doubles as the read model that GET /api/v1/checkouts/{id} serves,
-- so the status read path never touches the Temporal server.
CREATE TABLE orders (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    checkout_id          text NOT NULL UNIQUE,
    idempotency_key      text NOT NULL UNIQUE,
    request_hash         text NOT NULL,
    workflow_id          text NOT NULL UNIQUE,
    user_id              uuid REFERENCES users (id),
    customer_email       text NOT NULL,
    customer_name        text NOT NULL,
    status               text NOT NULL CHECK (status IN ('pending', 'charging', 'paid', 'completed', 'failed', 'refunded')),
    -- Zero and NULL only for a checkout refused before its cart could be priced.
    total_amount         bigint NOT NULL CHECK (total_amount >= 0),
    currency             text CHECK (currency ~ '^[a-z]{3}$'),
    refunded_amount      bigint NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0 AND refunded_amount <= total_amount),
    provider             text NOT NULL,
    provider_payment_ref text,
    failure_code         text,
    -- The bank's finer reason for a decline (insufficient_funds, lost_card, …) when the provider gives one.
    decline_code         text,
    failure_message      text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    completed_at         timestamptz
);

CREATE INDEX orders_user_id_idx ON orders (user_id);
CREATE INDEX orders_status_created_at_idx ON orders (status, created_at);

CREATE TABLE order_items (
    order_id     uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no      integer NOT NULL CHECK (line_no > 0),
    sku          text NOT NULL REFERENCES products (sku),
    name         text NOT NULL,
    quantity     integer NOT NULL CHECK (quantity > 0),
    unit_amount  bigint NOT NULL CHECK (unit_amount >= 0),
    line_amount  bigint NOT NULL CHECK (line_amount = unit_amount * quantity),
    PRIMARY KEY (order_id, line_no)
);

-- Every charge and refund attempt, keyed by the idempotency key sent to the provider, so that
-- a retried activity updates its own row instead of adding a second one.
CREATE TABLE payments (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id        uuid NOT NULL REFERENCES orders (id),
    kind            text NOT NULL CHECK (kind IN ('charge', 'refund')),
    provider        text NOT NULL,
    idempotency_key text NOT NULL UNIQUE,
    amount          bigint NOT NULL CHECK (amount >= 0),
    currency        text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    status          text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    provider_ref    text,
    failure_code    text,
    decline_code    text,
    attempts        integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payments_order_id_idx ON payments (order_id);

CREATE TABLE subscriptions (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id              uuid NOT NULL REFERENCES users (id),
    sku                  text NOT NULL REFERENCES products (sku),
    order_id             uuid REFERENCES orders (id),
    status               text NOT NULL CHECK (status IN ('trialing', 'active', 'past_due', 'canceled')),
    provider             text NOT NULL,
    provider_customer_ref text,
    provider_payment_method_ref text,
    current_period_start timestamptz NOT NULL,
    current_period_end   timestamptz NOT NULL,
    trial_end            timestamptz,
    cancel_at_period_end boolean NOT NULL DEFAULT false,
    canceled_at          timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (current_period_end > current_period_start)
);

-- The renewal sweep pages through live subscriptions by the end of their period.
CREATE INDEX subscriptions_due_idx ON subscriptions (current_period_end, id)
    WHERE status IN ('trialing', 'active', 'past_due');
CREATE INDEX subscriptions_user_id_idx ON subscriptions (user_id);

---- create above / drop below ----

DROP TABLE subscriptions;
DROP TABLE payments;
DROP TABLE order_items;
DROP TABLE orders;
DROP TABLE users;
DROP TABLE products;
