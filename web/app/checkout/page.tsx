import Link from "next/link";
import { CheckoutForm } from "@/components/CheckoutForm";
import { paymentOptions } from "@/lib/payment-options";
import { Track } from "@/components/Observability";
import { Unavailable } from "@/components/Unavailable";
import { readCart } from "@/lib/cart";
import { getCatalog, getPaymentConfig } from "@/lib/catalog";
import { formatMoney } from "@/lib/money";

export const dynamic = "force-dynamic";
export const metadata = { title: "Checkout" };

/** CheckoutPage is the cart's summary and the payment form; a plan with a trial charges nothing today. */
export default async function CheckoutPage({ searchParams }: { searchParams: Promise<{ added?: string }> }) {
  const { added } = await searchParams;
  const [cart, catalog, cfg] = await Promise.all([readCart(), getCatalog(), getPaymentConfig()]);
  if (!catalog.ok) return <Unavailable message={catalog.error.message} />;
  if (!cfg.ok) return <Unavailable message={cfg.error.message} />;
  const lines = cart.items.flatMap((i) => {
    const p = catalog.products.find((x) => x.sku === i.sku);
    return p ? [{ ...i, p }] : [];
  });
  if (lines.length === 0) {
    return (
      <>
        <h1>Checkout</h1>
        <p>Your cart is empty.</p>
        <Link href="/">Browse the catalog</Link>
      </>
    );
  }
  const plan = lines.find((l) => l.p.kind === "subscription")?.p;
  const currency = lines[0].p.currency;
  const total = lines.reduce((n, l) => n + l.p.price_amount * l.quantity, 0);
  const trial = plan && plan.trial_days > 0;
  const { options, stripeKey, braintreeKey } = paymentOptions(cfg.data, Boolean(plan));
  const payLabel = trial ? "Start trial" : `Pay ${formatMoney(total, currency)}`;
  return (
    <>
      {added && lines.some((l) => l.sku === added) ? <Track event="added_to_cart" props={{ sku: added }} insertId={`a2c-${cart.attempt}`} /> : null}
      <h1>Checkout</h1>
      <section aria-labelledby="summary-heading">
        <h2 id="summary-heading">Summary</h2>
        <ul>
          {lines.map((l) => (
            <li key={l.sku}>
              {l.quantity} × {l.p.name} · {formatMoney(l.p.price_amount * l.quantity, currency)}
            </li>
          ))}
        </ul>
        {trial ? (
          <p className="trial" data-testid="trial-note">
            Trial: nothing charged today. After {plan.trial_days} days, {formatMoney(plan.price_amount, currency)} per {plan.billing_interval}, until you cancel.
          </p>
        ) : plan ? (
          <p>
            {formatMoney(plan.price_amount, currency)} today, then every {plan.billing_interval} until you cancel.
          </p>
        ) : (
          <p>
            Total: <strong>{formatMoney(total, currency)}</strong>
          </p>
        )}
      </section>
      <CheckoutForm options={options} payLabel={payLabel} stripeKey={stripeKey} braintreeKey={braintreeKey} attempt={cart.attempt} />
    </>
  );
}
