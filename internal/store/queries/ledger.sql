-- The ledger comes first: what a charge reads before it asks a provider, and the provider
-- payment it records as soon as one exists.

-- name: PaymentByKey :one
SELECT * FROM payments WHERE idempotency_key = $1;

-- RecordProviderPayment records the provider's payment on a charge's ledger row as soon as the
-- provider made it, before any money can move on it. Recording the same payment again matches
-- the row; a row that names another payment matches nothing.
-- name: RecordProviderPayment :one
UPDATE payments SET provider_ref = @provider_ref::text, updated_at = now()
WHERE idempotency_key = @idempotency_key AND kind = 'charge'
  AND (provider_ref IS NULL OR provider_ref = @provider_ref::text)
RETURNING order_id;
