import { randomBytes } from "node:crypto";
import { redirect } from "next/navigation";
import { bff } from "./bff";

/** accountRead reads a customer route; without a valid session it sends the customer to sign in and back to path. */
export async function accountRead<T>(apiPath: string, path: string) {
  const r = await bff<T>(apiPath);
  if (!r.ok && r.status === 401) redirect(`/sign-in?next=${encodeURIComponent(path)}`);
  return r;
}

/** newChangeKey is the Idempotency-Key a change form is rendered with: one per form, reused by a double click. */
export function newChangeKey(): string {
  return "acct_" + randomBytes(16).toString("hex");
}
