// Tier 1: refill batching of the async API (ZcrxStream + RefillTurn) over the simulated kernel
// side in device-less mode (a flush after each publish), driven from the event loop like a ring:
// one publish per turn whatever the releases, one flush per publish at most, a receive parked by
// an empty area re-armed at the low-water mark or when releases stop, and the area-dry signal.
import { describe, expect, test } from "bun:test";
import { SimulatedRecvZc, SimulatedZcrx, assertClean } from "../src/testing/index.ts";
import { ZcrxStream, type ZcrxChunk } from "../src/api/zcrx.ts";
import { PAGE_SIZE } from "../src/ring/memory.ts";
import { UringError } from "../src/error.ts";
import { EBADF } from "../src/abi/errno.ts";

const TIMEOUT_MS = 30_000;

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 251 + (i >>> 12) + seed) & 0xff;
  return b;
}

async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

async function until(done: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setImmediate(r));
  }
}

describe("async refill batching (simulated device-less zcrx)", () => {
  test(
    "release-each `for await`: at least 32 releases per publish, flushes <= publishes, every byte in order",
    async () => {
      // 256 buffers, a refill ring that holds them all; 8 MiB queued at once, as from a fast peer.
      const host = new SimulatedRecvZc({ areaBytes: 256 * PAGE_SIZE, rqEntries: 256 });
      try {
        const fd = host.connect();
        const data = pattern(8 << 20, 1);
        host.sim.send(fd, data);
        host.sim.shutdown(fd);
        let got = 0,
          bad = -1;
        for await (const chunk of host.recvZc(fd)) {
          if (bad < 0 && !Buffer.from(chunk.data).equals(data.subarray(got, got + chunk.data.length))) bad = got;
          got += chunk.data.length;
          chunk.release();
        }
        expect(got).toBe(data.length);
        expect(bad).toBe(-1);
        await turns(2);
        const s = host.receiver.stats;
        expect(s.released).toBe(s.chunks);
        expect(s.published).toBe(s.released);
        // Releases per tail store: the goal is 32; one turn here takes a whole area's worth.
        expect(s.published / s.publishes).toBeGreaterThanOrEqual(32);
        expect(s.flushes).toBeLessThanOrEqual(s.publishes);
        // The area ran dry again and again (the data is 32 areas), and each re-arm came with at
        // least the low-water mark of buffers, never one.
        expect(s.starvations).toBeGreaterThan(0);
        expect(s.rearms).toBe(s.starvations);
        assertClean(host);
      } finally {
        host.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "a receive parked by an empty area is re-armed by a turn that brings the low-water mark back, not by one release",
    async () => {
      const host = new SimulatedRecvZc({ areaBytes: 64 * PAGE_SIZE, rqEntries: 64, receiver: { rearmLowWater: 16 } });
      try {
        const fd = host.connect();
        host.sim.send(fd, pattern(256 * PAGE_SIZE, 2));
        const stream = host.recvZc(fd);
        const held: ZcrxChunk[] = [];
        for (let i = 0; i < 64; i++) held.push((await stream.next()).value!);
        await until(() => stream.starved);
        expect(await stream.areaDry()).toBe(true);
        // Fifteen releases, each in a turn of its own that then releases nothing more would
        // resume at once; here the consumer keeps releasing, one per turn, and the receive waits
        // for the sixteenth.
        const rearms = host.receiver.stats.rearms;
        for (let i = 0; i < 15; i++) {
          held.shift()!.release();
          await new Promise((r) => setImmediate(r));
          expect(host.receiver.stats.rearms).toBe(rearms);
        }
        for (let i = 0; i < 16; i++) held.shift()!.release();
        await until(() => host.receiver.stats.rearms === rearms + 1);
        expect(host.receiver.stats.flushes).toBeLessThanOrEqual(host.receiver.stats.publishes);
        await stream.return();
        for (const c of held) c.release();
        await turns(2);
        assertClean(host);
      } finally {
        host.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "a consumer that releases fewer than the low-water mark and then waits still gets data: the quiet turn re-arms",
    async () => {
      const host = new SimulatedRecvZc({ areaBytes: 64 * PAGE_SIZE, rqEntries: 64, receiver: { rearmLowWater: 16 } });
      try {
        const fd = host.connect();
        host.sim.send(fd, pattern(65 * PAGE_SIZE, 3));
        host.sim.shutdown(fd);
        const stream = host.recvZc(fd);
        const held: ZcrxChunk[] = [];
        for (let i = 0; i < 64; i++) held.push((await stream.next()).value!);
        await until(() => stream.starved);
        // Two back, then nothing: the 65th page must still arrive.
        held.pop()!.release();
        held.pop()!.release();
        const last = await stream.next();
        expect(last.done).toBe(false);
        expect(last.value!.data.length).toBe(PAGE_SIZE);
        last.value!.release();
        expect(host.receiver.stats.rearms).toBe(1);
        for (const c of held) c.release();
        expect((await stream.next()).done).toBe(true);
        await turns(2);
        assertClean(host);
      } finally {
        host.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "the area runs dry in a later drain than its chunks, all of them already released and published: the receive still resumes",
    async () => {
      // Four buffers, and the simulated ring hands over four CQEs per drain, driven by hand here
      // so the order is a real ring's under load: the four chunks come in one drain, are released,
      // and the turn publishes them; the -ENOMEM that ended the receive comes in the next drain,
      // when nothing is held and no release is coming.
      const sim = new SimulatedZcrx({ areaBytes: 4 * PAGE_SIZE, rqEntries: 16, maxDispatch: 4, reclaim: "flush" });
      const rx = sim.createReceiver();
      const kicks = { n: 0 };
      const stream = new ZcrxStream(rx, sim.connect(), { kick: () => kicks.n++, cancelRecvZc() {} });
      try {
        sim.send(stream.fd, pattern(12 * PAGE_SIZE, 5));
        expect(sim.reap(0, undefined)).toBe(4);
        for (let i = 0; i < 4; i++) (await stream.next()).value!.release();
        await turns(1);
        expect(rx.stats.published).toBe(4);
        expect(sim.reap(0, undefined)).toBe(1);
        expect(stream.starved).toBe(true);
        expect(rx.live).toBe(0);
        await turns(2);
        expect(rx.stats.rearms).toBe(1);
        expect(stream.starved).toBe(false);
        expect(sim.reap(0, undefined)).toBe(4);
        expect(stream.queued).toBe(4);
      } finally {
        await stream.return();
        rx.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "a NIC-like queue that stalls (7.2 events): ZCRX_EVENT_ALLOC_FAIL resolves areaDry(), is re-armed by the publish, and fires again",
    async () => {
      const host = new SimulatedRecvZc({ areaBytes: 8 * PAGE_SIZE, rqEntries: 16, onStarve: "stall", events: true });
      try {
        const fd = host.connect();
        const data = pattern(24 * PAGE_SIZE, 7);
        host.sim.send(fd, data);
        host.sim.shutdown(fd);
        const stream = host.recvZc(fd);
        let got = 0;
        for (let lap = 1; lap <= 2; lap++) {
          const dry = stream.areaDry();
          const held: ZcrxChunk[] = [];
          for (let i = 0; i < 8; i++) held.push((await stream.next()).value!);
          expect(await dry).toBe(true);
          // A stalled NIC queue: nothing ended, nothing parked, the event says it.
          expect(stream.starved).toBe(false);
          expect(host.receiver.stats.allocFailEvents).toBe(lap);
          for (const c of held) {
            expect(Buffer.from(c.data).equals(data.subarray(got, got + c.data.length))).toBe(true);
            got += c.data.length;
            c.release();
          }
        }
        for await (const c of stream) {
          got += c.data.length;
          c.release();
        }
        expect(got).toBe(data.length);
        expect(host.receiver.stats.starvations).toBe(0);
        await turns(2);
        assertClean(host);
      } finally {
        host.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "a publish that fails (here FLUSH_RQ) stops the streams and rejects next() with its error, instead of throwing from the event loop",
    async () => {
      const host = new SimulatedRecvZc({ areaBytes: 64 * PAGE_SIZE, rqEntries: 64 });
      try {
        const fd = host.connect();
        const stream = host.recvZc(fd);
        host.sim.afterPublish = () => {
          throw new UringError("IORING_REGISTER_ZCRX_CTRL", EBADF, "ZCRX_CTRL_FLUSH_RQ zcrx_id 0");
        };
        host.sim.send(fd, pattern(4 * PAGE_SIZE, 8));
        const first = await stream.next();
        first.value!.release();
        const err = await (async () => {
          try {
            for (;;) {
              const r = await stream.next();
              if (r.done) return null;
              r.value.release();
            }
          } catch (e) {
            return e;
          }
        })();
        expect(err).toBeInstanceOf(UringError);
        expect((err as UringError).syscall).toBe("IORING_REGISTER_ZCRX_CTRL");
        expect((err as UringError).errno).toBe(EBADF);
        expect((await stream.next()).done).toBe(true);
      } finally {
        host.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "chunk.offset and chunk.length locate the bytes in the area; data is made on first use and refused after release()",
    async () => {
      const host = new SimulatedRecvZc({ areaBytes: 16 * PAGE_SIZE, rqEntries: 16 });
      try {
        const fd = host.connect();
        const stream = host.recvZc(fd);
        const data = pattern(PAGE_SIZE + 100, 9);
        host.sim.send(fd, data);
        const c = (await stream.next()).value!;
        expect(c.length).toBe(PAGE_SIZE);
        const area = stream.receiver.area;
        expect(Buffer.from(area.subarray(c.offset, c.offset + c.length)).equals(data.subarray(0, PAGE_SIZE))).toBe(
          true,
        );
        expect(c.data).toBe(c.data);
        expect(c.data.byteOffset - area.byteOffset).toBe(c.offset);
        c.release();
        expect(() => c.data).toThrow(/released/);
        const d = (await stream.next()).value!;
        expect(d.length).toBe(100);
        d.release();
        await stream.return();
        await turns(2);
        assertClean(host);
      } finally {
        host.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "poll() takes what a drain delivered without a promise, and null when nothing is queued",
    async () => {
      const host = new SimulatedRecvZc({ areaBytes: 64 * PAGE_SIZE, rqEntries: 64 });
      try {
        const fd = host.connect();
        const stream = host.recvZc(fd);
        expect(stream.poll()).toBeNull();
        const data = pattern(10 * PAGE_SIZE, 6);
        host.sim.send(fd, data);
        host.sim.shutdown(fd);
        let got = 0,
          polled = 0;
        for await (const first of stream) {
          const use = (c: ZcrxChunk): void => {
            expect(Buffer.from(c.data).equals(data.subarray(got, got + c.data.length))).toBe(true);
            got += c.data.length;
            c.release();
          };
          use(first);
          for (let c = stream.poll(); c !== null; c = stream.poll()) {
            polled++;
            use(c);
          }
        }
        expect(got).toBe(data.length);
        expect(polled).toBe(9);
        expect(stream.poll()).toBeNull();
        await turns(2);
        assertClean(host);
      } finally {
        host.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "areaDry() resolves false when the stream ends first; assertClean names the chunks still held",
    async () => {
      const host = new SimulatedRecvZc({ areaBytes: 64 * PAGE_SIZE, rqEntries: 64 });
      try {
        const fd = host.connect();
        const stream = host.recvZc(fd);
        const dry = stream.areaDry();
        host.sim.send(fd, pattern(3 * PAGE_SIZE, 4));
        host.sim.shutdown(fd);
        const chunks: ZcrxChunk[] = [];
        for await (const c of stream) chunks.push(c);
        expect(await dry).toBe(false);
        expect(await stream.areaDry()).toBe(false);
        chunks[0]!.release();
        await turns(2);
        expect(() => assertClean(host)).toThrow(
          /2 chunks still held: chunk \d+ \(fd \d+, area bytes \d+\.\.\d+\), chunk \d+/,
        );
        for (const c of chunks.slice(1)) c.release();
        await turns(2);
        assertClean(host);
      } finally {
        host.close();
      }
    },
    TIMEOUT_MS,
  );
});
