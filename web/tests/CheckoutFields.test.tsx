import { cleanup, render, screen } from "@testing-library/react";
import { afterEach, expect, it } from "vitest";
import { CheckoutFields } from "@/components/CheckoutFields";
import { stripeTestMethods } from "@/lib/payment-options";
import { messageFor } from "@/lib/checkout-state";

afterEach(cleanup);

const base = { options: stripeTestMethods, pending: false, payLabel: "Pay $24.00" };

it("marks the field the BFF named, keeps what was typed, and focuses it", () => {
  render(
    <CheckoutFields
      {...base}
      state={{ kind: "error", field: "email", message: "Enter a valid email address.", values: { email: "nope", name: "Ann", method: "stripe:pm_card_visa" } }}
    />,
  );
  const email = screen.getByLabelText("Email") as HTMLInputElement;
  expect(email.getAttribute("aria-invalid")).toBe("true");
  expect(document.getElementById(email.getAttribute("aria-describedby")!)!.textContent).toBe("Enter a valid email address.");
  expect(email.value).toBe("nope");
  expect((screen.getByLabelText("Name") as HTMLInputElement).value).toBe("Ann");
  expect((screen.getByRole("radio", { name: /succeeds/ }) as HTMLInputElement).checked).toBe(true);
  expect(document.activeElement).toBe(email);
  expect(screen.getByLabelText("Name").getAttribute("aria-invalid")).toBeNull();
});

it("shows a decline as an alert that takes focus", () => {
  const message = messageFor({ code: "card_declined", decline_code: "generic_decline", message: "Your card was declined." });
  render(<CheckoutFields {...base} state={{ kind: "declined", message, checkoutId: "chk_x" }} />);
  const alert = screen.getByRole("alert");
  expect(alert.textContent).toContain("declined");
  expect(alert.textContent).toContain("your cart is kept");
  expect(document.activeElement).toBe(alert);
});

it("shows an error about no field, such as the store being down, as an alert", () => {
  render(<CheckoutFields {...base} state={{ kind: "error", message: messageFor({ code: "service_unavailable", message: "x" }) }} />);
  expect(screen.getByRole("alert").textContent).toMatch(/not answering/);
  expect(screen.getByLabelText("Email").getAttribute("aria-invalid")).toBeNull();
});

it("disables Pay while the payment runs, so a second click does nothing", () => {
  const { rerender } = render(<CheckoutFields {...base} state={{ kind: "idle" }} />);
  expect((screen.getByRole("button", { name: "Pay $24.00" }) as HTMLButtonElement).disabled).toBe(false);
  rerender(<CheckoutFields {...base} pending state={{ kind: "idle" }} />);
  expect((screen.getByRole("button", { name: "Processing…" }) as HTMLButtonElement).disabled).toBe(true);
});
