import { formatMoney } from "@/lib/money";
import type { Product } from "@/lib/types";

/** PlanPrice is a product's price with its billing interval, and the trial note for a plan with a trial. */
export function PlanPrice({ p }: { p: Product }) {
  const price = formatMoney(p.price_amount, p.currency);
  if (p.kind !== "subscription") return <span className="price">{price}</span>;
  return (
    <span>
      <span className="price">
        {price} / {p.billing_interval ?? "period"}
      </span>
      {p.trial_days > 0 ? (
        <span className="trial">
          {" "}
          · {p.trial_days}-day trial: nothing charged today
        </span>
      ) : null}
    </span>
  );
}
