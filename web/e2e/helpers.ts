import { appendFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { expect, type Page, type TestInfo } from "@playwright/test";

const results = path.join(__dirname, "..", "test-results");

/** Journey is one line of test-results/journeys.jsonl: what the Go side checks in Postgres and at the Stripe layer. */
export type Journey = { journey: string; checkout_id: string; email: string; expect: string; [k: string]: string };

/** recordJourney appends the journey for the lead's Go test to assert on. */
export function recordJourney(j: Journey) {
  mkdirSync(results, { recursive: true });
  appendFileSync(path.join(results, "journeys.jsonl"), JSON.stringify(j) + "\n");
}

/** shot saves a named screenshot of the journey under test-results/. */
export async function shot(page: Page, info: TestInfo, name: string) {
  const dir = path.join(results, "screenshots", info.title.replace(/[^a-z0-9]+/gi, "-").toLowerCase());
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

/** uniqueEmail is an address no earlier run used. */
export function uniqueEmail(who: string): string {
  return `${who}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
}

/** addToCart opens a product and adds quantity of it. */
export async function addToCart(page: Page, sku: string, quantity = 1) {
  await page.goto(`/products/${sku}`);
  const qty = page.getByLabel("Quantity");
  if (await qty.count()) await qty.fill(String(quantity));
  await page.getByRole("button", { name: /add to cart|start free trial|subscribe/i }).click();
}

/** fillCheckout opens the checkout and fills the buyer and payment method. */
export async function fillCheckout(page: Page, email: string, method: RegExp | string) {
  if (!page.url().endsWith("/checkout")) await page.goto("/checkout");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Name").fill("Playwright Buyer");
  await page.getByRole("radio", { name: method }).check();
}

/** checkoutIdOf reads the checkout id from the confirmation page's URL. */
export async function confirmationCheckoutId(page: Page): Promise<string> {
  await page.waitForURL(/\/orders\/chk_[a-z0-9]+\/confirmation/);
  const m = page.url().match(/\/orders\/(chk_[a-z0-9]+)\/confirmation/);
  expect(m).not.toBeNull();
  return m![1];
}
