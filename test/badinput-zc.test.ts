// Bad input against zero-copy send (src/zc): ZcSender and FixedBufferPool refuse hostile
// arguments with the library's UringError, and a refusal leaves no record in flight, no buffer
// held, no op-table entry and no fd behind.
import { describe, expect, test } from "bun:test";
import { Ring } from "../src/ring/ring.ts";
import { ZcSender, FixedBufferPool } from "../src/zc/index.ts";
import { registeredBuffers } from "../src/ring/register.ts";
import { tcpListen, tcpConnect, tcpAccept, closeQuietly } from "../src/sync.ts";
import { c } from "../ffi/index.ts";
import { kernelAtLeast } from "../src/ring/kernel.ts";

/** REPORT_USAGE only where the sender accepts it (6.2+): these rows are about other options. */
const reportUsage = kernelAtLeast("6.2");
import {
  type BadInputRow,
  expectRingHealthy,
  expectUringError,
  openFdCount,
  openPipe,
  detached,
} from "./fixtures/reliability-checks.ts";

interface Ctx {
  ring: Ring;
  a: number;
  b: number;
  pipeWr: number;
}

const senderRows: BadInputRow<Ctx>[] = [
  { name: "fd -1", code: "EINVAL", where: "ZcSender", call: (x) => new ZcSender(x.ring, -1) },
  { name: "fd 1.5", code: "EINVAL", where: "ZcSender", call: (x) => new ZcSender(x.ring, 1.5) },
  { name: "fd a string", code: "EINVAL", where: "ZcSender", call: (x) => new ZcSender(x.ring, "3" as never) },
  { name: "a closed fd", code: "EBADF", call: (x) => new ZcSender(x.ring, 99999) },
  {
    name: "unknown mode",
    code: "EINVAL",
    where: "ZcSender",
    call: (x) => new ZcSender(x.ring, x.a, { mode: "fast" as never }),
  },
  {
    name: "capacity 0",
    code: "EINVAL",
    where: "ZcSender",
    call: (x) => new ZcSender(x.ring, x.a, { reportUsage, capacity: 0 }),
  },
  {
    name: "capacity 2^21 (huge)",
    code: "EINVAL",
    where: "ZcSender",
    call: (x) => new ZcSender(x.ring, x.a, { reportUsage, capacity: 2 ** 21 }),
  },
  {
    name: "threshold -1",
    code: "EINVAL",
    where: "ZcSender",
    call: (x) => new ZcSender(x.ring, x.a, { reportUsage, threshold: -1 }),
  },
  {
    name: "maxChain 0",
    code: "EINVAL",
    where: "ZcSender",
    call: (x) => new ZcSender(x.ring, x.a, { reportUsage, maxChain: 0 }),
  },
  {
    name: "sqeFlags CQE_SKIP_SUCCESS",
    code: "EINVAL",
    where: "ZcSender",
    call: (x) => new ZcSender(x.ring, x.a, { reportUsage, sqeFlags: 1 << 6 }),
  },
  {
    name: "sqeFlags IO_LINK",
    code: "EINVAL",
    where: "ZcSender",
    call: (x) => new ZcSender(x.ring, x.a, { reportUsage, sqeFlags: 1 << 2 }),
  },
  {
    name: "sqeFlags BUFFER_SELECT",
    code: "EINVAL",
    where: "ZcSender",
    call: (x) => new ZcSender(x.ring, x.a, { reportUsage, sqeFlags: 1 << 5 }),
  },
  {
    name: "sqeFlags -1",
    code: "EINVAL",
    where: "ZcSender",
    call: (x) => new ZcSender(x.ring, x.a, { reportUsage, sqeFlags: -1 }),
  },
  {
    name: "zc-fixed without a pool",
    code: "EINVAL",
    where: "ZcSender",
    call: (x) => new ZcSender(x.ring, x.a, { mode: "zc-fixed" }),
  },
  {
    name: "a destination on a stream socket",
    code: "EINVAL",
    where: "ZcSender",
    call: (x) => new ZcSender(x.ring, x.a, { reportUsage, destination: { host: "127.0.0.1", port: 9 } }),
  },
  { name: "a pipe (not a socket)", code: "ENOTSOCK", call: (x) => new ZcSender(x.ring, x.pipeWr) },
  {
    name: 'notifUserData "yes"',
    code: "EINVAL",
    where: "ZcSender",
    call: (x) => new ZcSender(x.ring, x.a, { reportUsage, notifUserData: "yes" as never }),
  },
  {
    name: "notifUserData 1",
    code: "EINVAL",
    where: "ZcSender",
    call: (x) => new ZcSender(x.ring, x.a, { reportUsage, notifUserData: 1 as never }),
  },
  {
    name: "send: empty buffer",
    code: "EINVAL",
    where: "ZcSender.send",
    call: (x) => new ZcSender(x.ring, x.a, { mode: "zc", reportUsage }).send(new Uint8Array(0)),
  },
  {
    name: "send: detached buffer",
    code: "EINVAL",
    where: "ZcSender.send",
    call: (x) => new ZcSender(x.ring, x.a, { mode: "zc", reportUsage }).send(detached()),
  },
  {
    name: "send: a bare ArrayBuffer",
    code: "EINVAL",
    where: "ZcSender.send",
    call: (x) => new ZcSender(x.ring, x.a, { mode: "zc", reportUsage }).send(new ArrayBuffer(64) as never),
  },
  {
    name: "send: a string",
    code: "EINVAL",
    where: "ZcSender.send",
    call: (x) => new ZcSender(x.ring, x.a, { mode: "zc", reportUsage }).send("abc" as never),
  },
  {
    name: "send: null",
    code: "EINVAL",
    where: "ZcSender.send",
    call: (x) => new ZcSender(x.ring, x.a, { mode: "zc", reportUsage }).send(null as never),
  },
  {
    name: "sendFixed without a pool",
    code: "EINVAL",
    where: "ZcSender.sendFixed",
    call: (x) => new ZcSender(x.ring, x.a, { mode: "zc", reportUsage }).sendFixed(0, 10),
  },
];

