"use server";

import { redirect } from "next/navigation";
import { bff } from "@/lib/bff";
import { readCart, writeCart } from "@/lib/cart";
import { addItem, newAttempt, removeItem, setQuantity } from "@/lib/cart-codec";
import { getCatalog, getPaymentConfig, isLocal } from "@/lib/catalog";
import { paypalDoubleURL, stripeLayerURL } from "@/lib/env";
import type { Checkout } from "@/lib/types";
import { type CheckoutState, messageFor } from "@/lib/checkout-state";

// Server actions: the browser posts forms here, and the Next server talks to the BFF.

/** addToCart adds a product to the signed cart cookie, then shows the cart. */
export async function addToCart(formData: FormData): Promise<void> {
  const sku = String(formData.get("sku") ?? "");
  const quantity = Number(formData.get("quantity") ?? 1);
  const catalog = await getCatalog();
  if (!catalog.ok) redirect(`/products/${encodeURIComponent(sku)}?error=unavailable`);
  const product = catalog.products.find((p) => p.sku === sku);
  if (!product) redirect("/?error=unknown_sku");
  await writeCart(addItem(await readCart(), product, quantity, catalog.products));
  // ?added= lets the next page report added_to_cart (the browser's analytics), once per cart change.
  redirect(`${product.kind === "subscription" ? "/checkout" : "/cart"}?added=${encodeURIComponent(sku)}`);
}

/** updateCart sets a line's quantity (0 removes it). */
export async function updateCart(formData: FormData): Promise<void> {
  const sku = String(formData.get("sku") ?? "");
  const quantity = Number(formData.get("quantity"));
  await writeCart(setQuantity(await readCart(), sku, quantity));
  redirect("/cart");
}

/** removeFromCart drops a line. */
export async function removeFromCart(formData: FormData): Promise<void> {
  await writeCart(removeItem(await readCart(), String(formData.get("sku") ?? "")));
  redirect("/cart");
}

/** settleCart empties the cart once the checkout bought with it completed. */
export async function settleCart(checkoutId: string): Promise<void> {
  const r = await bff<Checkout>(`/api/v1/checkouts/${encodeURIComponent(checkoutId)}`);
  if (r.ok && r.data.status === "completed") await writeCart({ items: [], attempt: newAttempt() });
}

// rotateAttempt starts a new checkout attempt on the same cart: after a decline the customer
// tries another card, which under the old Idempotency-Key the BFF would refuse.
async function rotateAttempt() {
  const cart = await readCart();
  await writeCart({ ...cart, attempt: newAttempt() });
}

// outcome turns a checkout's answer into what the form shows next.
async function outcome(c: Checkout, local: boolean): Promise<CheckoutState> {
  if (c.status === "requires_action" && c.action) {
    return { kind: "requires_action", checkoutId: c.checkout_id, clientSecret: c.action.client_secret, local };
  }
  if (c.status === "failed" || c.status === "expired") {
    await rotateAttempt();
    return { kind: "declined", message: messageFor(c.failure), code: c.failure?.code, checkoutId: c.checkout_id };
  }
  // completed, or still pending: the confirmation page follows it to its outcome.
  redirect(`/orders/${encodeURIComponent(c.checkout_id)}/confirmation`);
}

/**
 * checkout starts the checkout of the cart. Its Idempotency-Key is the cart's attempt, so a
 * double click, a retry or a reload sends the same key and the BFF starts one checkout.
 */
