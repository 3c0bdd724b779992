// Bad input against the ring layer (Ring, the op table, registration): every hostile call is
// refused with the library's UringError and the expected errno name, before any pointer reaches
// the kernel where the library can tell; what only the kernel can judge comes back as a CQE with
// the errno. After each row: no fd leaked, nothing left in flight, the ring still works.
import { describe, expect, test } from "bun:test";
import { Ring } from "../src/ring/ring.ts";
import * as S from "../src/abi/setup.ts";
import * as Q from "../src/abi/sqe.ts";
import * as R from "../src/abi/register.ts";
import { prepNop, prepRead, prepWrite, prepRw, prepTimeout, prepSendZc, prepCancel64 } from "../src/ops/index.ts";
import { addressOf, c } from "../ffi/index.ts";
import {
  registerBuffers,
  registerBuffersSparse,
  updateBuffers,
  unregisterBuffers,
  registeredBuffers,
  registerFiles,
  registerFilesSparse,
  updateFiles,
  unregisterFiles,
  ProvidedBufferRing,
  registerEventfd,
  unregisterEventfd,
  registerNapi,
} from "../src/ring/register.ts";
import { supportedSetupFlags, kernelRelease, kernelAtLeast } from "../src/ring/kernel.ts";
import { errnoName } from "../src/abi/errno.ts";
import { UringError } from "../src/error.ts";
import { describeIf, testIf } from "./helpers.ts";
import {
  type BadInputRow,
  expectRingHealthy,
  expectUringError,
  openFdCount,
  openPipe,
  thrown,
  detached,
} from "./fixtures/reliability-checks.ts";

// ---- Ring.create ----

const createRows: BadInputRow<null>[] = [
  { name: "options null", code: "EINVAL", where: "Ring.create", call: () => Ring.create(null as never) },
  { name: "options a number", code: "EINVAL", where: "Ring.create", call: () => Ring.create(5 as never) },
  { name: "entries 0", code: "EINVAL", where: "Ring.create", call: () => Ring.create({ entries: 0 }) },
  { name: "entries -1", code: "EINVAL", where: "Ring.create", call: () => Ring.create({ entries: -1 }) },
  { name: "entries 1.5", code: "EINVAL", where: "Ring.create", call: () => Ring.create({ entries: 1.5 }) },
  { name: "entries NaN", code: "EINVAL", where: "Ring.create", call: () => Ring.create({ entries: NaN }) },
  { name: "entries Infinity", code: "EINVAL", where: "Ring.create", call: () => Ring.create({ entries: Infinity }) },
  { name: "entries 32769 (huge)", code: "EINVAL", where: "Ring.create", call: () => Ring.create({ entries: 32769 }) },
  { name: "entries 2^53", code: "EINVAL", where: "Ring.create", call: () => Ring.create({ entries: 2 ** 53 }) },
  {
    name: "entries a string",
    code: "EINVAL",
    where: "Ring.create",
    call: () => Ring.create({ entries: "8" as never }),
  },
  {
    name: "cqEntries below entries",
    code: "EINVAL",
    where: "Ring.create",
    call: () => Ring.create({ entries: 8, cqEntries: 4 }),
  },
  {
    name: "cqEntries 65537",
    code: "EINVAL",
    where: "Ring.create",
    call: () => Ring.create({ entries: 8, cqEntries: 65537 }),
  },
  {
    name: "cqEntries -1",
    code: "EINVAL",
    where: "Ring.create",
    call: () => Ring.create({ entries: 8, cqEntries: -1 }),
  },
  {
    name: "cqEntries 8.5",
    code: "EINVAL",
    where: "Ring.create",
    call: () => Ring.create({ entries: 8, cqEntries: 8.5 }),
  },
  {
    name: "cqe32 with cqeMixed",
    code: "EINVAL",
    where: "Ring.create",
    call: () => Ring.create({ cqe32: true, cqeMixed: true }),
  },
  {
    name: "memory unknown",
    code: "EINVAL",
    where: "Ring.create",
    call: () => Ring.create({ memory: "huge" as never }),
  },
  {
    name: "maxInflight 0",
    code: "EINVAL",
    where: "Ring.create",
    call: () => Ring.create({ entries: 4, maxInflight: 0 }),
  },
  {
    name: "maxInflight -1",
    code: "EINVAL",
    where: "Ring.create",
    call: () => Ring.create({ entries: 4, maxInflight: -1 }),
  },
  {
    name: "maxInflight 2^24 (huge)",
    code: "EINVAL",
    where: "Ring.create",
    call: () => Ring.create({ entries: 4, maxInflight: 2 ** 24 }),
  },
  {
    name: "maxInflight 1.5",
    code: "EINVAL",
    where: "Ring.create",
    call: () => Ring.create({ entries: 4, maxInflight: 1.5 }),
  },
  { name: "batchSize 0", code: "EINVAL", where: "Ring.create", call: () => Ring.create({ entries: 4, batchSize: 0 }) },
  {
    name: "batchSize -1",
    code: "EINVAL",
    where: "Ring.create",
    call: () => Ring.create({ entries: 4, batchSize: -1 }),
  },
  {
    name: "batchSize 2.5",
    code: "EINVAL",
    where: "Ring.create",
    call: () => Ring.create({ entries: 4, batchSize: 2.5 }),
  },
  {
    name: "batchSize 2^31 (huge)",
    code: "EINVAL",
    where: "Ring.create",
    call: () => Ring.create({ entries: 4, batchSize: 2 ** 31 }),
  },
];

