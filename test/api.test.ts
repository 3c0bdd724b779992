// The async API on 127.0.0.1: echo byte for byte, the event loop serving Bun.serve and timers while
// a receive waits, many connections at once, AbortSignal cancellation, close with operations in
// flight, ordered sends under backpressure, UDP datagrams, errors, and `using` disposal.
import { describe, expect, test } from "bun:test";
import { openRing, type AsyncRing, type TcpSocket } from "../src/api/index.ts";
import { socketHostOf } from "../src/api/ring.ts";
import { UringError } from "../src/error.ts";
import { c } from "../ffi/index.ts";
import { AF_INET, SOCK_DGRAM } from "../src/abi/net.ts";
import { sockaddr } from "../src/net/sockaddr.ts";
import { needKernel, testIf } from "./helpers.ts";
import { asyncPair } from "./fixtures/loopback.ts";
import { openFdCount, thrown } from "./fixtures/reliability-checks.ts";
import { pattern } from "../scripts/examples/lib.ts";

/** Bound per test, generous for the VM tier (an emulated CPU): some move megabytes or open many
 * sockets. */
const HEAVY_TIMEOUT_MS = 30_000;

/** Serve echo on every accepted connection until the listener closes. */
function echoServer(r: AsyncRing): { port: number; done: Promise<void>; close(): Promise<void> } {
  const l = r.listen({ host: "127.0.0.1", port: 0 });
  const conns: Promise<void>[] = [];
  const done = (async () => {
    for await (const s of l) {
      conns.push(
        (async () => {
          for await (const chunk of s.recv()) {
            // The chunk is the pool's buffer: it must stay untouched until the send released it.
            await s.send(chunk).released;
          }
          await s.close();
        })(),
      );
    }
    await Promise.all(conns);
  })();
  return { port: l.port, done, close: () => l.close() };
}

/** Read exactly `n` bytes from `s` into one array. */
async function readExact(s: TcpSocket, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  if (n === 0) return out;
  for await (const chunk of s.recv()) {
    out.set(chunk.subarray(0, Math.min(chunk.length, n - got)), got);
    got += chunk.length;
    if (got >= n) break;
  }
  expect(got).toBe(n);
  return out;
}

