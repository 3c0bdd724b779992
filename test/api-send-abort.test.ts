// AbortSignal on sends of the async API: an aborted signal submits nothing; a send waiting in the
// socket's send queue (until its turn's submit, or behind maxInflightSends) leaves it; a datagram
// in the kernel is cancelled with IORING_OP_ASYNC_CANCEL (or resolves if it had gone); a TCP send
// in the kernel is never cut, so the byte stream stays whole. `released` settles exactly once in every case, and
// no send leaves its listener on the signal.
//
// A send "in the kernel" must stay there until the abort: a UDP send over loopback completes
// during io_uring_enter, so those tests use a datagram socket whose peer queue is full (an AF_UNIX
// SOCK_DGRAM pair, filled through libc until EAGAIN), wrapped as a UdpSocket: the SEND then waits
// in the kernel (poll for POLLOUT) until the peer reads.
import { describe, expect, test } from "bun:test";
import { c, errno } from "../ffi/index.ts";
import { openRing, type AsyncRing, type SendOp, type TcpSocket, UdpSocket } from "../src/api/index.ts";
import { socketHostOf } from "../src/api/ring.ts";
import { AF_UNIX, MSG_DONTWAIT, SOCK_CLOEXEC, SOCK_DGRAM } from "../src/abi/net.ts";
import { EAGAIN } from "../src/abi/errno.ts";
import { UringError } from "../src/error.ts";
import { closeQuietly } from "../src/sync.ts";
import { pattern } from "../scripts/examples/lib.ts";
import { asyncPair } from "./fixtures/loopback.ts";

const TIMEOUT_MS = 30_000;

const tick = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

function unixDgramPair(): [number, number] {
  const sv = new Int32Array(2);
  if (c.socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) !== 0)
    throw new Error(`socketpair failed: errno ${errno()}`);
  return [sv[0]!, sv[1]!];
}

/** Send datagrams of `size` bytes on `fd` through libc until the kernel refuses with EAGAIN (the
 * peer's queue or this socket's send buffer is full); returns how many went. */
function fillPeer(fd: number, size: number): number {
  const buf = new Uint8Array(size);
  let n = 0;
  while (c.send(fd, buf, size, MSG_DONTWAIT) >= 0) n++;
  expect(errno()).toBe(EAGAIN);
  return n;
}

/** Every datagram queued on `fd` now, copied. */
function drainPeer(fd: number): Uint8Array[] {
  const buf = new Uint8Array(65536);
  const out: Uint8Array[] = [];
  for (;;) {
    const n = c.recv(fd, buf, buf.length, MSG_DONTWAIT);
    if (n < 0) break;
    out.push(buf.slice(0, n));
  }
  return out;
}

/** A UdpSocket over one end of an AF_UNIX datagram pair (the ring owns and closes it). */
function unixUdp(r: AsyncRing, fd: number): UdpSocket {
  const host = socketHostOf(r);
  return host.adopt(new UdpSocket(host, fd));
}

async function abortErrorOf(op: SendOp): Promise<UringError> {
  const e = await op.sent.then(
    () => null,
    (err) => err,
  );
  expect(e).toBeInstanceOf(UringError);
  return e as UringError;
}

/** An AbortSignal that counts the "abort" listeners added and still registered. */
function countingSignal(): { controller: AbortController; live: () => number; added: () => number } {
  const controller = new AbortController();
  const signal = controller.signal;
  const registered = new Set<unknown>();
  let added = 0;
  type Listen = (type: string, listener: unknown, options?: unknown) => void;
  const add = signal.addEventListener.bind(signal) as Listen;
  const remove = signal.removeEventListener.bind(signal) as Listen;
  signal.addEventListener = ((type: string, l: unknown, o?: unknown) => {
    if (type === "abort" && !registered.has(l)) {
      registered.add(l);
      added++;
    }
    add(type, l, o);
  }) as typeof signal.addEventListener;
  signal.removeEventListener = ((type: string, l: unknown, o?: unknown) => {
    if (type === "abort") registered.delete(l);
    remove(type, l, o);
  }) as typeof signal.removeEventListener;
  return { controller, live: () => registered.size, added: () => added };
}

