-- name: ListActiveProducts :many
SELECT * FROM products WHERE active ORDER BY sku;

-- name: ProductsBySKU :many
SELECT * FROM products WHERE sku = ANY(@skus::text[]);

-- LockProductsBySKU holds the prices still while an order is written, so that the order's lines
-- match the catalog at one instant.
-- name: LockProductsBySKU :many
SELECT * FROM products WHERE sku = ANY(@skus::text[]) FOR SHARE;
