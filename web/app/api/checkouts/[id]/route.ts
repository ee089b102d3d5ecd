import { NextResponse } from "next/server";
import { bff } from "@/lib/bff";
import type { Checkout } from "@/lib/types";

/** GET relays a checkout's public status, so that the confirmation page polls through the Next server. */
export async function GET(_req: Request, ctx: { params: Promise<{ id: string }> }) {
  const { id } = await ctx.params;
  if (!/^chk_[a-z0-9]{8,40}$/.test(id)) return NextResponse.json({ error: { code: "checkout_not_found", message: "No such checkout." } }, { status: 404 });
  const r = await bff<Checkout>(`/api/v1/checkouts/${id}`);
  const headers = { "Cache-Control": "no-store" };
  if (r.ok) return NextResponse.json(r.data, { headers });
  return NextResponse.json({ error: r.error }, { status: r.status, headers: r.retryAfter ? { ...headers, "Retry-After": String(r.retryAfter) } : headers });
}
