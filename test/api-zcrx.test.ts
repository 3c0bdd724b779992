// Zero-copy receive in the async API: ZcrxStream over the simulated kernel side (every machine),
// the ring-level checks of registerZcrx here, and RECV_ZC end to end with ZCRX_REG_NODEV where the
// kernel has it (7.1+, the VM tier).
import { describe, expect, test } from "bun:test";
import { openFdCount } from "./fixtures/reliability-checks.ts";
import { openRing, ZcrxStream, type TcpSocket, type ZcrxStreamHost } from "../src/api/index.ts";
import { zcrxRingDefaults } from "../src/zcrx/ifq.ts";
import { RefillLock } from "../src/zcrx/refill-lock.ts";
import { queryZcrx } from "../src/zcrx/query.ts";
import { SimulatedZcrx } from "../src/testing/index.ts";
import type { ZcrxReceiver } from "../src/zcrx/receiver.ts";
import { UringError } from "../src/error.ts";
import { EBUSY, ECANCELED, ECONNRESET } from "../src/abi/errno.ts";
import { PAGE_SIZE } from "../src/ring/memory.ts";
import { needKernel, testIf } from "./helpers.ts";
import { asyncPair } from "./fixtures/loopback.ts";

/** Bound per test, generous for the VM tier (an emulated CPU). */
const ZCRX_TIMEOUT_MS = 30_000;

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 7) & 0xff;
  return b;
}

/** Drives a simulated receiver from the event loop: completions on each turn. With `sim`, a
 * cancel reaches the simulated kernel as IORING_OP_ASYNC_CANCEL would; every cancel asked for is
 * recorded in `cancels`. */
function simHost(rx: ZcrxReceiver, sim?: SimulatedZcrx): ZcrxStreamHost & { stop(): void; cancels: number[] } {
  let running = true;
  const h = {
    cancels: [] as number[],
    kick() {},
    cancelRecvZc(fd: number) {
      h.cancels.push(fd);
      sim?.cancel(fd);
    },
    stop() {
      running = false;
    },
  };
  const pump = () => {
    if (!running) return;
    rx.completions();
    setImmediate(pump);
  };
  setImmediate(pump);
  return h;
}

/** Send `data` on `cl` (resolved once the kernel let go of it), then end the stream. */
async function sendAndEnd(cl: TcpSocket, data: Uint8Array): Promise<void> {
  await cl.send(data).released;
  await cl.end();
}

/** Let the event loop (and the simHost pump) run until `done()`, bounded. */
async function until(done: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setImmediate(r));
  }
}

/** A few event-loop turns, for checking that something does not happen. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** A stream on a 4-buffer area whose receive ran out of buffers (-ENOMEM) and is parked, with
 * the 4 chunks taken and held; `finishes` counts onFinish, as a socket's ops count would. */
async function parkedStream() {
  const sim = new SimulatedZcrx({ areaBytes: 4 * PAGE_SIZE, rqEntries: 16 });
  const rx = sim.createReceiver();
  const host = simHost(rx, sim);
  const fd = sim.connect();
  const ac = new AbortController();
  const stream = new ZcrxStream(rx, fd, host, { signal: ac.signal });
  const state = { finishes: 0 };
  stream.onFinish = () => state.finishes++;
  sim.send(fd, pattern(16 * PAGE_SIZE, 2));
  const held = [];
  for (let i = 0; i < 4; i++) held.push((await stream.next()).value!);
  await until(() => rx.stats.starvations === 1);
  return { sim, rx, host, fd, ac, stream, state, held };
}