/** Everything `s` receives until the peer closes. */
async function readToEnd(s: TcpSocket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of s.recv()) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

describe("send AbortSignal", () => {
  test(
    "an already aborted signal: send and sendTo reject at once with ECANCELED and submit nothing",
    async () => {
      const r = openRing();
      try {
        const rx = r.udp({ host: "127.0.0.1", port: 0 });
        const tx = r.udp({ host: "127.0.0.1", port: 0 });
        const to = { host: "127.0.0.1", port: rx.localAddress.port };
        const it = rx.recvFrom()[Symbol.asyncIterator]();
        const op = tx.sendTo("never", to, { signal: AbortSignal.abort(new Error("why")) });
        // Settled before any turn of the loop: nothing was queued or prepared.
        expect(op.isSent).toBe(true);
        expect(op.isReleased).toBe(true);
        expect(tx.pendingSends).toBe(0);
        expect(tx.inflight).toBe(0);
        const err = await abortErrorOf(op);
        expect(err.code).toBe("ECANCELED");
        expect(err.syscall).toBe("IORING_OP_SEND");
        expect((err.cause as Error).message).toBe("why");
        await op.released;
        await tx.sendTo("marker", to);
        const first = await it.next();
        expect(new TextDecoder().decode(first.value!.data)).toBe("marker");
        await it.return!();

        const p = await asyncPair(r);
        const reading = readToEnd(p.peer);
        const tcpOp = p.cl.send(pattern(100_000, 1), { signal: AbortSignal.abort() });
        expect(tcpOp.isSent).toBe(true);
        expect((await abortErrorOf(tcpOp)).code).toBe("ECANCELED");
        await tcpOp.released;
        await p.cl.send("after");
        await p.cl.end();
        expect((await reading).toString()).toBe("after");
        await Promise.all([rx.close(), tx.close(), p.close()]);
        expect(r.inflight).toBe(0);
      } finally {
        await r.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "a bad signal is refused before anything is queued",
    async () => {
      const r = openRing();
      try {
        const tx = r.udp({ host: "127.0.0.1", port: 0 });
        expect(() => tx.sendTo("x", { host: "127.0.0.1", port: 9 }, { signal: {} as AbortSignal })).toThrow(
          /AbortSignal/,
        );
        expect(tx.pendingSends).toBe(0);
        await tx.close();
      } finally {
        await r.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "UDP: abort while queued behind the in-flight bound leaves the queue; the others go out in order",
    async () => {
      const r = openRing({ maxInflightSends: 1 });
      const [a, b] = unixDgramPair();
      try {
        const s = unixUdp(r, a);
        const prefilled = fillPeer(a, 64);
        const payloads = [0, 1, 2, 3, 4].map((i) => pattern(100 + i, 10 + i));
        const acs = payloads.map(() => new AbortController());
        const ops = payloads.map((p, i) => s.send(p, { signal: acs[i]!.signal }));
        const released = ops.map(() => 0);
        ops.forEach((op, i) => void op.released.then(() => released[i]!++));
        // The first send is in the kernel (waiting for room in the peer's queue), the rest wait in
        // the socket's queue: the bound is one.
        while (s.inflight === 0) await tick();
        expect(s.inflight).toBe(1);
        expect(s.pendingSends).toBe(5);
        acs[2]!.abort();
        acs[3]!.abort();
        // Taken out of the queue at once.
        expect(ops[2]!.isSent && ops[3]!.isSent).toBe(true);
        expect(s.pendingSends).toBe(3);
        for (const i of [2, 3]) {
          const e = await abortErrorOf(ops[i]!);
          expect(e.code).toBe("ECANCELED");
          expect(e.syscall).toBe("IORING_OP_SEND");
        }
        // Let the peer read: the waiting send and then the queued ones go. (Without DEFER_TASKRUN
        // the kernel may retry the waiting send as soon as the peer's queue has room again, so it
        // can already be behind the prefilled datagrams.)
        const drained = drainPeer(b);
        expect(drained.length).toBeGreaterThanOrEqual(prefilled);
        const received: Uint8Array[] = drained.slice(prefilled);
        while (received.length < 3) {
          await tick();
          received.push(...drainPeer(b));
        }
        for (const i of [0, 1, 4]) expect(await ops[i]!).toBe(payloads[i]!.byteLength);
        expect(received.map((d) => Buffer.from(d).toString("hex"))).toEqual(
          [0, 1, 4].map((i) => Buffer.from(payloads[i]!).toString("hex")),
        );
        expect(drainPeer(b).length).toBe(0);
        await Promise.all(ops.map((op) => op.released));
        await tick();
        expect(released).toEqual([1, 1, 1, 1, 1]);
        await s.close();
        expect(r.inflight).toBe(0);
      } finally {
        await r.close();
        closeQuietly(b);
      }
    },
    TIMEOUT_MS,
  );

  test(
    "UDP: abort in flight cancels the SEND in the kernel (ECANCELED); the buffer is released after its CQE",
    async () => {
      const r = openRing();
      const [a, b] = unixDgramPair();
      try {
        const s = unixUdp(r, a);
        const prefilled = fillPeer(a, 64);
        const ac = new AbortController();
        const op = s.send(pattern(100, 3), { signal: ac.signal });
        let inflightAtRelease = -1;
        let releases = 0;
        void op.released.then(() => {
          releases++;
          inflightAtRelease = s.inflight;
        });
        while (s.inflight === 0) await tick();
        // Several turns: the SEND was submitted and parked on the full peer.
        for (let i = 0; i < 5; i++) await tick();
        expect(op.isSent).toBe(false);
        ac.abort(new Error("give up"));
        const e = await abortErrorOf(op);
        expect(e.code).toBe("ECANCELED");
        expect(e.syscall).toBe("IORING_OP_SEND");
        expect((e.cause as Error).message).toBe("give up");
        await op.released;
        await tick();
        expect(releases).toBe(1);
        // Released only once the SEND's CQE was in: nothing of this socket was still in flight.
        expect(inflightAtRelease).toBe(0);
        expect(s.pendingSends).toBe(0);
        // The cancelled datagram never reached the peer; the socket goes on working.
        expect(drainPeer(b).length).toBe(prefilled);
        expect(await s.send("marker")).toBe(6);
        expect(drainPeer(b).map((d) => new TextDecoder().decode(d))).toEqual(["marker"]);
        await s.close();
        expect(r.inflight).toBe(0);
      } finally {
        await r.close();
        closeQuietly(b);
      }
    },
    TIMEOUT_MS,
  );

  test(
    "UDP over loopback: an abort racing a completed send resolves it normally, and the peer got it",
    async () => {
      const r = openRing();
      try {
        const rx = r.udp({ host: "127.0.0.1", port: 0 });
        const tx = r.udp({ host: "127.0.0.1", port: 0 });
        const to = { host: "127.0.0.1", port: rx.localAddress.port };
        const it = rx.recvFrom()[Symbol.asyncIterator]();
        for (let round = 0; round < 20; round++) {
          const ac = new AbortController();
          const data = pattern(200, 50 + round);
          const op = tx.sendTo(data, to, { signal: ac.signal });
          while (tx.inflight === 0 && !op.isSent) await tick();
          ac.abort();
          const outcome = await op.sent.then(
            (n) => n,
            (e: UringError) => e.code,
          );
          await op.released;
          await tx.sendTo(`marker ${round}`, to);
          const first = (await it.next()).value!;
          if (outcome === data.byteLength) {
            // It had gone: the peer holds it, then the marker.
            expect(Buffer.from(first.data).equals(Buffer.from(data))).toBe(true);
            expect(new TextDecoder().decode((await it.next()).value!.data)).toBe(`marker ${round}`);
          } else {
            // The kernel cancelled it: the marker is the first thing the peer sees.
            expect(outcome).toBe("ECANCELED");
            expect(new TextDecoder().decode(first.data)).toBe(`marker ${round}`);
          }
        }
        await it.return!();
        await Promise.all([rx.close(), tx.close()]);
        expect(r.inflight).toBe(0);
      } finally {
        await r.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "no listener stays on a signal shared by thousands of sends (UDP and TCP); a late abort changes nothing",
    async () => {
      const r = openRing({ maxInflightSends: 4 });
      try {
        const rx = r.udp({ host: "127.0.0.1", port: 0 });
        const tx = r.udp({ host: "127.0.0.1", port: 0 });
        const udpSig = countingSignal();
        const ops: SendOp[] = [];
        for (let i = 0; i < 2000; i++)
          ops.push(
            tx.sendTo(
              pattern(32, i),
              { host: "127.0.0.1", port: rx.localAddress.port },
              { signal: udpSig.controller.signal },
            ),
          );
        expect(udpSig.live()).toBeGreaterThan(0);
        for (const op of ops) expect(await op).toBe(32);
        await Promise.all(ops.map((op) => op.released));
        expect(udpSig.added()).toBe(2000);
        expect(udpSig.live()).toBe(0);
        udpSig.controller.abort();
        expect(tx.inflight).toBe(0);

        const p = await asyncPair(r);
        const reading = readToEnd(p.peer);
        const tcpSig = countingSignal();
        const tcpOps: SendOp[] = [];
        for (let i = 0; i < 500; i++) tcpOps.push(p.cl.send(pattern(1000, i), { signal: tcpSig.controller.signal }));
        // Every send waits in the socket's send queue (the engine's) until its SQE is written, and
        // watches the signal until its first moment settles.
        expect(tcpSig.added()).toBe(500);
        for (const op of tcpOps) expect(await op).toBe(1000);
        await Promise.all(tcpOps.map((op) => op.released));
        expect(tcpSig.live()).toBe(0);
        tcpSig.controller.abort();
        await p.cl.end();
        const got = await reading;
        expect(got.equals(Buffer.concat(tcpOps.map((_, i) => pattern(1000, i))))).toBe(true);
        await Promise.all([rx.close(), tx.close(), p.close()]);
        expect(r.inflight).toBe(0);
      } finally {
        await r.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "TCP: aborts remove queued sends only; sends in the kernel complete; the byte stream is whole",
    async () => {
      const r = openRing({ maxInflightSends: 2 });
      try {
        const p = await asyncPair(r);
        const reading = readToEnd(p.peer);
        const parts = Array.from({ length: 12 }, (_, i) => pattern(40_000 + i * 997, 100 + i));
        const acs = parts.map(() => new AbortController());
        const ops = parts.map((part, i) => p.cl.send(part, { signal: acs[i]!.signal }));
        const released = ops.map(() => 0);
        ops.forEach((op, i) => void op.released.then(() => released[i]!++));
        // All twelve wait in the send queue until the turn's submit writes the first two (the
        // bound is two): an abort now takes a send out, whichever place it has in the queue.
        acs[0]!.abort();
        acs[4]!.abort();
        acs[7]!.abort();
        expect(ops[0]!.isSent && ops[4]!.isSent && ops[7]!.isSent).toBe(true);
        // The turn's submit wrote sends 1 and 2: in the kernel (or done), they are never cut.
        await tick();
        acs[1]!.abort();
        // Later aborts land wherever the sends are by then: queued ones reject, written ones go.
        await ops[2]!.sent;
        acs[9]!.abort();
        acs[11]!.abort();
        const outcomes = await Promise.all(
          ops.map((op) =>
            op.sent.then(
              () => "sent",
              (e: UringError) => e.code,
            ),
          ),
        );
        expect(outcomes[0]).toBe("ECANCELED");
        expect(outcomes[1]).toBe("sent");
        expect(outcomes[4]).toBe("ECANCELED");
        expect(outcomes[7]).toBe("ECANCELED");
        for (const o of outcomes) expect(["sent", "ECANCELED"]).toContain(o);
        await Promise.all(ops.map((op) => op.released));
        await p.cl.end();
        const got = await reading;
        const expected = Buffer.concat(parts.filter((_, i) => outcomes[i] === "sent"));
        expect(got.length).toBe(expected.length);
        expect(got.equals(expected)).toBe(true);
        await tick();
        expect(released).toEqual(parts.map(() => 1));
        await p.close();
        expect(r.inflight).toBe(0);
      } finally {
        await r.close();
      }
    },
    TIMEOUT_MS,
  );
});
