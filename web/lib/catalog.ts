import { bff } from "./bff";
import type { PaymentConfig, Product } from "./types";

/** getCatalog is the active catalog, or the BFF's error. */
export async function getCatalog() {
  const r = await bff<{ products: Product[] }>("/api/v1/products");
  return r.ok ? { ok: true as const, products: r.data.products ?? [] } : r;
}

/** getPaymentConfig is the processor to tokenize with and its public key. */
export async function getPaymentConfig() {
  return bff<PaymentConfig>("/api/v1/payment-config");
}

/** localStripeKey and localBraintreeKey are the keys of the local doubles: with them the storefront shows a test-method picker. */
export const localStripeKey = "pk_test_cartflowlocal";
export const localBraintreeKey = "sandbox_cartflow_local";

/** isLocal tells whether the payment config names the local doubles rather than a real processor. */
export function isLocal(cfg: PaymentConfig): boolean {
  if (cfg.card_processor === "braintree") return cfg.braintree?.tokenization_key === localBraintreeKey;
  return cfg.stripe?.publishable_key === localStripeKey;
}
