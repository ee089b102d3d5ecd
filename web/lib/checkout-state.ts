import type { ApiError, Failure } from "./types";

/** CheckoutState is what the checkout form shows after an attempt. */
export type CheckoutState =
  | { kind: "idle" }
  | { kind: "error"; message: string; field?: "email" | "name" | "method"; code?: string; values?: { email: string; name: string; method: string } }
  | { kind: "declined"; message: string; code?: string; checkoutId?: string }
  | { kind: "requires_action"; checkoutId: string; clientSecret: string; local: boolean; message?: string };

const messages: Record<string, string> = {
  card_declined: "Your card was declined. Nothing was charged; your cart is kept. Try another payment method.",
  insufficient_funds: "Your card has insufficient funds. Nothing was charged; try another payment method.",
  too_many_declines: "Too many declined attempts. Please wait a while before trying again.",
  authentication_failed: "Your bank did not confirm the payment. Nothing was charged; try again or use another card.",
  payment_intent_authentication_failure: "Your bank did not confirm the payment. Nothing was charged; try again or use another card.",
  expired_card: "Your card has expired. Nothing was charged; try another card.",
  incorrect_cvc: "The card's security code is incorrect. Nothing was charged.",
  processing_error: "The card could not be processed. Nothing was charged; please try again.",
  processor_declined: "Your card was declined. Nothing was charged; your cart is kept. Try another payment method.",
  paypal_order_unknown: "PayPal did not recognise this payment. Nothing was charged; please try again.",
  payment_already_used: "That PayPal payment was already used. Nothing more was charged; please try again.",
  amount_mismatch: "Your cart changed during the PayPal payment. Nothing was charged; please try again.",
  invalid_email: "Enter a valid email address.",
  invalid_name: "Enter your name (1 to 200 characters).",
  rate_limited: "Too many tries in a short time. Please wait a moment and try again.",
  service_unavailable: "The store is not answering right now. Please try again in a moment.",
  unknown_sku: "An item in your cart is no longer sold. Please review your cart.",
  product_unavailable: "An item in your cart is no longer available. Please review your cart.",
  subscription_cart_invalid: "A plan is bought on its own. Please review your cart.",
};

/** messageFor is a clear sentence for a failure or an error code, falling back on the BFF's own message. */
export function messageFor(f?: Failure | ApiError): string {
  if (!f) return "The payment did not go through. Nothing was charged.";
  if (f.code === "card_declined" && "decline_code" in f && f.decline_code === "insufficient_funds") return messages.insufficient_funds;
  return messages[f.code] ?? f.message ?? "Something went wrong.";
}
