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