describe("Ring.create refuses bad options with no fd or mapping left behind", () => {
  for (const row of createRows) {
    test(`${row.name} → ${row.code}`, () => {
      const fds = openFdCount();
      expectUringError(() => row.call(null), row.code, row.where);
      expect(openFdCount()).toBeLessThanOrEqual(fds); // a leak adds fds; other files' async cleanup may close some meanwhile
    });
  }
});

// A setup flag the kernel lacks is EOPNOTSUPP naming the version; on a kernel that has it, the
// same options give a working ring. Either way nothing leaks.
const setupFlagRows: Array<{ name: string; flag: number; since: string; options: Parameters<typeof Ring.create>[0] }> =
  [
    {
      name: "memory: shared (NO_MMAP)",
      flag: S.IORING_SETUP_NO_MMAP,
      since: "6.5",
      options: { entries: 4, memory: "shared" },
    },
    {
      name: "noSqArray: true",
      flag: S.IORING_SETUP_NO_SQARRAY,
      since: "6.6",
      options: { entries: 4, noSqArray: true },
    },
    { name: "cqeMixed: true", flag: S.IORING_SETUP_CQE_MIXED, since: "6.18", options: { entries: 4, cqeMixed: true } },
    {
      name: "deferTaskrun: true",
      flag: S.IORING_SETUP_DEFER_TASKRUN,
      since: "6.1",
      options: { entries: 4, deferTaskrun: true },
    },
    { name: "cqe32: true", flag: S.IORING_SETUP_CQE32, since: "5.19", options: { entries: 4, cqe32: true } },
  ];

describe("a setup flag the kernel lacks names the version that has it", () => {
  for (const row of setupFlagRows) {
    const has = (supportedSetupFlags() & row.flag) !== 0;
    test(`${row.name}: ${has ? "works here" : `EOPNOTSUPP naming ${row.since}`}`, () => {
      const fds = openFdCount();
      if (has) {
        const ring = Ring.create(row.options);
        try {
          expect(ring.flags & row.flag).toBe(row.flag);
          expectRingHealthy(ring);
        } finally {
          ring.close();
        }
      } else {
        const e = expectUringError(() => Ring.create(row.options), "EOPNOTSUPP");
        expect(e.message).toContain(`Linux ${row.since}`);
        expect(e.message).toContain(kernelRelease());
      }
      expect(openFdCount()).toBeLessThanOrEqual(fds); // a leak adds fds; other files' async cleanup may close some meanwhile
    });
  }
});

// ---- a closed ring ----

