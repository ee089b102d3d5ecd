import { existsSync } from "node:fs";
import { defineConfig, devices } from "@playwright/test";

// The journeys drive Debian's Chromium against a running storefront (next start) with the real
// stack behind it. A missing browser fails the run loudly: it is never a skip.
const chromium = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
if (!existsSync(chromium)) {
  throw new Error(`Chromium not found at ${chromium}: install Debian's chromium (apt-get install chromium fonts-liberation) or set CHROMIUM_PATH`);
}
const baseURL = process.env.STOREFRONT_URL;
if (!baseURL) throw new Error("STOREFRONT_URL must name the running storefront, e.g. http://localhost:3000");

export default defineConfig({
  testDir: "./e2e",
  globalSetup: "./e2e/global-setup.ts",
  outputDir: "./test-results/artifacts",
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  reporter: [["list"]],
  use: {
    baseURL,
    screenshot: "on",
    trace: "retain-on-failure",
    launchOptions: { executablePath: chromium, args: ["--no-sandbox"] },
  },
  projects: [{ name: "chromium", use: { ...devices["Desktop Chrome"], launchOptions: { executablePath: chromium, args: ["--no-sandbox"] } } }],
});
