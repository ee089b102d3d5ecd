// Browser funnel events for Mixpanel, on only when the server passes a token. The library is
// loaded on demand, so a storefront without a token ships none of it. Each event carries an
// $insert_id (Mixpanel's deduplication key) and, once the buyer types an email, the same
// distinct id the backend's funnel events use for a customer known by email:
// hex(SHA-256(lower(trim(email)))), as internal/analytics.EmailID computes it. Browser events are
// named apart from the server's (checkout_submitted, not checkout_started) so that one funnel
// counts each step once.

type Mixpanel = {
  init: (token: string, cfg: Record<string, unknown>) => void;
  track: (name: string, props: Record<string, unknown>) => void;
  identify: (id: string) => void;
};

let mp: Mixpanel | null = null;
let enabled = false;
const queue: Array<(m: Mixpanel) => void> = [];

/** initAnalytics loads mixpanel-browser and flushes what was tracked before it loaded. */
export async function initAnalytics(token: string): Promise<void> {
  if (enabled || !token) return;
  enabled = true;
  const mod = (await import("mixpanel-browser")).default as unknown as Mixpanel;
  // No automatic page views (ours carry an $insert_id) and no IP geolocation.
  // Unbatched, so that an event is sent before the next full page load rather than seconds later.
  mod.init(token, { track_pageview: false, ip: false, persistence: "localStorage", batch_requests: false });
  mp = mod;
  for (const f of queue.splice(0)) f(mod);
}

// run calls f once Mixpanel is loaded. Events tracked before then (a page's own effects run
// before the layout's, which starts Mixpanel) wait in a short queue; without a token it simply
// never drains.
function run(f: (m: Mixpanel) => void) {
  if (mp) f(mp);
  else if (queue.length < 50) queue.push(f);
}

/** insertIdOf makes a valid $insert_id (36 chars of letters, digits and '-') from an occurrence's name. */
export function insertIdOf(occurrence: string): string {
  return occurrence.replace(/[^A-Za-z0-9-]/g, "-").slice(0, 36);
}

/** randomInsertId is the $insert_id of an event that names no stable occurrence, such as a page view. */
export function randomInsertId(): string {
  return crypto.randomUUID();
}

/** track queues an event; without a token it does nothing. */
export function track(name: string, props: Record<string, unknown>, insertId: string = randomInsertId()): void {
  run((m) => m.track(name, { ...props, $insert_id: insertIdOf(insertId) }));
}

/** emailID is the backend's distinct id for a customer known by email. */
export async function emailID(email: string): Promise<string> {
  const data = new TextEncoder().encode(email.trim().toLowerCase());
  const sum = await crypto.subtle.digest("SHA-256", data);
  return Array.from(new Uint8Array(sum), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** identifyEmail joins this browser's events to the customer's server-side funnel. */
export async function identifyEmail(email: string): Promise<void> {
  if (!email) return;
  const id = await emailID(email);
  run((m) => m.identify(id));
}
