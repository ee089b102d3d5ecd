-- Staff identities: one key per staff member, scoped and revocable, and an audit row for every
-- staff action. Neither table holds a secret: a key is stored as the SHA-256 of its text, and
-- shown by its prefix.

CREATE TABLE staff_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- name is the staff member the key belongs to.
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- prefix is the start of the key (cfsk_ and 8 characters), for lists and revocation; it
    -- cannot authenticate anything on its own.
    prefix       text NOT NULL CHECK (prefix ~ '^cfsk_[A-Za-z0-9_-]{8}$'),
    -- key_hash is the SHA-256 of the whole key. The key is 32 random bytes, so a plain hash is
    -- enough: there is nothing to guess that a slow, salted hash would protect.
    key_hash     bytea NOT NULL CHECK (length(key_hash) = 32),
    scopes       text[] NOT NULL CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['refunds', 'orders:read', 'ops']::text[]),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE UNIQUE INDEX staff_keys_key_hash_key ON staff_keys (key_hash);
CREATE INDEX staff_keys_prefix_idx ON staff_keys (prefix);

-- One row per staff action that got past authentication, refused or not. The BFF writes it as
-- attempted before it acts and records the outcome after; a row still attempted is an action
-- whose outcome could not be recorded (see api/staff.go). detail holds ids and codes only.
CREATE TABLE staff_audit (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff_key_id uuid NOT NULL REFERENCES staff_keys (id),
    action       text NOT NULL,
    target       text NOT NULL DEFAULT '',
    request_id   text NOT NULL DEFAULT '',
    outcome      text NOT NULL DEFAULT 'attempted'
        CHECK (outcome IN ('attempted', 'succeeded', 'pending', 'refused', 'forbidden', 'failed')),
    status       integer CHECK (status BETWEEN 100 AND 599),
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX staff_audit_staff_key_id_idx ON staff_audit (staff_key_id, id);
CREATE INDEX staff_audit_target_idx ON staff_audit (target, id);

---- create above / drop below ----

DROP TABLE staff_audit;
DROP TABLE staff_keys;
