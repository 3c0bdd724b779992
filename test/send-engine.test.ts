// The one send engine (ZcSender) as both socket kinds use it: a destination per datagram,
// cancelling a queued send or a datagram in the kernel, records that grow for an owner with its
// own backpressure, the bound on sends holding buffers in the kernel, errors handed over with the
// completion; and the async API's UDP sockets following the ring's send mode like TCP sockets.
import { describe, expect, test } from "bun:test";
import { c, errno } from "../ffi/index.ts";
import { Ring } from "../src/ring/ring.ts";
import { AF_UNIX, MSG_DONTWAIT, SOCK_CLOEXEC, SOCK_DGRAM } from "../src/abi/net.ts";
import { EAGAIN } from "../src/abi/errno.ts";
import { IORING_OP_SEND_ZC } from "../src/abi/sqe.ts";
import { ZcSender } from "../src/zc/index.ts";
import { sockaddr } from "../src/net/sockaddr.ts";
import { udpSocket, closeQuietly } from "../src/sync.ts";
import { openRing } from "../src/api/ring.ts";
import { UringError } from "../src/error.ts";
import { asyncPair } from "./fixtures/loopback.ts";

interface Ledger {
  sent: Map<number, { res: number; error: UringError | null }>;
  released: Map<number, number>;
  onSent: (tag: number, res: number, error: UringError | null) => void;
  onReleased: (tag: number) => void;
}

function ledger(): Ledger {
  const l: Ledger = {
    sent: new Map(),
    released: new Map(),
    onSent: (tag, res, error) => void l.sent.set(tag, { res, error }),
    onReleased: (tag) => void l.released.set(tag, (l.released.get(tag) ?? 0) + 1),
  };
  return l;
}

/** Every datagram queued on `fd` now, as text. */
function drain(fd: number): string[] {
  const buf = new Uint8Array(65536);
  const out: string[] = [];
  for (;;) {
    const n = c.recv(fd, buf, buf.length, MSG_DONTWAIT);
    if (n < 0) break;
    out.push(new TextDecoder().decode(buf.subarray(0, n)));
  }
  return out;
}

