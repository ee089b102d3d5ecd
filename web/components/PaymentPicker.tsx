"use client";

import { useId } from "react";

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

/** PaymentPicker is a radio group of payment methods; it never takes a card number. */
export function PaymentPicker(props: { options: PaymentOption[]; value?: string; error?: string; onChange?: (v: string) => void }) {
  const id = useId();
  const errId = `${id}-err`;
  return (
    <fieldset className="picker" aria-describedby={props.error ? errId : undefined} aria-invalid={props.error ? true : undefined}>
      <legend>Payment method</legend>
      {props.options.map((o) => (
        <label key={o.value} className="choice">
          <input
            type="radio"
            name="method"
            value={o.value}
            defaultChecked={props.value === o.value}
            onChange={(e) => e.target.checked && props.onChange?.(o.value)}
            required
          />
          <span>
            {o.label}
            {o.hint ? <small className="hint"> ({o.hint})</small> : null}
          </span>
        </label>
      ))}
      {props.error ? (
        <p id={errId} className="error" role="alert">
          {props.error}
        </p>
      ) : null}
    </fieldset>
  );
}