const closedRows: BadInputRow<Ring>[] = [
  { name: "getSqe", code: "EBADF", where: "Ring.getSqe", call: (r) => r.getSqe() },
  { name: "track", code: "EBADF", where: "Ring.track", call: (r) => r.track(0, () => {}, null) },
  { name: "setUserData", code: "EBADF", where: "Ring.setUserData", call: (r) => r.setUserData(0, 1) },
  { name: "flush", code: "EBADF", where: "Ring.flush", call: (r) => r.flush() },
  { name: "submit", code: "EBADF", where: "Ring.submit", call: (r) => r.submit() },
  { name: "submitAndWait()", code: "EBADF", where: "Ring.submitAndWait", call: (r) => r.submitAndWait(1) },
  { name: "submitAndWait(1, 10)", code: "EBADF", where: "Ring.submitAndWait", call: (r) => r.submitAndWait(1, 10) },
  { name: "getEvents", code: "EBADF", where: "Ring.getEvents", call: (r) => r.getEvents() },
  { name: "completions", code: "EBADF", where: "Ring.completions", call: (r) => r.completions() },
  { name: "copyCqes", code: "EBADF", where: "Ring.copyCqes", call: (r) => r.copyCqes() },
  { name: "run", code: "EBADF", call: (r) => r.run(1, 10) },
  { name: "runUntil", code: "EBADF", call: (r) => r.runUntil(() => false, 10) },
  { name: "cqReady", code: "EBADF", where: "Ring.cqReady", call: (r) => r.cqReady },
  { name: "cqOverflow", code: "EBADF", where: "Ring.cqOverflow", call: (r) => r.cqOverflow },
  { name: "sqSpace", code: "EBADF", where: "Ring.sqSpace", call: (r) => r.sqSpace },
  {
    name: "register(PROBE)",
    code: "EBADF",
    where: "IORING_REGISTER_PROBE",
    call: (r) => r.register(R.IORING_REGISTER_PROBE, new Uint8Array(64), 1),
  },
  { name: "enable", code: "EBADF", call: (r) => r.enable() },
  {
    name: "registerBuffers",
    code: "EBADF",
    where: "registerBuffers",
    call: (r) => registerBuffers(r, [new Uint8Array(4096)]),
  },
  {
    name: "registerBuffersSparse",
    code: "EBADF",
    where: "registerBuffersSparse",
    call: (r) => registerBuffersSparse(r, 4),
  },
  { name: "registerFiles", code: "EBADF", where: "registerFiles", call: (r) => registerFiles(r, [0]) },
  { name: "registerFilesSparse", code: "EBADF", where: "registerFilesSparse", call: (r) => registerFilesSparse(r, 4) },
  {
    name: "ProvidedBufferRing.create",
    code: "EBADF",
    where: "ProvidedBufferRing.create",
    call: (r) => ProvidedBufferRing.create(r, { bgid: 1, entries: 4, bufferSize: 64 }),
  },
  { name: "registerEventfd", code: "EBADF", where: "registerEventfd", call: (r) => registerEventfd(r, 0) },
  { name: "registerNapi", code: "EBADF", where: "registerNapi", call: (r) => registerNapi(r, { busyPollUs: 10 }) },
];

for (const memory of ["shared", "mmap"] as const) {
  const reason =
    memory === "shared" && !(supportedSetupFlags() & S.IORING_SETUP_NO_MMAP)
      ? `IORING_SETUP_NO_MMAP needs Linux 6.5+, this kernel is ${kernelRelease()}`
      : null;
  describeIf(
    reason,
    `a closed ring (${memory} memory) refuses every call with EBADF and never touches freed memory`,
    () => {
      for (const row of closedRows) {
        test(row.name, () => {
          const ring = Ring.create({ entries: 4, memory });
          ring.close();
          expectUringError(() => row.call(ring), row.code, row.where);
          expect(ring.ops.inflight).toBe(0);
        });
      }
      test("close twice is a no-op", () => {
        const fds = openFdCount();
        const ring = Ring.create({ entries: 4, memory });
        ring.close();
        ring.close();
        expect(openFdCount()).toBeLessThanOrEqual(fds); // a leak adds fds; other files' async cleanup may close some meanwhile
      });
      test("a stale prep on a closed ring is refused: no slot of it can be prepared, handed out before the close or not", () => {
        const ring = Ring.create({ entries: 4, memory });
        const sq = ring.sq;
        const taken = ring.getSqe();
        ring.close();
        expectUringError(() => prepNop(sq, taken), "EINVAL", "IORING_OP_NOP");
        expectUringError(() => prepNop(sq, (taken + 1) % 4), "EINVAL", "IORING_OP_NOP");
        // mmap'd rings are unmapped: the views are detached (length 0), so even a raw store through
        // them is dropped instead of faulting.
        if (memory === "mmap") expect(sq.u32.length).toBe(0);
      });
    },
  );
}

// ---- an open ring: refused at the edge ----