describe("ZcrxStream (simulated kernel side)", () => {
  test(
    "chunks arrive in order, read in place, and every release goes back through the refill ring",
    async () => {
      const sim = new SimulatedZcrx({ areaBytes: 256 * 1024, rqEntries: 16 });
      const rx = sim.createReceiver();
      const host = simHost(rx);
      try {
        const fd = sim.connect();
        const data = pattern(1_000_000, 3);
        const stream = new ZcrxStream(rx, fd, host);
        // Feed in pieces from timers, so the stream waits in between.
        let at = 0;
        const feed = setInterval(() => {
          const n = Math.min(100_000, data.length - at);
          sim.send(fd, data.subarray(at, at + n));
          at += n;
          if (at === data.length) {
            sim.shutdown(fd);
            clearInterval(feed);
          }
        }, 1);
        let got = 0;
        let mismatch = -1;
        for await (const chunk of stream) {
          for (let i = 0; i < chunk.data.length && mismatch < 0; i++)
            if (chunk.data[i] !== data[got + i]) mismatch = got + i;
          got += chunk.data.length;
          chunk.release();
          expect(chunk.isReleased).toBe(true);
        }
        expect(got).toBe(data.length);
        expect(mismatch).toBe(-1);
        expect(rx.live).toBe(0);
        expect(rx.stats.publishes).toBeGreaterThan(0);
        expect(sim.violations).toEqual([]);
      } finally {
        host.stop();
        rx.close();
      }
    },
    ZCRX_TIMEOUT_MS,
  );

  test(
    "a second release of a chunk is refused; an error from the kernel side rejects next()",
    async () => {
      const sim = new SimulatedZcrx({ areaBytes: 64 * 1024, rqEntries: 16 });
      const rx = sim.createReceiver();
      const host = simHost(rx);
      try {
        const fd = sim.connect();
        const stream = new ZcrxStream(rx, fd, host);
        sim.send(fd, pattern(1000, 1));
        const first = await stream.next();
        expect(first.done).toBe(false);
        first.value!.release();
        expect(() => first.value!.release()).toThrow(/already released/);
        sim.fail(fd, ECONNRESET);
        const err = await stream.next().then(
          () => null,
          (e) => e,
        );
        expect(err).toBeInstanceOf(UringError);
        expect((err as UringError).code).toBe("ECONNRESET");
        expect((await stream.next()).done).toBe(true);
      } finally {
        host.stop();
        rx.close();
      }
    },
    ZCRX_TIMEOUT_MS,
  );

  test(
    "next() called again before the first settled is refused with EBUSY; the first still gets its chunk",
    async () => {
      const sim = new SimulatedZcrx({ areaBytes: 64 * 1024, rqEntries: 16 });
      const rx = sim.createReceiver();
      const host = simHost(rx, sim);
      try {
        const fd = sim.connect();
        const stream = new ZcrxStream(rx, fd, host);
        const first = stream.next();
        const err = await stream.next().then(
          () => null,
          (e) => e,
        );
        expect(err).toBeInstanceOf(UringError);
        expect((err as UringError).errno).toBe(EBUSY);
        expect((err as UringError).syscall).toBe("ZcrxStream.next");
        sim.send(fd, pattern(100, 4));
        sim.shutdown(fd);
        const r = await first;
        expect(r.done).toBe(false);
        expect(r.value!.data).toEqual(pattern(100, 4));
        r.value!.release();
        expect((await stream.next()).done).toBe(true);
        expect(rx.live).toBe(0);
      } finally {
        host.stop();
        rx.close();
      }
    },
    ZCRX_TIMEOUT_MS,
  );

  test(
    "return() while the receive is parked for buffers ends it at once; releases re-arm nothing",
    async () => {
      const { sim, rx, host, fd, stream, state, held } = await parkedStream();
      try {
        // Parked, the receive still counts as the socket's operation.
        expect(stream.armed).toBe(true);
        const waiting = stream.next();
        expect((await stream.return()).done).toBe(true);
        expect((await waiting).done).toBe(true);
        expect(state.finishes).toBe(1);
        expect(stream.armed).toBe(false);
        // Nothing was in the kernel, so nothing to cancel there.
        expect(host.cancels).toEqual([]);
        const handedOut = sim.counters.buffersHandedOut;
        for (const c of held) c.release();
        await turns(20);
        expect(sim.counters.buffersHandedOut).toBe(handedOut);
        expect(sim.queuedOn(fd)).toBe(12 * PAGE_SIZE);
        expect(rx.stats.rearms).toBe(0);
        expect(rx.live).toBe(0);
        expect((await stream.next()).done).toBe(true);
        expect(state.finishes).toBe(1);
      } finally {
        host.stop();
        rx.close();
      }
    },
    ZCRX_TIMEOUT_MS,
  );

  test(
    "an abort while the receive is parked for buffers rejects next() at once with the abort error",
    async () => {
      const { sim, rx, host, fd, ac, stream, state, held } = await parkedStream();
      try {
        const waiting = stream.next().then(
          () => null,
          (e) => e,
        );
        ac.abort();
        const err = await waiting;
        expect(err).toBeInstanceOf(UringError);
        expect((err as UringError).errno).toBe(ECANCELED);
        expect((err as UringError).message).toMatch(/aborted by its AbortSignal/);
        expect(state.finishes).toBe(1);
        expect(host.cancels).toEqual([]);
        for (const c of held) c.release();
        await turns(20);
        expect(sim.queuedOn(fd)).toBe(12 * PAGE_SIZE);
        expect(rx.stats.rearms).toBe(0);
        expect((await stream.next()).done).toBe(true);
      } finally {
        host.stop();
        rx.close();
      }
    },
    ZCRX_TIMEOUT_MS,
  );

  test(
    "return() with the receive in flight cancels the fd's RECV_ZC; its last CQE finishes the stream",
    async () => {
      const sim = new SimulatedZcrx({ areaBytes: 64 * 1024, rqEntries: 16 });
      const rx = sim.createReceiver();
      const host = simHost(rx, sim);
      try {
        const fd = sim.connect();
        const stream = new ZcrxStream(rx, fd, host);
        let finishes = 0;
        stream.onFinish = () => finishes++;
        sim.send(fd, pattern(1000, 6));
        const first = await stream.next();
        first.value!.release();
        expect((await stream.return()).done).toBe(true);
        expect(host.cancels).toEqual([fd]);
        await until(() => finishes === 1);
        expect(stream.armed).toBe(false);
        // The cancelled request is not re-armed: later bytes stay on the socket.
        sim.send(fd, pattern(500, 7));
        await turns(20);
        expect(sim.queuedOn(fd)).toBe(500);
        expect(rx.stats.rearms).toBe(0);
        expect(finishes).toBe(1);
      } finally {
        host.stop();
        rx.close();
      }
    },
    ZCRX_TIMEOUT_MS,
  );
});

