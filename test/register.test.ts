// Tier 2: registration on this kernel — fixed buffers (plain, sparse, updated) used by
// READ_FIXED / WRITE_FIXED, fixed files, a provided-buffer ring feeding a multishot RECV over
// loopback TCP, an eventfd, NAPI settings, and the RLIMIT_MEMLOCK error in a child process.
import { describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { addressOf, c, errno } from "../ffi/index.ts";
import { Ring } from "../src/ring/ring.ts";
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
  unregisterNapi,
} from "../src/ring/register.ts";
import { prepNop, prepRead, prepReadFixed, prepWriteFixed, prepRecvMultishot } from "../src/ops/prep.ts";
import { IOSQE_FIXED_FILE, IORING_CQE_F_MORE, IORING_CQE_F_BUFFER, IORING_CQE_BUFFER_SHIFT } from "../src/abi/sqe.ts";
import { EFD_CLOEXEC, EFD_NONBLOCK, SHUT_WR } from "../src/abi/net.ts";
import { EAGAIN, EBADF, EFAULT, ENOBUFS } from "../src/abi/errno.ts";
import { UringError } from "../src/error.ts";
import { testIf, needKernel } from "./helpers.ts";
import { tcpPair, closePair, sendAll, type TcpPair } from "./fixtures/loopback.ts";

/** One operation's result, filled by its handler. */
interface Result {
  res: number;
  flags: number;
  done: boolean;
}
const record = (r: Result, res: number, flags: number) => {
  r.res = res;
  r.flags = flags;
  r.done = true;
};

/** Submit one prepped SQE and wait for its CQE. */
function runOne(ring: Ring, prep: (slot: number) => void, sqeFlags = 0): Result {
  const r: Result = { res: 0, flags: 0, done: false };
  const slot = ring.getSqe();
  prep(slot);
  ring.track(slot, record, r, undefined, sqeFlags);
  ring.runUntil(() => r.done, 5000);
  return r;
}

function expectUringError(fn: () => unknown, code: string): UringError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UringError);
    expect((e as UringError).code).toBe(code);
    return e as UringError;
  }
  throw new Error(`expected a UringError ${code}`);
}

function withTempFile<T>(fn: (fd: number) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "bun-uring-reg-"));
  const fd = openSync(join(dir, "data"), "w+");
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

