// A ring in SharedArrayBuffer memory is visible to a Worker: the main thread posts
// ring.sharedBuffers and ring.layout, submits NOPs, and the worker (test/fixtures/ring-worker.ts)
// reads the SQ/CQ head and tail words with Atomics and sees them move by exactly what was done.
import { expect } from "bun:test";
import { Ring } from "../src/ring/ring.ts";
import { prepNop } from "../src/ops/prep.ts";
import { IORING_SETUP_NO_MMAP } from "../src/abi/setup.ts";
import { testIf, needSetupFlag } from "./helpers.ts";

interface Counters {
  sqHead: number;
  sqTail: number;
  cqHead: number;
  cqTail: number;
}

/** Send one message and wait for the worker's reply (bounded, so a broken worker fails the test). */
function ask<T>(worker: Worker, msg: unknown, timeoutMs = 5000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`worker did not answer ${JSON.stringify(msg)} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    worker.onmessage = (ev: MessageEvent) => {
      clearTimeout(timer);
      resolve(ev.data as T);
    };
    worker.onerror = (ev) => {
      clearTimeout(timer);
      reject(new Error(`worker error: ${ev.message}`));
    };
    worker.postMessage(msg);
  });
}

function nops(ring: Ring, n: number, done: { n: number }): void {
  for (let i = 0; i < n; i++) {
    const slot = ring.getSqe();
    prepNop(ring.sq, slot);
    ring.track(
      slot,
      (d: { n: number }) => {
        d.n++;
      },
      done,
    );
  }
}

testIf(
  needSetupFlag(IORING_SETUP_NO_MMAP, "NO_MMAP", "6.5"),
  "a Worker reads the ring's counters from the shared buffers as NOPs complete",
  async () => {
    const ring = Ring.create({ entries: 16, memory: "shared" });
    const worker = new Worker(new URL("./fixtures/ring-worker.ts", import.meta.url).href);
    try {
      expect(ring.sharedBuffers[0] instanceof SharedArrayBuffer).toBe(true);
      const ready = await ask<{ cmd: string; shared: boolean }>(worker, {
        cmd: "init",
        buffers: ring.sharedBuffers,
        layout: ring.layout,
      });
      expect(ready).toEqual({ cmd: "ready", shared: true });

      const before = await ask<Counters>(worker, { cmd: "read", seq: 1 });
      const done = { n: 0 };

      // Submitted and reaped: both queues move by 10.
      nops(ring, 10, done);
      ring.submitAndWait(10);
      const submitted = await ask<Counters>(worker, { cmd: "read", seq: 2 });
      expect(submitted.sqTail - before.sqTail).toBe(10);
      expect(submitted.sqHead - before.sqHead).toBe(10);
      expect(submitted.cqTail - before.cqTail).toBe(10);
      // Nothing reaped yet: the CQ head has not moved.
      expect(submitted.cqHead).toBe(before.cqHead);

      ring.completions();
      expect(done.n).toBe(10);
      const reaped = await ask<Counters>(worker, { cmd: "read", seq: 3 });
      expect(reaped.cqHead - before.cqHead).toBe(10);
      expect(reaped.cqTail).toBe(reaped.cqHead);

      // A second batch, larger than the SQ, moves the counters again.
      nops(ring, 40, done);
      ring.runUntil(() => done.n === 50, 5000);
      const after = await ask<Counters>(worker, { cmd: "read", seq: 4 });
      expect(after.cqTail - before.cqTail).toBe(50);
      expect(after.cqHead - before.cqHead).toBe(50);
      expect(after.sqHead - before.sqHead).toBe(50);
    } finally {
      worker.terminate();
      ring.close();
    }
  },
);
