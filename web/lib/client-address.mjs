// clientAddress is the shopper's address for the BFF's X-Forwarded-For. peer is the socket's
// remote address; forwardedFor is the X-Forwarded-For the request came with, believed only when
// the peer is one of trusted (a gateway in front of the storefront), and then read from the
// right, past every trusted hop, as the BFF reads it. Anything a client names for itself is
// ignored: the BFF's per-IP limits and card-testing defence count by this address.
export function clientAddress(peer, forwardedFor, trusted) {
  let addr = normalize(peer);
  if (!trusted.has(addr) || !forwardedFor) return addr;
  const hops = String(forwardedFor).split(",").map((s) => normalize(s.trim())).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    addr = hops[i];
    if (!trusted.has(addr)) return addr;
  }
  return addr;
}

// normalize writes an IPv4 address the same way whether it came over IPv4 or IPv6.
function normalize(addr) {
  if (!addr) return "";
  return addr.startsWith("::ffff:") ? addr.slice("::ffff:".length) : addr;
}

// trustedProxies reads TRUSTED_PROXIES (comma-separated addresses; empty trusts nobody).
export function trustedProxies(env) {
  return new Set((env ?? "").split(",").map((s) => normalize(s.trim())).filter(Boolean));
}
