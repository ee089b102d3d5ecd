import Link from "next/link";
import { AccountError, dateOf } from "@/components/Status";
import { accountRead } from "@/lib/account";
import { formatMoney } from "@/lib/money";
import type { Order } from "@/lib/types";

export const dynamic = "force-dynamic";
export const metadata = { title: "Order" };

/** OrderPage is one of the customer's orders with its lines (the receipt email links here). */
export default async function OrderPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const r = await accountRead<{ order: Order }>(`/api/v1/me/orders/${encodeURIComponent(id)}`, `/account/orders/${id}`);
  if (!r.ok) return <AccountError status={r.status} error={r.error} />;
  const o = r.data.order;
  return (
    <>
      <h1>Order</h1>
      <p>
        <span data-testid="order-id">{o.id}</span> · {dateOf(o.created_at)} · <span data-testid="order-status">{o.status}</span>
      </p>
      <table>
        <thead>
          <tr>
            <th scope="col">Product</th>
            <th scope="col">Quantity</th>
            <th scope="col">Amount</th>
          </tr>
        </thead>
        <tbody>
          {o.items.map((i) => (
            <tr key={i.sku}>
              <td>{i.name}</td>
              <td>{i.quantity}</td>
              <td>{formatMoney(i.line_amount, o.currency)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p>
        Total: <strong>{formatMoney(o.amount, o.currency)}</strong>
        {o.refunded_amount ? ` · refunded ${formatMoney(o.refunded_amount, o.currency)}` : ""}
      </p>
      <Link href="/account">Back to your account</Link>
    </>
  );
}
