// Worker termination, each scenario in its own process (test/fixtures/hostile/worker.ts; the
// Worker side is worker-child.ts). worker.terminate() runs no JavaScript in the Worker, so what it
// opened is closed from another thread through the fd ledger (src/ring/reclaim.ts): automatically
// when the thread that created the Worker has bun-uring loaded, at the next ring any thread
// creates, or by reclaimWorker(). The Worker's rings, eventfd and sockets all have operations in flight.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { expectClean, runScenario } from "./fixtures/hostile/spawn.ts";
import { testIf } from "./helpers.ts";
import { queryZcrx } from "../src/zcrx/query.ts";
import { kernelAtLeast, kernelRelease } from "../src/ring/kernel.ts";

// Each scenario is a process of its own; under the VM tier's emulation (TCG) one can take far
// longer than bun test's 5 s default, which would kill it half way.
setDefaultTimeout(120_000);

// Device-less ZCRX (ZCRX_REG_NODEV) is Linux 7.1; the VM tier has it.
const zcrxGate =
  queryZcrx()?.nodev === true || (process.env.BUN_URING_IN_VM === "1" && kernelAtLeast("7.1"))
    ? null
    : `a device-less ZCRX area needs ZCRX_REG_NODEV (Linux 7.1); this kernel is ${kernelRelease()}: run it with \`bun scripts/vm.ts test/hostile-worker.test.ts\``;

describe("Worker termination (each in its own process)", () => {
  /** A scenario whose Worker(s) opened at least `opened` fds and left none. */
  const noneLeft = (title: string, scenario: string, opened: number, timeoutMs = 60_000): void => {
    test(
      title,
      () => {
        const r = expectClean(runScenario("worker.ts", scenario, timeoutMs));
        expect(r.opened).toBeGreaterThanOrEqual(opened);
        expect(r.left).toBe(0);
      },
      timeoutMs + 10_000,
    );
  };

  noneLeft(
    "a terminated Worker's rings, eventfd and sockets are closed without any call; this thread's ring and connection still work",
    "automatic",
    8,
  );
  noneLeft("the same for a node:worker_threads Worker (its 'exit' event)", "automatic-node", 8);

  test("a main thread that never loads bun-uring: the next ring any thread creates closes what the dead Worker left", () => {
    const r = expectClean(runScenario("worker.ts", "next-ring-no-lib"));
    expect(r.leftBefore).toBeGreaterThan(0);
    expect(r.left).toBe(0);
  }, 70_000);

  noneLeft(
    "eight Workers load bun-uring at once in a process whose main thread never does: one ledger, and one ring create closes what all of them left",
    "race-no-lib",
    8 * 8,
    120_000,
  );

  for (const kind of ["unmapped", "foreign", "guard", "text"]) {
    test(`a ledger variable that names ${kind === "text" ? "no address" : `${kind} memory`} is refused with a reason, never used; rings still work`, () => {
      const r = expectClean(runScenario("worker.ts", `spoofed-${kind}`));
      expect(r.reason.length).toBeGreaterThan(0);
    }, 70_000);
  }

  test("reclaimWorker() for a Worker created before bun-uring was loaded: two rings, the eventfd, the sockets and the ring mappings", () => {
    const r = expectClean(runScenario("worker.ts", "explicit"));
    expect(r).toMatchObject({ rings: 2, eventfds: 1, mappings: 4, kept: 0, pending: 0 });
    expect(r.sockets).toBeGreaterThanOrEqual(4);
  }, 70_000);

  test("fd numbers closed behind the library's back and reused by this thread, and a socket the Worker adopted from this thread, are never closed", () => {
    const r = expectClean(runScenario("worker.ts", "reuse"));
    // The fixture checks each reused number still names this thread's file; the kept count may be
    // split between this thread's automatic sweep and reclaimWorker's.
    expect(r.reused).toBeGreaterThanOrEqual(2);
  }, 70_000);

  test("Workers that make fds in every way the library does (eventfd, io_uring_setup and its mappings, socket(2), the ring's SOCKET step, multishot ACCEPT), terminated at random points and replaced for 5 s: this thread's ring and connection stay whole and no fd or mapping is left", () => {
    const r = expectClean(runScenario("worker.ts", "stress", 120_000));
    // The scenario goes on until it has made at least 12 terminations (up to 100 s).
    expect(r.terminated).toBeGreaterThanOrEqual(12);
    expect({ leftFds: r.leftFds, leftMaps: r.leftMaps }).toEqual({ leftFds: 0, leftMaps: 0 });
  }, 130_000);

  test("connections a Worker's multishot ACCEPT made whose completions it never handled (it was busy in a loop of system calls) are closed from its CQ after its termination", () => {
    const r = expectClean(runScenario("worker.ts", "unhandled-accepts"));
    expect(r.accepted).toBe(r.expected);
    // The listener and the connections (three with a multishot ACCEPT, 5.19+).
    expect(r.report.sockets).toBe(r.expected + 1);
  }, 70_000);

  test('a Worker\'s ring with memory "auto" lives in kernel memory (its heap is freed at termination); "shared" is still given when asked', () => {
    const r = expectClean(runScenario("worker.ts", "memory"));
    expect(r.auto).toBe("mmap");
    // Kernels before 6.5 have no IORING_SETUP_NO_MMAP: "shared" is refused there.
    expect(r.shared === "shared" || String(r.shared).startsWith("refused")).toBe(true);
  }, 70_000);

  test("50 Workers terminated with operations in flight: fds and ring mappings back to the start, RSS bounded", () => {
    const r = expectClean(runScenario("worker.ts", "churn", 240_000));
    expect(r.workers).toBe(50);
    expect(r.rssGrowthMiB).toBeLessThan(256);
  }, 250_000);
});

