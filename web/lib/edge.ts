// The storefront's endpoint protection, as pure functions so that they are tested without a
// server; proxy.ts applies them to every request.

/** unsafeMethods are the methods that change something: each must come from the storefront's own pages. */
export const unsafeMethods = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** maxBodyBytes caps a request's body; the largest form the storefront posts is a few hundred bytes. */
export const maxBodyBytes = 64 * 1024;

/** allowedOrigins are STOREFRONT_URL's origin and, outside production, its loopback twin (localhost ↔ 127.0.0.1). */
export function allowedOrigins(storefrontURL: string, production: boolean): Set<string> {
  const u = new URL(storefrontURL);
  const set = new Set([u.origin]);
  if (!production) {
    const twin = u.hostname === "localhost" ? "127.0.0.1" : u.hostname === "127.0.0.1" ? "localhost" : "";
    if (twin) set.add(`${u.protocol}//${twin}${u.port ? ":" + u.port : ""}`);
  }
  return set;
}

/**
 * originAllowed is the CSRF check of a change: an Origin from the allowlist; without one, a
 * Sec-Fetch-Site that says same-origin (or none: typed by the user). A request with neither is
 * no browser's, and a CSRF attack needs a browser, so it passes.
 */
export function originAllowed(h: { get(name: string): string | null }, allowed: Set<string>): boolean {
  const origin = h.get("origin");
  if (origin) return allowed.has(origin);
  const site = h.get("sec-fetch-site");
  if (site) return site === "same-origin" || site === "none";
  return true;
}

/** bodyTooLarge tells whether a declared body length is over the cap. */
export function bodyTooLarge(contentLength: string | null): boolean {
  if (!contentLength) return false;
  const n = Number(contentLength);
  return !Number.isFinite(n) || n > maxBodyBytes;
}

/** RateLimiter is a fixed-window counter per key, in memory: one storefront process's view, which is enough to blunt one client hammering it. */
export class RateLimiter {
  private windows = new Map<string, { start: number; count: number }>();
  constructor(
    private limit: number,
    private windowMs: number,
    private now: () => number = Date.now,
  ) {}

  /** take counts one request for key; it answers the seconds to wait when the key is over its limit, 0 otherwise. */
  take(key: string): number {
    if (this.limit <= 0) return 0;
    const t = this.now();
    let w = this.windows.get(key);
    if (!w || t - w.start >= this.windowMs) {
      w = { start: t, count: 0 };
      this.windows.set(key, w);
      if (this.windows.size > 10_000) this.sweep(t);
    }
    w.count++;
    if (w.count <= this.limit) return 0;
    return Math.max(1, Math.ceil((w.start + this.windowMs - t) / 1000));
  }

  private sweep(t: number) {
    for (const [k, w] of this.windows) if (t - w.start >= this.windowMs) this.windows.delete(k);
  }
}

/** BotVerdict is what a bot check decides about a change. */
export type BotVerdict = "allow" | "deny";

/**
 * botCheck is the hook for a bot defence (Cloudflare Turnstile, reCAPTCHA, a WAF's verdict
 * header) in front of every change. It allows everything until one is configured: replace its
 * body, or wire a provider's verification here.
 */
export async function botCheck(_h: { get(name: string): string | null }, _path: string): Promise<BotVerdict> {
  return "allow";
}
