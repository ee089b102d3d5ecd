import Link from "next/link";
import { cancelSubscription, resumeSubscription } from "@/app/account-actions";
import { AccountError, dateOf } from "@/components/Status";
import { accountRead, newChangeKey } from "@/lib/account";
import { formatMoney } from "@/lib/money";
import type { Subscription } from "@/lib/types";

export const dynamic = "force-dynamic";
export const metadata = { title: "Subscription" };

const done: Record<string, string> = {
  cancel: "Your subscription is canceled.",
  resume: "Your subscription continues.",
  "payment-method": "Your new card is saved.",
};
const errors: Record<string, string> = {
  subscription_state: "That change is not possible in the subscription's current state.",
  subscription_canceled: "This subscription is already canceled.",
  period_moved: "The billing period changed meanwhile; please try again.",
};

/** SubscriptionPage shows a subscription and lets its owner cancel, resume or change the card. */
export default async function SubscriptionPage({ params, searchParams }: { params: Promise<{ id: string }>; searchParams: Promise<{ done?: string; error?: string }> }) {
  const { id } = await params;
  const sp = await searchParams;
  const r = await accountRead<{ subscription: Subscription }>(`/api/v1/me/subscriptions/${encodeURIComponent(id)}`, `/account/subscriptions/${id}`);
  if (!r.ok) return <AccountError status={r.status} error={r.error} />;
  const s = r.data.subscription;
  const key = newChangeKey();
  const live = s.status !== "canceled";
  return (
    <>
      <h1>{s.plan_name}</h1>
      {sp.done && done[sp.done] ? (
        <p role="status" className="banner ok">
          {done[sp.done]}
        </p>
      ) : null}
      {sp.error ? (
        <p role="alert" className="banner error">
          {errors[sp.error] ?? "That change did not go through. Please try again."}
        </p>
      ) : null}
      <p>
        Status: <strong data-testid="sub-status">{s.status}</strong>
        {s.cancel_at_period_end ? (
          <span data-testid="sub-ending"> · ends on {dateOf(s.current_period_end)}</span>
        ) : null}
      </p>
      <p>
        {formatMoney(s.price_amount, s.currency)} per {s.billing_interval}
        {s.trial_end ? ` · trial until ${dateOf(s.trial_end)}` : ""} · current period until {dateOf(s.current_period_end)}
      </p>
      {live ? (
        <div className="row">
          {s.cancel_at_period_end ? (
            <form action={resumeSubscription}>
              <input type="hidden" name="id" value={s.id} />
              <input type="hidden" name="key" value={key} />
              <button type="submit" className="primary">
                Resume subscription
              </button>
            </form>
          ) : (
            <form action={cancelSubscription}>
              <input type="hidden" name="id" value={s.id} />
              <input type="hidden" name="key" value={key} />
              <input type="hidden" name="when" value="period_end" />
              <button type="submit">Cancel at period end</button>
            </form>
          )}
          <form action={cancelSubscription}>
            <input type="hidden" name="id" value={s.id} />
            <input type="hidden" name="key" value={key + "n"} />
            <input type="hidden" name="when" value="now" />
            <button type="submit">Cancel now</button>
          </form>
          <Link href={`/account/subscriptions/${s.id}/payment-method`}>Change card</Link>
        </div>
      ) : null}
      {s.history?.length ? (
        <section aria-labelledby="hist">
          <h2 id="hist">History</h2>
          <ul>
            {s.history.map((h, i) => (
              <li key={i}>
                {dateOf(h.at)}: {h.from ? `${h.from} → ` : ""}
                {h.to} ({h.reason})
              </li>
            ))}
          </ul>
        </section>
      ) : null}
      <Link href="/account">Back to your account</Link>
    </>
  );
}
