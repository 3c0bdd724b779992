// Tier 1: chunk handles and handler exceptions of the zcrx receiver, against the simulated kernel
// side. A stale handle must never free a live chunk, however many deliveries its slot has had
// since; a handler that throws must not cost the rest of its batch or their buffers.
import { describe, expect, test } from "bun:test";
import { SimulatedZcrx } from "../src/testing/index.ts";
import { PAGE_SIZE } from "../src/ring/memory.ts";

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed) & 0xff;
  return b;
}

describe("chunk handles", () => {
  test("a stale handle released after 512 (and 1024) deliveries on its slot is refused; the live chunk stays live", () => {
    const sim = new SimulatedZcrx({ areaBytes: 16 * PAGE_SIZE, rqEntries: 16 });
    const rx = sim.createReceiver();
    const fd = sim.connect();
    const handles: number[] = [];
    rx.recv(fd, { onData: (_: null, chunk) => handles.push(chunk) }, null);
    // One chunk per drain, released at once: the free slot is reused by every delivery.
    const deliverOne = (): number => {
      sim.send(fd, bytes(PAGE_SIZE, handles.length));
      rx.completions();
      return handles[handles.length - 1]!;
    };
    const stale = deliverOne();
    rx.release(stale);
    for (const deliveries of [512, 1024]) {
      while (handles.length < deliveries) rx.release(deliverOne());
      // Delivery number `deliveries + 1` is live now, on the slot the stale handle named.
      const live = deliverOne();
      expect(rx.live).toBe(1);
      expect(() => rx.release(stale)).toThrow(/already released/);
      expect(() => rx.view(stale)).toThrow(/already released/);
      expect(rx.live).toBe(1);
      expect(rx.unpublished + rx.stats.published).toBe(handles.length - 1);
      // The live chunk still reads its own bytes and releases once.
      expect(rx.view(live)).toEqual(bytes(PAGE_SIZE, handles.length - 1));
      rx.release(live);
    }
    rx.publish();
    sim.reclaim();
    expect(sim.buffersInUse).toBe(0);
    expect(sim.violations).toEqual([]);
  });

  test("handles are non-negative integers; strings, fractions and out-of-range numbers name no chunk", () => {
    const sim = new SimulatedZcrx({ areaBytes: 16 * PAGE_SIZE, rqEntries: 16 });
    const rx = sim.createReceiver();
    const fd = sim.connect();
    const handles: number[] = [];
    rx.recv(fd, { onData: (_: null, chunk) => handles.push(chunk) }, null);
    sim.send(fd, bytes(2 * PAGE_SIZE, 1));
    rx.completions();
    const h = handles[0]!;
    expect(Number.isSafeInteger(h) && h >= 0).toBe(true);
    for (const bad of [String(h), h + 0.5, -h, h + 2 ** 53, Number.NaN, Infinity] as unknown[]) {
      expect(() => rx.release(bad as number)).toThrow(/never issued|already released/);
    }
    expect(rx.live).toBe(2);
    for (const c of handles) rx.release(c);
    rx.publish();
    sim.reclaim();
    expect(sim.buffersInUse).toBe(0);
  });
});

describe("handlers that throw", () => {
  test("onData throwing on one chunk: the rest of the batch is delivered, its chunk is given back, the error surfaces after the batch", () => {
    const sim = new SimulatedZcrx({ areaBytes: 16 * PAGE_SIZE, rqEntries: 16 });
    const rx = sim.createReceiver();
    const fd = sim.connect();
    const seen: number[] = [];
    const boom = new Error("handler bug");
    rx.recv(fd, {
      onData: (_: null, chunk, _offset, length) => {
        seen.push(length);
        if (seen.length === 2) throw boom;
        rx.release(chunk);
      },
    }, null);
    // Four chunks in one drain.
    sim.send(fd, bytes(4 * PAGE_SIZE, 2));
    let thrown: unknown = null;
    try {
      rx.completions();
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBe(boom);
    expect(seen.length).toBe(4);
    expect(rx.live).toBe(0);
    expect(rx.stats.handlerErrors).toBe(1);
    // Every buffer went back: the publish ran before the error was rethrown.
    expect(rx.needsPublish).toBe(false);
    sim.reclaim();
    expect(sim.buffersInUse).toBe(0);
    // The connection goes on.
    sim.send(fd, bytes(PAGE_SIZE, 3));
    rx.completions();
    expect(seen.length).toBe(5);
  });

  test("with onError, every exception goes there and completions() returns normally; onEnd throwing is reported the same way", () => {
    const sim = new SimulatedZcrx({ areaBytes: 16 * PAGE_SIZE, rqEntries: 16 });
    const errors: unknown[] = [];
    const rx = sim.createReceiver({ onError: (e) => errors.push(e) });
    const fd = sim.connect();
    let n = 0;
    rx.recv(fd, {
      onData: (_: null, chunk) => {
        n++;
        // A handler that kept the handle and then threw: the receiver leaves it alone.
        if (n % 2 === 0) {
          rx.release(chunk);
          throw new Error(`even ${n}`);
        }
        throw new Error(`odd ${n}`);
      },
      onEnd: () => {
        throw new Error("end");
      },
    }, null);
    sim.send(fd, bytes(4 * PAGE_SIZE, 4));
    sim.shutdown(fd);
    expect(rx.completions()).toBe(5);
    expect(errors.map((e) => (e as Error).message)).toEqual(["odd 1", "even 2", "odd 3", "even 4", "end"]);
    expect(rx.live).toBe(0);
    expect(rx.ended(0)).toBe(true);
    sim.reclaim();
    expect(sim.buffersInUse).toBe(0);
  });
});