export async function checkout(_prev: CheckoutState, formData: FormData): Promise<CheckoutState> {
  const cart = await readCart();
  if (cart.items.length === 0) return { kind: "error", message: "Your cart is empty." };
  const email = String(formData.get("email") ?? "").trim();
  const name = String(formData.get("name") ?? "").trim();
  const method = String(formData.get("method") ?? "");
  const values = { email, name, method };
  if (!email) return { kind: "error", field: "email", message: "Enter your email address.", values };
  if (!name) return { kind: "error", field: "name", message: "Enter your name.", values };
  if (!method) return { kind: "error", field: "method", message: "Choose a payment method.", values };
  const cfgRes = await getPaymentConfig();
  const local = cfgRes.ok ? isLocal(cfgRes.data) : false;

  let provider = method.split(":")[0];
  let token = method.slice(provider.length + 1);
  if (provider === "paypal") {
    const pp = await bff<{ paypal_order_id: string; approve_url: string }>("/api/v1/paypal/orders", {
      method: "POST",
      idempotencyKey: cart.attempt + ":pp",
      body: { items: cart.items },
    });
    if (!pp.ok) return { kind: "error", message: pp.error.message, code: pp.error.code, values };
    if (!local) return { kind: "error", message: "PayPal approval is only wired to the local PayPal double yet.", values };
    // Locally the PayPal double's approval stands in for the buyer approving at PayPal.
    try {
      const ok = await fetch(`${paypalDoubleURL()}/__cartflow/orders/${encodeURIComponent(pp.data.paypal_order_id)}/approve`, {
        method: "POST",
        cache: "no-store",
      });
      if (!ok.ok) return { kind: "error", message: "PayPal did not approve the order.", values };
    } catch {
      return { kind: "error", message: "PayPal is not answering right now. Please try again.", values };
    }
    token = pp.data.paypal_order_id;
  } else if (provider === "card") {
    provider = cfgRes.ok ? cfgRes.data.card_processor : "stripe";
  }
  if (!token) return { kind: "error", field: "method", message: "Choose a payment method.", values };

  const body = { email, name, items: cart.items, payment: { provider, token } };
  let r = await bff<Checkout>("/api/v1/checkouts", { method: "POST", idempotencyKey: cart.attempt, body });
  // A second click while the first request runs gets request_in_progress: wait for the first
  // answer under the same key rather than show an error.
  for (let i = 0; i < 10 && !r.ok && r.error.code === "request_in_progress"; i++) {
    await new Promise((res) => setTimeout(res, Math.min(2, r.ok ? 1 : (r.retryAfter ?? 1)) * 500));
    r = await bff<Checkout>("/api/v1/checkouts", { method: "POST", idempotencyKey: cart.attempt, body });
  }
  if (!r.ok) {
    if (r.error.code === "idempotency_key_reused") {
      // The details changed since the last attempt under this key: a new attempt, and the
      // customer presses Pay again, so that nothing is started twice behind their back.
      await rotateAttempt();
      return { kind: "error", message: "Your details changed since the last try. Please press Pay again.", values };
    }
    return { kind: "error", field: fieldOf(r.error.field), message: messageFor(r.error), code: r.error.code, values };
  }
  return outcome(r.data, local);
}

function fieldOf(f?: string): "email" | "name" | "method" | undefined {
  if (f === "email" || f === "name") return f;
  if (f?.startsWith("payment")) return "method";
  return undefined;
}

/**
 * authenticate finishes the 3-D Secure step. With the local Stripe key the Next server plays
 * the customer at the Stripe layer first; with a real key Stripe.js did that in the browser.
 * Either way the BFF then asks the provider, which alone decides.
 */
export async function authenticate(checkoutId: string, clientSecret: string, outcomeWanted: "succeeded" | "failed" | null): Promise<CheckoutState> {
  const cfg = await getPaymentConfig();
  const local = cfg.ok && isLocal(cfg.data);
  if (local && outcomeWanted) {
    const pi = clientSecret.split("_secret_")[0];
    if (!/^pi_[A-Za-z0-9]+$/.test(pi)) return { kind: "error", message: "This payment cannot be authenticated." };
    try {
      await fetch(`${stripeLayerURL()}/__cartflow/payment_intents/${pi}/authenticate`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ outcome: outcomeWanted }),
        cache: "no-store",
      });
    } catch {
      return { kind: "error", message: "The bank is not answering right now. Please try again." };
    }
  }
  const r = await bff<Checkout>(`/api/v1/checkouts/${encodeURIComponent(checkoutId)}/authentication`, { method: "POST", body: {} });
  if (!r.ok) return { kind: "error", message: messageFor(r.error), code: r.error.code };
  if (r.data.status === "requires_action") {
    return { kind: "requires_action", checkoutId, clientSecret, local, message: "The payment is not authenticated yet." };
  }
  return outcome(r.data, local);
}
