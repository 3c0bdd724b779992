// Tier 2, on this machine's kernel: what ZCRX registration says when it cannot work here, and
// that each refusal names its cause. Every test owns its ring and closes it.
import { describe, expect, test } from "bun:test";
import { Ring } from "../src/ring/ring.ts";
import { registerZcrxIfq, zcrxRingProblem, ifIndexOf } from "../src/zcrx/ifq.ts";
import { queryZcrx } from "../src/zcrx/query.ts";
import { UringError } from "../src/error.ts";
import { IORING_SETUP_CQE_MIXED } from "../src/abi/setup.ts";
import { kernelAtLeast, kernelRelease } from "../src/ring/kernel.ts";
import { ZCRX_FEATURE_EVENT, ZCRX_SINCE } from "../src/abi/zcrx.ts";
import { testIf, needRoot, needKernel, needSetupFlag, needEnv } from "./helpers.ts";
import { PAGE_SIZE } from "../src/ring/memory.ts";

const AREA = 64 * PAGE_SIZE;
const recvZc = needKernel("6.15", "IORING_OP_RECV_ZC / IORING_REGISTER_ZCRX_IFQ");
const root = needRoot("registering a zcrx ifq");
const gate = recvZc ?? root;

function zcrxRing(extra: Parameters<typeof Ring.create>[0] = {}): Ring {
  return Ring.create({ entries: 8, deferTaskrun: true, cqe32: true, ...extra });
}

function registerError(ring: Ring, options: Parameters<typeof registerZcrxIfq>[1]): UringError {
  try {
    const ifq = registerZcrxIfq(ring, { areaBytes: AREA, ...options });
    ifq.close();
  } catch (e) {
    expect(e).toBeInstanceOf(UringError);
    return e as UringError;
  }
  throw new Error("registration succeeded where it was expected to fail");
}

/** Whether this kernel takes ZCRX_REG_NODEV (then loopback registration is not refused). */
const nodevAccepted = queryZcrx()?.nodev === true;
const eventsAccepted = ((queryZcrx()?.features ?? 0) & ZCRX_FEATURE_EVENT) !== 0;

