-- Money integrity: one order per provider charge, PayPal orders bound to the checkout that
-- created them, Stripe-style idempotency for every mutating endpoint, and the payments that
-- took money without a paid order to show for it.

-- Two orders can never name the same provider charge, and two ledger rows never record the
-- same provider payment as two charges.
DROP INDEX orders_provider_payment_ref_idx;
CREATE UNIQUE INDEX orders_provider_payment_ref_key ON orders (provider, provider_payment_ref)
    WHERE provider_payment_ref IS NOT NULL;
CREATE UNIQUE INDEX payments_charge_provider_ref_key ON payments (provider, provider_ref)
    WHERE kind = 'charge' AND provider_ref IS NOT NULL;

-- Provider orders that cartflow created server-side for the buyer to approve (PayPal), each
-- with the server-priced amount and a cart reference sent as the order's custom_id. The
-- cartflow order that first charges it claims it; no other order may ever capture it.
CREATE TABLE provider_orders (
    provider          text NOT NULL,
    provider_order_id text NOT NULL,
    cart_ref          text NOT NULL UNIQUE,
    amount            bigint NOT NULL CHECK (amount > 0),
    currency          text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    order_id          uuid UNIQUE REFERENCES orders (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    claimed_at        timestamptz,
    PRIMARY KEY (provider, provider_order_id)
);
CREATE INDEX provider_orders_created_at_idx ON provider_orders (created_at);

-- One row per Idempotency-Key of a mutating endpoint, with Stripe's semantics: the key's
-- scope (the endpoint and the resource or customer) and the request's fingerprint are fixed by
-- its first request, and the first final answer is stored and served to every repeat. A
-- request under way holds the key until locked_until, so that a BFF that died mid-request
-- does not hold it forever. Rows are kept at least 30 days.
CREATE TABLE idempotency_keys (
    key              text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
    scope            text NOT NULL,
    fingerprint      text NOT NULL,
    locked_until     timestamptz,
    response_status  integer CHECK (response_status BETWEEN 200 AND 599),
    response_headers jsonb,
    response_body    bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- Payments that took money for an order that is not paid (failed, expired, compensated as
-- "nothing charged", or unknown to cartflow), found by a provider event or the reconciliation.
-- Each is refunded once, under refund_key, and reported to ops.
CREATE TABLE orphan_payments (
    provider     text NOT NULL,
    provider_ref text NOT NULL,
    order_id     uuid REFERENCES orders (id) ON DELETE SET NULL,
    amount       bigint NOT NULL CHECK (amount >= 0),
    currency     text NOT NULL,
    found_by     text NOT NULL CHECK (found_by IN ('webhook', 'reconciliation')),
    status       text NOT NULL DEFAULT 'refunding' CHECK (status IN ('refunding', 'refunded', 'refund_failed')),
    refund_key   text NOT NULL UNIQUE,
    refund_ref   text,
    found_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    PRIMARY KEY (provider, provider_ref)
);
CREATE INDEX orphan_payments_order_id_idx ON orphan_payments (order_id);

-- A SKU has the shape the BFF accepts (no underscore any more), so that the catalog, the seed
-- included, can hold no product that a checkout could not name.
ALTER TABLE products DROP CONSTRAINT products_sku_check,
    ADD CONSTRAINT products_sku_check CHECK (sku ~ '^[a-z0-9][a-z0-9-]{0,63}$');

---- create above / drop below ----

ALTER TABLE products DROP CONSTRAINT products_sku_check,
    ADD CONSTRAINT products_sku_check CHECK (sku ~ '^[a-z0-9][a-z0-9_-]{0,63}$');

DROP TABLE orphan_payments;
DROP TABLE idempotency_keys;
DROP TABLE provider_orders;
DROP INDEX payments_charge_provider_ref_key;
DROP INDEX orders_provider_payment_ref_key;
CREATE INDEX orders_provider_payment_ref_idx ON orders (provider, provider_payment_ref) WHERE provider_payment_ref IS NOT NULL;