function pattern(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe("registered buffers", () => {
  test("WRITE_FIXED then READ_FIXED through registered buffers round-trips the bytes", () => {
    const ring = Ring.create({ entries: 8 });
    try {
      withTempFile((fd) => {
        const src = pattern(4096, 7);
        const dst = new Uint8Array(4096);
        const table = registerBuffers(ring, [src, dst]);
        expect(table.nr).toBe(2);
        expect(table.view(0)).toBe(src);
        expect(table.view(1)).toBe(dst);
        expect(table.address(1)).toBe(addressOf(dst));
        expect(registeredBuffers(ring)).toBe(table);
        const w = runOne(ring, (s) => prepWriteFixed(ring.sq, s, fd, table.address(0), 4096, 0, 0));
        expect(w.res).toBe(4096);
        // A range inside the buffer is fine: read the second half into the start of buffer 1.
        const r = runOne(ring, (s) => prepReadFixed(ring.sq, s, fd, table.address(1), 2048, 2048, 1));
        expect(r.res).toBe(2048);
        expect(dst.subarray(0, 2048)).toEqual(src.subarray(2048));
        unregisterBuffers(ring);
        expect(table.isRegistered).toBe(false);
        expect(registeredBuffers(ring)).toBeNull();
        // With the table gone the kernel refuses the index.
        const gone = runOne(ring, (s) => prepReadFixed(ring.sq, s, fd, addressOf(dst), 16, 0, 0));
        expect(gone.res).toBe(-EFAULT);
      });
    } finally {
      ring.close();
    }
  });

  test("a sparse table is empty until updateBuffers fills a slot; null empties it again", () => {
    const ring = Ring.create({ entries: 8 });
    try {
      withTempFile((fd) => {
        writeSync(fd, pattern(512, 3), 0, 512, 0);
        const table = registerBuffersSparse(ring, 4);
        expect(table.nr).toBe(4);
        expect(table.view(2)).toBeNull();
        const buf = new Uint8Array(512);
        const empty = runOne(ring, (s) => prepReadFixed(ring.sq, s, fd, addressOf(buf), 512, 0, 2));
        expect(empty.res).toBe(-EFAULT);
        expect(updateBuffers(ring, 2, [buf])).toBe(1);
        expect(table.view(2)).toBe(buf);
        const r = runOne(ring, (s) => prepReadFixed(ring.sq, s, fd, table.address(2), 512, 0, 2));
        expect(r.res).toBe(512);
        expect(buf).toEqual(pattern(512, 3));
        expect(updateBuffers(ring, 2, [null])).toBe(1);
        expect(table.view(2)).toBeNull();
        expect(table.byteLength(2)).toBe(0);
        const again = runOne(ring, (s) => prepReadFixed(ring.sq, s, fd, addressOf(buf), 512, 0, 2));
        expect(again.res).toBe(-EFAULT);
      });
    } finally {
      ring.close();
    }
  });

  test("bad buffer lists are refused before the kernel sees them", () => {
    const ring = Ring.create({ entries: 4 });
    try {
      expectUringError(() => registerBuffers(ring, []), "EINVAL");
      expectUringError(() => registerBuffers(ring, [new Uint8Array(0)]), "EINVAL");
      expectUringError(() => registerBuffers(ring, [new ArrayBuffer(16) as never]), "EINVAL");
      expectUringError(() => registerBuffersSparse(ring, 0), "EINVAL");
      expectUringError(() => registerBuffersSparse(ring, 1 << 20), "EINVAL");
      expectUringError(() => updateBuffers(ring, 0, [new Uint8Array(8)]), "EINVAL");
      registerBuffersSparse(ring, 2);
      expectUringError(() => registerBuffers(ring, [new Uint8Array(8)]), "EBUSY");
      expectUringError(() => updateBuffers(ring, 1, [new Uint8Array(8), new Uint8Array(8)]), "EINVAL");
      expectUringError(() => updateBuffers(ring, -1, [new Uint8Array(8)]), "EINVAL");
      expectUringError(() => registeredBuffers(ring)!.view(2), "EINVAL");
      expectUringError(() => registeredBuffers(ring)!.address(0), "EINVAL");
      unregisterBuffers(ring);
      // Unregistering twice: the kernel says there is no table (ENXIO), named after the opcode.
      const e = expectUringError(() => unregisterBuffers(ring), "ENXIO");
      expect(e.syscall).toBe("IORING_UNREGISTER_BUFFERS");
    } finally {
      ring.close();
    }
  });
});

describe("registered files", () => {
  test("READ with IOSQE_FIXED_FILE reads through the registered slot", () => {
    const ring = Ring.create({ entries: 8 });
    try {
      withTempFile((fd) => {
        writeSync(fd, pattern(300, 9), 0, 300, 0);
        expect(registerFiles(ring, [-1, fd])).toBe(2);
        const buf = new Uint8Array(300);
        const r = runOne(ring, (s) => prepRead(ring.sq, s, 1, addressOf(buf), 300, 0), IOSQE_FIXED_FILE);
        expect(r.res).toBe(300);
        expect(buf).toEqual(pattern(300, 9));
        // Slot 0 is empty.
        const empty = runOne(ring, (s) => prepRead(ring.sq, s, 0, addressOf(buf), 300, 0), IOSQE_FIXED_FILE);
        expect(empty.res).toBe(-EBADF);
        // A NOP carries the fixed-file flag without touching the table.
        expect(runOne(ring, (s) => prepNop(ring.sq, s), IOSQE_FIXED_FILE).res).toBe(0);
        expectUringError(() => registerFiles(ring, [fd]), "EBUSY");
        unregisterFiles(ring);
        const gone = runOne(ring, (s) => prepRead(ring.sq, s, 1, addressOf(buf), 300, 0), IOSQE_FIXED_FILE);
        expect(gone.res).toBe(-EBADF);
      });
    } finally {
      ring.close();
    }
  });

  test("a sparse file table filled with updateFiles", () => {
    const ring = Ring.create({ entries: 8 });
    try {
      withTempFile((fd) => {
        writeSync(fd, pattern(64, 1), 0, 64, 0);
        expect(registerFilesSparse(ring, 8)).toBe(8);
        const buf = new Uint8Array(64);
        expect(runOne(ring, (s) => prepRead(ring.sq, s, 5, addressOf(buf), 64, 0), IOSQE_FIXED_FILE).res).toBe(-EBADF);
        expect(updateFiles(ring, 5, [fd])).toBe(1);
        expect(runOne(ring, (s) => prepRead(ring.sq, s, 5, addressOf(buf), 64, 0), IOSQE_FIXED_FILE).res).toBe(64);
        expect(buf).toEqual(pattern(64, 1));
        expect(updateFiles(ring, 5, [-1])).toBe(1);
        expect(runOne(ring, (s) => prepRead(ring.sq, s, 5, addressOf(buf), 64, 0), IOSQE_FIXED_FILE).res).toBe(-EBADF);
        expectUringError(() => updateFiles(ring, 7, [fd, fd]), "EINVAL");
        expectUringError(() => updateFiles(ring, 0, [-3]), "EINVAL");
        expectUringError(() => updateFiles(ring, 0, [1.5]), "EINVAL");
        // A closed descriptor is the kernel's call: EBADF, named after the opcode.
        const e = expectUringError(() => updateFiles(ring, 0, [1_000_000]), "EBADF");
        expect(e.syscall).toBe("IORING_REGISTER_FILES_UPDATE2");
      });
    } finally {
      ring.close();
    }
  });
});

describe("provided-buffer ring", () => {
  test("multishot RECV over loopback TCP fills and recycles ring buffers; bytes arrive in order", () => {
    const ring = Ring.create({ entries: 16 });
    let pair: TcpPair | undefined;
    let pbr: ProvidedBufferRing | undefined;
    try {
      pair = tcpPair();
      const entries = 4,
        bufferSize = 64,
        bgid = 7;
      pbr = ProvidedBufferRing.create(ring, { bgid, entries, bufferSize });
      expect(pbr.ringMemory.address % 4096).toBe(0);
      const total = 4000;
      const sent = pattern(total, 42);
      const got = new Uint8Array(total);
      const st = { received: 0, cqes: 0, rearms: 0, eof: false, error: 0, recycled: 0, bids: new Set<number>() };
      const server = pair.server;
      const p = pbr;
      const onRecv = (s: typeof st, res: number, flags: number) => {
        s.cqes++;
        if (res > 0) {
          expect(flags & IORING_CQE_F_BUFFER).toBeTruthy();
          const bid = flags >>> IORING_CQE_BUFFER_SHIFT;
          s.bids.add(bid);
          got.set(p.view(bid, res), s.received);
          s.received += res;
          p.recycle(bid);
          s.recycled++;
          p.publish();
        } else if (res === 0) {
          s.eof = true;
        } else if (res !== -ENOBUFS) {
          s.error = res;
        }
        // A multishot receive that ends without EOF (ENOBUFS while every buffer was out) is armed again.
        if (!(flags & IORING_CQE_F_MORE) && res !== 0 && s.error === 0) arm();
      };
      const arm = () => {
        st.rearms++;
        const slot = ring.getSqe();
        prepRecvMultishot(ring.sq, slot, server, bgid, 0);
        ring.track(slot, onRecv, st);
      };
      arm();
      ring.submit();
      sendAll(pair.client, sent);
      c.shutdown(pair.client, SHUT_WR);
      ring.runUntil(() => st.eof || st.error !== 0, 10_000);
      expect(st.error).toBe(0);
      expect(st.received).toBe(total);
      expect(got).toEqual(sent);
      // 4000 bytes through 4 buffers of 64: each buffer went round many times.
      expect(st.recycled).toBeGreaterThan(entries);
      expect(st.bids.size).toBe(entries);
      expect(pbr.pending).toBe(0);
      expect(ring.ops.inflight).toBe(0);
    } finally {
      pbr?.close();
      closePair(pair);
      ring.close();
    }
  });

  test("entries, bgid and buffer ids are validated; close unregisters the group", () => {
    const ring = Ring.create({ entries: 4 });
    try {
      expectUringError(() => ProvidedBufferRing.create(ring, { bgid: 1, entries: 6, bufferSize: 64 }), "EINVAL");
      expectUringError(() => ProvidedBufferRing.create(ring, { bgid: 1, entries: 65536, bufferSize: 64 }), "EINVAL");
      expectUringError(() => ProvidedBufferRing.create(ring, { bgid: 1, entries: 0, bufferSize: 64 }), "EINVAL");
      expectUringError(() => ProvidedBufferRing.create(ring, { bgid: 70000, entries: 8, bufferSize: 64 }), "EINVAL");
      expectUringError(() => ProvidedBufferRing.create(ring, { bgid: 1, entries: 8, bufferSize: 0 }), "EINVAL");
      const pbr = ProvidedBufferRing.create(ring, { bgid: 1, entries: 8, bufferSize: 64 });
      expectUringError(() => ProvidedBufferRing.create(ring, { bgid: 1, entries: 8, bufferSize: 64 }), "EBUSY");
      expectUringError(() => pbr.add(8), "EINVAL");
      expectUringError(() => pbr.add(3), "EINVAL"); // already in the ring
      expectUringError(() => pbr.view(0, 65), "EINVAL");
      expect(pbr.view(3, 10).byteLength).toBe(10);
      pbr.recycle(3);
      expect(pbr.pending).toBe(1);
      expect(pbr.publish()).toBe(1);
      pbr.close();
      pbr.close();
      expectUringError(() => pbr.add(0), "EBADF");
      // The group id is free again.
      ProvidedBufferRing.create(ring, { bgid: 1, entries: 8, bufferSize: 64 }).close();
    } finally {
      ring.close();
    }
  });
});

describe("eventfd", () => {
  test("a NOP completion makes the registered eventfd readable", () => {
    const ring = Ring.create({ entries: 4 });
    const efd = c.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    expect(efd).toBeGreaterThanOrEqual(0);
    try {
      const counter = new BigUint64Array(1);
      registerEventfd(ring, efd);
      expect(c.read(efd, counter, 8)).toBe(-1);
      expect(errno()).toBe(EAGAIN);
      expect(runOne(ring, (s) => prepNop(ring.sq, s)).res).toBe(0);
      expect(c.read(efd, counter, 8)).toBe(8);
      expect(counter[0]).toBeGreaterThanOrEqual(1n);
      expectUringError(() => registerEventfd(ring, efd), "EBUSY");
      unregisterEventfd(ring);
      runOne(ring, (s) => prepNop(ring.sq, s));
      expect(c.read(efd, counter, 8)).toBe(-1);
      expectUringError(() => registerEventfd(ring, -1), "EINVAL");
    } finally {
      ring.close();
      c.close(efd);
    }
  });
});

describe("eventfd toggle", () => {
  for (const deferTaskrun of [false, true]) {
    test(`IORING_CQ_EVENTFD_DISABLED stops the signal and clearing it restores it${deferTaskrun ? " (DEFER_TASKRUN)" : ""}`, () => {
      const ring = Ring.create({ entries: 4, deferTaskrun });
      const efd = c.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      expect(efd).toBeGreaterThanOrEqual(0);
      try {
        const counter = new BigUint64Array(1);
        registerEventfd(ring, efd);
        expect(ring.canToggleEventfd).toBe(true);
        expect(ring.eventfdEnabled).toBe(true);
        ring.setEventfdEnabled(false);
        expect(ring.eventfdEnabled).toBe(false);
        expect(runOne(ring, (s) => prepNop(ring.sq, s)).res).toBe(0);
        expect(c.read(efd, counter, 8)).toBe(-1);
        expect(errno()).toBe(EAGAIN);
        ring.setEventfdEnabled(true);
        expect(ring.eventfdEnabled).toBe(true);
        expect(runOne(ring, (s) => prepNop(ring.sq, s)).res).toBe(0);
        expect(c.read(efd, counter, 8)).toBe(8);
        expect(counter[0]).toBeGreaterThanOrEqual(1n);
      } finally {
        ring.close();
        c.close(efd);
      }
      expectUringError(() => ring.setEventfdEnabled(true), "EBADF");
    });
  }
});

/** Why NAPI tests cannot run here, or null: probed once on a throwaway ring. */
function napiSkipReason(): string | null {
  const k = needKernel("6.13", "NAPI registration with tracking modes");
  if (k) return k;
  const ring = Ring.create({ entries: 2 });
  try {
    registerNapi(ring, { busyPollUs: 1 });
    unregisterNapi(ring);
    return null;
  } catch (e) {
    // Only a kernel built without busy polling (CONFIG_NET_RX_BUSY_POLL) is a reason to skip; any
    // other refusal (EINVAL from a wrong struct, say) is a failure of the library under test.
    if (e instanceof UringError && e.code === "EOPNOTSUPP")
      return `the kernel refused IORING_REGISTER_NAPI: ${e.message}`;
    throw e;
  } finally {
    ring.close();
  }
}

describe("NAPI", () => {
  testIf(napiSkipReason(), "register returns the previous settings; unregister returns the current ones", () => {
    const ring = Ring.create({ entries: 4 });
    try {
      const before = registerNapi(ring, { busyPollUs: 50, preferBusyPoll: true });
      // A fresh ring tracks nothing (IO_URING_NAPI_TRACKING_INACTIVE).
      expect(before).toEqual({ busyPollUs: 0, preferBusyPoll: false, tracking: "inactive" });
      const first = registerNapi(ring, { busyPollUs: 20, tracking: "static" });
      expect(first).toEqual({ busyPollUs: 50, preferBusyPoll: true, tracking: "dynamic" });
      const last = unregisterNapi(ring);
      expect(last).toEqual({ busyPollUs: 20, preferBusyPoll: false });
      // After unregistering, the next registration sees busy polling off.
      expect(registerNapi(ring, { busyPollUs: 5 }).busyPollUs).toBe(0);
      expectUringError(() => registerNapi(ring, { busyPollUs: -1 }), "EINVAL");
      expectUringError(() => registerNapi(ring, { busyPollUs: 1, tracking: "sometimes" as never }), "EINVAL");
    } finally {
      ring.close();
    }
  });
});

test("every registration call on a closed ring is EBADF", () => {
  const ring = Ring.create({ entries: 2 });
  ring.close();
  expectUringError(() => registerBuffers(ring, [new Uint8Array(8)]), "EBADF");
  expectUringError(() => registerBuffersSparse(ring, 1), "EBADF");
  expectUringError(() => unregisterBuffers(ring), "EBADF");
  expectUringError(() => registerFiles(ring, [0]), "EBADF");
  expectUringError(() => registerFilesSparse(ring, 1), "EBADF");
  expectUringError(() => unregisterFiles(ring), "EBADF");
  expectUringError(() => ProvidedBufferRing.create(ring, { bgid: 0, entries: 2, bufferSize: 8 }), "EBADF");
  expectUringError(() => registerEventfd(ring, 0), "EBADF");
  expectUringError(() => unregisterEventfd(ring), "EBADF");
  expectUringError(() => registerNapi(ring, { busyPollUs: 1 }), "EBADF");
  expectUringError(() => unregisterNapi(ring), "EBADF");
});

// RLIMIT_MEMLOCK: registered buffers are charged to it unless the process has CAP_IPC_LOCK, which
// root has. The child drops CAP_IPC_LOCK from its bounding and inheritable sets through setpriv
// (util-linux) before exec, so even as root the limit applies to it.
const SETPRIV = "/usr/bin/setpriv";
const isRoot = process.getuid?.() === 0;
const memlockSkip =
  isRoot && !existsSync(SETPRIV)
    ? "running as root (CAP_IPC_LOCK bypasses RLIMIT_MEMLOCK) and util-linux setpriv, needed to drop the capability, is missing"
    : null;

testIf(
  memlockSkip,
  "registering more than RLIMIT_MEMLOCK gives ENOMEM with the `ulimit -l` hint",
  async () => {
    const child = join(import.meta.dir, "fixtures", "memlock-child.ts");
    const argv = isRoot
      ? [SETPRIV, "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock", "--", process.execPath, child]
      : [process.execPath, child];
    const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    expect(err).toBe("");
    expect(code).toBe(0);
    const report = JSON.parse(out.trim().split("\n").pop()!);
    expect(report.code).toBe("ENOMEM");
    expect(report.syscall).toBe("IORING_REGISTER_BUFFERS2");
    expect(report.message).toContain("RLIMIT_MEMLOCK");
    expect(report.message).toContain("ulimit -l");
  },
  30_000,
);
