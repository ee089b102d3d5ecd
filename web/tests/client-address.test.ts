import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain ES module without types, shared with server.mjs.
import { clientAddress, trustedProxies } from "../lib/client-address.mjs";

describe("clientAddress", () => {
  const none = trustedProxies("");
  it("ignores what a client names for itself", () => {
    expect(clientAddress("203.0.113.9", "198.51.100.1", none)).toBe("203.0.113.9");
    expect(clientAddress("::ffff:203.0.113.9", undefined, none)).toBe("203.0.113.9");
  });
  it("believes a trusted proxy, read from the right past every trusted hop", () => {
    const gw = trustedProxies("10.213.0.10, 10.213.0.12");
    expect(clientAddress("10.213.0.10", "198.51.100.1, 203.0.113.9", gw)).toBe("203.0.113.9");
    expect(clientAddress("10.213.0.10", "203.0.113.9, 10.213.0.12", gw)).toBe("203.0.113.9");
    expect(clientAddress("10.213.0.10", "", gw)).toBe("10.213.0.10");
  });
});
