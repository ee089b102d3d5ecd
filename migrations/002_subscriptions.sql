-- Subscriptions: plan snapshots, state history, renewals as orders, customer emails, daily
-- figures for BI, and provider events (written by webhooks; pruned by cleanup).

-- The user's subscription status, kept current by every subscription state change.
ALTER TABLE users
    ADD COLUMN subscription_status text NOT NULL DEFAULT 'none'
        CHECK (subscription_status IN ('none', 'trialing', 'active', 'past_due', 'canceled')),
    -- The provider's customer (a Stripe Customer id) holding the saved payment method.
    ADD COLUMN provider_customer_ref text;

CREATE INDEX users_unconfirmed_created_at_idx ON users (created_at) WHERE status = 'pending';

-- A checkout abandoned before payment expires; a renewal is an order of its own.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('pending', 'charging', 'paid', 'completed', 'failed', 'refunded', 'expired'));
ALTER TABLE orders
    ADD COLUMN kind text NOT NULL DEFAULT 'checkout' CHECK (kind IN ('checkout', 'renewal')),
    ADD COLUMN subscription_id uuid REFERENCES subscriptions (id);
CREATE INDEX orders_pending_created_at_idx ON orders (created_at) WHERE status = 'pending';
CREATE INDEX orders_created_at_idx ON orders (created_at);

-- The plan as it was sold, so that a later price change does not reprice a running subscription.
ALTER TABLE subscriptions
    ADD COLUMN price_amount bigint NOT NULL CHECK (price_amount >= 0),
    ADD COLUMN currency text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    ADD COLUMN billing_interval text NOT NULL CHECK (billing_interval IN ('day', 'week', 'month', 'year')),
    -- Failed renewal attempts in the current dunning run; zero when the subscription is in good standing.
    ADD COLUMN dunning_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN trial_reminder_sent_for timestamptz;
-- One subscription per purchase, so that a retried activity cannot create two.
CREATE UNIQUE INDEX subscriptions_order_id_key ON subscriptions (order_id);

-- Every move between subscription states, with when and why.
CREATE TABLE subscription_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    from_status     text,
    to_status       text NOT NULL,
    reason          text NOT NULL,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscription_events_subscription_idx ON subscription_events (subscription_id, id);
CREATE INDEX subscription_events_at_idx ON subscription_events (at, to_status);

-- Customer and ops emails. event_key names the event an email is for, so that an email is sent
-- at most once per event however often the sending activity runs.
CREATE TABLE emails (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_key  text NOT NULL UNIQUE,
    kind       text NOT NULL,
    recipient  text NOT NULL,
    subject    text NOT NULL,
    -- sending: claimed by an attempt whose outcome is not known yet; never sent again.
    status     text NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX emails_created_at_idx ON emails (created_at);

-- Provider events received by webhooks, once each.
CREATE TABLE provider_events (
    provider    text NOT NULL,
    event_id    text NOT NULL,
    type        text NOT NULL,
    payload     jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);
CREATE INDEX provider_events_received_at_idx ON provider_events (received_at);

-- The daily summary's figures, one row per day, for BI tools.
CREATE TABLE daily_summaries (
    day                 date PRIMARY KEY,
    new_orders          integer NOT NULL,
    new_subscriptions   integer NOT NULL,
    renewals_succeeded  integer NOT NULL,
    renewals_failed     integer NOT NULL,
    cancellations       integer NOT NULL,
    in_dunning          integer NOT NULL,
    computed_at         timestamptz NOT NULL DEFAULT now()
);

-- Revenue per currency per day (charges less refunds, in minor units).
CREATE TABLE daily_revenue (
    day      date NOT NULL REFERENCES daily_summaries (day) ON DELETE CASCADE,
    currency text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    amount   bigint NOT NULL,
    PRIMARY KEY (day, currency)
);

---- create above / drop below ----

DROP TABLE daily_revenue;
DROP TABLE daily_summaries;
DROP TABLE provider_events;
DROP TABLE emails;
DROP TABLE subscription_events;
DROP INDEX subscriptions_order_id_key;
ALTER TABLE subscriptions DROP COLUMN price_amount, DROP COLUMN currency, DROP COLUMN billing_interval,
    DROP COLUMN dunning_attempts, DROP COLUMN trial_reminder_sent_for;
DROP INDEX orders_created_at_idx;
DROP INDEX orders_pending_created_at_idx;
ALTER TABLE orders DROP COLUMN subscription_id, DROP COLUMN kind;
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('pending', 'charging', 'paid', 'completed', 'failed', 'refunded'));
DROP INDEX users_unconfirmed_created_at_idx;
ALTER TABLE users DROP COLUMN provider_customer_ref, DROP COLUMN subscription_status;
