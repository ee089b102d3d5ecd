import { changePaymentMethod } from "@/app/account-actions";
import { PaymentPicker } from "@/components/PaymentPicker";
import { AccountError } from "@/components/Status";
import { Unavailable } from "@/components/Unavailable";
import { accountRead, newChangeKey } from "@/lib/account";
import { getPaymentConfig, isLocal } from "@/lib/catalog";
import { stripeTestMethods } from "@/lib/payment-options";
import type { Subscription } from "@/lib/types";

export const dynamic = "force-dynamic";
export const metadata = { title: "Change card" };

const errors: Record<string, string> = {
  card_declined: "That card was declined. Try another one.",
  too_many_declines: "Too many declined cards. Please wait a while before trying again.",
};

/** PaymentMethodPage saves a new card for a subscription (the failed-payment email links here). */
export default async function PaymentMethodPage({ params, searchParams }: { params: Promise<{ id: string }>; searchParams: Promise<{ error?: string }> }) {
  const { id } = await params;
  const { error } = await searchParams;
  const path = `/account/subscriptions/${id}/payment-method`;
  const r = await accountRead<{ subscription: Subscription }>(`/api/v1/me/subscriptions/${encodeURIComponent(id)}`, path);
  if (!r.ok) return <AccountError status={r.status} error={r.error} />;
  const cfg = await getPaymentConfig();
  if (!cfg.ok) return <Unavailable message={cfg.error.message} />;
  if (!isLocal(cfg.data)) return <Unavailable message="Changing the card with a live processor is not available here yet." />;
  return (
    <>
      <h1>Change the card for {r.data.subscription.plan_name}</h1>
      {error ? (
        <p role="alert" className="banner error">
          {errors[error] ?? "The card could not be saved. Please try again."}
        </p>
      ) : null}
      <form action={changePaymentMethod} className="checkout">
        <input type="hidden" name="id" value={id} />
        <input type="hidden" name="key" value={newChangeKey()} />
        <PaymentPicker options={stripeTestMethods.filter((m) => m.value !== "stripe:pm_card_authenticationRequired")} />
        <button type="submit" className="primary">
          Save card
        </button>
      </form>
    </>
  );
}
