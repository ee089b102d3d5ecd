-- Rate limits and card-testing defence (issue 11). Every key is a keyed hash (HMAC-SHA-256)
-- of the client IP, the email or the staff key id: the counters must not become a log of who
-- came from where.

-- One fixed-window counter per bucket (sign_in_ip, checkout_email, …), key and window. The BFF
-- replicas share it: each request is one upsert that returns the new count.
CREATE TABLE rate_limit_counters (
    bucket       text NOT NULL,
    key_hash     text NOT NULL,
    window_start timestamptz NOT NULL,
    count        integer NOT NULL DEFAULT 1,
    PRIMARY KEY (bucket, key_hash, window_start)
);
-- The cleanup prunes by window.
CREATE INDEX rate_limit_counters_window_start_idx ON rate_limit_counters (window_start);

-- Where a checkout (or a card change) came from, recorded by the BFF before it starts the
-- workflow, so that the worker can attribute a decline to the IP and email without either
-- travelling in a workflow history.
CREATE TABLE checkout_sources (
    workflow_id text PRIMARY KEY,
    ip_hash     text NOT NULL,
    email_hash  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkout_sources_created_at_idx ON checkout_sources (created_at);

-- One row per declined payment or card check, for the velocity limits per IP, email and card
-- fingerprint. A source cartflow does not know (a renewal) leaves its hashes NULL.
CREATE TABLE payment_declines (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id  text NOT NULL,
    ip_hash      text,
    email_hash   text,
    fingerprint  text,
    provider     text NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_declines_ip_idx ON payment_declines (ip_hash, at) WHERE ip_hash IS NOT NULL;
CREATE INDEX payment_declines_email_idx ON payment_declines (email_hash, at) WHERE email_hash IS NOT NULL;
CREATE INDEX payment_declines_fingerprint_idx ON payment_declines (fingerprint, at) WHERE fingerprint IS NOT NULL;
CREATE INDEX payment_declines_at_idx ON payment_declines (at);

---- create above / drop below ----

DROP TABLE payment_declines;
DROP TABLE checkout_sources;
DROP TABLE rate_limit_counters;
