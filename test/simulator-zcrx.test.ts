// Tier 1: the zcrx receiver against the simulated kernel side (src/testing): chunks in place,
// the refill protocol, one tail store per drain, a full refill ring, release errors, poisoning,
// running out of buffers, -ENOSPC re-arms.
import { describe, expect, test } from "bun:test";
import { SimulatedZcrx, POISON_BYTE, type SimulatedZcrxOptions } from "../src/testing/index.ts";
import { ZcrxReceiver, type ZcrxSource } from "../src/zcrx/receiver.ts";
import { PAGE_SIZE } from "../src/ring/memory.ts";
import { EBUSY, ECANCELED, ECONNRESET, ENOTSOCK } from "../src/abi/errno.ts";
import { UringError } from "../src/error.ts";

/** Bytes whose value depends on their position, so a misplaced or stale chunk shows. */
function pattern(start: number, length: number): Uint8Array {
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) b[i] = ((start + i) * 31 + ((start + i) >>> 11)) & 0xff;
  return b;
}

interface Sink {
  received: number;
  mismatches: number;
  held: number[];
  ends: number[];
}

/** A receiving application as a user would write it: verify in place, then release (or hold). */
function verifyingHandler(rx: ZcrxReceiver, hold = false) {
  return {
    onData(s: Sink, chunk: number, offset: number, length: number) {
      const expected = pattern(s.received, length);
      const area = rx.area;
      for (let i = 0; i < length; i++) if (area[offset + i] !== expected[i]) s.mismatches++;
      s.received += length;
      if (hold) s.held.push(chunk);
      else rx.release(chunk);
    },
    onEnd(s: Sink, res: number) {
      s.ends.push(res);
    },
  };
}

function setup(o: SimulatedZcrxOptions = {}) {
  const sim = new SimulatedZcrx(o);
  const rx = sim.createReceiver();
  const fd = sim.connect();
  const sink: Sink = { received: 0, mismatches: 0, held: [], ends: [] };
  return { sim, rx, fd, sink };
}

function tailOf(sim: SimulatedZcrx): number {
  return Atomics.load(sim.refill.words, sim.refill.tail >> 2);
}

/** A second source over `sim`'s area and refill ring that, like a Ring's, refuses no receiver in
 * bind: what a second ifq.receiver() call builds. It delivers nothing. */
function sameRefillRing(sim: SimulatedZcrx): ZcrxSource {
  return {
    kind: "simulator",
    area: sim.area,
    areaTokenHigh: sim.areaTokenHigh,
    refill: sim.refill,
    bind() {},
    arm() {},
    reap: () => 0,
    afterPublish: () => false,
  };
}

