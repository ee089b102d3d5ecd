import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { PaymentPicker } from "@/components/PaymentPicker";
import { braintreeTestNonces, paymentOptions, stripeTestMethods } from "@/lib/payment-options";

afterEach(cleanup);

it("offers Stripe's documented test PaymentMethods as labelled radios", () => {
  const { container } = render(<PaymentPicker options={stripeTestMethods} />);
  expect(screen.getByRole("group", { name: "Payment method" })).toBeTruthy();
  const values = screen.getAllByRole("radio").map((r) => (r as HTMLInputElement).value);
  expect(values).toEqual(["stripe:pm_card_visa", "stripe:pm_card_chargeDeclined", "stripe:pm_card_authenticationRequired"]);
  expect(screen.getByRole("radio", { name: /Test Visa: succeeds/ })).toBeTruthy();
  // The storefront never sees a card number: the picker has no text field at all.
  expect(container.querySelectorAll("input:not([type=radio])")).toHaveLength(0);
});

it("offers Braintree's sandbox nonces", () => {
  render(<PaymentPicker options={braintreeTestNonces} />);
  expect(screen.getAllByRole("radio").map((r) => (r as HTMLInputElement).value)).toEqual([
    "braintree:fake-valid-nonce",
    "braintree:fake-processor-declined-visa-nonce",
  ]);
});

it("reports the choice and shows an error tied to the group", () => {
  const onChange = vi.fn();
  render(<PaymentPicker options={stripeTestMethods} error="Choose a payment method." onChange={onChange} />);
  fireEvent.click(screen.getByRole("radio", { name: /declined/ }));
  expect(onChange).toHaveBeenCalledWith("stripe:pm_card_chargeDeclined");
  const group = screen.getByRole("group", { name: "Payment method" });
  expect(group.getAttribute("aria-invalid")).toBe("true");
  const alert = screen.getByRole("alert");
  expect(alert.textContent).toBe("Choose a payment method.");
  expect(group.getAttribute("aria-describedby")).toBe(alert.id);
});

describe("the payment methods, decided from the payment config at run time", () => {
  const processors = [
    { name: "stripe", healthy: true },
    { name: "braintree", healthy: true },
  ];
  it("offers the test-method picker with the local keys, and no card form", () => {
    const got = paymentOptions({ card_processor: "stripe", processors, paypal: { enabled: true }, stripe: { publishable_key: "pk_test_cartflowlocal" } }, false);
    expect(got.stripeKey).toBeUndefined();
    expect(got.options.map((o) => o.value)).toEqual([...stripeTestMethods, ...braintreeTestNonces].map((o) => o.value).concat("paypal:"));
  });
  it("loads Stripe's card form with a real publishable key", () => {
    const got = paymentOptions({ card_processor: "stripe", processors, stripe: { publishable_key: "pk_live_abc" } }, false);
    expect(got.stripeKey).toBe("pk_live_abc");
    expect(got.options.map((o) => o.value)).toEqual(["card"]);
  });
  it("loads Braintree's client with a real tokenization key, and offers no PayPal for a plan", () => {
    const got = paymentOptions({ card_processor: "braintree", processors, paypal: { enabled: true }, braintree: { tokenization_key: "production_abc" } }, true);
    expect(got.braintreeKey).toBe("production_abc");
    expect(got.options.map((o) => o.value)).toEqual(["bt-card"]);
  });
});
