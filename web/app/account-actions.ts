"use server";

import { cookies } from "next/headers";
import { redirect } from "next/navigation";
import { bff, sessionCookie } from "@/lib/bff";
import { safeNext } from "@/lib/next-path";

// Sign-in and the account's changes. Each change carries the Idempotency-Key the form was
// rendered with, so that a double click or a resubmission is one change.

/** SignInState is what the sign-in forms show after an attempt. */
export type SignInState = { kind: "idle" } | { kind: "sent"; email: string } | { kind: "error"; message: string };

/** requestSignInLink asks the BFF to email a link; the answer is the same whether or not the address is known. */
export async function requestSignInLink(_prev: SignInState, fd: FormData): Promise<SignInState> {
  const email = String(fd.get("email") ?? "").trim();
  const next = safeNext(String(fd.get("next") ?? ""));
  if (!email) return { kind: "error", message: "Enter your email address." };
  const r = await bff("/api/v1/auth/sign-in-links", { method: "POST", body: { email, next } });
  if (r.ok) return { kind: "sent", email };
  if (r.error.code === "invalid_email") return { kind: "error", message: "Enter a valid email address." };
  if (r.status === 429) return { kind: "error", message: "Too many links asked for. Please wait a few minutes and try again." };
  return { kind: "error", message: r.error.message };
}

/** exchangeSignInToken trades the emailed token for the session cookie, then goes where the link said. */
export async function exchangeSignInToken(_prev: SignInState, fd: FormData): Promise<SignInState> {
  const token = String(fd.get("token") ?? "");
  const r = await bff<{ next?: string }>("/api/v1/auth/sessions", { method: "POST", body: { token }, relayCookies: true });
  if (!r.ok) {
    if (r.error.code === "sign_in_link_invalid") return { kind: "error", message: "This sign-in link was already used or has expired. Ask for a new one below." };
    return { kind: "error", message: r.error.message };
  }
  redirect(safeNext(r.data?.next ?? String(fd.get("next") ?? "")));
}

/** signOut ends this session at the BFF and forgets the cookie. */
export async function signOut(): Promise<void> {
  await bff("/api/v1/auth/sessions/current", { method: "DELETE", relayCookies: true });
  (await cookies()).delete(sessionCookie);
  redirect("/");
}

function subPath(id: string) {
  return `/account/subscriptions/${encodeURIComponent(id)}`;
}

async function change(id: string, action: "cancel" | "resume", key: string, body: unknown) {
  const r = await bff(`/api/v1/me/subscriptions/${encodeURIComponent(id)}/${action}`, { method: "POST", idempotencyKey: key, body });
  if (!r.ok && (r.error.code === "session_required" || r.error.code === "session_invalid")) redirect(`/sign-in?next=${encodeURIComponent(subPath(id))}`);
  redirect(`${subPath(id)}?${r.ok ? `done=${action}` : `error=${encodeURIComponent(r.error.code)}`}`);
}

/** cancelSubscription cancels at the period's end, or now when the form says so. */
export async function cancelSubscription(fd: FormData): Promise<void> {
  await change(String(fd.get("id")), "cancel", String(fd.get("key")), { at_period_end: fd.get("when") !== "now" });
}

/** resumeSubscription undoes a cancel at the period's end. */
export async function resumeSubscription(fd: FormData): Promise<void> {
  await change(String(fd.get("id")), "resume", String(fd.get("key")), {});
}

/** changePaymentMethod saves a new card for the subscription (a test PaymentMethod locally). */
export async function changePaymentMethod(fd: FormData): Promise<void> {
  const id = String(fd.get("id"));
  const method = String(fd.get("method") ?? "");
  const [provider, token] = [method.split(":")[0], method.slice(method.indexOf(":") + 1)];
  if (provider !== "stripe" || !token) redirect(`${subPath(id)}/payment-method?error=invalid_token`);
  const r = await bff(`/api/v1/me/subscriptions/${encodeURIComponent(id)}/payment-method`, {
    method: "PUT",
    idempotencyKey: String(fd.get("key")),
    body: { provider, token },
  });
  if (!r.ok) redirect(`${subPath(id)}/payment-method?error=${encodeURIComponent(r.error.code)}`);
  redirect(`${subPath(id)}?done=payment-method`);
}
