// Tier 3: ZCRX events and copy counters (ZCRX_FEATURE_EVENT, Linux 7.2) on the VM's kernel.
// Device-less zcrx copies every byte, so the copy event must fire, copy_bytes must match what
// arrived, and copy_count (copy operations) must be between 1 and the chunks. Prints one `zcrx-vm-events:` JSON line.
import { describe, expect } from "bun:test";
import { openRing } from "../../src/api/index.ts";
import { queryZcrx } from "../../src/zcrx/query.ts";
import { kernelAtLeast, kernelRelease } from "../../src/ring/kernel.ts";
import { ZCRX_FEATURE_EVENT } from "../../src/abi/zcrx.ts";
import { testIf } from "../helpers.ts";
import { patternAt } from "./fixtures/zcrx-pattern.ts";

const inVm = process.env.BUN_URING_IN_VM === "1";
const q = queryZcrx();
// In the VM on 7.2+ it runs whatever the probe says (a broken probe must fail here).
const gate =
  (q !== null && q.nodev && (q.features & ZCRX_FEATURE_EVENT) !== 0) || (inVm && kernelAtLeast("7.2"))
    ? null
    : `ZCRX events need Linux 7.2+ with ZCRX_REG_NODEV (this kernel is ${kernelRelease()}); run it with \`bun scripts/vm.ts --kernel newest test/vm/zcrx-events.test.ts\``;

describe("ZCRX events on a device-less queue", () => {
  testIf(
    gate,
    "every byte is copied: ZCRX_EVENT_COPY fires, copy_bytes matches the bytes received, copy_count the copies made",
    async () => {
      const total = 4 << 20;
      const r = openRing({ zcrx: { nodev: true, areaBytes: 256 * 1024 } });
      try {
        const ifq = r.zcrxQueue!;
        expect(ifq.events).toBe(true);
        const l = r.listen({ host: "127.0.0.1", port: 0 });
        const accepted = l.accept();
        const cl = await r.connect({ host: "127.0.0.1", port: l.port });
        const peer = await accepted;
        const sending = (async () => {
          for (let at = 0; at < total; at += 1 << 20) await cl.send(patternAt(at, 1 << 20).slice()).released;
          await cl.end();
        })();
        const stream = peer.recvZc();
        let got = 0;
        for await (const chunk of stream) {
          got += chunk.data.length;
          chunk.release();
        }
        await sending;
        await Promise.all([cl.close(), peer.close(), l.close()]);
        const copy = ifq.copyStats();
        const s = stream.stats;
        console.log(
          `zcrx-vm-events: ${JSON.stringify({ kernel: kernelRelease(), bytes: got, copy, stats: s.snapshot(), copied: stream.receiver.copied })}`,
        );
        expect(got).toBe(total);
        expect(s.otherEvents).toBe(0);
        // One-shot and not re-armed: the counters have the rest.
        expect(s.copyEvents).toBe(1);
        expect(stream.receiver.copied).toBe(true);
        expect(copy.copyBytes).toBe(total);
        // One per copied fragment (a fragment can fill several chunks).
        expect(copy.copyCount).toBeGreaterThan(0);
        expect(copy.copyCount).toBeLessThanOrEqual(s.chunks);
      } finally {
        await r.close();
      }
    },
    120_000,
  );
});
