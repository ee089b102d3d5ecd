import { notFound } from "next/navigation";
import { ConfirmationStatus } from "@/components/ConfirmationStatus";
import { bff } from "@/lib/bff";
import type { Checkout } from "@/lib/types";

export const dynamic = "force-dynamic";
export const metadata = { title: "Order confirmation" };

/** ConfirmationPage is the BFF's redirect_url: it follows the checkout to its outcome. */
export default async function ConfirmationPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  if (!/^chk_[a-z0-9]{8,40}$/.test(id)) notFound();
  const r = await bff<Checkout>(`/api/v1/checkouts/${id}`);
  if (!r.ok && r.status === 404) notFound();
  return (
    <>
      <h1>Your order</h1>
      <ConfirmationStatus id={id} initial={r.ok ? r.data : null} />
    </>
  );
}
