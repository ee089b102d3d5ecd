import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

// The cart lives in a cookie the customer holds, signed so that it cannot be edited by hand.
// It holds SKUs and quantities only: prices are shown from the catalog, and only the BFF prices
// a charge.

/** CartItem is one line of the cart. */
export type CartItem = { sku: string; quantity: number };

/** Cart is the cart cookie's content; attempt names the current checkout attempt (its Idempotency-Key). */
export type Cart = { items: CartItem[]; attempt: string };

/** maxQuantity and maxLines mirror the BFF's limits, so that a cart the storefront keeps is one it accepts. */
export const maxQuantity = 99;
export const maxLines = 20;
const skuPattern = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** newAttempt is a fresh checkout attempt id, usable as an Idempotency-Key (8–100 safe chars). */
export function newAttempt(): string {
  return "co_" + randomBytes(16).toString("base64url").replace(/[^A-Za-z0-9]/g, "x");
}

/** emptyCart is a cart with no lines. */
export function emptyCart(): Cart {
  return { items: [], attempt: newAttempt() };
}

function sign(payload: string, secret: string): string {
  return createHmac("sha256", secret).update(payload).digest("base64url");
}

/** encodeCart is the cookie value for cart: its JSON in base64url, a dot, and its HMAC. */
export function encodeCart(cart: Cart, secret: string): string {
  const payload = Buffer.from(JSON.stringify(cart)).toString("base64url");
  return payload + "." + sign(payload, secret);
}

/** decodeCart reads a cookie value; a missing, forged or malformed one gives an empty cart. */
export function decodeCart(value: string | undefined, secret: string): Cart {
  if (!value) return emptyCart();
  const dot = value.lastIndexOf(".");
  if (dot <= 0) return emptyCart();
  const payload = value.slice(0, dot);
  const given = Buffer.from(value.slice(dot + 1));
  const want = Buffer.from(sign(payload, secret));
  if (given.length !== want.length || !timingSafeEqual(given, want)) return emptyCart();
  try {
    const raw = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    const items: CartItem[] = Array.isArray(raw.items)
      ? raw.items.filter(
          (i: CartItem) => typeof i?.sku === "string" && skuPattern.test(i.sku) && Number.isInteger(i.quantity) && i.quantity >= 1 && i.quantity <= maxQuantity,
        )
      : [];
    const attempt = typeof raw.attempt === "string" && /^[A-Za-z0-9._:-]{8,100}$/.test(raw.attempt) ? raw.attempt : newAttempt();
    return { items: items.slice(0, maxLines), attempt };
  } catch {
    return emptyCart();
  }
}

/** CartProduct is what the cart needs to know of a product. */
export type CartProduct = { sku: string; kind: "one_off" | "subscription" };

// Every change to the lines starts a new checkout attempt: the BFF would refuse the old key with
// another cart (idempotency_key_reused).
function changed(items: CartItem[]): Cart {
  return { items, attempt: newAttempt() };
}

/**
 * addItem adds quantity of a product. A plan is bought alone with quantity 1 (the BFF's
 * subscription_cart_invalid), so adding a plan replaces the cart, and adding a product to a cart
 * holding a plan drops the plan.
 */
export function addItem(cart: Cart, product: CartProduct, quantity: number, catalog: CartProduct[]): Cart {
  if (!skuPattern.test(product.sku) || !Number.isInteger(quantity) || quantity < 1) return cart;
  if (product.kind === "subscription") return changed([{ sku: product.sku, quantity: 1 }]);
  const plans = new Set(catalog.filter((p) => p.kind === "subscription").map((p) => p.sku));
  const items = cart.items.filter((i) => !plans.has(i.sku));
  const existing = items.find((i) => i.sku === product.sku);
  if (existing) {
    return changed(items.map((i) => (i.sku === product.sku ? { ...i, quantity: Math.min(maxQuantity, i.quantity + quantity) } : i)));
  }
  if (items.length >= maxLines) return cart;
  return changed([...items, { sku: product.sku, quantity: Math.min(maxQuantity, quantity) }]);
}

/** setQuantity sets a line's quantity (clamped to 1–99); 0 removes it. */
export function setQuantity(cart: Cart, sku: string, quantity: number): Cart {
  if (!Number.isInteger(quantity) || quantity < 0) return cart;
  if (quantity === 0) return removeItem(cart, sku);
  if (!cart.items.some((i) => i.sku === sku)) return cart;
  return changed(cart.items.map((i) => (i.sku === sku ? { ...i, quantity: Math.min(maxQuantity, quantity) } : i)));
}

/** removeItem drops a line. */
export function removeItem(cart: Cart, sku: string): Cart {
  if (!cart.items.some((i) => i.sku === sku)) return cart;
  return changed(cart.items.filter((i) => i.sku !== sku));
}

/** cartCount is the number of units in the cart. */
export function cartCount(cart: Cart): number {
  return cart.items.reduce((n, i) => n + i.quantity, 0);
}
