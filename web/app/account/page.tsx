import Link from "next/link";
import { signOut } from "@/app/account-actions";
import { AccountError, dateOf } from "@/components/Status";
import { accountRead } from "@/lib/account";
import { formatMoney } from "@/lib/money";
import type { Order, Subscription } from "@/lib/types";

export const dynamic = "force-dynamic";
export const metadata = { title: "Your account" };

type Me = { customer: { id: string; email: string; name: string; status: string }; subscriptions: Subscription[] };

/** AccountPage is the signed-in customer's orders and subscriptions. */
export default async function AccountPage() {
  const me = await accountRead<Me>("/api/v1/me", "/account");
  if (!me.ok) return <AccountError status={me.status} error={me.error} />;
  const orders = await accountRead<{ orders: Order[] }>("/api/v1/me/orders?limit=20", "/account");
  return (
    <>
      <h1>Your account</h1>
      <p>
        Signed in as <strong data-testid="account-email">{me.data.customer.email}</strong>
      </p>
      <form action={signOut}>
        <button type="submit">Sign out</button>
      </form>
      <section aria-labelledby="orders-heading">
        <h2 id="orders-heading">Orders</h2>
        {!orders.ok ? (
          <AccountError status={orders.status} error={orders.error} />
        ) : orders.data.orders.length === 0 ? (
          <p>No orders yet.</p>
        ) : (
          <ul data-testid="orders">
            {orders.data.orders.map((o) => (
              <li key={o.id}>
                <Link href={`/account/orders/${o.id}`}>
                  {dateOf(o.created_at)}: {o.items.map((i) => `${i.quantity} × ${i.name}`).join(", ")}
                </Link>{" "}
                · {formatMoney(o.amount, o.currency)} · {o.status}
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="subs-heading">
        <h2 id="subs-heading">Subscriptions</h2>
        {me.data.subscriptions.length === 0 ? (
          <p>No subscriptions.</p>
        ) : (
          <ul data-testid="subscriptions">
            {me.data.subscriptions.map((s) => (
              <li key={s.id}>
                <Link href={`/account/subscriptions/${s.id}`}>{s.plan_name}</Link> · {s.status}
                {s.cancel_at_period_end ? ` · ends ${dateOf(s.current_period_end)}` : ""}
              </li>
            ))}
          </ul>
        )}
      </section>
    </>
  );
}
