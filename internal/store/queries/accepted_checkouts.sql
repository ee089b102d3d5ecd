-- RecordAcceptedCheckout notes a checkout answered 202 before its order existed. The key's row is
-- the claim the request holds, so it exists; a repeat of the 202 changes nothing.
-- name: RecordAcceptedCheckout :exec
INSERT INTO accepted_checkouts (checkout_id, idempotency_key) VALUES (@checkout_id, @idempotency_key)
ON CONFLICT (checkout_id) DO NOTHING;

-- name: IsAcceptedCheckout :one
SELECT EXISTS (SELECT 1 FROM accepted_checkouts WHERE checkout_id = @checkout_id);
