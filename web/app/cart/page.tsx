import Link from "next/link";
import { removeFromCart, updateCart } from "@/app/actions";
import { Track } from "@/components/Observability";
import { Unavailable } from "@/components/Unavailable";
import { readCart } from "@/lib/cart";
import { getCatalog } from "@/lib/catalog";
import { formatMoney } from "@/lib/money";

export const dynamic = "force-dynamic";
export const metadata = { title: "Cart" };

/** CartPage lists the cart with the catalog's prices; the BFF alone prices the charge. */
export default async function CartPage({ searchParams }: { searchParams: Promise<{ added?: string }> }) {
  const { added } = await searchParams;
  const [cart, catalog] = await Promise.all([readCart(), getCatalog()]);
  if (!catalog.ok) return <Unavailable message={catalog.error.message} />;
  const lines = cart.items.flatMap((i) => {
    const p = catalog.products.find((x) => x.sku === i.sku);
    return p ? [{ ...i, p }] : [];
  });
  if (lines.length === 0) {
    return (
      <>
        <h1>Cart</h1>
        <p>Your cart is empty.</p>
        <Link href="/">Browse the catalog</Link>
      </>
    );
  }
  const currency = lines[0].p.currency;
  const total = lines.reduce((n, l) => n + l.p.price_amount * l.quantity, 0);
  return (
    <>
      {added && lines.some((l) => l.sku === added) ? <Track event="added_to_cart" props={{ sku: added }} insertId={`a2c-${cart.attempt}`} /> : null}
      <h1>Cart</h1>
      <table data-testid="cart">
        <caption className="muted">Prices from the catalog; the final amount is confirmed at payment.</caption>
        <thead>
          <tr>
            <th scope="col">Product</th>
            <th scope="col" className="hide-sm">
              Price
            </th>
            <th scope="col">Quantity</th>
            <th scope="col">Total</th>
            <th scope="col">
              <span className="visually-hidden">Remove</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {lines.map((l) => (
            <tr key={l.sku} data-sku={l.sku}>
              <td>{l.p.name}</td>
              <td className="hide-sm">{formatMoney(l.p.price_amount, l.p.currency)}</td>
              <td>
                <form action={updateCart} className="row">
                  <input type="hidden" name="sku" value={l.sku} />
                  <label htmlFor={`qty-${l.sku}`} className="visually-hidden">
                    Quantity of {l.p.name}
                  </label>
                  <input id={`qty-${l.sku}`} name="quantity" type="number" min={0} max={99} defaultValue={l.quantity} className="qty" />
                  <button type="submit">Update</button>
                </form>
              </td>
              <td>{formatMoney(l.p.price_amount * l.quantity, l.p.currency)}</td>
              <td>
                <form action={removeFromCart}>
                  <input type="hidden" name="sku" value={l.sku} />
                  <button type="submit" aria-label={`Remove ${l.p.name}`}>
                    Remove
                  </button>
                </form>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p>
        Total: <strong data-testid="cart-total">{formatMoney(total, currency)}</strong>
      </p>
      <Link href="/checkout" className="button primary">
        Check out
      </Link>
    </>
  );
}
