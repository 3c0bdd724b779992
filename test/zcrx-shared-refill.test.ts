// Tier 1: one refill ring, several producers (the receivers of an ifq imported into rings in
// several Workers), serialised by a RefillLock. Three Workers release their own buffers as fast
// as they can into a 256-entry ring while this thread plays the kernel, taking entries from head
// to tail: every entry must be well-formed, and every buffer must come back exactly as often as
// it was released, none lost to two producers writing the same slot, none twice.
import { describe, expect, test } from "bun:test";
import { RefillLock } from "../src/zcrx/refill-lock.ts";
import { PAGE_SIZE } from "../src/ring/memory.ts";
import type { ProducerJob } from "./fixtures/zcrx-refill-producer.ts";

const WORKERS = 3;
const BUFFERS_EACH = 64;
const ROUNDS = 200;
const ENTRIES = 256;
const layout = { head: 0, tail: 4, rqes: 64, entries: ENTRIES };

describe("a refill ring shared by producers in Workers", () => {
  test("under contention every release reaches the ring exactly once, in well-formed entries", async () => {
    const buffers = WORKERS * BUFFERS_EACH;
    const area = new SharedArrayBuffer(buffers * PAGE_SIZE);
    const refill = new SharedArrayBuffer(layout.rqes + ENTRIES * 16);
    const words = new Uint32Array(refill);
    const lock = new RefillLock();
    const returned = new Uint32Array(buffers);
    const bad: string[] = [];
    let head = 0,
      consumed = 0;
    const total = buffers * ROUNDS;

    // The kernel side: consume whatever is published, as io_zcrx_ring_refill does.
    const consume = (): void => {
      const tail = Atomics.load(words, layout.tail >> 2);
      const n = (tail - head) >>> 0;
      if (n > ENTRIES && bad.length < 5) bad.push(`tail ${tail} is ${n} entries past head ${head}`);
      for (let k = 0; k < Math.min(n, ENTRIES); k++) {
        const w = (layout.rqes >> 2) + ((head + k) & (ENTRIES - 1)) * 4;
        const off = words[w]!,
          hi = words[w + 1]!,
          len = words[w + 2]!,
          pad = words[w + 3]!;
        const buf = off / PAGE_SIZE;
        if (hi !== 0 || pad !== 0 || len !== PAGE_SIZE || !Number.isInteger(buf) || buf >= buffers) {
          if (bad.length < 5) bad.push(`entry ${head + k}: off ${off} hi ${hi} len ${len} pad ${pad}`);
        } else returned[buf]!++;
      }
      head = (head + n) >>> 0;
      consumed += n;
      Atomics.store(words, layout.head >> 2, head);
    };

    const workers = Array.from(
      { length: WORKERS },
      () => new Worker(new URL("./fixtures/zcrx-refill-producer.ts", import.meta.url)),
    );
    const done = workers.map(
      (w, i) =>
        new Promise<{ released: number; published: number; publishes: number }>((resolve, reject) => {
          w.onmessage = (e) => resolve(e.data);
          w.onerror = (e) => reject(e);
          const job: ProducerJob = {
            area,
            refill,
            layout,
            lock: lock.buffer,
            bufferBytes: PAGE_SIZE,
            first: i * BUFFERS_EACH,
            count: BUFFERS_EACH,
            rounds: ROUNDS,
            publishEvery: 7,
          };
          w.postMessage(job);
        }),
    );
    let finished = false;
    const all = Promise.all(done).finally(() => (finished = true));
    const deadline = performance.now() + 60_000;
    while (!finished || consumed < total) {
      consume();
      if (performance.now() > deadline) break;
      await new Promise((r) => setImmediate(r));
    }
    const results = await all;
    for (const w of workers) w.terminate();
    consume();

    expect(bad).toEqual([]);
    expect(consumed).toBe(total);
    expect(results.reduce((a, r) => a + r.published, 0)).toBe(total);
    const wrong = [...returned].map((n, b) => [b, n]).filter(([, n]) => n !== ROUNDS);
    expect(wrong).toEqual([]);
    expect(Atomics.load(lock.word, 0)).toBe(0);
  }, 90_000);
});
