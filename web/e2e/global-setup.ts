import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";

/** globalSetup starts each run with an empty journeys.jsonl, so the Go side reads only this run's journeys. */
export default function globalSetup() {
  const dir = path.join(__dirname, "..", "test-results");
  mkdirSync(dir, { recursive: true });
  rmSync(path.join(dir, "journeys.jsonl"), { force: true });
}
