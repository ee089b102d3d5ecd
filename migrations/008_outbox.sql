-- The transactional outbox (issue 13). Work that must follow a committed change, such as the
-- receipt email of a completed order, is written in that change's own transaction and delivered
-- afterwards by the worker's relay. The checkout then needs no activity of its own for it: one
-- engine round trip less per purchase, and the email can still never be lost, because it is
-- committed with the order or not at all.

CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    -- topic says how the relay delivers the payload: 'email' is an activities.EmailInput.
    topic        text NOT NULL,
    -- event_key makes a retried transaction enqueue nothing twice; for an email it is the email's
    -- own event key, which also keeps the email from being sent twice.
    event_key    text NOT NULL UNIQUE,
    payload      jsonb NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    -- A row is due from available_at on. A claim moves it a lease ahead, so that a relay that dies
    -- mid-delivery leaves it to the next claim instead of losing it; a failed attempt moves it by
    -- its backoff.
    available_at timestamptz NOT NULL DEFAULT now(),
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_available_at_idx ON outbox (available_at, id);

---- create above / drop below ----

DROP TABLE outbox;