const openRows: BadInputRow<Ring>[] = [
  { name: "track: slot -1", code: "EINVAL", where: "Ring.track", call: (r) => r.track(-1, () => {}, null) },
  {
    name: "track: slot past the SQ",
    code: "EINVAL",
    where: "Ring.track",
    call: (r) => r.track(r.sqEntries, () => {}, null),
  },
  {
    name: "track: slot 2^28 (would wrap into slot 0)",
    code: "EINVAL",
    where: "Ring.track",
    call: (r) => r.track(2 ** 28, () => {}, null),
  },
  { name: "track: slot 0.5", code: "EINVAL", where: "Ring.track", call: (r) => r.track(0.5, () => {}, null) },
  {
    name: "track: handler not a function",
    code: "EINVAL",
    where: "Ring.track",
    call: (r) => {
      const s = r.getSqe();
      prepNop(r.sq, s);
      return r.track(s, 5 as never, null);
    },
  },
  {
    name: "track: unknown IOSQE bit 0x80",
    code: "EINVAL",
    where: "Ring.track",
    call: (r) => {
      const s = r.getSqe();
      prepNop(r.sq, s);
      return r.track(s, () => {}, null, undefined, 0x80);
    },
  },
  {
    name: "track: sqeFlags -1",
    code: "EINVAL",
    where: "Ring.track",
    call: (r) => {
      const s = r.getSqe();
      prepNop(r.sq, s);
      return r.track(s, () => {}, null, undefined, -1);
    },
  },
  {
    name: "track: CQE_SKIP_SUCCESS (the entry would never see a CQE)",
    code: "EINVAL",
    where: "Ring.track",
    call: (r) => {
      const s = r.getSqe();
      prepNop(r.sq, s);
      return r.track(s, () => {}, null, undefined, Q.IOSQE_CQE_SKIP_SUCCESS);
    },
  },
  { name: "setUserData: negative", code: "EINVAL", where: "Ring.setUserData", call: (r) => r.setUserData(0, -5) },
  {
    name: "setUserData: 2^53 (inexact)",
    code: "EINVAL",
    where: "Ring.setUserData",
    call: (r) => r.setUserData(0, 2 ** 53),
  },
  {
    name: "setUserData: slot past the SQ",
    code: "EINVAL",
    where: "Ring.setUserData",
    call: (r) => r.setUserData(r.sqEntries, 1),
  },
  {
    name: "submitAndWait: waitNr -1",
    code: "EINVAL",
    where: "Ring.submitAndWait",
    call: (r) => r.submitAndWait(-1, 10),
  },
  {
    name: "submitAndWait: waitNr 1.5",
    code: "EINVAL",
    where: "Ring.submitAndWait",
    call: (r) => r.submitAndWait(1.5, 10),
  },
  {
    name: "submitAndWait: timeout NaN",
    code: "EINVAL",
    where: "Ring.submitAndWait",
    call: (r) => r.submitAndWait(1, NaN),
  },
  {
    name: "submitAndWait: timeout -1",
    code: "EINVAL",
    where: "Ring.submitAndWait",
    call: (r) => r.submitAndWait(1, -1),
  },
  {
    name: "submitAndWait: timeout Infinity",
    code: "EINVAL",
    where: "Ring.submitAndWait",
    call: (r) => r.submitAndWait(1, Infinity),
  },
  {
    name: "register: bare ArrayBuffer (a wrong pointer for bun:ffi)",
    code: "EINVAL",
    where: "IORING_REGISTER_BUFFERS",
    call: (r) => r.register(R.IORING_REGISTER_BUFFERS, new ArrayBuffer(16) as never, 1),
  },
  {
    name: "register: detached view",
    code: "EINVAL",
    where: "IORING_REGISTER_PROBE",
    call: (r) => r.register(R.IORING_REGISTER_PROBE, detached(), 1),
  },
  {
    name: "register: a number as arg",
    code: "EINVAL",
    call: (r) => r.register(R.IORING_REGISTER_PROBE, 4096 as never, 1),
  },
  { name: "register: opcode -1", code: "EINVAL", where: "Ring.register", call: (r) => r.register(-1, null, 0) },
  { name: "register: opcode 256", code: "EINVAL", where: "Ring.register", call: (r) => r.register(256, null, 0) },
  {
    name: "register: nrArgs -1",
    code: "EINVAL",
    where: "IORING_REGISTER_PROBE",
    call: (r) => r.register(R.IORING_REGISTER_PROBE, new Uint8Array(64), -1),
  },
  { name: "register: unknown opcode 200 (kernel)", code: "EINVAL", call: (r) => r.register(200, null, 0) },
  { name: "register: enable a ring that is not disabled (kernel)", code: "EBADFD", call: (r) => r.enable() },
  { name: "addressOf: detached view", code: "EINVAL", where: "addressOf", call: () => addressOf(detached()) },
  { name: "addressOf: empty view", code: "EINVAL", where: "addressOf", call: () => addressOf(new Uint8Array(0)) },
  {
    name: "addressOf: bare ArrayBuffer",
    code: "EINVAL",
    where: "addressOf",
    call: () => addressOf(new ArrayBuffer(8) as never),
  },
];

