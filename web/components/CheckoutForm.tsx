"use client";

import { useActionState, useEffect, useRef, useState, useTransition } from "react";
import { authenticate, checkout } from "@/app/actions";
import type { CheckoutState } from "@/lib/checkout-state";
import { CheckoutFields } from "./CheckoutFields";
import type { PaymentOption } from "./PaymentPicker";
import { identifyEmail, track } from "@/lib/analytics-client";
import { createHostedFields, type HostedFieldsLike } from "./braintree-loader";
import { loadStripe, type StripeLike } from "./stripe-loader";

/**
 * CheckoutForm runs a checkout: the fields, then the 3-D Secure step when the bank asks for it.
 * With a real Stripe key (stripeKey) a Stripe card Element makes the PaymentMethod in the
 * browser; otherwise the picker's test methods are sent as they are.
 */
export function CheckoutForm(props: { options: PaymentOption[]; payLabel: string; stripeKey?: string; braintreeKey?: string; attempt: string }) {
  const stripe = useRef<{ client: StripeLike; card: unknown } | null>(null);
  const cardEl = useRef<HTMLDivElement>(null);
  const [cardError, setCardError] = useState<string>();
  const hosted = useRef<HostedFieldsLike | null>(null);

  useEffect(() => {
    if (!props.braintreeKey) return;
    createHostedFields(props.braintreeKey, { number: "bt-number", cvv: "bt-cvv", expirationDate: "bt-exp" })
      .then((h) => (hosted.current = h))
      .catch(() => setCardError("The card form could not load. Please reload the page."));
  }, [props.braintreeKey]);

  useEffect(() => {
    if (!props.stripeKey || !cardEl.current) return;
    let cancelled = false;
    loadStripe(props.stripeKey)
      .then((client) => {
        if (cancelled || !cardEl.current) return;
        const card = client.elements().create("card");
        card.mount(cardEl.current);
        stripe.current = { client, card };
      })
      .catch(() => setCardError("The card form could not load. Please reload the page."));
    return () => {
      cancelled = true;
    };
  }, [props.stripeKey]);

  const [state, formAction, pending] = useActionState(async (prev: CheckoutState, fd: FormData): Promise<CheckoutState> => {
    if (fd.get("method") === "card") {
      if (!stripe.current) return { kind: "error", field: "method", message: "The card form is still loading." };
      const { paymentMethod, error } = await stripe.current.client.createPaymentMethod({ type: "card", card: stripe.current.card });
      if (error || !paymentMethod) return { kind: "error", field: "method", message: error?.message ?? "Check your card details." };
      fd.set("method", `stripe:${paymentMethod.id}`);
    }
    if (fd.get("method") === "bt-card") {
      if (!hosted.current) return { kind: "error", field: "method", message: "The card form is still loading." };
      try {
        fd.set("method", `braintree:${(await hosted.current.tokenize()).nonce}`);
      } catch {
        return { kind: "error", field: "method", message: "Check your card details." };
      }
    }
    await identifyEmail(String(fd.get("email") ?? ""));
    track("checkout_submitted", { payment: String(fd.get("method") ?? "").split(":")[0] }, `cs-${props.attempt}`);
    const next = await checkout(prev, fd);
    if (next.kind === "declined") track("checkout_outcome", { status: "failed", code: next.code }, `co-${next.checkoutId ?? props.attempt}`);
    return next;
  }, { kind: "idle" } as CheckoutState);

  if (state.kind === "requires_action") return <AuthenticateStep state={state} stripeKey={props.stripeKey} />;

  return (
    <form action={formAction} className="checkout" noValidate aria-label="Checkout">
      <CheckoutFields
        state={state}
        options={props.options}
        pending={pending}
        payLabel={props.payLabel}
        cardSlot={
          props.stripeKey ? (
            <div className="field">
              <span id="card-label">Card</span>
              <div ref={cardEl} className="card-element" aria-labelledby="card-label" />
              {cardError ? <p className="error">{cardError}</p> : null}
            </div>
          ) : props.braintreeKey ? (
            <div className="field">
              <span id="bt-label">Card</span>
              <div aria-labelledby="bt-label">
                <div id="bt-number" className="card-element" />
                <div className="row">
                  <div id="bt-exp" className="card-element" />
                  <div id="bt-cvv" className="card-element" />
                </div>
              </div>
              {cardError ? <p className="error">{cardError}</p> : null}
            </div>
          ) : null
        }
      />
    </form>
  );
}

/** AuthenticateStep is the 3-D Secure step: the bank's challenge, played locally by the test bank's buttons. */
function AuthenticateStep(props: { state: Extract<CheckoutState, { kind: "requires_action" }>; stripeKey?: string }) {
  const [result, setResult] = useState<CheckoutState>(props.state);
  const [busy, start] = useTransition();
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  if (result.kind !== "requires_action" && result.kind !== "idle") {
    return (
      <div role="alert" className="banner error" data-testid="checkout-error" data-checkout-id={result.kind === "declined" ? result.checkoutId : undefined}>
        {"message" in result ? result.message : ""} <a href="/checkout">Try again</a>
      </div>
    );
  }
  const { checkoutId, clientSecret, local } = props.state;
  const run = (outcome: "succeeded" | "failed" | null) =>
    start(async () => {
      if (!local && props.stripeKey) {
        const client = await loadStripe(props.stripeKey);
        const { error } = await client.handleNextAction({ clientSecret });
        if (error) {
          setResult({ kind: "declined", message: error.message });
          return;
        }
      }
      setResult(await authenticate(checkoutId, clientSecret, outcome));
    });
  return (
    <section className="authenticate" aria-labelledby="auth-heading">
      <h2 id="auth-heading" ref={heading} tabIndex={-1}>
        Confirm the payment with your bank
      </h2>
      {result.kind === "requires_action" && result.message ? <p role="status">{result.message}</p> : null}
      {local ? (
        <>
          <p>This is the local test bank standing in for 3-D Secure.</p>
          <div className="row">
            <button type="button" className="primary" disabled={busy} onClick={() => run("succeeded")}>
              Approve the payment
            </button>
            <button type="button" disabled={busy} onClick={() => run("failed")}>
              Fail authentication
            </button>
          </div>
        </>
      ) : (
        <button type="button" className="primary" disabled={busy} onClick={() => run(null)}>
          Continue to your bank
        </button>
      )}
    </section>
  );
}
