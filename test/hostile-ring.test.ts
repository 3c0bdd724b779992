// Hostile use of the ring, each scenario in its own process (test/fixtures/hostile/ring.ts): ring
// words corrupted from a Worker, waits from inside a handler, an op table that cannot be
// allocated, rings dropped without close(), throwing handlers.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { IORING_SETUP_NO_MMAP } from "../src/abi/setup.ts";
import { needSetupFlag, testIf } from "./helpers.ts";
import { expectClean, runScenario } from "./fixtures/hostile/spawn.ts";

// Each scenario is a process of its own; under the VM tier's emulation (TCG) one can take far
// longer than bun test's 5 s default, which would kill it half way.
setDefaultTimeout(120_000);

const shared = needSetupFlag(IORING_SETUP_NO_MMAP, "NO_MMAP", "6.5");

describe("the ring under hostile use (each in its own process)", () => {
  testIf(
    shared,
    "a CQ tail moved a billion entries ahead by a Worker is an EIO, and no garbage CQE is dispatched",
    () => {
      const r = expectClean(runScenario("ring.ts", "cq-tail-corrupt"));
      expect(r.moved.after - r.moved.before).toBe(1_000_000_000);
      expect(r.error).toContain("Ring.completions: EIO");
    },
  );

  testIf(shared, "a corrupted SQ head neither crashes the ring nor loses NOPs", () => {
    const r = expectClean(runScenario("ring.ts", "sq-head-corrupt"));
    expect(r.done).toBe(32);
  });

  test("a synchronous helper or wait inside a completion handler is refused with EDEADLK, leaking nothing", () => {
    const r = expectClean(runScenario("ring.ts", "reentrant-wait"));
    expect(r.errors.length).toBe(4);
    for (const e of r.errors) expect(e).toContain("EDEADLK");
  });

  test("an op table that cannot be allocated closes the ring fd and says what to lower", () => {
    const r = expectClean(runScenario("ring.ts", "optable-alloc-failure"));
    expect(r.error).toContain("Ring.create: ENOMEM");
  });

  test("200 rings dropped without close() are closed when collected", () => {
    const r = expectClean(runScenario("ring.ts", "dropped-rings"));
    expect(r.peak).toBeGreaterThanOrEqual(200);
    expect(r.left).toBeLessThanOrEqual(2);
  });

  test("a ring dropped with a read in flight stays open (pinned) instead of being collected under the kernel", () => {
    const r = expectClean(runScenario("ring.ts", "dropped-ring-inflight"));
    expect(r.open).toBe(3);
  });

  test("a synchronous helper that times out names the operation (IORING_OP_CONNECT), not Ring.runUntil, and closes its socket", () => {
    const r = expectClean(runScenario("ring.ts", "sync-timeout"));
    expect(r.error).toContain("IORING_OP_CONNECT: ETIME");
  });

  test("out of file descriptors: io_uring_setup EMFILE, nothing left behind, the earlier rings still work", () => {
    const r = expectClean(runScenario("ring.ts", "fd-exhaustion"));
    expect(r.error).toContain("io_uring_setup: EMFILE");
    expect(r.error).toContain("RLIMIT_NOFILE");
  });

  test("a full op table: track() refuses with EBUSY and the refused slot never runs", () => {
    const r = expectClean(runScenario("ring.ts", "op-slot-exhaustion"));
    expect(r.done).toBe(4);
    expect(r.error).toContain("EBUSY");
  });

  test("a throwing handler costs neither the rest of its batch nor the ring", () => {
    const r = expectClean(runScenario("ring.ts", "throwing-handler"));
    expect(r).toEqual({ seen: 8, after: 4 });
  });
});