describe("an open ring refuses bad arguments at the edge and stays healthy", () => {
  for (const row of openRows) {
    test(`${row.name} → ${row.code}`, () => {
      const fds = openFdCount();
      const ring = Ring.create({ entries: 8 });
      try {
        expectUringError(() => row.call(ring), row.code, row.where);
        // A refused track turned its slot into a NOP without a CQE: drain it, nothing in flight.
        ring.submit();
        ring.completions();
        expect(ring.unknownCqes).toBe(0);
        expectRingHealthy(ring);
      } finally {
        ring.close();
      }
      expect(openFdCount()).toBeLessThanOrEqual(fds); // a leak adds fds; other files' async cleanup may close some meanwhile
    });
  }

  test("a full op table is EBUSY and the refused slot never runs", () => {
    const ring = Ring.create({ entries: 8, maxInflight: 2 });
    const [rd, wr] = openPipe();
    try {
      let done = 0;
      for (let i = 0; i < 2; i++) {
        const s = ring.getSqe();
        prepNop(ring.sq, s);
        ring.track(s, () => done++, null);
      }
      // The third write would send 4 bytes into the pipe if its SQE still ran.
      const payload = new Uint8Array([1, 2, 3, 4]);
      const s = ring.getSqe();
      prepWrite(ring.sq, s, wr, addressOf(payload), payload.length, -1);
      expectUringError(() => ring.track(s, () => {}, null, payload), "EBUSY", "OpTable.add");
      ring.runUntil(() => done === 2, 5000);
      ring.submit();
      ring.completions();
      expect(ring.ops.inflight).toBe(0);
      expect(ring.unknownCqes).toBe(0);
      const got = new Uint8Array(8);
      expect(c.read(rd, got, 8)).toBe(-1); // EAGAIN: the pipe stayed empty
    } finally {
      c.close(rd);
      c.close(wr);
      ring.close();
    }
  });
});

// ---- values only the kernel can judge: a CQE with the errno, nothing left in flight ----

interface CqeRow {
  name: string;
  /** errno name expected in the CQE's res. */
  code: string;
  prep: (ring: Ring, slot: number, fds: { rd: number; wr: number; closed: number }, buf: Uint8Array) => void;
  sqeFlags?: number;
}

const cqeRows: CqeRow[] = [
  { name: "READ on fd -1", code: "EBADF", prep: (r, s, _f, b) => prepRead(r.sq, s, -1, addressOf(b), b.length, 0) },
  {
    name: "READ on a closed fd",
    code: "EBADF",
    prep: (r, s, f, b) => prepRead(r.sq, s, f.closed, addressOf(b), b.length, 0),
  },
  {
    name: "WRITE on the read end of a pipe",
    code: "EBADF",
    prep: (r, s, f, b) => prepWrite(r.sq, s, f.rd, addressOf(b), b.length, -1),
  },
  {
    name: "READ into address 0 (kernel EFAULT, never a crash)",
    code: "EFAULT",
    prep: (r, s, f) => {
      c.write(f.wr, new Uint8Array(1), 1);
      prepRead(r.sq, s, f.rd, 0, 16, -1);
    },
  },
  {
    name: "WRITE from address 8 (unmapped page)",
    code: "EFAULT",
    prep: (r, s, f) => prepWrite(r.sq, s, f.wr, 8, 16, -1),
  },
  { name: "unknown opcode 250", code: "EINVAL", prep: (r, s) => prepRw(r.sq, s, 250, -1, 0, 0, 0) },
  { name: "TIMEOUT with a timespec at address 0", code: "EFAULT", prep: (r, s) => prepTimeout(r.sq, s, 0, 0, 0) },
  {
    name: "TIMEOUT with unknown timeout flags",
    code: "EINVAL",
    prep: (r, s, _f, b) => prepTimeout(r.sq, s, addressOf(b), 0, 0x80000000),
  },
  {
    name: "ASYNC_CANCEL of a user_data that is not in flight",
    code: "ENOENT",
    prep: (r, s) => prepCancel64(r.sq, s, 123456, 0),
  },
  {
    name: "SEND_ZC on a pipe (not a socket)",
    code: "ENOTSOCK",
    prep: (r, s, f, b) => prepSendZc(r.sq, s, f.wr, addressOf(b), b.length, 0, 0),
  },
  {
    name: "SEND_ZC with unknown zero-copy flags",
    code: "EINVAL",
    prep: (r, s, f, b) => prepSendZc(r.sq, s, f.wr, addressOf(b), b.length, 0, 0x8000),
  },
  {
    name: "READ_FIXED without registered buffers",
    code: "EFAULT",
    prep: (r, s, f, b) => prepRw(r.sq, s, Q.IORING_OP_READ_FIXED, f.rd, addressOf(b), b.length, 0),
  },
  {
    name: "FIXED_FILE without a file table",
    code: "EBADF",
    sqeFlags: Q.IOSQE_FIXED_FILE,
    prep: (r, s, _f, b) => prepRead(r.sq, s, 0, addressOf(b), b.length, 0),
  },
];

