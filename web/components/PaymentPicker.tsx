"use client";

import { useId } from "react";
import type { PaymentOption } from "@/lib/payment-options";

export type { PaymentOption };

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
