import { cookies, headers } from "next/headers";
import { apiURL, storefrontOrigin } from "./env";
import type { ApiError } from "./types";

// The Next server is the only caller of the BFF: the browser never talks to it directly. Each
// call forwards the customer's session cookie and address, and a change names the storefront's
// Origin for the BFF's CSRF check.

/** sessionCookie is the BFF's customer session cookie, relayed under the same name. */
export const sessionCookie = "cartflow_session";

/** BffResult is a BFF answer: its JSON on success, its error otherwise. */
export type BffResult<T> =
  | { ok: true; status: number; data: T }
  | { ok: false; status: number; error: ApiError; retryAfter?: number };

/** BffOptions are a call's method, JSON body, Idempotency-Key, and whether to relay Set-Cookie. */
export type BffOptions = {
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  body?: unknown;
  idempotencyKey?: string;
  /** relayCookies copies the BFF's session cookie to the browser: only in server actions and route handlers. */
  relayCookies?: boolean;
};

const unavailable: ApiError = { code: "service_unavailable", message: "The store is not answering right now. Please try again in a moment." };

/** clientIP is the customer's address as the Next server received it. */
export async function clientIP(): Promise<string> {
  const h = await headers();
  // server.mjs sets X-Forwarded-For to the socket's peer (or what a trusted proxy named), and
  // drops whatever the client sent: next start alone would believe it.
  const xff = h.get("x-forwarded-for") ?? "";
  return xff.split(",")[0]?.trim() || "127.0.0.1";
}

/** bff calls the BFF at path (e.g. /api/v1/products) on the customer's behalf. */
export async function bff<T>(path: string, opts: BffOptions = {}): Promise<BffResult<T>> {
  const method = opts.method ?? "GET";
  const jar = await cookies();
  const h: Record<string, string> = { Accept: "application/json", "X-Forwarded-For": await clientIP() };
  const session = jar.get(sessionCookie)?.value;
  if (session) h.Cookie = `${sessionCookie}=${session}`;
  if (method !== "GET") h.Origin = storefrontOrigin();
  if (opts.body !== undefined) h["Content-Type"] = "application/json";
  if (opts.idempotencyKey) h["Idempotency-Key"] = opts.idempotencyKey;
  let res: Response;
  try {
    res = await fetch(apiURL() + path, {
      method,
      headers: h,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      cache: "no-store",
      signal: AbortSignal.timeout(30_000),
    });
  } catch {
    return { ok: false, status: 503, error: unavailable, retryAfter: 1 };
  }
  if (opts.relayCookies) {
    for (const raw of res.headers.getSetCookie()) relaySetCookie(jar, raw);
  }
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (res.ok) return { ok: true, status: res.status, data: json as T };
  const retry = Number(res.headers.get("Retry-After"));
  const err = (json as { error?: ApiError } | undefined)?.error;
  if (!err) return { ok: false, status: res.status >= 500 ? 503 : res.status, error: res.status >= 500 ? unavailable : { code: "error", message: `The store answered ${res.status}.` } };
  return { ok: false, status: res.status, error: err, retryAfter: Number.isFinite(retry) && retry > 0 ? retry : undefined };
}

type Jar = Awaited<ReturnType<typeof cookies>>;

/** parseSetCookie reads one Set-Cookie header into a name, a value and its attributes. */
export function parseSetCookie(raw: string) {
  const [pair, ...attrs] = raw.split(";").map((s) => s.trim());
  const eq = pair.indexOf("=");
  const name = pair.slice(0, eq);
  const value = pair.slice(eq + 1);
  const out: {
    name: string;
    value: string;
    path?: string;
    expires?: Date;
    maxAge?: number;
    httpOnly: boolean;
    secure: boolean;
    sameSite?: "lax" | "strict" | "none";
  } = { name, value, httpOnly: false, secure: false };
  for (const a of attrs) {
    const [k, ...rest] = a.split("=");
    const v = rest.join("=");
    switch (k.toLowerCase()) {
      case "path":
        out.path = v;
        break;
      case "expires":
        out.expires = new Date(v);
        break;
      case "max-age":
        out.maxAge = Number(v);
        break;
      case "httponly":
        out.httpOnly = true;
        break;
      case "secure":
        out.secure = true;
        break;
      case "samesite":
        out.sameSite = v.toLowerCase() as "lax" | "strict" | "none";
        break;
    }
  }
  return out;
}

// relaySetCookie passes the BFF's session cookie on to the browser as the BFF set it (HttpOnly,
// SameSite=Lax; Secure only when the BFF said so, which it does not on a loopback storefront).
function relaySetCookie(jar: Jar, raw: string) {
  const c = parseSetCookie(raw);
  if (c.name !== sessionCookie) return;
  jar.set({
    name: c.name,
    value: c.value,
    path: c.path ?? "/",
    httpOnly: c.httpOnly,
    secure: c.secure,
    sameSite: c.sameSite ?? "lax",
    ...(c.maxAge !== undefined ? { maxAge: c.maxAge } : {}),
    ...(c.expires && !Number.isNaN(c.expires.getTime()) ? { expires: c.expires } : {}),
  });
}