// Memory the kernel writes into later (test/fixtures/hostile/memory.ts; the Worker side is
// memory-child.ts): in a Worker it is never heap memory that terminate() frees, but anonymous
// mappings in the fd ledger, released and kept for reuse once the Worker's rings are closed.
describe("a terminated Worker's receive buffers (each in its own process)", () => {
  test("a Worker receiving into provided buffers, terminated while this thread keeps sending: the buffers are ledger mappings, kept mapped, their pages given back after its rings closed; fds back, this thread's connection works", () => {
    const r = expectClean(runScenario("memory.ts", "terminate-receiving"));
    // The fixture checked both mappings are spares now; which sweep made them so (this thread's
    // automatic one on the Worker's 'close', or reclaimWorker's) varies from run to run.
    expect(r.report.pending).toBe(0);
    expect(r.helpers).toBeGreaterThan(0);
    expect(r.residentPagesAfter).toBe(0);
    expect(r.fdsLeft).toBe(0);
    expect(r.rssGrowthMiB).toBeLessThan(128);
  }, 70_000);

  test("2,000 provided-buffer rings created and closed in a Worker, then 12 Workers receiving and terminated (half after closing their ring): the mappings are taken again, not multiplied", () => {
    // About 90 s under the VM tier's emulation (TCG).
    const r = expectClean(runScenario("memory.ts", "churn", 240_000));
    // Two buffer sizes and the ring entries: three mappings for 4,000 allocations.
    expect(r.churn.mapped).toBeLessThanOrEqual(3);
    expect(r.churn.reused).toBeGreaterThanOrEqual(3990);
    // The async ring's 16 MiB of buffers is the one size the churn had no spare for.
    expect(r.mapped).toBeLessThanOrEqual(2);
    expect(r.entries).toBeLessThanOrEqual(5);
    expect(r.live).toBe(0);
    expect(r.rssGrowthMiB).toBeLessThan(128);
  }, 250_000);

  test("views kept past close() read as empty and take no writes; view() after close is EBADF; a buffer transferred to this thread stays readable after the Worker died (an escaped mapping is never released)", () => {
    const r = expectClean(runScenario("memory.ts", "stale-views"));
    expect(r.kind).toBe("mmap");
    expect(r.afterClose).toEqual({ viewLength: 0, viewRead: "undefined", wholeLength: 0 });
    expect(r.viewAfterClose).toBe("EBADF");
    expect(r.sameMapping).toBe(true);
    expect(r.zeroed).toBe(true);
    expect(r.escaped).toBe(1);
    expect(r.goneInLedger).toBe(false);
    // Still registered at termination: released by the sweep like the rest (read as zeros here).
    expect(r.openState).toBe("spare");
  }, 70_000);

  test("six Workers creating and closing provided-buffer rings of one size at once: a spare is never handed to two (no buffer overwritten, no address twice in the ledger)", () => {
    const r = expectClean(runScenario("memory.ts", "spare-race", 240_000));
    expect(r.clashes).toBe(0);
    expect(r.duplicates).toBe(0);
    expect(r.mapped).toBeLessThanOrEqual(2 * r.workers);
    expect(r.reused).toBeGreaterThanOrEqual(2 * r.workers * (r.rounds - 1));
  }, 250_000);

  test("a RecvLoop in a Worker receives into a ledger mapping, given back (its views emptied) when the loop ends", () => {
    const r = expectClean(runScenario("memory.ts", "recv-loop"));
    expect(r.got).toBe("hello");
    expect(r.running).toEqual([65536]);
    expect(r.ended).toEqual([]);
    expect(r.keptLength).toBe(0);
    expect(r.stats.released).toBe(1);
  }, 70_000);

  testIf(
    zcrxGate,
    "a device-less ZCRX area registered in a Worker is a ledger mapping by default, made a spare once the terminated Worker's ring is closed",
    () => {
      const r = expectClean(runScenario("memory.ts", "zcrx"));
      expect(r).toEqual({ area: "mmap", inLedger: true, state: "spare", pending: 0 });
    },
    70_000,
  );

  test("with the ledger refused, a Worker still reuses its own mappings", () => {
    const r = expectClean(runScenario("memory.ts", "ledger-off"));
    expect(r.enabled).toBe(false);
    expect(r.kind).toBe("mmap");
    expect(r.mapped).toBeLessThanOrEqual(3);
    expect(r.reused).toBeGreaterThanOrEqual(390);
  }, 70_000);

  test("provided-buffer rings dropped without close() in a Worker give their mappings back when collected", () => {
    const r = expectClean(runScenario("memory.ts", "dropped", 60_000));
    expect(r.releasedByGc).toBeGreaterThanOrEqual(2 * 190);
    expect(r.live).toBeLessThanOrEqual(20);
  }, 70_000);

  test("Workers terminated at random points while creating and closing rings and provided buffers: no crash, nothing of theirs left live, the ledger's mappings stay few", () => {
    const r = expectClean(runScenario("memory.ts", "terminate-creating", 120_000));
    expect(r.deadLive).toBe(0);
    // 4 sizes in use at once; a Worker killed between claiming a spare and filling it leaves one "writing".
    expect(r.entries).toBeLessThanOrEqual(16);
  }, 130_000);
});

test("reclaimWorker refuses what is not a Worker's threadId, and the calling thread, naming what it got", async () => {
  const { reclaimWorker } = await import("../src/index.ts");
  const { threadId } = await import("node:worker_threads");
  for (const [arg, shown] of [
    ["3", '"3" (a string)'],
    [null, "null"],
    [{ threadId: 1.5 }, "1.5"],
    [{ threadId: -1 }, ""],
  ] as const) {
    expect(() => reclaimWorker(arg as never)).toThrow(shown === "" ? /terminated already/ : `got ${shown}`);
  }
  expect(() => reclaimWorker(threadId)).toThrow(/is the calling thread/);
  expect(() => reclaimWorker(threadId + 12345, NaN)).toThrow(/timeoutMs must be/);
});
