import { expect, test } from "@playwright/test";
import { addToCart, confirmationCheckoutId, fillCheckout, recordJourney, shot, uniqueEmail } from "./helpers";

test("a double click on Pay starts one checkout", async ({ page }, info) => {
  const email = uniqueEmail("double");
  await addToCart(page, "tshirt-classic", 1);
  await page.getByRole("link", { name: "Check out" }).click();
  await fillCheckout(page, email, /Test Visa: succeeds/);
  // A double click that gets past the button: the browser's Pay submission is sent twice, at
  // the same time, byte for byte (same cookies, so the same attempt and Idempotency-Key). Both
  // must land on the same checkout; the Go side checks the Stripe layer saw one PaymentIntent.
  let duplicate: Promise<string> | undefined;
  await page.route("**/checkout", async (route) => {
    const req = route.request();
    if (req.method() === "POST" && !duplicate) {
      duplicate = page.request.fetch(req).then((r) => r.headers()["x-action-redirect"] ?? `status ${r.status()}`);
    }
    await route.continue();
  });
  await page.getByRole("button", { name: /^Pay/ }).dblclick();
  const id = await confirmationCheckoutId(page);
  await expect(page.getByTestId("order-confirmed")).toBeVisible();
  expect(duplicate).toBeDefined();
  expect(await duplicate).toContain(`/orders/${id}/confirmation`);
  await shot(page, info, "1-confirmation");
  recordJourney({ journey: "double-click", checkout_id: id, email, expect: "completed" });
});

test("a trial starts with nothing charged today", async ({ page }, info) => {
  const email = uniqueEmail("trial");
  await page.goto("/");
  await expect(page.getByText("14-day trial: nothing charged today")).toBeVisible();
  await addToCart(page, "plan-monthly");
  await page.waitForURL(/\/checkout(\?|$)/);
  await expect(page.getByTestId("trial-note")).toContainText("Trial: nothing charged today");
  await fillCheckout(page, email, /Test Visa: succeeds/);
  await expect(page.getByRole("radio", { name: "PayPal" })).toHaveCount(0);
  await shot(page, info, "1-checkout");
  await page.getByRole("button", { name: "Start trial" }).click();
  const id = await confirmationCheckoutId(page);
  await expect(page.getByTestId("order-confirmed")).toBeVisible();
  await expect(page.getByTestId("order-amount")).toHaveText("$0.00");
  await shot(page, info, "2-confirmation");
  recordJourney({ journey: "trial", checkout_id: id, email, expect: "completed" });
});

test("3-D Secure completed", async ({ page }, info) => {
  const email = uniqueEmail("threeds");
  await addToCart(page, "mug-enamel", 1);
  await page.getByRole("link", { name: "Check out" }).click();
  await fillCheckout(page, email, /3-D Secure/);
  await page.getByRole("button", { name: /^Pay/ }).click();
  const heading = page.getByRole("heading", { name: "Confirm the payment with your bank" });
  await expect(heading).toBeFocused();
  await shot(page, info, "1-challenge");
  await page.getByRole("button", { name: "Approve the payment" }).click();
  const id = await confirmationCheckoutId(page);
  await expect(page.getByTestId("order-confirmed")).toBeVisible();
  await shot(page, info, "2-confirmation");
  recordJourney({ journey: "3ds", checkout_id: id, email, expect: "completed" });
});

test("a PayPal purchase", async ({ page }, info) => {
  const email = uniqueEmail("paypal");
  await addToCart(page, "sticker-pack", 3);
  await page.getByRole("link", { name: "Check out" }).click();
  await fillCheckout(page, email, "PayPal");
  await page.getByRole("button", { name: "Pay $15.00" }).click();
  const id = await confirmationCheckoutId(page);
  await expect(page.getByTestId("order-confirmed")).toBeVisible();
  await expect(page.getByTestId("order-amount")).toHaveText("$15.00");
  await shot(page, info, "1-confirmation");
  recordJourney({ journey: "paypal", checkout_id: id, email, expect: "completed" });
});

test("a Braintree purchase", async ({ page }, info) => {
  const email = uniqueEmail("braintree");
  await addToCart(page, "mug-enamel", 1);
  await page.getByRole("link", { name: "Check out" }).click();
  await fillCheckout(page, email, /Braintree test card: succeeds/);
  await page.getByRole("button", { name: "Pay $12.00" }).click();
  const id = await confirmationCheckoutId(page);
  await expect(page.getByTestId("order-confirmed")).toBeVisible();
  await shot(page, info, "1-confirmation");
  recordJourney({ journey: "braintree", checkout_id: id, email, expect: "completed" });
});

test("3-D Secure failed: a clear message, and nothing charged", async ({ page }, info) => {
  const email = uniqueEmail("threeds-failed");
  await addToCart(page, "mug-enamel", 1);
  await page.getByRole("link", { name: "Check out" }).click();
  await fillCheckout(page, email, /3-D Secure/);
  await page.getByRole("button", { name: /^Pay/ }).click();
  await page.getByRole("button", { name: "Fail authentication" }).click();
  const alert = page.getByTestId("checkout-error");
  await expect(alert).toContainText("Your bank did not confirm the payment. Nothing was charged");
  await shot(page, info, "1-failed");
  const id = await alert.getAttribute("data-checkout-id");
  expect(id).toMatch(/^chk_/);
  recordJourney({ journey: "3ds-failed", checkout_id: id!, email, expect: "failed" });
});
