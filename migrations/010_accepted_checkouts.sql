-- A checkout answered 202 before its workflow wrote the order (CHECKOUT_WAIT ran out, as it does
-- around a Temporal restart) has a status URL and no order yet. The BFF records such a checkout
-- here when it answers the 202, and the status read answers pending for a checkout recorded here
-- that has no order yet, rather than 404. Only that slow path writes a row: a checkout answered
-- in time writes none.
--
-- A row lives as long as the Idempotency-Key of the request that started the checkout (the
-- cleanup prunes keys after 30 days), by far longer than the order takes to appear.
CREATE TABLE accepted_checkouts (
    checkout_id     text PRIMARY KEY,
    idempotency_key text NOT NULL REFERENCES idempotency_keys ("key") ON DELETE CASCADE,
    accepted_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accepted_checkouts_idempotency_key_idx ON accepted_checkouts (idempotency_key);

---- create above / drop below ----

DROP TABLE accepted_checkouts;
