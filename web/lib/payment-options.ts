import { isLocal, localBraintreeKey } from "./catalog";
import type { PaymentConfig } from "./types";

// The payment choices, kept out of the client components so that server pages can read them.

/** PaymentOption is one choice of the picker: value is "<provider>:<token>", or "paypal", or "card" for a real card form. */
export type PaymentOption = { value: string; label: string; hint?: string };

/** stripeTestMethods are Stripe's documented test PaymentMethods, offered with the local key. */
export const stripeTestMethods: PaymentOption[] = [
  { value: "stripe:pm_card_visa", label: "Test Visa: succeeds", hint: "pm_card_visa" },
  { value: "stripe:pm_card_chargeDeclined", label: "Test Visa: declined", hint: "pm_card_chargeDeclined" },
  { value: "stripe:pm_card_authenticationRequired", label: "Test Visa: asks for 3-D Secure", hint: "pm_card_authenticationRequired" },
];

/** braintreeTestNonces are Braintree's documented sandbox nonces, offered with the local key. */
export const braintreeTestNonces: PaymentOption[] = [
  { value: "braintree:fake-valid-nonce", label: "Braintree test card: succeeds", hint: "fake-valid-nonce" },
  { value: "braintree:fake-processor-declined-visa-nonce", label: "Braintree test card: declined", hint: "fake-processor-declined-visa-nonce" },
];


/**
 * paymentOptions is decided per request from the BFF's payment config, never at build time:
 * the local doubles' keys get a picker of documented test methods, a real key a card form.
 */
export function paymentOptions(cfg: PaymentConfig, plan: boolean): { options: PaymentOption[]; stripeKey?: string; braintreeKey?: string } {
  const options: PaymentOption[] = [];
  let stripeKey: string | undefined;
  let braintreeKey: string | undefined;
  if (isLocal(cfg)) {
    const names = new Set((cfg.processors ?? []).map((p) => p.name));
    const stripeFirst = cfg.card_processor !== "braintree";
    const groups = stripeFirst ? [stripeTestMethods, names.has("braintree") ? braintreeTestNonces : []] : [braintreeTestNonces, names.has("stripe") ? stripeTestMethods : []];
    options.push(...groups.flat());
    // The local Braintree double is reached by its nonces whichever processor leads, as the BFF picks the provider by the token's shape.
    if (!names.has("braintree") && cfg.braintree?.tokenization_key === localBraintreeKey) options.push(...braintreeTestNonces);
  } else if (cfg.card_processor === "stripe" && cfg.stripe?.publishable_key) {
    stripeKey = cfg.stripe.publishable_key;
    options.push({ value: "card", label: "Card" });
  } else if (cfg.card_processor === "braintree" && cfg.braintree?.tokenization_key) {
    braintreeKey = cfg.braintree.tokenization_key;
    options.push({ value: "bt-card", label: "Card" });
  }
  // PayPal takes no recurring payments (the BFF's recurring_not_supported).
  if (cfg.paypal?.enabled && !plan) options.push({ value: "paypal:", label: "PayPal" });
  return { options, stripeKey, braintreeKey };
}