describe("ZcSender refuses bad input and leaves nothing in flight", () => {
  for (const row of senderRows) {
    test(`${row.name} → ${row.code}`, () => {
      const fds = openFdCount();
      const ring = Ring.create({ entries: 16 });
      const l = tcpListen(ring, { host: "127.0.0.1", port: 0 });
      const a = tcpConnect(ring, { host: "127.0.0.1", port: l.address.port });
      const b = tcpAccept(ring, l.fd);
      const [pipeRd, pipeWr] = openPipe();
      try {
        expectUringError(() => row.call({ ring, a, b, pipeWr }), row.code, row.where);
        ring.submit();
        ring.completions();
        expectRingHealthy(ring);
      } finally {
        for (const fd of [a, b, l.fd, pipeRd, pipeWr]) closeQuietly(fd);
        ring.close();
      }
      expect(openFdCount()).toBeLessThanOrEqual(fds); // a leak adds fds; other files' async cleanup may close some meanwhile
    });
  }

  test("sqeFlags with an unknown bit (0x80): refused at construction or by the kernel at the first send, never stuck", () => {
    const ring = Ring.create({ entries: 16 });
    const l = tcpListen(ring, { host: "127.0.0.1", port: 0 });
    const a = tcpConnect(ring, { host: "127.0.0.1", port: l.address.port });
    const b = tcpAccept(ring, l.fd);
    try {
      let sender: ZcSender | undefined;
      let released = 0;
      try {
        sender = new ZcSender(ring, a, { mode: "zc", reportUsage, sqeFlags: 0x80, onReleased: () => released++ });
      } catch (e) {
        expectUringError(
          () => {
            throw e;
          },
          "EINVAL",
          "ZcSender",
        );
      }
      if (sender) {
        sender.send(new Uint8Array(100));
        ring.runUntil(() => released === 1, 5000);
        expect(sender.stats.lastError?.code).toBe("EINVAL");
        expect(sender.inflight).toBe(0);
      }
      expect(ring.ops.inflight).toBe(0);
    } finally {
      for (const fd of [a, b, l.fd]) closeQuietly(fd);
      ring.close();
    }
  });

  test("a full sender refuses the next send with EBUSY and keeps the earlier ones", () => {
    const ring = Ring.create({ entries: 16 });
    const l = tcpListen(ring, { host: "127.0.0.1", port: 0 });
    const a = tcpConnect(ring, { host: "127.0.0.1", port: l.address.port });
    const b = tcpAccept(ring, l.fd);
    try {
      let released = 0;
      const s = new ZcSender(ring, a, { mode: "zc", reportUsage, capacity: 2, onReleased: () => released++ });
      s.send(new Uint8Array(100));
      s.send(new Uint8Array(100));
      const e = expectUringError(() => s.send(new Uint8Array(100)), "EBUSY");
      expect(e.message.length).toBeGreaterThan(0);
      ring.runUntil(() => released === 2, 5000);
      expect(s.inflight).toBe(0);
      expect(s.stats.anomalies).toBe(0);
      expect(ring.ops.inflight).toBe(0);
    } finally {
      for (const fd of [a, b, l.fd]) closeQuietly(fd);
      ring.close();
    }
  });

  test("sends after the stream broke are refused, earlier ones all released", () => {
    const ring = Ring.create({ entries: 16 });
    const l = tcpListen(ring, { host: "127.0.0.1", port: 0 });
    const a = tcpConnect(ring, { host: "127.0.0.1", port: l.address.port });
    const b = tcpAccept(ring, l.fd);
    try {
      let released = 0;
      const s = new ZcSender(ring, a, { mode: "zc", reportUsage, onReleased: () => released++ });
      c.shutdown(a, 1); // SHUT_WR: every later send fails with EPIPE
      s.send(new Uint8Array(100));
      ring.runUntil(() => released === 1, 5000);
      expect(s.isBroken).toBe(true);
      expect(s.stats.lastError?.code).toBe("EPIPE");
      // Later sends are refused up front with the error that broke the stream.
      const e = expectUringError(() => s.send(new Uint8Array(100)), s.stats.lastError!.code);
      expect(e.message).toBe(s.stats.lastError!.message);
      expect(s.inflight).toBe(0);
      expect(ring.ops.inflight).toBe(0);
    } finally {
      for (const fd of [a, b, l.fd]) closeQuietly(fd);
      ring.close();
    }
  });
});

