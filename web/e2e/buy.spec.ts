import { expect, test } from "@playwright/test";
import { addToCart, confirmationCheckoutId, fillCheckout, recordJourney, shot, uniqueEmail } from "./helpers";

test("buy with a card that succeeds shows the order on the confirmation page", async ({ page }, info) => {
  const email = uniqueEmail("buyer");
  await page.goto("/");
  await expect(page.getByRole("heading", { name: "Catalog" })).toBeVisible();
  await shot(page, info, "1-catalog");
  await addToCart(page, "mug-enamel", 2);
  await expect(page.getByTestId("cart")).toContainText("Enamel mug");
  await expect(page.getByTestId("cart-total")).toHaveText("$24.00");
  await shot(page, info, "2-cart");
  await page.getByRole("link", { name: "Check out" }).click();
  await fillCheckout(page, email, /Test Visa: succeeds/);
  await shot(page, info, "3-checkout");
  await page.getByRole("button", { name: "Pay $24.00" }).click();
  const id = await confirmationCheckoutId(page);
  await expect(page.getByTestId("order-confirmed")).toBeVisible();
  await expect(page.getByTestId("order-id")).not.toBeEmpty();
  await expect(page.getByTestId("order-amount")).toHaveText("$24.00");
  await shot(page, info, "4-confirmation");
  recordJourney({ journey: "buy", checkout_id: id, email, expect: "completed" });
  // The cart is emptied once the checkout completed.
  await expect(page.getByTestId("cart-link")).toHaveText("Cart");
});

test("a decline shows a clear message and keeps the cart", async ({ page }, info) => {
  const email = uniqueEmail("declined");
  await addToCart(page, "sticker-pack", 1);
  await page.getByRole("link", { name: "Check out" }).click();
  await fillCheckout(page, email, /Test Visa: declined/);
  await page.getByRole("button", { name: /^Pay/ }).click();
  const alert = page.getByTestId("checkout-error");
  await expect(alert).toContainText("declined");
  await expect(alert).toContainText("Nothing was charged");
  await expect(alert).toBeFocused();
  const id = await alert.getAttribute("data-checkout-id");
  expect(id).toMatch(/^chk_/);
  await shot(page, info, "1-declined");
  await page.goto("/cart");
  await expect(page.getByTestId("cart")).toContainText("Sticker pack");
  await shot(page, info, "2-cart-kept");
  recordJourney({ journey: "decline", checkout_id: id!, email, expect: "failed" });
});