describe("values the kernel refuses come back as a CQE with the errno, and nothing stays in flight", () => {
  for (const row of cqeRows) {
    test(`${row.name} → ${row.code}`, () => {
      const ring = Ring.create({ entries: 8 });
      const [rd, wr] = openPipe();
      const [closedRd, closedWr] = openPipe();
      c.close(closedRd);
      c.close(closedWr);
      const buf = new Uint8Array(64);
      try {
        let res: number | undefined;
        const s = ring.getSqe();
        row.prep(ring, s, { rd, wr, closed: closedRd }, buf);
        ring.track(
          s,
          (_d: null, r: number) => {
            // A SEND_ZC that got as far as the socket layer may post a notification too; the first
            // CQE carries the result.
            if (res === undefined) res = r;
          },
          null,
          buf,
          row.sqeFlags ?? 0,
        );
        ring.runUntil(() => ring.ops.inflight === 0, 5000);
        expect(res).toBeDefined();
        expect(res!).toBeLessThan(0);
        expect(errnoOf(res!)).toBe(row.code);
        expectRingHealthy(ring);
      } finally {
        c.close(rd);
        c.close(wr);
        ring.close();
      }
    });
  }
});

function errnoOf(res: number): string {
  return errnoName(-res);
}

// ---- registration ----

// Before 6.9 registerNapi refuses with EOPNOTSUPP naming 6.9 before it looks at its options.
const NAPI_BAD_INPUT = kernelAtLeast("6.9") ? "EINVAL" : "EOPNOTSUPP";