/** An AF_UNIX datagram pair whose first end's peer queue is full: a send on it waits in the kernel. */
function fullPair(): [number, number] {
  const sv = new Int32Array(2);
  if (c.socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) !== 0) throw new Error(`socketpair: errno ${errno()}`);
  const buf = new Uint8Array(64);
  while (c.send(sv[0]!, buf, 64, MSG_DONTWAIT) >= 0);
  expect(errno()).toBe(EAGAIN);
  return [sv[0]!, sv[1]!];
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("ZcSender as the datagram engine", () => {
  test("each datagram goes to its own destination; an empty datagram is a datagram", () => {
    using ring = Ring.create({ entries: 64 });
    const a = udpSocket(ring, { host: "127.0.0.1", port: 0 });
    const b = udpSocket(ring, { host: "127.0.0.1", port: 0 });
    const tx = udpSocket(ring, { host: "127.0.0.1", port: 0 });
    try {
      const l = ledger();
      const sender = new ZcSender(ring, tx.fd, {
        mode: "copy",
        stream: false,
        onSent: l.onSent,
        onReleased: l.onReleased,
      });
      sender.send(enc("to-a"), 1, sockaddr({ host: "127.0.0.1", port: a.address.port }));
      sender.send(enc("to-b"), 2, sockaddr({ host: "127.0.0.1", port: b.address.port }));
      sender.send(new Uint8Array(0), 3, sockaddr({ host: "127.0.0.1", port: b.address.port }));
      ring.runUntil(() => sender.inflight === 0, 5000);
      expect([...l.sent.values()]).toEqual([
        { res: 4, error: null },
        { res: 4, error: null },
        { res: 0, error: null },
      ]);
      expect(drain(a.fd)).toEqual(["to-a"]);
      expect(drain(b.fd)).toEqual(["to-b", ""]);
      expect([...l.released.values()]).toEqual([1, 1, 1]);
    } finally {
      for (const s of [a, b, tx]) closeQuietly(s.fd);
    }
  });

  test("a destination on a stream and an empty stream send are refused", () => {
    using ring = Ring.create({ entries: 8 });
    const sv = new Int32Array(2);
    c.socketpair(AF_UNIX, 1 | SOCK_CLOEXEC, 0, sv);
    try {
      const sender = new ZcSender(ring, sv[0]!, { mode: "copy", stream: true });
      expect(() => sender.send(enc("x"), 1, sockaddr({ host: "127.0.0.1", port: 9 }))).toThrow(
        /applies to datagram sockets/,
      );
      expect(() => sender.send(new Uint8Array(0), 2)).toThrow(/non-empty/);
      expect(sender.inflight).toBe(0);
    } finally {
      c.close(sv[0]!);
      c.close(sv[1]!);
    }
  });

  test("cancel(): a queued send leaves the queue now; a datagram in the kernel is cancelled there; both are released once", () => {
    using ring = Ring.create({ entries: 64 });
    const [a, b] = fullPair();
    try {
      const l = ledger();
      // Capacity 1: the first datagram waits in the kernel (the peer's queue is full), the other
      // two wait in the engine's queue.
      const sender = new ZcSender(ring, a, {
        mode: "copy",
        stream: false,
        capacity: 1,
        grow: true,
        onSent: l.onSent,
        onReleased: l.onReleased,
      });
      sender.send(enc("one"), 1);
      sender.send(enc("two"), 2);
      sender.send(enc("three"), 3);
      ring.submit();
      expect(sender.held).toBe(1);
      expect(sender.queued).toBe(2);
      expect(sender.cancel(2)).toBe(true);
      expect(l.sent.get(2)!.res).toBe(-125);
      expect(l.sent.get(2)!.error!.code).toBe("ECANCELED");
      expect(l.released.get(2)).toBe(1);
      expect(sender.queued).toBe(1);
      // The one in the kernel: an ASYNC_CANCEL, and its CQE says ECANCELED.
      expect(sender.cancel(1)).toBe(true);
      ring.runUntil(() => l.released.has(1), 5000);
      expect(l.sent.get(1)!.error!.code).toBe("ECANCELED");
      expect(l.sent.get(1)!.error!.syscall).toBe("IORING_OP_SEND");
      // Room under the bound: the last one went into the kernel and waits there.
      expect(sender.held).toBe(1);
      expect(sender.cancel(99)).toBe(false);
      // A send without a tag cannot be named: refused, nothing taken out.
      expect(() => sender.cancel(undefined)).toThrow(/tag must be the tag a send was given/);
      // The peer reads: "three" goes; "one" and "two" never did.
      const first = drain(b);
      ring.runUntil(() => l.released.has(3), 5000);
      const got = [...first, ...drain(b)].filter((d) => d.length > 0 && d.charCodeAt(0) !== 0);
      expect(got).toEqual(["three"]);
      expect(l.sent.get(3)).toEqual({ res: 5, error: null });
      expect([...l.released.values()]).toEqual([1, 1, 1]);
    } finally {
      c.close(a);
      c.close(b);
    }
  });

  test("grow: more sends than capacity wait in the queue, at most capacity in the kernel; without it EBUSY", () => {
    using ring = Ring.create({ entries: 256 });
    const rx = udpSocket(ring, { host: "127.0.0.1", port: 0 });
    const tx = udpSocket(ring, { host: "127.0.0.1", port: 0, connect: { host: "127.0.0.1", port: rx.address.port } });
    try {
      const l = ledger();
      const sender = new ZcSender(ring, tx.fd, {
        mode: "copy",
        stream: false,
        capacity: 4,
        grow: true,
        onSent: l.onSent,
        onReleased: l.onReleased,
      });
      sender.cork();
      for (let i = 0; i < 100; i++) sender.send(enc(`d${i}`), i);
      expect(sender.inflight).toBe(100);
      sender.uncork();
      expect(sender.held).toBe(4);
      expect(sender.queued).toBe(96);
      ring.runUntil(() => sender.inflight === 0, 5000);
      expect(l.sent.size).toBe(100);
      expect(drain(rx.fd)).toEqual(Array.from({ length: 100 }, (_, i) => `d${i}`));
      const fixed = new ZcSender(ring, tx.fd, { mode: "copy", stream: false, capacity: 2 });
      fixed.cork();
      fixed.send(enc("a"));
      fixed.send(enc("b"));
      expect(() => fixed.send(enc("c"))).toThrow(/EBUSY/);
      fixed.uncork();
      ring.runUntil(() => fixed.inflight === 0, 5000);
      expect(() => new ZcSender(ring, tx.fd, { stream: false, grow: 1 as unknown as boolean })).toThrow(
        /grow must be a boolean/,
      );
    } finally {
      closeQuietly(rx.fd);
      closeQuietly(tx.fd);
    }
  });

  test("a failed datagram hands its error over with the completion: the opcode, the errno, the destination's fd", () => {
    using ring = Ring.create({ entries: 16 });
    const tx = udpSocket(ring, { host: "127.0.0.1", port: 0 });
    try {
      const l = ledger();
      const sender = new ZcSender(ring, tx.fd, {
        mode: "copy",
        stream: false,
        onSent: l.onSent,
        onReleased: l.onReleased,
      });
      // Unconnected and no destination: EDESTADDRREQ from the kernel.
      sender.send(enc("nowhere"), 1);
      ring.runUntil(() => l.released.has(1), 5000);
      const e = l.sent.get(1)!.error!;
      expect(e).toBeInstanceOf(UringError);
      expect(e.code).toBe("EDESTADDRREQ");
      expect(e.syscall).toBe("IORING_OP_SEND");
      expect(e.message).toContain(`fd ${tx.fd}`);
    } finally {
      closeQuietly(tx.fd);
    }
  });
});

