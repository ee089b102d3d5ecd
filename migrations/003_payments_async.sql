-- The asynchronous side of payments: 3-D Secure, refunds after the fact, provider events
-- recorded on orders, and the card processors' recent health for routing.

-- requires_action: the bank asked the customer to authenticate (3-D Secure) and the checkout
-- waits. partially_refunded: some, not all, of the captured amount was returned.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('pending', 'charging', 'requires_action', 'paid', 'completed', 'failed', 'refunded',
                      'partially_refunded', 'expired'));
ALTER TABLE orders
    -- The open or last dispute's state, as the provider reported it (needs_response, won, lost, …).
    ADD COLUMN dispute_status text,
    ADD COLUMN disputed_amount bigint NOT NULL DEFAULT 0 CHECK (disputed_amount >= 0);
CREATE INDEX orders_provider_payment_ref_idx ON orders (provider, provider_payment_ref) WHERE provider_payment_ref IS NOT NULL;

-- What providers told us about an order, once per provider event: payments that succeeded or
-- failed asynchronously, refunds made outside cartflow, disputes.
CREATE TABLE order_events (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id          uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    provider          text NOT NULL,
    provider_event_id text NOT NULL,
    type              text NOT NULL,
    amount            bigint,
    currency          text,
    reason            text,
    at                timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_event_id)
);
CREATE INDEX order_events_order_idx ON order_events (order_id, id);

-- Technical outcomes of provider calls per minute, for the card processors' circuit breaker.
CREATE TABLE provider_health (
    provider  text NOT NULL,
    minute    timestamptz NOT NULL,
    successes integer NOT NULL DEFAULT 0,
    failures  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, minute)
);

---- create above / drop below ----

DROP TABLE provider_health;
DROP TABLE order_events;
DROP INDEX orders_provider_payment_ref_idx;
ALTER TABLE orders DROP COLUMN disputed_amount, DROP COLUMN dispute_status;
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('pending', 'charging', 'paid', 'completed', 'failed', 'refunded', 'expired'));