const registerRows: BadInputRow<Ring>[] = [
  {
    name: "registerBuffers: not an array",
    code: "EINVAL",
    where: "registerBuffers",
    call: (r) => registerBuffers(r, new Uint8Array(64) as never),
  },
  {
    name: "registerBuffers: empty list",
    code: "EINVAL",
    where: "registerBuffers",
    call: (r) => registerBuffers(r, []),
  },
  {
    name: "registerBuffers: a bare ArrayBuffer",
    code: "EINVAL",
    where: "registerBuffers",
    call: (r) => registerBuffers(r, [new ArrayBuffer(64) as never]),
  },
  {
    name: "registerBuffers: a detached buffer",
    code: "EINVAL",
    where: "registerBuffers",
    call: (r) => registerBuffers(r, [detached(4096)]),
  },
  {
    name: "registerBuffers: an empty view",
    code: "EINVAL",
    where: "registerBuffers",
    call: (r) => registerBuffers(r, [new Uint8Array(0)]),
  },
  {
    name: "registerBuffers: a number",
    code: "EINVAL",
    where: "registerBuffers",
    call: (r) => registerBuffers(r, [4096 as never]),
  },
  {
    name: "registerBuffers: null slot",
    code: "EINVAL",
    where: "registerBuffers",
    call: (r) => registerBuffers(r, [null as never]),
  },
  {
    name: "registerBuffers: 16385 buffers (huge)",
    code: "EINVAL",
    where: "registerBuffers",
    call: (r) => registerBuffers(r, new Array(16385).fill(new Uint8Array(1))),
  },
  {
    name: "registerBuffers twice",
    code: "EBUSY",
    where: "registerBuffers",
    call: (r) => {
      registerBuffers(r, [new Uint8Array(64)]);
      registerBuffers(r, [new Uint8Array(64)]);
    },
  },
  {
    name: "registerBuffersSparse: 0",
    code: "EINVAL",
    where: "registerBuffersSparse",
    call: (r) => registerBuffersSparse(r, 0),
  },
  {
    name: "registerBuffersSparse: -1",
    code: "EINVAL",
    where: "registerBuffersSparse",
    call: (r) => registerBuffersSparse(r, -1),
  },
  {
    name: "registerBuffersSparse: 2^31",
    code: "EINVAL",
    where: "registerBuffersSparse",
    call: (r) => registerBuffersSparse(r, 2 ** 31),
  },
  {
    name: "updateBuffers without a table",
    code: "EINVAL",
    where: "updateBuffers",
    call: (r) => updateBuffers(r, 0, [new Uint8Array(64)]),
  },
  {
    name: "updateBuffers: offset past the table",
    code: "EINVAL",
    where: "updateBuffers",
    call: (r) => {
      registerBuffersSparse(r, 2);
      updateBuffers(r, 2, [new Uint8Array(64)]);
    },
  },
  {
    name: "updateBuffers: negative offset",
    code: "EINVAL",
    where: "updateBuffers",
    call: (r) => {
      registerBuffersSparse(r, 2);
      updateBuffers(r, -1, [new Uint8Array(64)]);
    },
  },
  {
    name: "updateBuffers: detached view",
    code: "EINVAL",
    where: "updateBuffers",
    call: (r) => {
      registerBuffersSparse(r, 2);
      updateBuffers(r, 0, [detached()]);
    },
  },
  {
    name: "BufferTable.address of an empty slot",
    code: "EINVAL",
    where: "BufferTable.address",
    call: (r) => registerBuffersSparse(r, 2).address(0),
  },
  {
    name: "BufferTable.view(-1)",
    code: "EINVAL",
    where: "BufferTable.view",
    call: (r) => registerBuffersSparse(r, 2).view(-1),
  },
  { name: "unregisterBuffers with none registered (kernel)", code: "ENXIO", call: (r) => unregisterBuffers(r) },
  { name: "registerFiles: fd -2", code: "EINVAL", where: "registerFiles", call: (r) => registerFiles(r, [-2]) },
  { name: "registerFiles: fd 1.5", code: "EINVAL", where: "registerFiles", call: (r) => registerFiles(r, [1.5]) },
  { name: "registerFiles: a closed fd (kernel)", code: "EBADF", call: (r) => registerFiles(r, [99999]) },
  { name: "registerFiles: empty list", code: "EINVAL", where: "registerFiles", call: (r) => registerFiles(r, []) },
  {
    name: "registerFilesSparse: 0",
    code: "EINVAL",
    where: "registerFilesSparse",
    call: (r) => registerFilesSparse(r, 0),
  },
  { name: "updateFiles without a table", code: "EINVAL", where: "updateFiles", call: (r) => updateFiles(r, 0, [0]) },
  {
    name: "updateFiles: past the table",
    code: "EINVAL",
    where: "updateFiles",
    call: (r) => {
      registerFilesSparse(r, 2);
      updateFiles(r, 1, [0, 1]);
    },
  },
  { name: "unregisterFiles with none registered (kernel)", code: "ENXIO", call: (r) => unregisterFiles(r) },
  {
    name: "ProvidedBufferRing: options null",
    code: "EINVAL",
    where: "ProvidedBufferRing.create",
    call: (r) => ProvidedBufferRing.create(r, null as never),
  },
  {
    name: "ProvidedBufferRing: entries 3 (not a power of two)",
    code: "EINVAL",
    where: "ProvidedBufferRing.create",
    call: (r) => ProvidedBufferRing.create(r, { bgid: 1, entries: 3, bufferSize: 64 }),
  },
  {
    name: "ProvidedBufferRing: entries 65536 (huge)",
    code: "EINVAL",
    where: "ProvidedBufferRing.create",
    call: (r) => ProvidedBufferRing.create(r, { bgid: 1, entries: 65536, bufferSize: 64 }),
  },
  {
    name: "ProvidedBufferRing: bgid -1",
    code: "EINVAL",
    where: "ProvidedBufferRing.create",
    call: (r) => ProvidedBufferRing.create(r, { bgid: -1, entries: 4, bufferSize: 64 }),
  },
  {
    name: "ProvidedBufferRing: bgid 65536",
    code: "EINVAL",
    where: "ProvidedBufferRing.create",
    call: (r) => ProvidedBufferRing.create(r, { bgid: 65536, entries: 4, bufferSize: 64 }),
  },
  {
    name: "ProvidedBufferRing: bufferSize 0",
    code: "EINVAL",
    where: "ProvidedBufferRing.create",
    call: (r) => ProvidedBufferRing.create(r, { bgid: 1, entries: 4, bufferSize: 0 }),
  },
  {
    name: "ProvidedBufferRing: same bgid twice",
    code: "EBUSY",
    where: "ProvidedBufferRing.create",
    call: (r) => {
      ProvidedBufferRing.create(r, { bgid: 1, entries: 4, bufferSize: 64 });
      ProvidedBufferRing.create(r, { bgid: 1, entries: 4, bufferSize: 64 });
    },
  },
  {
    name: "ProvidedBufferRing.add: bid out of range",
    code: "EINVAL",
    where: "ProvidedBufferRing.add",
    call: (r) => ProvidedBufferRing.create(r, { bgid: 2, entries: 4, bufferSize: 64 }).add(4),
  },
  {
    name: "ProvidedBufferRing.view: len past the buffer",
    code: "EINVAL",
    where: "ProvidedBufferRing.view",
    call: (r) => ProvidedBufferRing.create(r, { bgid: 3, entries: 4, bufferSize: 64 }).view(0, 65),
  },
  {
    name: "ProvidedBufferRing.view: negative offset",
    code: "EINVAL",
    where: "ProvidedBufferRing.view",
    call: (r) => ProvidedBufferRing.create(r, { bgid: 3, entries: 4, bufferSize: 64 }).view(0, 4, -1),
  },
  {
    name: "ProvidedBufferRing.view: len past the buffer from an offset",
    code: "EINVAL",
    where: "ProvidedBufferRing.view",
    call: (r) => ProvidedBufferRing.create(r, { bgid: 3, entries: 4, bufferSize: 64 }).view(0, 60, 8),
  },
  { name: "registerEventfd: fd -1", code: "EINVAL", where: "registerEventfd", call: (r) => registerEventfd(r, -1) },
  {
    name: "registerEventfd: not an eventfd (kernel)",
    code: "EINVAL",
    call: (r) => {
      const [a, b] = openPipe();
      try {
        registerEventfd(r, a);
      } finally {
        c.close(a);
        c.close(b);
      }
    },
  },
  { name: "unregisterEventfd with none registered (kernel)", code: "ENXIO", call: (r) => unregisterEventfd(r) },
  {
    name: "registerNapi: options null",
    code: NAPI_BAD_INPUT,
    where: "registerNapi",
    call: (r) => registerNapi(r, null as never),
  },
  {
    name: "registerNapi: busyPollUs -1",
    code: NAPI_BAD_INPUT,
    where: "registerNapi",
    call: (r) => registerNapi(r, { busyPollUs: -1 }),
  },
  {
    name: "registerNapi: unknown tracking",
    code: NAPI_BAD_INPUT,
    where: "registerNapi",
    call: (r) => registerNapi(r, { busyPollUs: 1, tracking: "x" as never }),
  },
];

