// The BFF's answers, as docs/api.md describes them.

/** Product is one catalog entry of GET /api/v1/products. */
export type Product = {
  sku: string;
  name: string;
  kind: "one_off" | "subscription";
  price_amount: number;
  currency: string;
  billing_interval?: string;
  trial_days: number;
  active: boolean;
};

/** Failure is why a checkout failed. */
export type Failure = { code: string; decline_code?: string; message: string };

/** CheckoutLine is one priced line of a checkout or order. */
export type CheckoutLine = { sku: string; name: string; quantity: number; unit_amount: number; line_amount: number };

/** Checkout is a checkout as the storefront sees it. */
export type Checkout = {
  checkout_id: string;
  status: string;
  order_id?: string;
  amount: number;
  currency?: string;
  failure?: Failure;
  redirect_url?: string;
  status_url?: string;
  items?: CheckoutLine[];
  action?: { client_secret: string; type: string; redirect_url?: string };
};

/** PaymentConfig is GET /api/v1/payment-config. */
export type PaymentConfig = {
  card_processor: "stripe" | "braintree" | "";
  processors?: { name: string; healthy: boolean }[];
  paypal?: { enabled: boolean };
  stripe?: { publishable_key: string };
  braintree?: { tokenization_key: string };
};

/** Order is one of the signed-in customer's orders. */
export type Order = {
  id: string;
  checkout_id: string;
  status: string;
  amount: number;
  refunded_amount: number;
  currency: string;
  provider: string;
  items: CheckoutLine[];
  failure?: Failure;
  created_at: string;
  completed_at: string | null;
};

/** Subscription is one of the customer's subscriptions (the detail adds its history). */
export type Subscription = {
  id: string;
  status: string;
  sku: string;
  plan_name: string;
  price_amount: number;
  currency: string;
  billing_interval: string;
  current_period_end: string;
  trial_end: string | null;
  cancel_at_period_end: boolean;
  history?: { from: string | null; to: string; reason: string; at: string }[];
};

/** ApiError is the BFF's error body. */
export type ApiError = { code: string; message: string; field?: string };

/** terminalStatuses are the checkout states that will not change by waiting. */
export const terminalStatuses = new Set(["completed", "failed", "expired", "refunded", "partially_refunded"]);