describe("async API", () => {
  test(
    "echo round trip is byte-exact (1 MiB through SEND_ZC/SEND and multishot receive)",
    async () => {
      const r = openRing();
      try {
        const srv = echoServer(r);
        const cl = await r.connect({ host: "127.0.0.1", port: srv.port });
        const data = pattern(1 << 20, 7);
        const reading = readExact(cl, data.length);
        const op = cl.send(data);
        expect(await op).toBe(data.length);
        await op.released;
        const back = await reading;
        expect(Buffer.compare(Buffer.from(back), Buffer.from(data))).toBe(0);
        await cl.close();
        await srv.close();
        await srv.done;
        expect(r.inflight).toBe(0);
        expect(r.buffersOut).toBe(0);
      } finally {
        await r.close();
      }
      expect(r.ring.isClosed).toBe(true);
    },
    HEAVY_TIMEOUT_MS,
  );

  test(
    "the event loop stays alive while a receive waits: a timer fires and Bun.serve answers",
    async () => {
      const r = openRing();
      const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("served while waiting") });
      try {
        const { l, cl, peer } = await asyncPair(r);
        const it = peer.recv()[Symbol.asyncIterator]();
        const pending = it.next();
        expect(r.inflight).toBeGreaterThan(0);
        // Both happen while the receive is pending in the kernel.
        let fired = false;
        await new Promise<void>((resolve) => setTimeout(() => ((fired = true), resolve()), 5));
        const body = await (await fetch(`http://127.0.0.1:${server.port}/`)).text();
        expect(fired).toBe(true);
        expect(body).toBe("served while waiting");
        // Only now does the peer send: the receive completes through the same loop.
        await cl.send("after the request");
        const first = await pending;
        expect(first.done).toBe(false);
        expect(new TextDecoder().decode(first.value!)).toBe("after the request");
        await it.return!();
        await cl.close();
        await peer.close();
        await l.close();
        expect(r.inflight).toBe(0);
      } finally {
        server.stop(true);
        await r.close();
      }
    },
    HEAVY_TIMEOUT_MS,
  );

  test(
    "50 concurrent connections each echo their own bytes",
    async () => {
      const r = openRing({ recvBuffers: 512, recvBufferBytes: 4096 });
      try {
        const srv = echoServer(r);
        const clients = await Promise.all(
          Array.from({ length: 50 }, () => r.connect({ host: "127.0.0.1", port: srv.port })),
        );
        const results = await Promise.all(
          clients.map(async (cl, i) => {
            const data = pattern(20_000 + i * 97, i + 1);
            const reading = readExact(cl, data.length);
            cl.send(data);
            const back = await reading;
            return Buffer.compare(Buffer.from(back), Buffer.from(data)) === 0;
          }),
        );
        expect(results.every(Boolean)).toBe(true);
        await Promise.all(clients.map((c) => c.close()));
        await srv.close();
        await srv.done;
        expect(r.inflight).toBe(0);
        expect(r.buffersOut).toBe(0);
      } finally {
        await r.close();
      }
    },
    HEAVY_TIMEOUT_MS,
  );

  test(
    "AbortSignal cancels a pending receive (ECANCELED, cause = the reason) and the socket stays usable",
    async () => {
      await using r = openRing();
      const { l, cl, peer } = await asyncPair(r);
      const ac = new AbortController();
      const it = peer.recv({ signal: ac.signal })[Symbol.asyncIterator]();
      const pending = it.next();
      setTimeout(() => ac.abort(new Error("user gave up")), 1);
      const err = await pending.then(
        () => null,
        (e) => e,
      );
      expect(err).toBeInstanceOf(UringError);
      expect((err as UringError).code).toBe("ECANCELED");
      expect((err as UringError).syscall).toBe("IORING_OP_RECV");
      expect(((err as UringError).cause as Error).message).toBe("user gave up");
      // A new stream on the same socket receives what comes next.
      const reading = readExact(peer, 5);
      await cl.send("again");
      expect(new TextDecoder().decode(await reading)).toBe("again");
      await cl.close();
      await peer.close();
      await l.close();
      expect(r.inflight).toBe(0);
    },
    HEAVY_TIMEOUT_MS,
  );

  test(
    "AbortSignal cancels a waiting accept; the listener accepts again afterwards",
    async () => {
      await using r = openRing();
      const l = r.listen({ host: "127.0.0.1", port: 0 });
      const ac = new AbortController();
      const waiting = l.accept({ signal: ac.signal });
      setTimeout(() => ac.abort(), 1);
      const err = await waiting.then(
        () => null,
        (e) => e,
      );
      expect(err).toBeInstanceOf(UringError);
      expect((err as UringError).code).toBe("ECANCELED");
      const { cl, peer } = await asyncPair(r, l);
      expect(peer.remoteAddress.port).toBe(cl.localAddress.port);
      await cl.close();
      await peer.close();
      await l.close();
      expect(r.inflight).toBe(0);
    },
    HEAVY_TIMEOUT_MS,
  );

  test(
    "an already aborted signal rejects at once without reaching the kernel",
    async () => {
      await using r = openRing();
      const err = await r.connect({ host: "127.0.0.1", port: 9, signal: AbortSignal.abort() }).then(
        () => null,
        (e) => e,
      );
      expect((err as UringError).code).toBe("ECANCELED");
      expect((err as UringError).syscall).toBe("IORING_OP_CONNECT");
      expect(r.inflight).toBe(0);
    },
    HEAVY_TIMEOUT_MS,
  );

  test(
    "close with a receive pending, sends in flight and chunks held: nothing in flight, every buffer back",
    async () => {
      const r = openRing({ maxInflightSends: 4 });
      try {
        const { l, cl, peer } = await asyncPair(r);
        // The client receives nothing it reads: its stream holds a pending multishot receive.
        const clIt = cl.recv()[Symbol.asyncIterator]();
        const clPending = clIt.next();
        // The peer gets data and holds one chunk without stepping on.
        const peerIt = peer.recv()[Symbol.asyncIterator]();
        const first = peerIt.next();
        const sends = Array.from({ length: 10 }, (_, i) => cl.send(pattern(8192, i)));
        expect((await first).done).toBe(false);
        expect(r.buffersOut).toBeGreaterThan(0);
        expect(r.inflight).toBeGreaterThan(0);
        await Promise.all([cl.close(), peer.close(), l.close()]);
        for (const s of sends) {
          expect(s.isSent).toBe(true);
          await s.released;
        }
        expect((await clPending).done).toBe(true);
        expect(r.inflight).toBe(0);
        expect(r.buffersOut).toBe(0);
        expect(cl.inflight).toBe(0);
      } finally {
        await r.close();
      }
      expect(r.ring.isClosed).toBe(true);
    },
    HEAVY_TIMEOUT_MS,
  );

  test(
    "closing the ring itself with everything still open cancels and releases all of it",
    async () => {
      const r = openRing();
      const { l, cl, peer } = await asyncPair(r);
      const pending = peer.recv()[Symbol.asyncIterator]().next();
      const waitingAccept = l.accept().then(
        () => "accepted",
        (e: UringError) => e.code,
      );
      expect(r.inflight).toBeGreaterThan(0);
      r.closeNow();
      expect(r.ring.isClosed).toBe(true);
      expect(r.inflight).toBe(0);
      expect(r.buffersOut).toBe(0);
      expect((await pending).done).toBe(true);
      expect(await waitingAccept).toBe("EBADF");
      expect(cl.isClosed).toBe(true);
    },
    HEAVY_TIMEOUT_MS,
  );

  test(
    "sends beyond the in-flight bound wait in order; ready() resolves as they drain",
    async () => {
      const r = openRing({ maxInflightSends: 2, zcThresholdBytes: 1024 });
      try {
        const { l, cl, peer } = await asyncPair(r);
        const parts = Array.from({ length: 40 }, (_, i) => pattern(3000 + i * 11, i + 100));
        const total = parts.reduce((a, p) => a + p.length, 0);
        const reading = readExact(peer, total);
        const ops = [];
        for (const p of parts) {
          await cl.ready();
          expect(cl.pendingSends).toBeLessThan(2 + 1);
          ops.push(cl.send(p));
        }
        await Promise.all(ops.map((o) => o.sent));
        const back = await reading;
        let at = 0;
        for (const p of parts) {
          expect(Buffer.compare(Buffer.from(back.subarray(at, at + p.length)), Buffer.from(p))).toBe(0);
          at += p.length;
        }
        // Loopback always copies: zero-copy sends report it, and the socket falls back to SEND.
        expect(cl.sendStats.zeroCopy + cl.sendStats.copied + cl.sendStats.plain).toBeGreaterThan(0);
        await Promise.all([cl.close(), peer.close(), l.close()]);
        expect(r.inflight).toBe(0);
      } finally {
        await r.close();
      }
    },
    HEAVY_TIMEOUT_MS,
  );

  test(
    "end() half-closes after the queued sends: the peer reads every byte, then EOF, and can still answer",
    async () => {
      await using r = openRing({ zcThresholdBytes: 4096 });
      const { l, cl, peer } = await asyncPair(r);
      const parts = [pattern(100_000, 1), pattern(5, 2), pattern(70_000, 3)];
      const got: Uint8Array[] = [];
      // The peer reads while the sends go out (they complete only as it makes room).
      const reading = (async () => {
        for await (const chunk of peer.recv()) got.push(chunk.slice());
      })();
      for (const p of parts) cl.send(p);
      await cl.end();
      expect(cl.pendingSends).toBe(0);
      await reading;
      expect(Buffer.compare(Buffer.concat(got), Buffer.concat(parts.map((p) => Buffer.from(p))))).toBe(0);
      const answer = readExact(cl, 4);
      await peer.send("done");
      expect(new TextDecoder().decode(await answer)).toBe("done");
      await Promise.all([cl.close(), peer.close(), l.close()]);
      expect(r.inflight).toBe(0);
    },
    HEAVY_TIMEOUT_MS,
  );

  test(
    "UDP: datagrams keep their boundaries, to a given destination and on a connected socket",
    async () => {
      await using r = openRing();
      const a = r.udp({ host: "127.0.0.1", port: 0 });
      const b = r.udp({ host: "127.0.0.1", port: 0, connect: { host: "127.0.0.1", port: a.localAddress.port } });
      const it = a.recv()[Symbol.asyncIterator]();
      await b.send("first datagram");
      await b.sendTo(pattern(1200, 3), { host: "127.0.0.1", port: a.localAddress.port });
      const d1 = await it.next();
      expect(new TextDecoder().decode(d1.value!)).toBe("first datagram");
      const d2 = await it.next();
      expect(Buffer.compare(Buffer.from(d2.value!), Buffer.from(pattern(1200, 3)))).toBe(0);
      await it.return!();
      await Promise.all([a.close(), b.close()]);
      expect(r.inflight).toBe(0);
    },
    HEAVY_TIMEOUT_MS,
  );

  test(
    "a stream starved by ENOBUFS resumes when the only buffer came back before its ENOBUFS was handled",
    async () => {
      // Without DEFER_TASKRUN the kernel posts the ENOBUFS CQE at any syscall's return, so the
      // consumer holding the pool's only buffer may give it back before the driver dispatches that
      // CQE: no later recycle comes, and the starved stream must be armed again at once.
      for (const deferTaskrun of [false, true]) {
        const r = openRing({ deferTaskrun, recvBuffers: 1, recvBufferBytes: 2048 });
        try {
          const a = r.udp({ host: "127.0.0.1", port: 0 });
          const b = r.udp({ host: "127.0.0.1", port: 0 });
          const x = r.udp({ host: "127.0.0.1", port: 0 });
          const sa = a.recv(),
            sb = b.recv();
          await x.sendTo("to-a", a.localAddress);
          expect(new TextDecoder().decode((await sa.next()).value!)).toBe("to-a");
          expect(r.buffersOut).toBe(1);
          await Bun.sleep(20);
          // A datagram for B from outside the ring: B's receive finds no buffer while the driver
          // waits, and A steps on (its buffer goes back) before the driver has run.
          const raw = c.socket(AF_INET, SOCK_DGRAM, 0);
          const to = sockaddr(b.localAddress);
          const msg = new TextEncoder().encode("to-b");
          expect(c.connect(raw, to.bytes, to.length)).toBe(0);
          expect(c.send(raw, msg, msg.length, 0)).toBe(msg.length);
          c.close(raw);
          const pa = sa.next();
          // A stream left starved would never settle: the test's timeout is the failure.
          expect(new TextDecoder().decode((await sb.next()).value!)).toBe("to-b");
          await Promise.all([sa.return(), sb.return()]);
          void pa;
          await Promise.all([a.close(), b.close(), x.close()]);
          expect(r.inflight).toBe(0);
          expect(r.buffersOut).toBe(0);
        } finally {
          await r.close();
        }
      }
    },
    HEAVY_TIMEOUT_MS,
  );

  testIf(
    needKernel("6.6", "IORING_ASYNC_CANCEL_OP"),
    "cancelling a socket's zero-copy receive leaves its sends in flight alone",
    async () => {
      // What ZcrxStream.return(), its abort and TcpSocket.close() submit: ASYNC_CANCEL by fd and
      // opcode (RECV_ZC). On a kernel without RECV_ZC it finds nothing; a cancel by fd alone would
      // cut the 32 MiB send below in the middle.
      await using r = openRing();
      const { l, cl: sock, peer } = await asyncPair(r);
      const big = pattern(32 << 20, 5);
      const op = sock.send(big);
      await Bun.sleep(50);
      expect(op.isSent).toBe(false);
      socketHostOf(r).cancelRecvZc(sock.fd);
      await Bun.sleep(50);
      // Still waiting for the peer to read, not failed.
      expect(op.isSent).toBe(false);
      let n = 0;
      for await (const chunk of peer.recv()) {
        n += chunk.length;
        if (n >= big.length) break;
      }
      expect(n).toBe(big.length);
      expect(await op.sent).toBe(big.length);
      await op.released;
      await Promise.all([sock.close(), peer.close(), l.close()]);
      expect(r.inflight).toBe(0);
    },
    HEAVY_TIMEOUT_MS,
  );

  test(
    "a send that finds the ring's op table full waits, without blocking the loop, and goes out once room frees",
    async () => {
      await using r = openRing({ maxInflight: 32 });
      const { l, cl: sock, peer } = await asyncPair(r);
      const it = peer.recv()[Symbol.asyncIterator]();
      await Bun.sleep(5);
      // Take every free entry (as many busy sockets would), then send.
      const taken: number[] = [];
      while (r.ring.ops.available > 0) taken.push(r.ring.ops.add(() => {}, null));
      const op = sock.send("waits for an entry");
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      await Bun.sleep(30);
      expect(op.isSent).toBe(false);
      expect(ticks).toBeGreaterThan(0); // the event loop kept turning
      for (const ud of taken) r.ring.ops.cancelUnsubmitted(ud);
      expect(await op.sent).toBe(18);
      clearInterval(timer);
      const got = await it.next();
      expect(new TextDecoder().decode(got.value!)).toBe("waits for an entry");
      await it.return!();
      await Promise.all([sock.close(), peer.close(), l.close()]);
      expect(r.inflight).toBe(0);
    },
    HEAVY_TIMEOUT_MS,
  );

  test(
    "bad socket requests fail up front with the reason: an unconnected UDP end(), a bad backlog; a refused connect names the address",
    async () => {
      await using r = openRing();
      const u = r.udp({ host: "127.0.0.1", port: 0 });
      await expect(u.end()).rejects.toThrow(/unconnected UDP socket/);
      // The socket is not shut for writing: it still sends.
      const v = r.udp({ host: "127.0.0.1", port: 0 });
      const it = v.recv()[Symbol.asyncIterator]();
      await u.sendTo("still sends", v.localAddress);
      expect(new TextDecoder().decode((await it.next()).value!)).toBe("still sends");
      await it.return!();
      for (const backlog of [Number.NaN, -1, 1.5, "abc" as unknown as number]) {
        expect(() => r.listen({ host: "127.0.0.1", port: 0, backlog })).toThrow(/backlog must be an integer/);
      }
      const err = await r.connect({ host: "::1", port: 1 }).then(
        () => null,
        (e) => e as UringError,
      );
      expect(err?.code).toBe("ECONNREFUSED");
      expect(err?.message).toContain("[::1]:1");
      await Promise.all([u.close(), v.close()]);
      expect(r.inflight).toBe(0);
    },
    HEAVY_TIMEOUT_MS,
  );

  test(
    "errors reject with UringError: a refused connection, a send after close, a second receive stream",
    async () => {
      await using r = openRing();
      // A port that was just bound and closed again has no listener.
      const tmp = r.listen({ host: "127.0.0.1", port: 0 });
      const port = tmp.port;
      await tmp.close();
      const err = await r.connect({ host: "127.0.0.1", port }).then(
        () => null,
        (e) => e,
      );
      expect(err).toBeInstanceOf(UringError);
      expect((err as UringError).code).toBe("ECONNREFUSED");
      expect((err as UringError).syscall).toBe("IORING_OP_CONNECT");

      const { l, cl, peer } = await asyncPair(r);
      peer.recv();
      expect(() => peer.recv()).toThrow(/already has a receive stream/);
      await cl.close();
      const late = cl.send("too late");
      const lateErr = await late.sent.then(
        () => null,
        (e) => e,
      );
      expect((lateErr as UringError).code).toBe("EBADF");
      await late.released;
      await Promise.all([peer.close(), l.close()]);
      expect(() => r.listen({ host: "not an address", port: 1 })).toThrow(UringError);
      expect(r.inflight).toBe(0);
    },
    HEAVY_TIMEOUT_MS,
  );

  test(
    "`using` disposes the ring; `await using` closes it gracefully",
    async () => {
      let kept: AsyncRing;
      {
        using r = openRing();
        kept = r;
        r.listen({ host: "127.0.0.1", port: 0 });
      }
      expect(kept.ring.isClosed).toBe(true);
      {
        await using r = openRing();
        kept = r;
        const { l, cl } = await asyncPair(r);
        await cl.send("x");
      }
      expect(kept.ring.isClosed).toBe(true);
      expect(kept.inflight).toBe(0);
    },
    HEAVY_TIMEOUT_MS,
  );

  test(
    "a listener's loop waits out a full op table (EBUSY) instead of ending, and leaves no stale waiter",
    async () => {
      // Before (2026-12-05): the accept's refusal ended `for await (const sock of listener)`, and
      // the refused accept() left its waiter registered, so a later connection went to a promise
      // that had already rejected.
      await using r = openRing({ maxInflight: 16, maxInflightSends: 4 });
      const l = r.listen({ host: "127.0.0.1", port: 0 });
      const taken: number[] = [];
      while (r.ring.ops.available > 0) taken.push(r.ring.ops.add(() => {}, null));
      await expect(l.accept()).rejects.toThrow(/EBUSY/);
      const it = l[Symbol.asyncIterator]();
      const next = it.next();
      await Bun.sleep(30);
      expect(l.acceptErrors).toBeGreaterThan(0);
      expect(l.lastAcceptError?.code).toBe("EBUSY");
      for (const ud of taken) r.ring.ops.cancelUnsubmitted(ud);
      const cl = await r.connect({ host: "127.0.0.1", port: l.port });
      const peer = (await next).value as TcpSocket;
      expect(peer.remoteAddress.port).toBe(cl.localAddress.port);
      await it.return!();
      await Promise.all([cl.close(), peer.close(), l.close()]);
    },
    HEAVY_TIMEOUT_MS,
  );

  test("await ring.close() resolves with every fd of the ring closed, the driver's eventfd included", async () => {
    // Before (2026-12-05): the eventfd closed a tick after close() resolved, so a leak check right
    // after `await ring.close()` (or an `await using` block) counted it.
    const before = openFdCount();
    const r = openRing();
    const { cl, peer } = await asyncPair(r);
    await cl.send("x").sent;
    expect((await peer.recv().next()).value!.length).toBe(1);
    await r.close();
    expect(openFdCount()).toBe(before);
  });

  test("a receive pool too large to allocate is ENOMEM naming the pool, not a bare RangeError", async () => {
    // Before (2026-12-05): recv() threw the allocator's "RangeError: Out of memory".
    const r = openRing({ recvBuffers: 32768, recvBufferBytes: 1 << 30 });
    try {
      const { cl, peer } = await asyncPair(r);
      for (let i = 0; i < 2; i++) {
        const e = thrown(() => peer.recv()) as UringError;
        expect(e).toBeInstanceOf(UringError);
        expect(e.code).toBe("ENOMEM");
        expect(e.message).toMatch(/receive pool \(recvBuffers 32768 × recvBufferBytes 1073741824/);
      }
      await Promise.all([cl.close(), peer.close()]);
    } finally {
      await r.close();
    }
  });

  test("openRing refuses options of the wrong kind by name and type, before any ring or fd exists", () => {
    // Before (2026-12-05): null gave a bare TypeError, 5 and "x" were taken for {}, maxInflight 0
    // was reported as a bad maxInflightSends, and { recvBuffers: "256" } said "got 256".
    const refused = (o: unknown): string => {
      try {
        openRing(o as never).closeNow();
      } catch (e) {
        expect(e).toBeInstanceOf(UringError);
        expect((e as UringError).code).toBe("EINVAL");
        return (e as UringError).message;
      }
      return "accepted";
    };
    expect(refused(null)).toMatch(/options must be an object, got null/);
    expect(refused(5)).toMatch(/options must be an object, got 5/);
    expect(refused("x")).toMatch(/options must be an object, got "x" \(a string\)/);
    expect(refused({ maxInflight: 0 })).toMatch(/maxInflight must be an integer 1\.\.\d+, got 0/);
    expect(refused({ maxInflight: "64" })).toMatch(/maxInflight must be .*got "64" \(a string\)/);
    expect(refused({ recvBuffers: "256" })).toMatch(/recvBuffers must be .*got "256" \(a string\)/);
    expect(refused({ entries: "64" })).toMatch(/entries must be .*got "64" \(a string\)/);
    expect(refused({ sendMode: "bogus" })).toMatch(/sendMode must be .*got "bogus" \(a string\)/);
    expect(refused({ sendMode: 1 })).toMatch(/sendMode must be .*got 1/);
  });
});
