// UdpSocket.recvFrom(): datagrams with their senders' addresses through one multishot
// IORING_OP_RECVMSG, on 127.0.0.1 and ::1. Several senders on different ports, each address and
// port checked exactly, payloads byte for byte; truncation reported, not silent; AbortSignal,
// close with a receive in flight, and buffer starvation (more datagrams than pool buffers).
import { describe, expect, test } from "bun:test";
import { openRing, type AsyncRing, type UdpSocket } from "../src/api/index.ts";
import type { Datagram } from "../src/api/recv.ts";
import { AF_INET, AF_INET6 } from "../src/abi/net.ts";
import { UringError } from "../src/error.ts";
import { pattern } from "../scripts/examples/lib.ts";
import { describeIf, needKernel } from "./helpers.ts";

const TIMEOUT_MS = 30_000;

/** The `n` next datagrams of `it`, copied (each view is valid only until the next step). */
async function take(it: AsyncIterator<Datagram>, n: number): Promise<Datagram[]> {
  const out: Datagram[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    expect(r.done).toBe(false);
    const d = r.value as Datagram;
    out.push({ data: d.data.slice(), from: d.from, truncated: d.truncated, datagramBytes: d.datagramBytes });
  }
  return out;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

/** Three senders on their own ports, two datagrams each (sizes and bytes differ per sender and
 * sequence number), to one receiver; every datagram is matched to its sender by address and port. */
async function severalSenders(r: AsyncRing, host: string, family: number): Promise<void> {
  const rx = r.udp({ host, port: 0 });
  const senders: UdpSocket[] = [];
  for (let i = 0; i < 3; i++) senders.push(r.udp({ host, port: 0 }));
  const ports = senders.map((s) => s.localAddress.port);
  expect(new Set(ports).size).toBe(3);
  const to = { host, port: rx.localAddress.port };
  const payload = (sender: number, seq: number) => pattern(100 + sender * 300 + seq * 7, 1 + sender * 10 + seq);
  const stream = rx.recvFrom();
  const it = stream[Symbol.asyncIterator]();
  for (let seq = 0; seq < 2; seq++) {
    for (let i = 0; i < 3; i++) expect(await senders[i]!.sendTo(payload(i, seq), to)).toBe(payload(i, seq).byteLength);
  }
  const got = await take(it, 6);
  const seen = new Map<number, number>();
  for (const d of got) {
    const i = ports.indexOf(d.from.port);
    expect(i).toBeGreaterThanOrEqual(0);
    expect(d.from.host).toBe(host);
    expect(d.from.family).toBe(family);
    expect(d.from.scopeId).toBe(0);
    expect(Object.isFrozen(d.from)).toBe(true);
    // Datagrams of one sender arrive in order on loopback.
    const seq = seen.get(i) ?? 0;
    seen.set(i, seq + 1);
    expect(same(d.data, payload(i, seq))).toBe(true);
    expect(d.truncated).toBe(false);
    expect(d.datagramBytes).toBe(payload(i, seq).byteLength);
  }
  expect([...seen.values()]).toEqual([2, 2, 2]);
  await it.return!();
  await Promise.all([rx.close(), ...senders.map((s) => s.close())]);
  expect(r.inflight).toBe(0);
}

describeIf(needKernel("6.0", "multishot IORING_OP_RECVMSG"), "UdpSocket.recvFrom", () => {
  test(
    "IPv4: several senders on different ports, each address and port exact, payloads byte-exact",
    async () => {
      const r = openRing();
      try {
        await severalSenders(r, "127.0.0.1", AF_INET);
      } finally {
        await r.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "IPv6: several senders on ::1, each address and port exact, payloads byte-exact",
    async () => {
      const r = openRing();
      try {
        await severalSenders(r, "::1", AF_INET6);
      } finally {
        await r.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "a dual-stack IPv6 socket reports an IPv4 sender as ::ffff:127.0.0.1",
    async () => {
      const r = openRing();
      try {
        const rx = r.udp({ host: "::", port: 0 });
        const tx = r.udp({ host: "127.0.0.1", port: 0 });
        const it = rx.recvFrom()[Symbol.asyncIterator]();
        await tx.sendTo("mapped", { host: "127.0.0.1", port: rx.localAddress.port });
        const [d] = await take(it, 1);
        expect(d!.from).toEqual({ family: AF_INET6, host: "::ffff:127.0.0.1", port: tx.localAddress.port, scopeId: 0 });
        expect(new TextDecoder().decode(d!.data)).toBe("mapped");
        await Promise.all([rx.close(), tx.close()]);
      } finally {
        await r.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "an empty datagram arrives as an empty view with its sender",
    async () => {
      const r = openRing();
      try {
        const rx = r.udp({ host: "127.0.0.1", port: 0 });
        const tx = r.udp({ host: "127.0.0.1", port: 0 });
        const it = rx.recvFrom()[Symbol.asyncIterator]();
        await tx.sendTo(new Uint8Array(0), { host: "127.0.0.1", port: rx.localAddress.port });
        await tx.sendTo("after", { host: "127.0.0.1", port: rx.localAddress.port });
        const [empty, after] = await take(it, 2);
        expect(empty!.data.byteLength).toBe(0);
        expect(empty!.datagramBytes).toBe(0);
        expect(empty!.truncated).toBe(false);
        expect(empty!.from.port).toBe(tx.localAddress.port);
        expect(new TextDecoder().decode(after!.data)).toBe("after");
        await Promise.all([rx.close(), tx.close()]);
      } finally {
        await r.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "a datagram larger than a buffer's room is reported truncated with its full size; the stream goes on",
    async () => {
      const r = openRing({ recvBufferBytes: 256, recvBuffers: 16 });
      try {
        const rx = r.udp({ host: "127.0.0.1", port: 0 });
        const tx = r.udp({ host: "127.0.0.1", port: 0 });
        const stream = rx.recvFrom();
        // 256 bytes less io_uring_recvmsg_out (16) and the reserved sockaddr_in6 (28).
        expect(stream.maxPayloadBytes).toBe(212);
        const it = stream[Symbol.asyncIterator]();
        const to = { host: "127.0.0.1", port: rx.localAddress.port };
        const big = pattern(1000, 5),
          exact = pattern(212, 6),
          over = pattern(213, 7),
          small = pattern(100, 8);
        for (const d of [big, exact, over, small]) await tx.sendTo(d, to);
        const [g1, g2, g3, g4] = await take(it, 4);
        expect(g1!.truncated).toBe(true);
        expect(g1!.datagramBytes).toBe(1000);
        expect(same(g1!.data, big.subarray(0, 212))).toBe(true);
        expect(g2!.truncated).toBe(false);
        expect(g2!.datagramBytes).toBe(212);
        expect(same(g2!.data, exact)).toBe(true);
        expect(g3!.truncated).toBe(true);
        expect(g3!.datagramBytes).toBe(213);
        expect(same(g3!.data, over.subarray(0, 212))).toBe(true);
        expect(g4!.truncated).toBe(false);
        expect(same(g4!.data, small)).toBe(true);
        for (const g of [g1, g2, g3, g4]) expect(g!.from.port).toBe(tx.localAddress.port);
        // One sender in a row is answered from the stream's address cache: the same frozen object.
        for (const g of [g2, g3, g4]) expect(g!.from).toBe(g1!.from);
        await Promise.all([rx.close(), tx.close()]);
        expect(r.inflight).toBe(0);
      } finally {
        await r.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "more datagrams than pool buffers: the receive waits for buffers and loses none",
    async () => {
      const r = openRing({ recvBuffers: 4, recvBufferBytes: 512 });
      try {
        const rx = r.udp({ host: "127.0.0.1", port: 0 });
        const tx = r.udp({ host: "127.0.0.1", port: 0 });
        const it = rx.recvFrom()[Symbol.asyncIterator]();
        const to = { host: "127.0.0.1", port: rx.localAddress.port };
        const n = 40;
        for (let i = 0; i < n; i++) await tx.sendTo(pattern(50 + i, 100 + i), to);
        const got = await take(it, n);
        for (let i = 0; i < n; i++) {
          expect(same(got[i]!.data, pattern(50 + i, 100 + i))).toBe(true);
          expect(got[i]!.from.port).toBe(tx.localAddress.port);
        }
        expect(r.buffersOut).toBe(1);
        await it.return!();
        expect(r.buffersOut).toBe(0);
        await Promise.all([rx.close(), tx.close()]);
      } finally {
        await r.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "AbortSignal: a waiting next() rejects with ECANCELED naming IORING_OP_RECVMSG; a new stream works after",
    async () => {
      const r = openRing();
      try {
        const rx = r.udp({ host: "127.0.0.1", port: 0 });
        const tx = r.udp({ host: "127.0.0.1", port: 0 });
        const ac = new AbortController();
        const it = rx.recvFrom({ signal: ac.signal })[Symbol.asyncIterator]();
        const waiting = it.next();
        while (rx.inflight === 0) await new Promise<void>((res) => setImmediate(res));
        ac.abort(new Error("stop"));
        const err = await waiting.then(
          () => null,
          (e) => e,
        );
        expect(err).toBeInstanceOf(UringError);
        expect((err as UringError).code).toBe("ECANCELED");
        expect((err as UringError).syscall).toBe("IORING_OP_RECVMSG");
        expect(((err as UringError).cause as Error).message).toBe("stop");
        while (rx.inflight > 0) await new Promise<void>((res) => setImmediate(res));
        // The aborted stream gave the socket back: a second one receives.
        const it2 = rx.recvFrom()[Symbol.asyncIterator]();
        await tx.sendTo("again", { host: "127.0.0.1", port: rx.localAddress.port });
        const [d] = await take(it2, 1);
        expect(new TextDecoder().decode(d!.data)).toBe("again");
        await it2.return!();
        await Promise.all([rx.close(), tx.close()]);
        expect(r.inflight).toBe(0);
      } finally {
        await r.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "an already aborted signal rejects the first next() without arming a receive",
    async () => {
      const r = openRing();
      try {
        const rx = r.udp({ host: "127.0.0.1", port: 0 });
        const stream = rx.recvFrom({ signal: AbortSignal.abort() });
        expect(rx.inflight).toBe(0);
        const err = await stream.next().then(
          () => null,
          (e) => e,
        );
        expect((err as UringError).code).toBe("ECANCELED");
        expect((await stream.next()).done).toBe(true);
        await rx.close();
      } finally {
        await r.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "close with recvFrom in flight: the waiting next() ends, nothing stays in flight",
    async () => {
      const r = openRing();
      try {
        const rx = r.udp({ host: "::1", port: 0 });
        const it = rx.recvFrom()[Symbol.asyncIterator]();
        const waiting = it.next();
        while (rx.inflight === 0) await new Promise<void>((res) => setImmediate(res));
        await rx.close();
        expect((await waiting).done).toBe(true);
        expect(rx.inflight).toBe(0);
        expect(r.inflight).toBe(0);
        expect(r.buffersOut).toBe(0);
        expect(() => rx.recvFrom()).toThrow(/closed/);
      } finally {
        await r.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "ring close with recvFrom in flight ends the stream",
    async () => {
      const r = openRing();
      const rx = r.udp({ host: "127.0.0.1", port: 0 });
      const it = rx.recvFrom()[Symbol.asyncIterator]();
      const waiting = it.next();
      while (rx.inflight === 0) await new Promise<void>((res) => setImmediate(res));
      r.closeNow();
      expect((await waiting).done).toBe(true);
      expect(r.inflight).toBe(0);
    },
    TIMEOUT_MS,
  );

  test(
    "one receive stream per socket: recv and recvFrom exclude each other; old kernels and tiny buffers are refused",
    async () => {
      const r = openRing();
      try {
        const rx = r.udp({ host: "127.0.0.1", port: 0 });
        const s = rx.recvFrom();
        expect(() => rx.recv()).toThrow(/already has a receive stream/);
        expect(() => rx.recvFrom()).toThrow(/already has a receive stream/);
        await s.return();
        await rx.close();
      } finally {
        await r.close();
      }
      const old = openRing();
      try {
        // What a kernel before 6.0 would report (no multishot RECVMSG): refused, naming the version.
        (old.ring.capabilities as { kernel: string }).kernel = "5.15.0-test";
        const rx = old.udp({ host: "127.0.0.1", port: 0 });
        const err = (() => {
          try {
            rx.recvFrom();
            return null;
          } catch (e) {
            return e as UringError;
          }
        })();
        expect(err).toBeInstanceOf(UringError);
        expect(err!.code).toBe("EOPNOTSUPP");
        expect(err!.message).toContain("Linux 6.0");
        expect(err!.message).toContain("5.15.0-test");
        expect(rx.inflight).toBe(0);
        await rx.close();
      } finally {
        await old.close();
      }
      const small = openRing({ recvBufferBytes: 32 });
      try {
        const rx = small.udp({ host: "127.0.0.1", port: 0 });
        expect(() => rx.recvFrom()).toThrow(/recvBufferBytes/);
        await rx.close();
      } finally {
        await small.close();
      }
    },
    TIMEOUT_MS,
  );
});