describe("the async API's UDP sockets use the same engine", () => {
  for (const mode of ["copy", "zc"] as const) {
    test(`sendMode "${mode}" applies to datagrams as to TCP`, async () => {
      await using ring = openRing({ sendMode: mode });
      if (mode === "zc" && !ring.ring.supports(IORING_OP_SEND_ZC)) {
        console.log("skip: this kernel has no IORING_OP_SEND_ZC (6.0)");
        return;
      }
      const rx = ring.udp({ host: "127.0.0.1", port: 0 });
      const tx = ring.udp({ host: "127.0.0.1", port: 0, connect: { host: "127.0.0.1", port: rx.localAddress.port } });
      const big = new Uint8Array(32768).fill(7);
      const op = tx.send(big);
      expect(await op).toBe(32768);
      await op.released;
      expect(op.zeroCopy).toBe(mode === "zc");
      expect(tx.zcStats.mode).toBe(mode);
      expect(mode === "zc" ? tx.zcStats.zcSends : tx.zcStats.copySends).toBe(1);
      expect(tx.sendStats.plain).toBe(mode === "copy" ? 1 : 0);
    });
  }

  test("a datagram sendTo() names its own destination through the engine", async () => {
    await using ring = openRing();
    const a = ring.udp({ host: "127.0.0.1", port: 0 });
    const b = ring.udp({ host: "127.0.0.1", port: 0 });
    const tx = ring.udp({ host: "127.0.0.1", port: 0 });
    const ra = a.recv()[Symbol.asyncIterator]();
    const rb = b.recv()[Symbol.asyncIterator]();
    await Promise.all([
      tx.sendTo("A", { host: "127.0.0.1", port: a.localAddress.port }),
      tx.sendTo("B", { host: "127.0.0.1", port: b.localAddress.port }),
    ]);
    expect(new TextDecoder().decode((await ra.next()).value)).toBe("A");
    expect(new TextDecoder().decode((await rb.next()).value)).toBe("B");
    await ra.return?.();
    await rb.return?.();
  });
});