const poolRows: BadInputRow<Ring>[] = [
  {
    name: "bufferSize 0",
    code: "EINVAL",
    where: "FixedBufferPool.create",
    call: (r) => FixedBufferPool.create(r, { bufferSize: 0 }),
  },
  {
    name: "bufferSize -1",
    code: "EINVAL",
    where: "FixedBufferPool.create",
    call: (r) => FixedBufferPool.create(r, { bufferSize: -1 }),
  },
  {
    name: "bufferSize 2^31 (huge)",
    code: "EINVAL",
    where: "FixedBufferPool.create",
    call: (r) => FixedBufferPool.create(r, { bufferSize: 2 ** 31 }),
  },
  {
    name: "count 0",
    code: "EINVAL",
    where: "FixedBufferPool.create",
    call: (r) => FixedBufferPool.create(r, { count: 0 }),
  },
  {
    name: "count 1.5",
    code: "EINVAL",
    where: "FixedBufferPool.create",
    call: (r) => FixedBufferPool.create(r, { count: 1.5 }),
  },
  {
    name: "two pools on one ring",
    code: "EBUSY",
    call: (r) => {
      FixedBufferPool.create(r, { bufferSize: 4096, count: 2 });
      FixedBufferPool.create(r, { bufferSize: 4096, count: 2 });
    },
  },
  {
    name: "free of a buffer never allocated",
    code: "EINVAL",
    where: "FixedBufferPool.free",
    call: (r) => FixedBufferPool.create(r, { bufferSize: 4096, count: 2 }).free(0),
  },
  {
    name: "free twice",
    code: "EINVAL",
    where: "FixedBufferPool.free",
    call: (r) => {
      const p = FixedBufferPool.create(r, { bufferSize: 4096, count: 2 });
      const i = p.alloc();
      p.free(i);
      p.free(i);
    },
  },
  {
    name: "free(-1)",
    code: "EINVAL",
    where: "FixedBufferPool.free",
    call: (r) => FixedBufferPool.create(r, { bufferSize: 4096, count: 2 }).free(-1),
  },
  {
    name: "view(2) past the pool",
    code: "EINVAL",
    where: "FixedBufferPool.view",
    call: (r) => FixedBufferPool.create(r, { bufferSize: 4096, count: 2 }).view(2),
  },
  {
    name: "sendFixed: index past the pool",
    code: "EINVAL",
    where: "ZcSender.sendFixed",
    call: (r) => sendFixedWith(r, 2, 10, 0),
  },
  {
    name: "sendFixed: length past the buffer",
    code: "EINVAL",
    where: "ZcSender.sendFixed",
    call: (r) => sendFixedWith(r, 0, 4097, 0),
  },
  {
    name: "sendFixed: negative offset",
    code: "EINVAL",
    where: "ZcSender.sendFixed",
    call: (r) => sendFixedWith(r, 0, 10, -1),
  },
  { name: "sendFixed: length 0", code: "EINVAL", where: "ZcSender.sendFixed", call: (r) => sendFixedWith(r, 0, 0, 0) },
  {
    name: "zc-fixed send of a view outside the pool",
    code: "EINVAL",
    where: "ZcSender.send",
    call: (r) => zcFixedSendOf(r, new Uint8Array(100)),
  },
];

