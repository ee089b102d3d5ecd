import { describe, expect, it } from "vitest";
import { allowedOrigins, bodyTooLarge, originAllowed, RateLimiter } from "@/lib/edge";

const h = (o: Record<string, string>) => ({ get: (k: string) => o[k.toLowerCase()] ?? null });

describe("the storefront's edge", () => {
  it("lets a change through only from the storefront's origin", () => {
    const allowed = allowedOrigins("http://localhost:3000", false);
    expect(originAllowed(h({ origin: "http://localhost:3000" }), allowed)).toBe(true);
    expect(originAllowed(h({ origin: "http://127.0.0.1:3000" }), allowed)).toBe(true);
    expect(originAllowed(h({ origin: "https://evil.example" }), allowed)).toBe(false);
    expect(originAllowed(h({ "sec-fetch-site": "cross-site" }), allowed)).toBe(false);
    expect(originAllowed(h({ "sec-fetch-site": "same-origin" }), allowed)).toBe(true);
  });

  it("has no loopback twin in production", () => {
    expect([...allowedOrigins("http://localhost:3000", true)]).toEqual(["http://localhost:3000"]);
  });

  it("caps bodies", () => {
    expect(bodyTooLarge("100")).toBe(false);
    expect(bodyTooLarge(String(64 * 1024 + 1))).toBe(true);
    expect(bodyTooLarge("nonsense")).toBe(true);
    expect(bodyTooLarge(null)).toBe(false);
  });

  it("limits each address on its own, and forgets after the window", () => {
    let t = 0;
    const rl = new RateLimiter(2, 60_000, () => t);
    expect([rl.take("a"), rl.take("a"), rl.take("b")]).toEqual([0, 0, 0]);
    expect(rl.take("a")).toBe(60);
    t = 30_000;
    expect(rl.take("a")).toBe(30);
    t = 60_000;
    expect(rl.take("a")).toBe(0);
  });
});
