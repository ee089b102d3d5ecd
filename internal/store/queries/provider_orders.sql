-- BindProviderOrder records a provider order cartflow created, with its cart reference and
-- server-priced amount. Recording the same order again changes nothing and returns the row as
-- first recorded, so that a repeated request is answered alike.
-- name: BindProviderOrder :one
INSERT INTO provider_orders (provider, provider_order_id, cart_ref, amount, currency)
VALUES (@provider, @provider_order_id, @cart_ref, @amount, @currency)
ON CONFLICT (provider, provider_order_id) DO UPDATE SET provider_order_id = EXCLUDED.provider_order_id
RETURNING provider, provider_order_id, cart_ref, amount, currency;

-- ClaimProviderOrder gives a provider order to the cartflow order that charges it, in one
-- statement: the order claims it when nobody has, or when it is this order's already (a
-- retry), and only for the amount and currency it was created with. The row comes back with
-- claimed false when it exists but was not claimed: another order holds it, or the amount
-- differs. No row at all means cartflow never created the provider order.
-- name: ClaimProviderOrder :one
WITH claimed AS (
    UPDATE provider_orders po SET order_id = @order_id::uuid, claimed_at = coalesce(po.claimed_at, now())
    WHERE po.provider = @provider::text AND po.provider_order_id = @provider_order_id::text
      AND (po.order_id IS NULL OR po.order_id = @order_id::uuid)
      AND po.amount = @amount::bigint AND po.currency = @currency::text
    RETURNING po.cart_ref, po.amount, po.currency
)
SELECT c.cart_ref, c.amount, c.currency, true AS claimed FROM claimed c
UNION ALL
SELECT o.cart_ref, o.amount, o.currency, false AS claimed FROM provider_orders o
WHERE o.provider = @provider::text AND o.provider_order_id = @provider_order_id::text AND NOT EXISTS (SELECT 1 FROM claimed);