/** A zc-fixed sender on a throwaway TCP pair; the fds are closed by the caller's ring close. */
const opened: number[] = [];
function pairOn(r: Ring): number {
  const l = tcpListen(r, { host: "127.0.0.1", port: 0 });
  const a = tcpConnect(r, { host: "127.0.0.1", port: l.address.port });
  const b = tcpAccept(r, l.fd);
  opened.push(l.fd, a, b);
  return a;
}
function sendFixedWith(r: Ring, index: number, length: number, offset: number): void {
  const pool = FixedBufferPool.create(r, { bufferSize: 4096, count: 2 });
  new ZcSender(r, pairOn(r), { mode: "zc", reportUsage, pool }).sendFixed(index, length, undefined, offset);
}
function zcFixedSendOf(r: Ring, buf: Uint8Array): void {
  const pool = FixedBufferPool.create(r, { bufferSize: 4096, count: 2 });
  new ZcSender(r, pairOn(r), { mode: "zc-fixed", reportUsage, pool }).send(buf);
}

describe("FixedBufferPool refuses bad input", () => {
  for (const row of poolRows) {
    test(`${row.name} → ${row.code}`, () => {
      const fds = openFdCount();
      const ring = Ring.create({ entries: 16 });
      try {
        expectUringError(() => row.call(ring), row.code, row.where);
        expectRingHealthy(ring);
      } finally {
        while (opened.length) closeQuietly(opened.pop()!);
        ring.close();
      }
      expect(openFdCount()).toBeLessThanOrEqual(fds); // a leak adds fds; other files' async cleanup may close some meanwhile
    });
  }

  test("a pool whose registration is refused leaves the ring without registered buffers", () => {
    const ring = Ring.create({ entries: 16 });
    try {
      FixedBufferPool.create(ring, { bufferSize: 4096, count: 1 });
      expectUringError(() => FixedBufferPool.create(ring, { bufferSize: 4096, count: 1 }), "EBUSY");
      expect(registeredBuffers(ring)?.nr).toBe(1);
    } finally {
      ring.close();
    }
  });
});
