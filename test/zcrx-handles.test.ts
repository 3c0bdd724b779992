// Tier 1: chunk handles and handler exceptions of the zcrx receiver, against the simulated kernel
// side. A stale handle must never free a live chunk, however many deliveries its slot has had
// since; a handler that throws must not cost the rest of its batch or their buffers.
import { describe, expect, test } from "bun:test";
import { SimulatedZcrx, type SimulatedZcrxOptions } from "../src/testing/index.ts";
import { PAGE_SIZE } from "../src/ring/memory.ts";

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed) & 0xff;
  return b;
}

/** A 16-page simulated zcrx with a 16-entry refill ring, its receiver and one connection. */
function setup(o: SimulatedZcrxOptions = {}) {
  const sim = new SimulatedZcrx({ areaBytes: 16 * PAGE_SIZE, rqEntries: 16, ...o });
  return { sim, rx: sim.createReceiver(), fd: sim.connect() };
}

describe("chunk handles", () => {
  test("a stale handle stays refused through 4,096 later deliveries (the old 9-bit generation wrapped at 512); the live chunk stays live", () => {
    const { sim, rx, fd } = setup();
    const handles: number[] = [];
    rx.recv(fd, { onData: (_: null, chunk) => handles.push(chunk) }, null);
    // One chunk per drain, released before the next: the receiver reuses free slots.
    const deliverOne = (): number => {
      sim.send(fd, bytes(PAGE_SIZE, handles.length));
      rx.completions();
      return handles[handles.length - 1]!;
    };
    const stale = deliverOne();
    rx.release(stale);
    for (let n = 1; n <= 4096; n++) {
      const live = deliverOne();
      expect(rx.live).toBe(1);
      // A handle is either the live one or refused, whatever slot it names.
      if (live !== stale) expect(() => rx.release(stale)).toThrow(/already released/);
      expect(rx.live).toBe(1);
      if (n % 512 === 0) expect(rx.view(live)).toEqual(bytes(PAGE_SIZE, n));
      rx.release(live);
    }
    expect(new Set(handles).size).toBe(handles.length);
    rx.publish();
    sim.reclaim();
    expect(sim.buffersInUse).toBe(0);
    expect(sim.violations).toEqual([]);
  });

  test("handles are non-negative integers; strings, fractions and out-of-range numbers name no chunk", () => {
    const { sim, rx, fd } = setup();
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
    const { sim, rx, fd } = setup();
    const seen: number[] = [];
    const boom = new Error("handler bug");
    rx.recv(
      fd,
      {
        onData: (_: null, chunk, _offset, length) => {
          seen.push(length);
          if (seen.length === 2) throw boom;
          rx.release(chunk);
        },
      },
      null,
    );
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

  test("onData throwing on every chunk and onEnd throwing: every CQE is still handled, every chunk goes back, the first error comes out after the batch", () => {
    const { sim, rx, fd } = setup();
    let n = 0;
    let ended = false;
    rx.recv(
      fd,
      {
        onData: (_: null, chunk) => {
          n++;
          // Half of them release before throwing: the receiver must not release those again.
          if (n % 2 === 0) rx.release(chunk);
          throw new Error(`chunk ${n}`);
        },
        onEnd: () => {
          ended = true;
          throw new Error("end");
        },
      },
      null,
    );
    sim.send(fd, bytes(4 * PAGE_SIZE, 4));
    sim.shutdown(fd);
    expect(() => rx.completions()).toThrow(/^chunk 1$/);
    expect(n).toBe(4);
    expect(ended).toBe(true);
    expect(rx.ended(0)).toBe(true);
    expect(rx.live).toBe(0);
    expect(rx.stats.handlerErrors).toBe(4);
    expect(rx.stats.released).toBe(4);
    sim.reclaim();
    expect(sim.buffersInUse).toBe(0);
    expect(sim.violations).toEqual([]);
  });

  test("a request that ends (-ENOSPC, a 2-entry CQ) after an onData that threw is still re-armed, and the stream completes", () => {
    // A 2-entry CQ: the request ends with -ENOSPC after two chunks, so the re-arm logic runs.
    const { sim, rx, fd } = setup({ cqEntries: 2 });
    let got = 0;
    rx.recv(
      fd,
      {
        onData: (_: null, chunk, _o, length) => {
          got += length;
          rx.release(chunk);
          if (got === 2 * PAGE_SIZE) throw new Error("once");
        },
      },
      null,
    );
    sim.send(fd, bytes(6 * PAGE_SIZE, 5));
    sim.shutdown(fd);
    for (let i = 0; i < 50 && !rx.ended(0); i++) {
      try {
        rx.completions();
      } catch (e) {
        expect((e as Error).message).toBe("once");
      }
    }
    expect(got).toBe(6 * PAGE_SIZE);
    expect(rx.ended(0)).toBe(true);
    expect(rx.stats.handlerErrors).toBe(1);
  });
});
