// Ring.track's two ways (the fast body, and trackChecked for flags and refusals) and the one-slot,
// one-user_data rule between track and setUserData.
import { describe, expect, test } from "bun:test";
import { Ring } from "../src/ring/ring.ts";
import { prepNop } from "../src/ops/prep.ts";
import * as Q from "../src/abi/sqe.ts";
import { UringError } from "../src/error.ts";

function refusal(f: () => unknown): UringError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UringError);
    return e as UringError;
  }
  throw new Error("expected a refusal");
}

describe("Ring.track", () => {
  test("with IOSQE flags (trackChecked) the flags reach the SQE and the operation completes", () => {
    const ring = Ring.create({ entries: 8 });
    try {
      const seen: number[] = [];
      const a = ring.getSqe();
      prepNop(ring.sq, a);
      const udA = ring.track(a, (_: null, res: number) => void seen.push(res), null, undefined, Q.IOSQE_ASYNC);
      expect(ring.sq.u8[a * Q.SQE_SIZE + Q.SQE.flags]! & Q.IOSQE_ASYNC).toBe(Q.IOSQE_ASYNC);
      const b = ring.getSqe();
      prepNop(ring.sq, b);
      // An explicit 0 takes the checked way too, and adds no flag.
      const udB = ring.track(b, (_: null, res: number) => void seen.push(res + 1), null, undefined, 0);
      expect(ring.sq.u8[b * Q.SQE_SIZE + Q.SQE.flags]).toBe(0);
      expect(udA).not.toBe(udB);
      ring.runUntil(() => seen.length === 2, 5000);
      expect(seen.sort()).toEqual([0, 1]);
      expect(ring.ops.inflight).toBe(0);
    } finally {
      ring.close();
    }
  });

  test("setUserData on a tracked slot is refused, and the tracked operation still completes", () => {
    const ring = Ring.create({ entries: 8 });
    try {
      let done = 0;
      const s = ring.getSqe();
      prepNop(ring.sq, s);
      ring.track(s, () => void done++, null);
      const e = refusal(() => ring.setUserData(s, 5));
      expect(e.code).toBe("EINVAL");
      expect(e.message).toContain("already has its user_data");
      ring.runUntil(() => done === 1, 5000);
      // Before the check the tracked entry was orphaned: its CQE came back as unknown, the entry
      // stayed in flight and close() waited out its timeout for it.
      expect(ring.unknownCqes).toBe(0);
      expect(ring.ops.inflight).toBe(0);
    } finally {
      ring.close();
    }
  });

  test("setUserData twice on one slot is refused, and track after setUserData too", () => {
    const ring = Ring.create({ entries: 8 });
    try {
      const s = ring.getSqe();
      prepNop(ring.sq, s);
      ring.setUserData(s, 7);
      expect(refusal(() => ring.setUserData(s, 8)).message).toContain("already has its user_data");
      expect(refusal(() => ring.track(s, () => {}, null)).message).toContain("already has its user_data");
      expect(ring.sq.u32[s * 16 + (Q.SQE.user_data >> 2)]).toBe(7);
      expect(ring.ops.inflight).toBe(0);
    } finally {
      ring.close();
    }
  });
});
