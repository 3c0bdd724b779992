// Tier 3: RECV_ZC end to end on a real kernel, through device-less zcrx (ZCRX_REG_NODEV, Linux
// 7.1+), run inside the VM that scripts/vm.ts boots (BUN_URING_IN_VM=1) or on any host whose
// kernel accepts NODEV. Each test prints one `zcrx-vm:` JSON line with the bytes verified and
// the refills the kernel consumed.
import { describe, expect, test } from "bun:test";
import { queryZcrx } from "../../src/zcrx/query.ts";
import { kernelAtLeast, kernelRelease } from "../../src/ring/kernel.ts";
import { startZcrxWorkers, planZcrxWorkers } from "../../src/zcrx/workers.ts";
import { testIf } from "../helpers.ts";
import { runLoopbackTransfer, type TransferResult } from "./fixtures/zcrx-loopback.ts";

const MiB = 1024 * 1024;
const inVm = process.env.BUN_URING_IN_VM === "1";
const nodev = queryZcrx()?.nodev === true;
// Inside the VM on 7.1+ the tests run whatever the library's own probe says: a broken probe must
// fail here, not turn the top tier into skips.
const gate =
  nodev || (inVm && kernelAtLeast("7.1"))
    ? null
    : inVm
      ? `the VM kernel ${kernelRelease()} does not accept ZCRX_REG_NODEV (needs Linux 7.1+)`
      : `ZCRX_REG_NODEV needs Linux 7.1+ (this kernel is ${kernelRelease()}); run it with \`bun scripts/vm.ts --kernel newest test/vm/zcrx-nodev.test.ts\``;

function report(name: string, r: TransferResult): void {
  console.log(`zcrx-vm: ${JSON.stringify({ test: name, ...r })}`);
}

function expectComplete(r: TransferResult, total: number): void {
  expect(r.end_res).toBe(0);
  expect(r.bytes_sent).toBe(total);
  expect(r.bytes_verified).toBe(total);
  expect(r.mismatches).toBe(0);
  expect(r.live_after).toBe(0);
  expect(r.pending_after).toBe(0);
  expect(r.stats.released).toBe(r.chunks);
}

describe("RECV_ZC with ZCRX_REG_NODEV over loopback TCP", () => {
  testIf(
    gate,
    "32 MiB through a 1 MiB area: every byte verified, the kernel consumed our refills",
    () => {
      const total = 32 * MiB;
      const r = runLoopbackTransfer({ totalBytes: total, areaBytes: MiB, rqEntries: 256 });
      report("32MiB", r);
      expectComplete(r, total);
      // 256 buffers for 32 MiB: all but the first 256 chunks needed a buffer we gave back.
      expect(r.chunks).toBeGreaterThanOrEqual(total / 4096);
      expect(r.refills_consumed).toBeGreaterThanOrEqual(r.chunks - r.area_chunks);
      expect(r.stats.flushes).toBeGreaterThan(0);
      // Batching: fewer tail stores than chunks.
      expect(r.stats.publishes).toBeLessThan(r.chunks);
    },
    240_000,
  );

  testIf(
    gate,
    "user-memory refill ring and a CQE_MIXED ring work the same",
    () => {
      const total = 4 * MiB;
      const r = runLoopbackTransfer({
        totalBytes: total,
        areaBytes: 512 * 1024,
        rqEntries: 128,
        refillMemory: "user",
        cqeMixed: true,
      });
      report("user-refill-mixed", r);
      expectComplete(r, total);
      expect(r.refills_consumed).toBeGreaterThanOrEqual(r.chunks - r.area_chunks);
    },
    120_000,
  );

  testIf(
    gate,
    "a full refill ring: releases wait, are published later, none lost",
    () => {
      const total = 4 * MiB;
      // 64 refill slots, releases in bursts of 96: every burst overflows the ring.
      const r = runLoopbackTransfer({ totalBytes: total, areaBytes: MiB, rqEntries: 64, holdChunks: 96 });
      report("rq-full", r);
      expectComplete(r, total);
      expect(r.rq_entries).toBe(64);
      expect(r.stats.rq_full).toBeGreaterThan(0);
      expect(r.stats.pending_high_water).toBeGreaterThanOrEqual(32);
    },
    120_000,
  );

  testIf(
    gate,
    "an area held empty: RECV_ZC ends with -ENOMEM, and is re-armed once chunks return",
    () => {
      const total = 2 * MiB;
      // 64 buffers, and the application holds chunks until the kernel runs out.
      const r = runLoopbackTransfer({
        totalBytes: total,
        areaBytes: 256 * 1024,
        rqEntries: 64,
        holdChunks: 1 << 20,
        releaseOnStarve: true,
      });
      report("enomem", r);
      expectComplete(r, total);
      expect(r.stats.starvations).toBeGreaterThan(0);
      expect(r.stats.rearms).toBeGreaterThanOrEqual(r.stats.starvations as number);
      expect(r.refills_consumed).toBeGreaterThanOrEqual(r.chunks - r.area_chunks);
    },
    120_000,
  );

  testIf(
    gate,
    "a 4-entry CQ: RECV_ZC ends with -ENOSPC and is re-armed until all bytes arrive",
    () => {
      const total = 4 * MiB;
      const r = runLoopbackTransfer({
        totalBytes: total,
        areaBytes: MiB,
        rqEntries: 256,
        ringEntries: 4,
        cqEntries: 4,
      });
      report("enospc", r);
      expectComplete(r, total);
      expect(r.stats.rearms_enospc).toBeGreaterThan(0);
    },
    120_000,
  );

  testIf(
    gate,
    "two Workers, each with its own ring and ifq, receive in parallel",
    async () => {
      const total = 4 * MiB;
      const plans = planZcrxWorkers({ count: 2, nodev: true });
      const results = await startZcrxWorkers<TransferResult>(
        new URL("./fixtures/zcrx-worker.ts", import.meta.url),
        plans.map((p) => ({ ...p, totalBytes: total, areaBytes: 512 * 1024, rqEntries: 128 })),
        180_000,
      );
      expect(results.length).toBe(2);
      for (const r of results) {
        report("worker", r);
        expectComplete(r, total);
        expect(r.refills_consumed).toBeGreaterThanOrEqual(r.chunks - r.area_chunks);
      }
    },
    200_000,
  );
});
