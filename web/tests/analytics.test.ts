import { expect, it } from "vitest";
import { emailID, insertIdOf } from "@/lib/analytics-client";

it("gives a customer known by email the backend's distinct id (internal/analytics.EmailID)", async () => {
  // hex(SHA-256("ada@example.com")), the standardized address.
  expect(await emailID("  Ada@Example.COM ")).toBe("b5fc85e55755f9e0d030a10ab4429b6b2944855f9a0d60077fe832becbc41d72");
});

it("makes valid $insert_ids from an occurrence's name", () => {
  expect(insertIdOf("co-chk_abc_def")).toBe("co-chk-abc-def");
  expect(insertIdOf("x".repeat(50))).toHaveLength(36);
});
