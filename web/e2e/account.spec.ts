import { expect, test } from "@playwright/test";
import { addToCart, buy, recordJourney, shot, signIn, uniqueEmail } from "./helpers";

test("sign in by the link read from Mailpit, then see the order", async ({ page }, info) => {
  const email = uniqueEmail("signin");
  await addToCart(page, "mug-enamel", 1);
  const id = await buy(page, email);
  await page.goto("/account");
  await page.waitForURL(/\/sign-in\?next=%2Faccount/);
  await shot(page, info, "1-sign-in");
  await signIn(page, email);
  await page.waitForURL(/\/account$/);
  await expect(page.getByTestId("account-email")).toHaveText(email);
  await expect(page.getByTestId("orders")).toContainText("Enamel mug");
  await shot(page, info, "2-account");
  await page.getByTestId("orders").getByRole("link").first().click();
  await expect(page.getByTestId("order-status")).toHaveText("completed");
  await shot(page, info, "3-order");
  recordJourney({ journey: "sign-in", checkout_id: id, email, expect: "completed" });
  // Signing out ends the session: the account asks to sign in again.
  await page.goto("/account");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL((u) => u.pathname === "/");
  await page.goto("/account");
  await page.waitForURL(/\/sign-in\?next=%2Faccount/);
});

test("cancel and resume a subscription", async ({ page }, info) => {
  const email = uniqueEmail("subscriber");
  await addToCart(page, "plan-monthly");
  const id = await buy(page, email, /Start trial/);
  await page.goto("/account");
  await signIn(page, email);
  await page.waitForURL(/\/account$/);
  await page.getByTestId("subscriptions").getByRole("link", { name: /cartflow Plus/ }).click();
  await expect(page.getByTestId("sub-status")).toHaveText("trialing");
  await page.getByRole("button", { name: "Cancel at period end" }).click();
  await expect(page.getByTestId("sub-ending")).toBeVisible();
  await shot(page, info, "1-canceled");
  await page.getByRole("button", { name: "Resume subscription" }).click();
  await expect(page.getByText("Your subscription continues.")).toBeVisible();
  await expect(page.getByTestId("sub-ending")).toHaveCount(0);
  await expect(page.getByTestId("sub-status")).toHaveText("trialing");
  await shot(page, info, "2-resumed");
  await page.getByRole("link", { name: "Change card" }).click();
  await page.getByRole("radio", { name: /Test Visa: succeeds/ }).check();
  await page.getByRole("button", { name: "Save card" }).click();
  await expect(page.getByText("Your new card is saved.")).toBeVisible();
  await shot(page, info, "3-card-changed");
  recordJourney({ journey: "cancel-resume", checkout_id: id, email, expect: "completed" });
});