describe("SimulatedZcrx + ZcrxReceiver", () => {
  test("a byte stream arrives in place, verified, and every buffer comes back", () => {
    const { sim, rx, fd, sink } = setup({ areaBytes: 16 * PAGE_SIZE, rqEntries: 16 });
    rx.recv(fd, verifyingHandler(rx), sink);
    const total = 1024 * 1024 + 123;
    for (let at = 0; at < total; at += 50_000) sim.send(fd, pattern(at, Math.min(50_000, total - at)));
    sim.shutdown(fd);
    rx.runUntil(() => sink.ends.length > 0, 5000);
    expect(sink.received).toBe(total);
    expect(sink.mismatches).toBe(0);
    expect(sink.ends).toEqual([0]);
    expect(rx.stats.chunks).toBe(Math.ceil(total / PAGE_SIZE));
    expect(rx.stats.bytes).toBe(total);
    expect(rx.live).toBe(0);
    // 16 buffers for 257 chunks: the kernel side had to consume our refills.
    expect(sim.counters.refillsConsumed).toBeGreaterThanOrEqual(rx.stats.chunks - 16);
    sim.reclaim();
    expect(sim.buffersInUse).toBe(0);
    expect(sim.violations).toEqual([]);
  });

  test("a chunk is a view into the area, not a copy", () => {
    const { sim, rx, fd } = setup();
    let seen: { chunk: number; offset: number; length: number } | undefined;
    rx.recv(fd, { onData: (_: null, chunk, offset, length) => (seen = { chunk, offset, length }) }, null);
    sim.send(fd, new Uint8Array([1, 2, 3, 4, 5]));
    rx.completions();
    expect(seen).toBeDefined();
    const v = rx.view(seen!.chunk);
    expect(v.buffer).toBe(rx.area.buffer);
    expect(v.byteOffset).toBe(rx.area.byteOffset + seen!.offset);
    expect(Array.from(v)).toEqual([1, 2, 3, 4, 5]);
    expect(rx.offsetOf(seen!.chunk)).toBe(seen!.offset);
    expect(rx.lengthOf(seen!.chunk)).toBe(5);
    expect(rx.area.buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  test("releases are plain stores; one tail store per drain publishes them all", () => {
    const { sim, rx, fd } = setup({ areaBytes: 64 * PAGE_SIZE, rqEntries: 64 });
    const tailsSeen: number[] = [];
    rx.recv(
      fd,
      {
        onData: (_: null, chunk) => {
          rx.release(chunk);
          tailsSeen.push(tailOf(sim));
        },
      },
      null,
    );
    const before = tailOf(sim);
    sim.send(fd, pattern(0, 20 * PAGE_SIZE));
    rx.completions();
    expect(tailsSeen.length).toBe(20);
    // Inside the drain, the kernel-visible tail never moved...
    expect(new Set(tailsSeen)).toEqual(new Set([before]));
    // ...and after it, one store moved it by 20.
    expect((tailOf(sim) - before) >>> 0).toBe(20);
    expect(rx.stats.publishes).toBe(1);
    expect(rx.stats.published).toBe(20);
    expect(rx.stats.batchMax).toBe(20);
    expect(rx.stats.batchHistogram[4]).toBe(1); // 16..31
    // A drain that released nothing stores nothing.
    rx.completions();
    expect(rx.stats.publishes).toBe(1);
  });

  test("a full refill ring keeps releases pending and publishes them later; nothing dropped", () => {
    const { sim, rx, fd, sink } = setup({ areaBytes: 64 * PAGE_SIZE, rqEntries: 8 });
    rx.recv(fd, verifyingHandler(rx), sink);
    sim.send(fd, pattern(0, 32 * PAGE_SIZE));
    rx.completions();
    // 32 releases, 8 slots, and the kernel side (a NIC page pool) has not needed buffers yet.
    expect(rx.stats.rqFull).toBe(1);
    expect(rx.stats.published).toBe(8);
    expect(rx.pending).toBe(24);
    expect(rx.stats.pendingHighWater).toBe(24);
    for (let round = 0; round < 3; round++) {
      expect(sim.reclaim()).toBe(8);
      expect(rx.publish()).toBe(8);
    }
    expect(rx.pending).toBe(0);
    expect(sim.reclaim()).toBe(8);
    expect(sim.buffersInUse).toBe(0);
    expect(rx.stats.published).toBe(32);
    expect(sink.mismatches).toBe(0);
  });

  test("device-less style reclaim (flush after publish): one flush per publish; what the ring could not hold waits for the next", () => {
    const { sim, rx, fd, sink } = setup({ areaBytes: 64 * PAGE_SIZE, rqEntries: 8, reclaim: "flush" });
    rx.recv(fd, verifyingHandler(rx), sink);
    sim.send(fd, pattern(0, 24 * PAGE_SIZE));
    rx.completions();
    expect(rx.stats.published).toBe(8);
    expect(rx.stats.flushes).toBe(1);
    expect(rx.pending).toBe(16);
    expect(rx.needsPublish).toBe(true);
    expect(rx.publish()).toBe(8);
    expect(rx.publish()).toBe(8);
    expect(rx.stats.flushes).toBe(3);
    expect(rx.stats.publishes).toBe(3);
    expect(rx.pending).toBe(0);
    expect(rx.needsPublish).toBe(false);
    expect(rx.publish()).toBe(0);
    expect(rx.stats.flushes).toBe(3);
    expect(sim.buffersInUse).toBe(0);
  });

  test("releasing a chunk twice is an error, and the second release writes nothing", () => {
    const { sim, rx, fd } = setup();
    const chunks: number[] = [];
    rx.recv(fd, { onData: (_: null, c) => chunks.push(c) }, null);
    sim.send(fd, pattern(0, 2 * PAGE_SIZE));
    rx.completions();
    rx.release(chunks[0]!);
    expect(() => rx.release(chunks[0]!)).toThrow(/already released/);
    expect(rx.unpublished).toBe(1);
    // The slot is reused by the next chunk; the old handle still counts as released.
    sim.send(fd, pattern(0, PAGE_SIZE));
    rx.completions();
    expect(() => rx.release(chunks[0]!)).toThrow(/already released/);
    expect(() => rx.view(chunks[0]!)).toThrow(/already released/);
    rx.release(chunks[1]!);
    rx.release(chunks[2]!);
  });

  test("a chunk the receiver never issued is refused", () => {
    const { rx } = setup();
    expect(() => rx.release(12345)).toThrow(/never issued/);
    expect(() => rx.release(-1)).toThrow(/never issued/);
    expect(() => rx.release(1.5)).toThrow(/never issued/);
    expect(() => rx.release(Number.NaN)).toThrow(/never issued/);
    expect(rx.unpublished).toBe(0);
  });

  test("the simulated kernel reports refill entries for buffers it never handed out", () => {
    const { sim, rx } = setup({ rqEntries: 8 });
    const w = sim.refill.words;
    const base = sim.refill.rqes >> 2;
    // A hand-written RQE for buffer 3, never handed out, then the tail store.
    w[base] = 3 * PAGE_SIZE;
    w[base + 1] = 0;
    w[base + 2] = PAGE_SIZE;
    w[base + 3] = 0;
    Atomics.store(w, sim.refill.tail >> 2, 1);
    expect(() => sim.reclaim()).toThrow(/was not handed out/);
    expect(sim.violations.length).toBe(1);
    void rx;
  });

  test("a non-strict simulator records bad entries (nonzero __pad, wrong area id) and goes on", () => {
    const { sim } = setup({ rqEntries: 8, strict: false, areaId: 2 });
    const w = sim.refill.words;
    const base = sim.refill.rqes >> 2;
    w.set([0, 2 << 16, 1, 7], base); // __pad = 7
    w.set([0, 5 << 16, 1, 0], base + 4); // area id 5
    Atomics.store(w, sim.refill.tail >> 2, 2);
    expect(sim.reclaim()).toBe(2);
    expect(sim.violations[0]).toMatch(/__pad/);
    expect(sim.violations[1]).toMatch(/area id 5/);
  });

  test("refill entries carry rq_area_token (area id in the top 16 bits)", () => {
    const { sim, rx, fd, sink } = setup({ areaBytes: 8 * PAGE_SIZE, rqEntries: 8, areaId: 3 });
    expect(sim.areaTokenHigh).toBe(3 << 16);
    rx.recv(fd, verifyingHandler(rx), sink);
    sim.send(fd, pattern(0, 40 * PAGE_SIZE));
    sim.shutdown(fd);
    rx.runUntil(() => sink.ends.length > 0, 5000);
    expect(sink.received).toBe(40 * PAGE_SIZE);
    expect(sim.violations).toEqual([]);
  });

  test("use after release reads poison once the kernel side takes the buffer back", () => {
    const { sim, rx, fd } = setup({ reclaim: "flush" });
    let chunk = -1;
    rx.recv(fd, { onData: (_: null, c) => (chunk = c) }, null);
    sim.send(fd, pattern(0, 100));
    rx.completions();
    const view = rx.view(chunk);
    expect(view[0]).toBe(pattern(0, 1)[0]!);
    rx.release(chunk);
    rx.publish();
    expect(view.every((b) => b === POISON_BYTE)).toBe(true);
  });

  test("out of buffers: the copy path ends the request with -ENOMEM; releases re-arm it", () => {
    const { sim, rx, fd, sink } = setup({ areaBytes: 4 * PAGE_SIZE, rqEntries: 4 });
    rx.recv(fd, verifyingHandler(rx, true), sink);
    sim.send(fd, pattern(0, 10 * PAGE_SIZE));
    rx.completions();
    expect(sink.received).toBe(4 * PAGE_SIZE);
    expect(sim.counters.enomem).toBe(1);
    expect(rx.stats.starvations).toBe(1);
    expect(sink.ends).toEqual([]); // parked, not ended
    rx.completions();
    expect(sink.received).toBe(4 * PAGE_SIZE); // nothing without refills
    while (sink.received < 10 * PAGE_SIZE) {
      for (const c of sink.held.splice(0)) rx.release(c);
      rx.completions();
    }
    expect(sink.mismatches).toBe(0);
    expect(rx.stats.rearms).toBeGreaterThanOrEqual(2);
    expect(sink.ends).toEqual([]);
  });

  test("a re-arm the ring refuses (op table full, EBUSY) ends that connection with EBUSY instead of throwing", () => {
    // Before (2026-12-05): the refusal threw out of the re-arm, from a completion handler or from
    // completions(), and the parked connection was neither armed nor ended.
    const { sim, rx, fd, sink } = setup({ areaBytes: 4 * PAGE_SIZE, rqEntries: 4 });
    rx.recv(fd, verifyingHandler(rx, true), sink);
    sim.send(fd, pattern(0, 10 * PAGE_SIZE));
    rx.completions();
    expect(rx.stats.starvations).toBe(1);
    sim.arm = () => {
      throw new UringError("Ring.begin", EBUSY, "all operation slots are in flight");
    };
    for (const c of sink.held.splice(0)) rx.release(c);
    expect(() => rx.completions()).not.toThrow();
    expect(sink.ends).toEqual([-EBUSY]);
  });

  test("stop() on a connection parked after -ENOMEM ends it at once; releases re-arm nothing", () => {
    const { sim, rx, fd, sink } = setup({ areaBytes: 4 * PAGE_SIZE, rqEntries: 4 });
    const conn = rx.recv(fd, verifyingHandler(rx, true), sink);
    sim.send(fd, pattern(0, 10 * PAGE_SIZE));
    rx.completions();
    expect(rx.stats.starvations).toBe(1);
    expect(sink.ends).toEqual([]);
    // Parked: no request in the kernel, so nothing for a cancel to find and no CQE to come.
    expect(rx.stop(conn)).toBe(false);
    expect(sink.ends).toEqual([-ECANCELED]);
    expect(rx.ended(conn)).toBe(true);
    const handedOut = sim.counters.buffersHandedOut;
    for (const c of sink.held.splice(0)) rx.release(c);
    rx.completions();
    rx.completions();
    // The releases were published (and the kernel side takes them back), yet nothing re-armed:
    // the socket's bytes stayed where they were.
    expect(rx.unpublished).toBe(0);
    expect(sim.reclaim()).toBe(4);
    expect(sim.buffersInUse).toBe(0);
    expect(sim.counters.buffersHandedOut).toBe(handedOut);
    expect(sim.queuedOn(fd)).toBe(6 * PAGE_SIZE);
    expect(rx.stats.rearms).toBe(0);
    expect(sink.ends).toEqual([-ECANCELED]);
    expect(rx.stop(conn)).toBe(false);
    expect(sink.ends).toEqual([-ECANCELED]);
  });

  test("stop() on a request in flight leaves the end to its last CQE: a cancel ends it, and so does a stop the kernel never saw", () => {
    const { sim, rx, fd, sink } = setup({ areaBytes: 4 * PAGE_SIZE, rqEntries: 4 });
    const conn = rx.recv(fd, verifyingHandler(rx), sink);
    expect(rx.stop(conn)).toBe(true);
    expect(sink.ends).toEqual([]);
    expect(sim.cancel(fd)).toBe(true);
    rx.completions();
    expect(sink.ends).toEqual([-ECANCELED]);
    expect(sim.cancel(fd)).toBe(false);

    // No cancel at all: the request runs out of buffers, and its -ENOMEM ends the stopped
    // connection instead of parking it.
    const fd2 = sim.connect();
    const s2: Sink = { received: 0, mismatches: 0, held: [], ends: [] };
    const conn2 = rx.recv(fd2, verifyingHandler(rx, true), s2);
    sim.send(fd2, pattern(0, 10 * PAGE_SIZE));
    expect(rx.stop(conn2)).toBe(true);
    rx.completions();
    expect(sim.counters.enomem).toBe(1);
    expect(rx.stats.starvations).toBe(0);
    expect(s2.received).toBe(4 * PAGE_SIZE);
    expect(s2.ends).toEqual([-ECANCELED]);
    for (const c of s2.held.splice(0)) rx.release(c);
    rx.completions();
    expect(sim.queuedOn(fd2)).toBe(6 * PAGE_SIZE);
    expect(rx.stats.rearms).toBe(0);
  });

  test("stop() after EOF changes nothing: the stream already ended with 0", () => {
    const { sim, rx, fd, sink } = setup();
    const conn = rx.recv(fd, verifyingHandler(rx), sink);
    sim.send(fd, pattern(0, 100));
    sim.shutdown(fd);
    rx.completions();
    expect(sink.ends).toEqual([0]);
    expect(rx.stop(conn)).toBe(false);
    expect(sink.ends).toEqual([0]);
  });

  test("out of buffers on a NIC-like queue: the stream stalls, nothing ends, then resumes", () => {
    const { sim, rx, fd, sink } = setup({ areaBytes: 4 * PAGE_SIZE, rqEntries: 4, onStarve: "stall" });
    rx.recv(fd, verifyingHandler(rx, true), sink);
    sim.send(fd, pattern(0, 6 * PAGE_SIZE));
    rx.completions();
    expect(sink.received).toBe(4 * PAGE_SIZE);
    expect(sim.counters.stalls).toBeGreaterThan(0);
    expect(rx.stats.starvations).toBe(0);
    for (const c of sink.held.splice(0)) rx.release(c);
    rx.completions();
    rx.completions();
    expect(sink.received).toBe(6 * PAGE_SIZE);
    expect(sink.mismatches).toBe(0);
  });

  test("a CQ too small for the data: -ENOSPC ends the request and it is re-armed", () => {
    const { sim, rx, fd, sink } = setup({ areaBytes: 64 * PAGE_SIZE, rqEntries: 64, cqEntries: 4 });
    rx.recv(fd, verifyingHandler(rx), sink);
    sim.send(fd, pattern(0, 30 * PAGE_SIZE));
    sim.shutdown(fd);
    rx.runUntil(() => sink.ends.length > 0, 5000);
    expect(sim.counters.enospc).toBeGreaterThan(0);
    expect(rx.stats.rearmsEnospc).toBe(sim.counters.enospc);
    expect(sink.received).toBe(30 * PAGE_SIZE);
    expect(sink.mismatches).toBe(0);
    expect(sink.ends).toEqual([0]);
  });

  test("maxBytes ends the stream after that many bytes; errors end it with -errno", () => {
    const { sim, rx, fd, sink } = setup({ chunkBytes: 1000 });
    rx.recv(fd, verifyingHandler(rx), sink, { maxBytes: 2500 });
    sim.send(fd, pattern(0, 10_000));
    rx.completions();
    expect(sink.received).toBe(2500);
    expect(sink.ends).toEqual([0]);

    const fd2 = sim.connect();
    const s2: Sink = { received: 0, mismatches: 0, held: [], ends: [] };
    rx.recv(fd2, verifyingHandler(rx), s2);
    sim.send(fd2, pattern(0, 100));
    sim.fail(fd2, ECONNRESET);
    rx.completions();
    expect(s2.received).toBe(100);
    expect(s2.ends).toEqual([-ECONNRESET]);
  });

  test("a bad fd ends with an error CQE, not a hang", () => {
    const { rx } = setup();
    const ends: number[] = [];
    rx.recv(12, { onData: () => {}, onEnd: (_: null, res) => ends.push(res) }, null);
    rx.completions();
    expect(ends).toEqual([-ENOTSOCK]);
  });

  test("the chunk table grows past its initial capacity when the caller holds many", () => {
    const sim = new SimulatedZcrx({ areaBytes: 32 * PAGE_SIZE });
    const rx = sim.createReceiver({ chunkCapacity: 2 });
    const fd = sim.connect();
    const held: number[] = [];
    rx.recv(fd, { onData: (_: null, c) => held.push(c) }, null);
    sim.send(fd, pattern(0, 20 * PAGE_SIZE));
    rx.completions();
    expect(held.length).toBe(20);
    expect(rx.live).toBe(20);
    expect(new Set(held).size).toBe(20);
    for (const c of held) rx.release(c);
    expect(rx.live).toBe(0);
    expect(rx.publish()).toBe(20);
  });

  test("one receiver per refill ring: a second is refused with EBUSY while the first is open", () => {
    const { sim, rx } = setup();
    let err: unknown = null;
    try {
      new ZcrxReceiver(sameRefillRing(sim));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UringError);
    expect((err as UringError).errno).toBe(EBUSY);
    expect((err as UringError).message).toMatch(/one refill ring and so one receiver/);
    expect((err as UringError).message).toMatch(/reuse the first receiver/);
    // The refused receiver left the first one working.
    const fd2 = sim.connect();
    const s2: Sink = { received: 0, mismatches: 0, held: [], ends: [] };
    rx.recv(fd2, verifyingHandler(rx), s2);
    sim.send(fd2, pattern(0, 3 * PAGE_SIZE));
    sim.shutdown(fd2);
    rx.completions();
    expect(s2.received).toBe(3 * PAGE_SIZE);
    expect(s2.ends).toEqual([0]);
    expect(sim.violations).toEqual([]);
  });

  test("a closed receiver writes no more refills, and a new one takes over the refill ring", () => {
    const { sim, rx, fd, sink } = setup({ areaBytes: 8 * PAGE_SIZE, rqEntries: 8 });
    rx.recv(fd, verifyingHandler(rx, true), sink);
    sim.send(fd, pattern(0, 3 * PAGE_SIZE));
    sim.shutdown(fd);
    rx.completions();
    expect(sink.ends).toEqual([0]);
    // One release published, one written but not published, one still held at close.
    rx.release(sink.held[0]!);
    rx.publish();
    rx.release(sink.held[1]!);
    const tail = tailOf(sim);
    rx.close();
    rx.release(sink.held[2]!);
    expect(rx.publish()).toBe(0);
    expect(tailOf(sim)).toBe(tail);

    const rx2 = sim.createReceiver();
    const fd2 = sim.connect();
    const s2: Sink = { received: 0, mismatches: 0, held: [], ends: [] };
    rx2.recv(fd2, verifyingHandler(rx2), s2);
    const total = 40 * PAGE_SIZE;
    sim.send(fd2, pattern(0, total));
    sim.shutdown(fd2);
    rx2.runUntil(() => s2.ends.length > 0, 5000);
    expect(s2.received).toBe(total);
    expect(s2.mismatches).toBe(0);
    expect(s2.ends).toEqual([0]);
    sim.reclaim();
    // The two buffers the old receiver never published stay with the user side (a real kernel
    // takes them back when its ring closes); every refill was valid.
    expect(sim.buffersInUse).toBe(2);
    expect(sim.violations).toEqual([]);
    expect(() => new ZcrxReceiver(sameRefillRing(sim))).toThrow(/EBUSY/);
    expect(() => sim.createReceiver()).toThrow(/one receiver per simulated zcrx/);
    rx2.close();
  });

  test("a closed receiver with a request still armed cannot be replaced on the simulator", () => {
    const { sim, rx, fd, sink } = setup();
    rx.recv(fd, verifyingHandler(rx), sink);
    rx.close();
    expect(() => sim.createReceiver()).toThrow(/still has a RECV_ZC of the closed receiver armed/);
  });

  test("the receiver refuses use after close", () => {
    const { rx } = setup();
    rx.close();
    expect(() => rx.completions()).toThrow(/closed/);
    expect(() => rx.recv(3, { onData: () => {} }, null)).toThrow(/closed/);
  });
});
