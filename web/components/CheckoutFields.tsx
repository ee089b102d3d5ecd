"use client";

import { useEffect, useRef } from "react";
import type { CheckoutState } from "@/lib/checkout-state";
import { type PaymentOption, PaymentPicker } from "./PaymentPicker";

/** CheckoutFields is the checkout form's fields and messages for a given state (no side effects, so it can be tested alone). */
export function CheckoutFields(props: {
  state: CheckoutState;
  options: PaymentOption[];
  pending: boolean;
  payLabel: string;
  cardSlot?: React.ReactNode;
}) {
  const { state } = props;
  const err = state.kind === "error" ? state : undefined;
  const values = err?.values;
  const alertRef = useRef<HTMLDivElement>(null);
  // Focus moves to the message so that a keyboard or screen-reader user learns what happened.
  useEffect(() => {
    if (state.kind === "declined" || (state.kind === "error" && !state.field)) alertRef.current?.focus();
    if (state.kind === "error" && state.field && state.field !== "method") {
      document.getElementById(`checkout-${state.field}`)?.focus();
    }
  }, [state]);
  const fieldError = (f: string) => (err?.field === f ? err.message : undefined);
  return (
    <>
      {state.kind === "declined" || (err && !err.field) ? (
        <div ref={alertRef} tabIndex={-1} role="alert" className="banner error" data-testid="checkout-error" data-checkout-id={state.kind === "declined" ? state.checkoutId : undefined}>
          {state.kind === "declined" ? state.message : err?.message}
        </div>
      ) : null}
      <div className="field">
        <label htmlFor="checkout-email">Email</label>
        <input
          id="checkout-email"
          name="email"
          type="email"
          autoComplete="email"
          required
          defaultValue={values?.email}
          aria-invalid={fieldError("email") ? true : undefined}
          aria-describedby={fieldError("email") ? "checkout-email-err" : undefined}
        />
        {fieldError("email") ? (
          <p id="checkout-email-err" className="error">
            {fieldError("email")}
          </p>
        ) : null}
      </div>
      <div className="field">
        <label htmlFor="checkout-name">Name</label>
        <input
          id="checkout-name"
          name="name"
          autoComplete="name"
          required
          maxLength={200}
          defaultValue={values?.name}
          aria-invalid={fieldError("name") ? true : undefined}
          aria-describedby={fieldError("name") ? "checkout-name-err" : undefined}
        />
        {fieldError("name") ? (
          <p id="checkout-name-err" className="error">
            {fieldError("name")}
          </p>
        ) : null}
      </div>
      <PaymentPicker options={props.options} value={values?.method} error={fieldError("method")} />
      {props.cardSlot}
      <button type="submit" className="primary" disabled={props.pending} aria-busy={props.pending}>
        {props.pending ? "Processing…" : props.payLabel}
      </button>
    </>
  );
}
