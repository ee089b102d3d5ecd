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
  await page.waitForURL(/\/(cart|checkout)(\?|$)/);
}

/** fillCheckout opens the checkout and fills the buyer and payment method. */
export async function fillCheckout(page: Page, email: string, method: RegExp | string) {
  if (new URL(page.url()).pathname !== "/checkout") await page.goto("/checkout");
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

/** signInLink waits for the sign-in email to address in Mailpit and returns its link. */
export async function signInLink(address: string): Promise<string> {
  const mailpit = (process.env.MAILPIT_URL ?? "http://127.0.0.1:8025").replace(/\/+$/, "");
  for (let i = 0; i < 60; i++) {
    const res = await fetch(`${mailpit}/api/v1/search?query=${encodeURIComponent(`to:"${address}"`)}`);
    if (res.ok) {
      const { messages = [] } = (await res.json()) as { messages?: { ID: string }[] };
      for (const m of messages) {
        const msg = (await (await fetch(`${mailpit}/api/v1/message/${m.ID}`)).json()) as { Text?: string };
        const link = msg.Text?.match(/https?:\/\/\S+\/sign-in\?token=[A-Za-z0-9_\-%.]+(?:&\S*)?/);
        if (link) return link[0];
      }
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`no sign-in email to ${address} in Mailpit`);
}

/** signIn asks for a link as the page's customer, reads it from Mailpit and follows it. */
export async function signIn(page: Page, address: string) {
  await page.getByRole("textbox", { name: "Email" }).fill(address);
  await page.getByRole("button", { name: "Email me a sign-in link" }).click();
  await expect(page.getByTestId("link-sent")).toBeVisible();
  const link = new URL(await signInLink(address));
  // The link names STOREFRONT_URL; follow it on the base URL the browser uses.
  await page.goto(link.pathname + link.search);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** buy checks out the cart as address with the succeeding test card and returns the checkout id. */
export async function buy(page: Page, address: string, payLabel: RegExp = /^Pay|Start trial/) {
  await page.goto("/checkout");
  await fillCheckout(page, address, /Test Visa: succeeds/);
  await page.getByRole("button", { name: payLabel }).click();
  const id = await confirmationCheckoutId(page);
  await expect(page.getByTestId("order-confirmed")).toBeVisible();
  return id;
}