describe("aborts in bulk", () => {
  test("20,000 queued datagrams aborted at once each reject with ECANCELED, are released once, and nothing stays in flight", async () => {
    const { socketHostOf } = await import("../src/api/ring.ts");
    const { UdpSocket } = await import("../src/api/socket.ts");
    const r = openRing({ maxInflightSends: 4, maxInflight: 16 });
    const [a, b] = fullPair();
    try {
      const host = socketHostOf(r);
      const s = host.adopt(new UdpSocket(host, a));
      const acs = Array.from({ length: 20_000 }, () => new AbortController());
      const ops = acs.map((ac) => s.send(enc("x"), { signal: ac.signal }));
      await new Promise<void>((res) => setImmediate(res));
      for (const ac of acs) ac.abort();
      const outcomes = await Promise.all(
        ops.map((op) =>
          op.sent.then(
            () => "sent",
            (e: UringError) => e.code,
          ),
        ),
      );
      await Promise.all(ops.map((op) => op.released));
      expect(outcomes.every((o) => o === "ECANCELED")).toBe(true);
      expect(r.inflight).toBe(0);
      expect(s.pendingSends).toBe(0);
    } finally {
      await r.close();
      c.close(b);
    }
  }, 60_000);
});

describe("destinations and options of the wrong shape are refused before the kernel", () => {
  // Before (2026-12-05): a look-alike Sockaddr reached the SQE with its own length, so the kernel
  // read past the destination slot and answered a bare IORING_OP_SEND EINVAL; an options
  // argument that was not an object was ignored.
  test("sendTo, send and ZcSender.send name themselves and nothing is queued", async () => {
    const ring = openRing();
    const u = ring.udp({ host: "127.0.0.1", port: 0 });
    const fakes: unknown[] = [
      null,
      5,
      { bytes: new Uint8Array(4), length: 1000, family: 2 },
      { bytes: 5, length: 16, family: 2 },
      { bytes: new Uint8Array(28), length: 28, family: 10 }, // family field says 0, not AF_INET6
      { bytes: new Uint8Array(16), length: 28, family: 2 },
    ];
    for (const to of fakes) {
      expect(() => u.sendTo(new Uint8Array(1), to as never)).toThrow(/^sendTo: EINVAL/);
    }
    for (const options of ["x", 5, null]) {
      expect(() => u.send(new Uint8Array(1), options as never)).toThrow(/^send: EINVAL \(options must be an object/);
    }
    const fd = udpSocket(ring.ring, { host: "127.0.0.1", port: 0 });
    const zs = new ZcSender(ring.ring, fd.fd, { mode: "copy" });
    expect(() => zs.send(new Uint8Array(1), 1, fakes[2] as never)).toThrow(
      /^ZcSender\.send: EINVAL \(a destination must be/,
    );
    expect(zs.queued).toBe(0);
    zs.abandonQueued();
    closeQuietly(fd.fd);
    // The socket still sends to a real destination.
    const peer = ring.udp({ host: "127.0.0.1", port: 0 });
    expect(await u.sendTo("ok", { host: "127.0.0.1", port: peer.localAddress.port })).toBe(2);
    await peer.close();
    await u.close();
    await ring.close();
  });
});

test("a stream that breaks under queued sends rejects them with the socket's errno, and sock.error has it", async () => {
  // Before (2026-12-05): a send cut short by the break said ECANCELED, which sock.error ignores
  // (it keeps this side's cancels out), so sock.error stayed null.
  const ring = openRing();
  const { l: listener, cl: client, peer: server } = await asyncPair(ring);
  const sends = [];
  for (let i = 0; i < 20_000; i++) sends.push(client.send(new Uint8Array(1024)));
  // The server never reads: closing it with unread data resets the connection.
  setTimeout(() => void server.close(), 20);
  const results = await Promise.allSettled(sends);
  const errnos = new Set(results.flatMap((r) => (r.status === "rejected" ? [(r.reason as UringError).code] : [])));
  expect(errnos.size).toBeGreaterThan(0);
  for (const code of errnos) expect(["EPIPE", "ECONNRESET"]).toContain(code);
  expect(["EPIPE", "ECONNRESET"]).toContain(String(client.error?.code));
  await client.close();
  await listener.close();
  await ring.close();
});
