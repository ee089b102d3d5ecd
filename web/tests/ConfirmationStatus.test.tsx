import { act, cleanup, render, screen } from "@testing-library/react";
import { afterEach, beforeEach, expect, it, vi } from "vitest";

const settleCart = vi.fn(async (_id: string) => {});
vi.mock("@/app/actions", () => ({ settleCart: (id: string) => settleCart(id) }));

import { ConfirmationStatus } from "@/components/ConfirmationStatus";

beforeEach(() => {
  vi.useFakeTimers();
  settleCart.mockClear();
});
afterEach(() => {
  cleanup();
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

const pending = { checkout_id: "chk_abcdefghij", status: "pending", amount: 2400, currency: "usd" };

it("follows a pending checkout through the Next server until it completes, then empties the cart", async () => {
  const answers = [pending, { ...pending, status: "charging" }, { ...pending, status: "completed", order_id: "ord-1", items: [{ sku: "mug-enamel", name: "Enamel mug", quantity: 2, unit_amount: 1200, line_amount: 2400 }] }];
  const fetchMock = vi.fn(async () => new Response(JSON.stringify(answers.shift()), { status: 200 }));
  vi.stubGlobal("fetch", fetchMock);
  render(<ConfirmationStatus id="chk_abcdefghij" initial={pending} />);
  expect(screen.getByTestId("order-pending")).toBeTruthy();
  for (let i = 0; i < 3; i++) await act(() => vi.advanceTimersByTimeAsync(1000));
  expect(fetchMock).toHaveBeenCalledWith("/api/checkouts/chk_abcdefghij", { cache: "no-store" });
  expect(screen.getByTestId("order-id").textContent).toBe("ord-1");
  expect(screen.getByTestId("order-amount").textContent).toBe("$24.00");
  expect(settleCart).toHaveBeenCalledWith("chk_abcdefghij");
});

it("shows a failed checkout's reason and keeps the cart", async () => {
  vi.stubGlobal("fetch", vi.fn());
  render(<ConfirmationStatus id="chk_abcdefghij" initial={{ ...pending, status: "failed", failure: { code: "card_declined", message: "Your card was declined." } }} />);
  expect(screen.getByTestId("order-failed").textContent).toContain("Nothing was charged");
  expect(screen.getByRole("link", { name: "Back to your cart" })).toBeTruthy();
  expect(settleCart).not.toHaveBeenCalled();
});

it.each([
  ["after a first answer", pending],
  ["before any answer", null],
])("keeps polling when the store does not answer (%s)", async (_name, initial) => {
  const fetchMock = vi.fn(async () => new Response("{}", { status: 503 }));
  vi.stubGlobal("fetch", fetchMock);
  render(<ConfirmationStatus id="chk_abcdefghij" initial={initial} />);
  for (let i = 0; i < 3; i++) await act(() => vi.advanceTimersByTimeAsync(1000));
  expect(fetchMock.mock.calls.length).toBeGreaterThanOrEqual(3);
  expect(screen.getByTestId("order-pending")).toBeTruthy();
});