describe("ZCRX registration on this kernel", () => {
  testIf(gate, "lo: EOPNOTSUPP, explained as a virtual device with the NODEV way out", () => {
    const ring = zcrxRing();
    try {
      const e = registerError(ring, { ifname: "lo", rxq: 0 });
      expect(e.code).toBe("EOPNOTSUPP");
      expect(e.syscall).toBe("IORING_REGISTER_ZCRX_IFQ");
      expect(e.message).toMatch(/lo is a virtual device/);
      expect(e.message).toMatch(/queue-management ops/);
      expect(e.message).toMatch(/nodev: true \(ZCRX_REG_NODEV, Linux 7\.1\+/);
    } finally {
      ring.close();
    }
  });

  testIf(gate, "an ifindex that does not exist: ENODEV with `ip -br link`", () => {
    const ring = zcrxRing();
    try {
      const e = registerError(ring, { ifindex: 99999, rxq: 0 });
      expect(e.code).toBe("ENODEV");
      expect(e.message).toMatch(/ip -br link/);
    } finally {
      ring.close();
    }
  });

  test("an interface name that does not exist: ENODEV from if_nametoindex, before the syscall", () => {
    expect(() => ifIndexOf("nosuchif0")).toThrow(/if_nametoindex: ENODEV \(nosuchif0\)/);
    expect(() => ifIndexOf("a-name-longer-than-15")).toThrow(/1\.\.15 bytes/);
    expect(ifIndexOf("lo")).toBe(1);
  });

  testIf(recvZc, "a ring without DEFER_TASKRUN: EINVAL naming the missing flags, before the syscall", () => {
    const ring = Ring.create({ entries: 8 });
    try {
      expect(zcrxRingProblem(ring)).toMatch(/IORING_SETUP_DEFER_TASKRUN/);
      const e = registerError(ring, { ifname: "lo" });
      expect(e.code).toBe("EINVAL");
      expect(e.message).toMatch(/the ring lacks IORING_SETUP_DEFER_TASKRUN/);
      expect(e.message).toMatch(/deferTaskrun: true, cqe32: true/);
    } finally {
      ring.close();
    }
  });

  testIf(gate, "a ring without DEFER_TASKRUN: the kernel agrees (EINVAL) when asked directly", () => {
    const ring = Ring.create({ entries: 8, cqe32: true });
    try {
      const e = registerError(ring, { ifname: "lo", checkRing: false });
      expect(e.code).toBe("EINVAL");
      expect(e.message).toMatch(/lacks IORING_SETUP_DEFER_TASKRUN/);
    } finally {
      ring.close();
    }
  });

  testIf(recvZc, "a DEFER_TASKRUN ring with 16-byte CQEs is refused (needs CQE32 or CQE_MIXED)", () => {
    const ring = Ring.create({ entries: 8, deferTaskrun: true });
    try {
      const e = registerError(ring, { ifname: "lo" });
      expect(e.code).toBe("EINVAL");
      expect(e.message).toMatch(/CQE32 or IORING_SETUP_CQE_MIXED/);
    } finally {
      ring.close();
    }
  });

  testIf(
    gate ?? needSetupFlag(IORING_SETUP_CQE_MIXED, "CQE_MIXED", "6.18"),
    "a CQE_MIXED ring passes the ring check and reaches the device check",
    () => {
      const ring = Ring.create({ entries: 8, deferTaskrun: true, cqeMixed: true });
      try {
        expect(zcrxRingProblem(ring)).toBeNull();
        const e = registerError(ring, { ifname: "lo" });
        expect(e.code).toBe("EOPNOTSUPP");
      } finally {
        ring.close();
      }
    },
  );

  testIf(
    eventsAccepted ? `this kernel (${kernelRelease()}) reports ZCRX_FEATURE_EVENT` : recvZc,
    "events: true is refused before the syscall with the 7.2 message",
    () => {
      const ring = zcrxRing();
      try {
        const e = registerError(ring, { ifname: "lo", rxq: 0, events: true });
        expect(e.code).toBe("EOPNOTSUPP");
        expect(e.message).toMatch(/ZCRX events \(ZCRX_FEATURE_EVENT\) needs Linux 7\.2/);
        expect(e.message).toContain(kernelRelease());
        // Without the option the same registration gets as far as the kernel (which refuses lo).
        expect(registerError(ring, { ifname: "lo", rxq: 0 }).syscall).toBe("IORING_REGISTER_ZCRX_IFQ");
      } finally {
        ring.close();
      }
    },
  );

  testIf(
    nodevAccepted ? `this kernel (${kernelRelease()}) accepts ZCRX_REG_NODEV` : recvZc,
    "NODEV is refused before the syscall with the 7.1 message",
    () => {
      const ring = zcrxRing();
      try {
        const e = registerError(ring, { nodev: true });
        expect(e.code).toBe("EOPNOTSUPP");
        expect(e.message).toMatch(/ZCRX_REG_NODEV needs Linux 7\.1/);
        expect(e.message).toContain(kernelRelease());
        expect(kernelAtLeast("7.1")).toBe(false);
      } finally {
        ring.close();
      }
    },
  );

  testIf(recvZc, "arguments are checked before anything reaches the kernel", () => {
    const ring = zcrxRing();
    try {
      expect(() => registerZcrxIfq(ring, {})).toThrow(/give ifname or ifindex/);
      expect(() => registerZcrxIfq(ring, { nodev: true, ifname: "lo" })).toThrow(/nodev excludes/);
      expect(() => registerZcrxIfq(ring, { ifindex: -3 })).toThrow(/ifindex must be a positive integer/);
      expect(() => registerZcrxIfq(ring, { ifname: "lo", rxq: -1 })).toThrow(/rxq must be/);
      expect(() => registerZcrxIfq(ring, { ifname: "lo", rqEntries: 40000 })).toThrow(/rqEntries must be/);
      expect(() => registerZcrxIfq(ring, { ifname: "lo", areaBytes: 100 })).toThrow(/at least one page/);
      expect(() => registerZcrxIfq(ring, { ifname: "lo", rxBufLen: 3000 })).toThrow(/rxBufLen must be a power of two/);
      expect(() => registerZcrxIfq(ring, { ifname: "lo", refillMemory: "disk" as never })).toThrow(/refillMemory/);
    } finally {
      ring.close();
    }
  });

  testIf(recvZc, "a closed ring is refused", () => {
    const ring = zcrxRing();
    ring.close();
    expect(() => registerZcrxIfq(ring, { ifname: "lo" })).toThrow(/closed/);
  });

  testIf(
    queryZcrx() ? null : `IO_URING_QUERY_ZCRX needs Linux ${ZCRX_SINCE.query}+, this kernel is ${kernelRelease()}`,
    "IO_URING_QUERY_ZCRX reports a usable refill header",
    () => {
      const q = queryZcrx()!;
      expect(q.rqHeader.size).toBeGreaterThan(0);
      expect(q.rqHeader.alignment & (q.rqHeader.alignment - 1)).toBe(0);
    },
  );

  testIf(
    queryZcrx() ? `this kernel (${kernelRelease()}) answers IO_URING_QUERY_ZCRX` : null,
    "without IO_URING_QUERY_ZCRX the query says null (6.18 and older)",
    () => {
      expect(queryZcrx()).toBeNull();
    },
  );
});

// Tier 4: a NIC that can do it, named by the environment.
const hwIf = process.env.BUN_URING_ZCRX_IFNAME;
const hwRxq = Number(process.env.BUN_URING_ZCRX_RXQ ?? "NaN");
const hw =
  needEnv("BUN_URING_ZCRX_IFNAME", "registering on a zero-copy NIC") ??
  (Number.isInteger(hwRxq) ? null : "registering on a zero-copy NIC needs BUN_URING_ZCRX_RXQ to be set");

describe("ZCRX registration on a hardware queue", () => {
  testIf(
    hw ?? root,
    "BUN_URING_ZCRX_IFNAME / BUN_URING_ZCRX_RXQ register, map the refill ring, and flush where supported",
    () => {
      const ring = zcrxRing();
      try {
        const ifq = registerZcrxIfq(ring, { ifname: hwIf!, rxq: hwRxq, areaBytes: 4 * 1024 * 1024 });
        expect(ifq.rqEntries & (ifq.rqEntries - 1)).toBe(0);
        expect(ifq.refill.rqes).toBeGreaterThanOrEqual(8);
        const rx = ifq.receiver();
        expect(rx.publish()).toBe(0);
        ifq.close();
      } finally {
        ring.close();
      }
    },
  );
});