describe("AsyncRing.registerZcrx", () => {
  test(
    "a ring without DEFER_TASKRUN and CQE32 is refused before the kernel is asked",
    async () => {
      // Without DEFER_TASKRUN (off on request), and by default (DEFER_TASKRUN on where the kernel
      // has it, but 16-byte CQEs).
      const plain = openRing({ deferTaskrun: false });
      try {
        expect(() => plain.registerZcrx({ nodev: true })).toThrow(/lacks IORING_SETUP_DEFER_TASKRUN/);
      } finally {
        await plain.close();
      }
      const r = openRing();
      try {
        expect(() => r.registerZcrx({ nodev: true })).toThrow(/IORING_SETUP_CQE32/);
        const { l, cl, peer } = await asyncPair(r);
        expect(() => peer.recvZc()).toThrow(/registerZcrx/);
        await Promise.all([cl.close(), peer.close(), l.close()]);
      } finally {
        await r.close();
      }
    },
    ZCRX_TIMEOUT_MS,
  );

  testIf(
    needKernel("7.1", "ZCRX_REG_NODEV"),
    "device-less RECV_ZC through the async API: byte-exact, every chunk released, nothing in flight",
    async () => {
      const r = openRing({ deferTaskrun: true, cqe32: true, cqEntries: 4096 });
      try {
        r.registerZcrx({ nodev: true, areaBytes: 1 << 20 });
        const { l, cl, peer } = await asyncPair(r);
        const data = pattern(4_000_000, 5);
        const sending = sendAndEnd(cl, data);
        let got = 0,
          mismatch = -1;
        for await (const chunk of peer.recvZc()) {
          for (let i = 0; i < chunk.data.length && mismatch < 0; i++)
            if (chunk.data[i] !== data[got + i]) mismatch = got + i;
          got += chunk.data.length;
          chunk.release();
        }
        await sending;
        expect(got).toBe(data.length);
        expect(mismatch).toBe(-1);
        await Promise.all([cl.close(), peer.close(), l.close()]);
        expect(r.inflight).toBe(0);
      } finally {
        await r.close();
      }
    },
    ZCRX_TIMEOUT_MS,
  );

  test("openRing({ zcrx }) sizes the CQ to the area and turns on what ZCRX needs, unless told otherwise", () => {
    // 16 MiB default area: 4096 page buffers; 1 MiB: 256, under twice the default SQ (512).
    expect(zcrxRingDefaults({}, { nodev: true })).toEqual({ cqe32: true, cqEntries: 4096 });
    expect(zcrxRingDefaults({}, { nodev: true, areaBytes: 1 << 20 })).toEqual({ cqe32: true, cqEntries: 512 });
    expect(zcrxRingDefaults({ entries: 64 }, { nodev: true, areaBytes: 1 << 20 })).toEqual({
      cqe32: true,
      cqEntries: 256,
    });
    expect(zcrxRingDefaults({}, { ifname: "eth0", areaBytes: 64 << 20, rxBufLen: 16384 })).toEqual({
      cqe32: true,
      cqEntries: 4096,
    });
    expect(zcrxRingDefaults({ cqEntries: 1024, cqeMixed: true }, { nodev: true })).toEqual({ cqEntries: 1024 });
    expect(zcrxRingDefaults({}, { nodev: true, areaBytes: 1 << 30 }).cqEntries).toBe(65536);
  });

  test("openRing({ zcrx }) that the kernel refuses throws its reason and leaves no descriptor open", () => {
    const fds = openFdCount;
    const before = fds();
    let err: unknown = null;
    try {
      openRing({ zcrx: { ifname: "lo", rxq: 0, areaBytes: 1 << 20 } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UringError);
    expect((err as UringError).syscall).toBe("IORING_REGISTER_ZCRX_IFQ");
    expect(fds()).toBe(before);
  });

  testIf(
    needKernel("7.1", "ZCRX_REG_NODEV"),
    "openRing({ zcrx: { nodev } }): registered at open, a CQ entry per area buffer, recvZc() works",
    async () => {
      const r = openRing({ zcrx: { nodev: true, areaBytes: 4 << 20 } });
      try {
        expect(r.zcrxQueue).not.toBeNull();
        expect(r.ring.cqEntries).toBeGreaterThanOrEqual(1024);
        const { l, cl, peer } = await asyncPair(r);
        const data = pattern(3_000_000, 8);
        const sending = sendAndEnd(cl, data);
        let got = 0;
        const stream = peer.recvZc();
        for await (const chunk of stream) {
          got += chunk.data.length;
          chunk.release();
        }
        await sending;
        expect(got).toBe(data.length);
        expect(stream.stats.rearmsEnospc).toBe(0);
        await Promise.all([cl.close(), peer.close(), l.close()]);
      } finally {
        await r.close();
      }
    },
    ZCRX_TIMEOUT_MS,
  );

  test("importZcrx checks its lock, and names the kernel that has ZCRX_REG_IMPORT where this one lacks it", async () => {
    const r = openRing({ deferTaskrun: true, cqe32: true });
    try {
      const queue = {
        area: { buffer: new SharedArrayBuffer(PAGE_SIZE), byteOffset: 0, byteLength: PAGE_SIZE },
        refill: {
          buffer: new SharedArrayBuffer(PAGE_SIZE),
          byteOffset: 0,
          byteLength: PAGE_SIZE,
          head: 0,
          tail: 4,
          rqes: 64,
          entries: 16,
        },
        areaToken: "0",
        nodev: true,
      };
      expect(() => r.importZcrx(3, queue, {} as RefillLock)).toThrow(/refillLock must be the RefillLock/);
      if (queryZcrx()?.import) return;
      let err: unknown = null;
      try {
        r.importZcrx(3, queue, new RefillLock());
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UringError);
      expect((err as UringError).message).toMatch(/ZCRX_REG_IMPORT needs Linux 6\.19/);
      expect(r.zcrxQueue).toBeNull();
    } finally {
      await r.close();
    }
  });

  test(
    "on this machine's loopback, registration fails with the kernel's reason, and the ring stays usable",
    async () => {
      const r = openRing({ deferTaskrun: true, cqe32: true });
      try {
        let err: unknown = null;
        try {
          r.registerZcrx({ ifname: "lo", rxq: 0 });
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(UringError);
        expect((err as UringError).syscall).toBe("IORING_REGISTER_ZCRX_IFQ");
        const { l, cl, peer } = await asyncPair(r);
        const it = peer.recv()[Symbol.asyncIterator]();
        await cl.send("still works");
        expect(new TextDecoder().decode((await it.next()).value!)).toBe("still works");
        await it.return!();
        await Promise.all([cl.close(), peer.close(), l.close()]);
        expect(r.inflight).toBe(0);
      } finally {
        await r.close();
      }
    },
    ZCRX_TIMEOUT_MS,
  );
});
