// Churn over time, each run in its own process (test/fixtures/hostile/churn.ts): rings and loopback
// connections created and closed for a few seconds (HOSTILE_CHURN_SECONDS, default 3), then file
// descriptors, resident memory and the shared memory kept for closed rings are checked.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { expectClean, runScenario } from "./fixtures/hostile/spawn.ts";

// Each scenario is a process of its own; under the VM tier's emulation (TCG) one can take far
// longer than bun test's 5 s default, which would kill it half way.
setDefaultTimeout(120_000);

describe("churn (each in its own process)", () => {
  test("ring create/close churn: fds back to the start, retired shared memory within its 64 MiB budget, RSS bounded", () => {
    const r = expectClean(runScenario("churn.ts", "rings", 120_000));
    expect(r.rings).toBeGreaterThan(100);
    expect(r.fdGrowth).toBeLessThanOrEqual(2);
    expect(r.maxRetiredMiB).toBeLessThanOrEqual(64.25);
  }, 130_000);

  test("connection churn through the synchronous helpers closes every socket", () => {
    const r = expectClean(runScenario("churn.ts", "connections", 120_000));
    expect(r.connections).toBeGreaterThan(10);
    expect(r.fdGrowth).toBeLessThanOrEqual(0);
  }, 130_000);
});
