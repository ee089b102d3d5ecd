import { expect, it } from "vitest";
import { formatMoney } from "@/lib/money";
import { parseSetCookie } from "@/lib/bff";
import { safeNext } from "@/lib/next-path";

it("formats minor units with the currency's own exponent", () => {
  expect(formatMoney(2400, "usd")).toBe("$24.00");
  expect(formatMoney(0, "usd")).toBe("$0.00");
  expect(formatMoney(500, "jpy")).toBe("¥500");
  expect(formatMoney(1234, "eur", "de-DE")).toBe("12,34\u00a0€");
});

it("relays the session cookie's attributes as the BFF set them", () => {
  const c = parseSetCookie("cartflow_session=abc.def; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax");
  expect(c).toMatchObject({ name: "cartflow_session", value: "abc.def", path: "/", maxAge: 2592000, httpOnly: true, secure: false, sameSite: "lax" });
});

it("keeps the destination after sign-in on this site", () => {
  expect(safeNext("/account/orders/1")).toBe("/account/orders/1");
  expect(safeNext("//evil.example")).toBe("/account");
  expect(safeNext("https://evil.example")).toBe("/account");
  expect(safeNext(undefined)).toBe("/account");
});
