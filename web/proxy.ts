import { type NextRequest, NextResponse } from "next/server";
import { allowedOrigins, bodyTooLarge, botCheck, originAllowed, RateLimiter, unsafeMethods } from "@/lib/edge";

// Endpoint protection in front of every page, server action and route handler (Next 16's
// proxy, formerly middleware): a change must come from the storefront's own origin, bodies are
// capped, each client address has a request budget, and changes pass a bot-check hook.

const production = process.env.NODE_ENV === "production" && process.env.CARTFLOW_ENV !== "development";
const origins = allowedOrigins(process.env.STOREFRONT_URL ?? "http://localhost:3000", production);
const perMinute = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && process.env[name] !== undefined && process.env[name] !== "" ? v : fallback;
};
// Changes are few per shopper (add to cart, pay); pages are more. 0 turns a limit off.
const changes = new RateLimiter(perMinute("STOREFRONT_CHANGES_PER_MINUTE", 60), 60_000);
const reads = new RateLimiter(perMinute("STOREFRONT_REQUESTS_PER_MINUTE", 600), 60_000);

function refuse(status: number, code: string, message: string, headers: Record<string, string> = {}) {
  return NextResponse.json({ error: { code, message } }, { status, headers: { "Cache-Control": "no-store", ...headers } });
}

// clientIP is the shopper's address, which server.mjs wrote into X-Forwarded-For from the socket
// (or from TRUSTED_PROXIES' header): never what the client named itself.
function clientIP(req: NextRequest): string {
  return (req.headers.get("x-forwarded-for") ?? "").split(",")[0]?.trim() || "unknown";
}

/** proxy runs before every matched request. */
export async function proxy(req: NextRequest) {
  const ip = clientIP(req);
  const unsafe = unsafeMethods.has(req.method);
  const wait = unsafe ? changes.take(ip) || reads.take(ip) : reads.take(ip);
  if (wait > 0) return refuse(429, "rate_limited", "Too many requests. Please wait a moment.", { "Retry-After": String(wait) });
  if (!unsafe) return NextResponse.next();
  if (!originAllowed(req.headers, origins)) return refuse(403, "origin_not_allowed", "This change must come from the store's own pages.");
  if (bodyTooLarge(req.headers.get("content-length"))) return refuse(413, "body_too_large", "The request is too large.");
  if ((await botCheck(req.headers, req.nextUrl.pathname)) === "deny") return refuse(403, "bot_check_failed", "The request did not pass the bot check.");
  return NextResponse.next();
}

export const config = {
  // Static files need none of this.
  matcher: ["/((?!_next/static|_next/image|favicon.ico).*)"],
};
