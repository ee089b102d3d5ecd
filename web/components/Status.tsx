import { Unavailable } from "./Unavailable";
import type { ApiError } from "@/lib/types";

/** AccountError shows a failed account read: not found, or the store unavailable. */
export function AccountError({ status, error }: { status: number; error: ApiError }) {
  if (status === 404) return <p role="alert">Not found in your account.</p>;
  return <Unavailable message={error.message} />;
}

/** dateOf shows an ISO time as a date in the customer's language. */
export function dateOf(iso: string | null | undefined): string {
  if (!iso) return "";
  return new Date(iso).toLocaleDateString("en-US", { year: "numeric", month: "long", day: "numeric", timeZone: "UTC" });
}
