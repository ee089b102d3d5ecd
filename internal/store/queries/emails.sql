-- ClaimEmail inserts the row as sending, or moves a pending row to sending, and returns its id;
-- a row in any other status yields no row. Being one statement makes concurrent claims safe: the
-- conflicting insert waits for the other transaction and rechecks the status it committed.
-- name: ClaimEmail :one
INSERT INTO emails (event_key, kind, recipient, subject, status) VALUES ($1, $2, $3, $4, 'sending')
ON CONFLICT (event_key) DO UPDATE
    SET status = 'sending', kind = EXCLUDED.kind, recipient = EXCLUDED.recipient, subject = EXCLUDED.subject
    WHERE emails.status = 'pending'
RETURNING id;

-- name: MarkEmailSent :execrows
UPDATE emails SET status = 'sent', sent_at = coalesce(sent_at, now())
WHERE event_key = $1 AND status IN ('sending', 'sent');

-- name: ReleaseEmail :execrows
UPDATE emails SET status = 'pending'
WHERE event_key = $1 AND status IN ('sending', 'pending');

-- name: MarkEmailFailed :execrows
UPDATE emails SET status = 'failed'
WHERE event_key = $1 AND status IN ('sending', 'failed');

-- name: EmailByKey :one
SELECT * FROM emails WHERE event_key = $1;
