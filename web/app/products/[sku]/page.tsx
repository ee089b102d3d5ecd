import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { addToCart } from "@/app/actions";
import { Track } from "@/components/Observability";
import { PlanPrice } from "@/components/Price";
import { Unavailable } from "@/components/Unavailable";
import { getCatalog } from "@/lib/catalog";

export const dynamic = "force-dynamic";

type Props = { params: Promise<{ sku: string }> };

export async function generateMetadata({ params }: Props): Promise<Metadata> {
  return { title: (await params).sku };
}

/** ProductPage shows one product and adds it to the cart (a plan goes straight to checkout). */
export default async function ProductPage({ params }: Props) {
  const { sku } = await params;
  const catalog = await getCatalog();
  if (!catalog.ok) return <Unavailable message={catalog.error.message} />;
  const p = catalog.products.find((x) => x.sku === sku);
  if (!p) notFound();
  const plan = p.kind === "subscription";
  return (
    <article>
      <Track event="product_viewed" props={{ sku: p.sku, kind: p.kind, price_amount: p.price_amount, currency: p.currency }} />
      <h1>{p.name}</h1>
      <p>
        <PlanPrice p={p} />
      </p>
      {plan ? <p className="muted">A plan is bought on its own: choosing it replaces your cart.</p> : null}
      <form action={addToCart} className="row">
        <input type="hidden" name="sku" value={p.sku} />
        {plan ? (
          <input type="hidden" name="quantity" value="1" />
        ) : (
          <div className="field">
            <label htmlFor="qty">Quantity</label>
            <input id="qty" name="quantity" type="number" min={1} max={99} defaultValue={1} inputMode="numeric" />
          </div>
        )}
        <button type="submit" className="primary">
          {plan ? (p.trial_days > 0 ? "Start free trial" : "Subscribe") : "Add to cart"}
        </button>
      </form>
    </article>
  );
}
