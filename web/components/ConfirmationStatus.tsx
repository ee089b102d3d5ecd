"use client";

import Link from "next/link";
import { useEffect, useRef, useState } from "react";
import { settleCart } from "@/app/actions";
import { track } from "@/lib/analytics-client";
import { messageFor } from "@/lib/checkout-state";
import { formatMoney } from "@/lib/money";
import { type Checkout, terminalStatuses } from "@/lib/types";

/** ConfirmationStatus polls the checkout through the Next server until it settles, then shows the order or why it failed. */
export function ConfirmationStatus({ id, initial }: { id: string; initial: Checkout | null }) {
  const [c, setC] = useState<Checkout | null>(initial);
  // tick makes a failed poll schedule the next one, even before a first answer arrived.
  const [tick, setTick] = useState(0);
  const settled = useRef(false);
  useEffect(() => {
    if (c && terminalStatuses.has(c.status)) {
      track("checkout_outcome", { status: c.status, code: c.failure?.code, amount: c.amount, currency: c.currency }, `co-${id}`);
      if (c.status === "completed" && !settled.current) {
        settled.current = true;
        void settleCart(id);
      }
      return;
    }
    const t = setTimeout(async () => {
      try {
        const res = await fetch(`/api/checkouts/${id}`, { cache: "no-store" });
        if (res.ok) setC(await res.json());
        else setTick((n) => n + 1);
      } catch {
        setTick((n) => n + 1);
      }
    }, 1000);
    return () => clearTimeout(t);
  }, [c, id, tick]);

  if (!c || !terminalStatuses.has(c.status)) {
    return (
      <p role="status" aria-live="polite" data-testid="order-pending">
        Confirming your payment… This page updates by itself.
      </p>
    );
  }
  if (c.status === "failed" || c.status === "expired") {
    return (
      <div role="alert" className="banner error" data-testid="order-failed">
        <p>{c.status === "expired" ? "This checkout expired before it was paid. Nothing was charged." : messageFor(c.failure)}</p>
        <Link href="/cart">Back to your cart</Link>
      </div>
    );
  }
  const currency = c.currency ?? "usd";
  return (
    <section className="banner ok" data-testid="order-confirmed" aria-live="polite">
      <h2>Thank you, your order is confirmed</h2>
      <p>
        Order <strong data-testid="order-id">{c.order_id}</strong> · {c.status === "completed" ? "paid" : c.status.replace("_", " ")}
      </p>
      {c.items?.length ? (
        <ul>
          {c.items.map((i) => (
            <li key={i.sku}>
              {i.quantity} × {i.name} · {formatMoney(i.line_amount, currency)}
            </li>
          ))}
        </ul>
      ) : null}
      <p>
        Charged today: <strong data-testid="order-amount">{formatMoney(c.amount, currency)}</strong>
      </p>
      <p>A receipt is on its way by email. <Link href="/account">See your account</Link></p>
    </section>
  );
}