describe("registration refuses bad input and leaves nothing registered", () => {
  for (const row of registerRows) {
    test(`${row.name} → ${row.code}`, () => {
      const fds = openFdCount();
      const ring = Ring.create({ entries: 8 });
      try {
        expectUringError(() => row.call(ring), row.code, row.where);
        expectRingHealthy(ring);
      } finally {
        ring.close();
      }
      expect(openFdCount()).toBeLessThanOrEqual(fds); // a leak adds fds; other files' async cleanup may close some meanwhile
    });
  }

  test("a refused registration leaves no buffer table behind", () => {
    const ring = Ring.create({ entries: 8 });
    try {
      expectUringError(() => registerBuffers(ring, [new Uint8Array(64), detached()]), "EINVAL", "registerBuffers");
      expect(registeredBuffers(ring)).toBeNull();
      // And a good registration still works afterwards, then unregisters.
      const t = registerBuffers(ring, [new Uint8Array(4096)]);
      expect(t.isRegistered).toBe(true);
      unregisterBuffers(ring);
      expect(t.isRegistered).toBe(false);
      expect(registeredBuffers(ring)).toBeNull();
    } finally {
      ring.close();
    }
  });
});

describe("error hints name the usual cause on that path", () => {
  test("a SEND_ZC EFAULT names an unmapped buffer first, not only fixed buffers", () => {
    const e = new UringError("IORING_OP_SEND_ZC", 14);
    expect(e.hint).toContain("the buffer is not mapped memory");
    expect(e.hint).toContain("fixed-buffer send");
  });

  test("a wrong-typed argument is named by its type, not printed as if it were the value", () => {
    const ring = Ring.create({ entries: 4 });
    try {
      const e = expectUringError(
        () => prepRead(ring.sq, ring.getSqe(), "3" as never, 0, 0, 0),
        "EINVAL",
        "IORING_OP_READ",
      );
      expect(e.message).toContain("fd must be an integer -1..2147483647");
      expect(e.message).toContain('got "3" (a string)');
    } finally {
      ring.close();
    }
  });
});
