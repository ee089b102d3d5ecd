import path from "node:path";
import { defineConfig } from "vitest/config";

// Component and unit tests run in jsdom; the browser journeys are Playwright's (e2e/).
export default defineConfig({
  resolve: { alias: { "@": path.resolve(__dirname, ".") } },
  oxc: { jsx: { runtime: "automatic" } },
  test: {
    environment: "jsdom",
    include: ["tests/**/*.test.{ts,tsx}"],
  },
});
