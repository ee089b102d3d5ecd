// Server-side settings, read at run time (never inlined at build time), so that one build
// serves development and production alike.

/** apiURL is the BFF's base URL (CARTFLOW_API_URL), without a trailing slash. */
export function apiURL(): string {
  return (process.env.CARTFLOW_API_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
}

/** storefrontOrigin is the storefront's own origin (STOREFRONT_URL), which the BFF checks Origin against. */
export function storefrontOrigin(): string {
  return new URL(process.env.STOREFRONT_URL ?? "http://localhost:3000").origin;
}

const devCartSecret = "cartflow-dev-cart-secret-not-for-production";

/** cartSecret is the HMAC key of the cart cookie; production refuses to run without CART_SECRET. */
export function cartSecret(): string {
  const s = process.env.CART_SECRET;
  if (s) return s;
  if (process.env.NODE_ENV === "production" && process.env.CARTFLOW_ENV !== "development") {
    throw new Error("CART_SECRET must be set in production");
  }
  return devCartSecret;
}

/** stripeLayerURL is the local Stripe layer, used only with the local publishable key. */
export function stripeLayerURL(): string {
  return (process.env.STRIPE_LAYER_URL ?? "http://127.0.0.1:12113").replace(/\/+$/, "");
}

/** paypalDoubleURL is the local PayPal double, used only to approve orders locally. */
export function paypalDoubleURL(): string {
  return (process.env.PAYPAL_DOUBLE_URL ?? "http://127.0.0.1:12117").replace(/\/+$/, "");
}
