// The byte limit of a multishot RECV (sqe->optlen; prepRecvSetLimit), as this kernel answers it.
// probeRecvLimit says whether the kernel takes it; this file checks that the answer is the
// kernel's behaviour: where it says yes, a limited multishot receive stops at the limit with a
// last CQE (no IORING_CQE_F_MORE) and picks no buffer past it; where it says no, the kernel
// refuses the SQE (EINVAL) rather than ignoring the limit.
import { describe, expect, test } from "bun:test";
import { Ring } from "../src/ring/ring.ts";
import { ProvidedBufferRing } from "../src/ring/register.ts";
import { prepRecvMultishot, prepRecvSetLimit } from "../src/ops/prep.ts";
import { probeRecvLimit } from "../src/ring/kernel.ts";
import * as Q from "../src/abi/sqe.ts";
import { EINVAL } from "../src/abi/errno.ts";
import { closePair, sendAll, tcpPair } from "./fixtures/loopback.ts";

const BUFFER = 4096;

describe("multishot RECV byte limit (sqe->optlen)", () => {
  test("the probe's answer is what a real limited receive does", () => {
    const ring = Ring.create({ entries: 8 });
    const pbr = ProvidedBufferRing.create(ring, { bgid: 5, entries: 16, bufferSize: BUFFER });
    const pair = tcpPair();
    try {
      const cqes: { res: number; flags: number }[] = [];
      const slot = ring.begin((_: null, res: number, flags: number) => void cqes.push({ res, flags }), null);
      prepRecvMultishot(ring.sq, slot, pair.server, 5, 0);
      // Three buffers' worth, then the receive must end.
      prepRecvSetLimit(ring.sq, slot, 3 * BUFFER);
      // Ten buffers' worth is waiting before the receive is even armed.
      sendAll(pair.client, new Uint8Array(10 * BUFFER).fill(9));
      ring.submit();
      for (let i = 0; i < 200 && (cqes.length === 0 || cqes.at(-1)!.flags & Q.IORING_CQE_F_MORE); i++) {
        ring.submitAndWait(1, 50);
        ring.completions();
      }
      const last = cqes.at(-1)!;
      expect(last.flags & Q.IORING_CQE_F_MORE).toBe(0);
      if (probeRecvLimit()) {
        const bytes = cqes.reduce((n, c) => n + Math.max(0, c.res), 0);
        expect(bytes).toBe(3 * BUFFER);
        expect(cqes.every((c) => c.res > 0)).toBe(true);
      } else {
        expect(cqes).toEqual([{ res: -EINVAL, flags: 0 }]);
      }
    } finally {
      closePair(pair);
      pbr.close();
      ring.close();
    }
  });
});
