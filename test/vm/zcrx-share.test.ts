// Tier 3: one zcrx ifq shared by several rings (ZCRX_CTRL_EXPORT and ZCRX_REG_IMPORT, Linux
// 6.19+), device-less, in the VM: the exporter's ring registers it; importing rings (on this
// thread, or one per Worker) receive TCP streams through it into the exporter's area and give
// buffers back through its refill ring, several producers serialised by a RefillLock. Each
// result prints one `zcrx-vm-share:` JSON line.
import { describe, expect } from "bun:test";
import { c } from "../../ffi/index.ts";
import { Ring } from "../../src/ring/ring.ts";
import { RefillLock } from "../../src/zcrx/refill-lock.ts";
import { registerZcrxIfq, importZcrx } from "../../src/zcrx/ifq.ts";
import { queryZcrx } from "../../src/zcrx/query.ts";
import { kernelAtLeast, kernelRelease } from "../../src/ring/kernel.ts";
import { testIf } from "../helpers.ts";
import { receiveThrough, type ShareResult } from "./fixtures/zcrx-share-transfer.ts";
import type { ShareJob } from "./fixtures/zcrx-share-worker.ts";

const RING = { entries: 64, cqEntries: 1024, deferTaskrun: true, cqe32: true } as const;

const inVm = process.env.BUN_URING_IN_VM === "1";
const q = queryZcrx();
const gate =
  (q !== null && q.nodev && q.import) || (inVm && kernelAtLeast("7.1"))
    ? null
    : `sharing a device-less ifq needs ZCRX_REG_IMPORT (6.19) and ZCRX_REG_NODEV (7.1); this kernel is ${kernelRelease()}; run it with \`bun scripts/vm.ts --kernel newest test/vm/zcrx-share.test.ts\``;

describe("one device-less ifq, several rings", () => {
  testIf(
    gate,
    "exported by one ring, imported by another, which receives byte-exact through it",
    () => {
      const exporter = Ring.create(RING);
      const importer = Ring.create(RING);
      const ifq = registerZcrxIfq(exporter, { nodev: true, areaBytes: 1 << 20, refillMemory: "user" });
      try {
        const fd = ifq.export();
        const imported = importZcrx(importer, fd, ifq.shared);
        c.close(fd);
        const rx = imported.receiver();
        const r = receiveThrough(importer, rx, 4 << 20);
        rx.close();
        console.log(
          `zcrx-vm-share: ${JSON.stringify({ test: "one importer", kernel: kernelRelease(), exporter_id: ifq.id, importer_id: imported.id, ...r })}`,
        );
        expectComplete(r, 4 << 20);
      } finally {
        importer.close();
        exporter.close();
        ifq.close();
      }
    },
    120_000,
  );

  for (const api of ["sync", "async"] as const) {
    testIf(
      gate,
      `imported by rings in two Workers (${api} API), which receive at once and share the refill ring under one RefillLock`,
      async () => {
        const exporter = Ring.create(RING);
        const ifq = registerZcrxIfq(exporter, { nodev: true, areaBytes: 1 << 20, refillMemory: "user" });
        const lock = new RefillLock();
        const total = 4 << 20;
        const workers: Worker[] = [];
        try {
          const queue = ifq.postable();
          const results = await Promise.all(
            [0, 1].map(() => {
              const fd = ifq.export();
              const w = new Worker(new URL("./fixtures/zcrx-share-worker.ts", import.meta.url));
              workers.push(w);
              const job: ShareJob = { fd, queue, lock: lock.buffer, total, api };
              return new Promise<ShareResult & { ok: boolean; error?: string; zcrxId: number }>((resolve, reject) => {
                w.onmessage = (e) => {
                  c.close(fd);
                  resolve(e.data);
                };
                w.onerror = (e) => reject(e);
                w.postMessage(job);
              });
            }),
          );
          for (const r of results) {
            console.log(
              `zcrx-vm-share: ${JSON.stringify({ test: `worker importer, ${api}`, kernel: kernelRelease(), exporter_id: ifq.id, ...r })}`,
            );
            expect(r.error).toBeUndefined();
            expectComplete(r, total);
          }
          expect(Atomics.load(lock.word, 0)).toBe(0);
        } finally {
          for (const w of workers) w.terminate();
          exporter.close();
          ifq.close();
        }
      },
      180_000,
    );
  }
});

function expectComplete(r: ShareResult, total: number): void {
  expect(r.end).toBe(0);
  expect(r.bytes).toBe(total);
  expect(r.firstMismatch).toBe(-1);
  expect(r.live).toBe(0);
}
