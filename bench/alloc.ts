// bun bench/alloc.ts — does the hot path allocate? Heap growth and GC count over N operations
// (10 million by default) for three paths: NOP through the ring, SEND_ZC over loopback through
// ZcSender (src/zc), and RECV_ZC chunks through ZcrxReceiver on the simulated kernel side
// (src/testing: postData posts CQEs without copying, so only the user-space path runs).
//
//   bun bench/alloc.ts [--ops N] [--paths nop,send_zc,zcrx_sim] [--json]
//
// What is measured, per path, after a warm-up of 2% of N (at least 50 000) operations:
//   gcs            garbage collections during the run, counted with a weakly held sentinel object
//                  checked every 1024 operations (bun:jsc releaseWeakRefs() after each check, so
//                  the sentinel can die inside this synchronous loop); each death is one interval
//                  with at least one GC (eden or full), so this is a lower bound. An allocation-
//                  free path shows 0: JSC starts an eden collection only after its nursery
//                  (megabytes) fills.
//   objects_delta  bun:jsc heapStats().objectCount after the run minus before, no GC forced in
//                  between (live + garbage not yet collected; exact when gcs is 0).
//   heap_delta     heapStats().heapSize, each after a full Bun.gc(true): memory retained.
//   top_types      the object types whose count grew most (objectTypeCounts, no GC forced),
//                  which names what allocates when something does.
// The baseline (side by side, same run): an empty loop with the same sentinel checks, and a loop
// that allocates one small object per iteration, to show what the counters read for 0 and for
// one allocation per operation.
import { heapStats, releaseWeakRefs } from "bun:jsc";
import { Ring } from "../src/ring/ring.ts";
import { prepNop } from "../src/ops/index.ts";
import { ZcSender } from "../src/zc/index.ts";
import { SimulatedZcrx } from "../src/testing/index.ts";
import { tcpListen, tcpConnect, tcpAccept, closeQuietly } from "../src/sync.ts";
import { kernelAtLeast, kernelRelease } from "../src/ring/kernel.ts";
import { MSG_DONTWAIT } from "../src/abi/net.ts";
import { c } from "../ffi/index.ts";
import { parseFlags, printTable, recordResult, today } from "./lib/harness.ts";

type Flags = { ops: number; paths: string; json: boolean };
const flags = parseFlags<Flags>(
  process.argv.slice(2),
  {
    ops: { type: "number", default: 10_000_000, help: "operations per path" },
    paths: {
      type: "string",
      default: "baseline_empty,baseline_alloc,nop,send_zc,zcrx_sim",
      help: "comma-separated paths",
    },
    json: { type: "boolean", default: false, help: "print one JSON object" },
  },
  "usage: bun bench/alloc.ts [--ops N] [--paths ...] [--json]",
);

const CHECK_EVERY = 1024;

/** Counts intervals of CHECK_EVERY operations in which at least one GC ran. */
class GcCounter {
  gcs = 0;
  private ref = new WeakRef({});
  constructor() {
    releaseWeakRefs();
  }
  check(): void {
    if (this.ref.deref() === undefined) {
      this.gcs++;
      this.ref = new WeakRef({});
    }
    // Both new WeakRef and deref() keep the target alive until the end of the job: let go at
    // once, so a collection before the next check can take the sentinel.
    releaseWeakRefs();
  }
}

interface PathResult {
  path: string;
  ops: number;
  seconds: number;
  ops_per_s: number;
  gcs: number;
  objects_delta: number;
  heap_delta_bytes: number;
  top_types: string;
}

/** A path: setup returns a step function doing `n` operations and a teardown. */
type Path = () => { step: (n: number) => void; close: () => void };

function measure(name: string, path: Path, ops: number): PathResult {
  const { step, close } = path();
  try {
    const warm = Math.max(50_000, Math.floor(ops * 0.02));
    for (let done = 0; done < warm; done += CHECK_EVERY) step(CHECK_EVERY);
    Bun.gc(true);
    const before = heapStats();
    const gc = new GcCounter();
    const t0 = performance.now();
    for (let done = 0; done < ops; done += CHECK_EVERY) {
      step(CHECK_EVERY);
      gc.check();
    }
    const seconds = (performance.now() - t0) / 1000;
    const after = heapStats();
    Bun.gc(true);
    const afterGc = heapStats();
    const growth: Array<[string, number]> = [];
    for (const [k, v] of Object.entries(after.objectTypeCounts)) {
      const d = v - (before.objectTypeCounts[k] ?? 0);
      if (d > 0) growth.push([k, d]);
    }
    growth.sort((a, b) => b[1] - a[1]);
    return {
      path: name,
      ops,
      seconds,
      ops_per_s: ops / seconds,
      gcs: gc.gcs,
      objects_delta: after.objectCount - before.objectCount,
      heap_delta_bytes: afterGc.heapSize - before.heapSize,
      top_types:
        growth
          .slice(0, 3)
          .map(([k, d]) => `${k} +${d}`)
          .join(", ") || "none",
    };
  } finally {
    close();
  }
}

const paths: Record<string, Path> = {
  baseline_empty: () => {
    let x = 0;
    return {
      step: (n) => {
        for (let i = 0; i < n; i++) x += i;
      },
      close: () => void x,
    };
  },
  baseline_alloc: () => {
    // One small object per operation, kept in a 1024-slot ring so the JIT cannot sink it.
    const keep: Array<{ i: number } | undefined> = new Array(1024).fill(undefined);
    return {
      step: (n) => {
        for (let i = 0; i < n; i++) keep[i & 1023] = { i };
      },
      close: () => void keep,
    };
  },
  nop: () => {
    const ring = Ring.create({ entries: 256 });
    let completed = 0;
    const handler = () => {
      completed++;
    };
    const idle = () => ring.ops.inflight === 0;
    const step = (n: number) => {
      for (let i = 0; i < n; i++) {
        const s = ring.getSqe();
        prepNop(ring.sq, s);
        ring.track(s, handler, null);
        if ((i & 63) === 63) ring.run(64);
      }
      ring.runUntil(idle, 10_000);
    };
    return { step, close: () => ring.close() };
  },
  send_zc: () => {
    const ring = Ring.create({ entries: 256 });
    const l = tcpListen(ring, { host: "127.0.0.1", port: 0 });
    const a = tcpConnect(ring, { host: "127.0.0.1", port: l.address.port });
    const b = tcpAccept(ring, l.fd);
    const N = 128;
    const bufs: Uint8Array[] = [];
    for (let i = 0; i < N; i++) bufs.push(new Uint8Array(256).fill(i));
    const free = new Int32Array(N);
    let freeTop = 0;
    for (let i = 0; i < N; i++) free[freeTop++] = i;
    const sink = new Uint8Array(1 << 20);
    const sender = new ZcSender(ring, a, {
      mode: "zc",
      capacity: N,
      reportUsage: kernelAtLeast("6.2"),
      onReleased: (tag: number) => {
        free[freeTop++] = tag;
      },
    });
    const step = (n: number) => {
      let sent = 0;
      while (sent < n) {
        while (freeTop > 0 && sent < n) {
          sender.send(bufs[free[--freeTop]!]!, free[freeTop]!);
          sent++;
        }
        c.recv(b, sink, sink.length, MSG_DONTWAIT);
        ring.run(freeTop === 0 ? 1 : 0, 50);
      }
    };
    return {
      step,
      close: () => {
        for (let i = 0; i < 1000 && sender.inflight > 0; i++) {
          c.recv(b, sink, sink.length, MSG_DONTWAIT);
          ring.run(1, 10);
        }
        for (const fd of [a, b, l.fd]) closeQuietly(fd);
        ring.close();
      },
    };
  },
  zcrx_sim: () => {
    const sim = new SimulatedZcrx({ areaBytes: 1 << 20, rqEntries: 256, poison: false });
    const rx = sim.createReceiver();
    const fd = sim.connect();
    let bytes = 0;
    const handler = {
      onData: (_ctx: null, chunk: number, _off: number, len: number) => {
        bytes += len;
        rx.release(chunk);
      },
    };
    rx.recv(fd, handler, null);
    rx.completions();
    const step = (n: number) => {
      let done = 0;
      while (done < n) {
        done += sim.postData(fd, Math.min(64, n - done));
        rx.completions();
      }
    };
    return { step, close: () => rx.close() };
  },
};

const selected = flags.paths
  .split(",")
  .map((p) => p.trim())
  .filter(Boolean);
for (const p of selected) {
  if (!paths[p]) {
    console.error(`unknown path ${p}; choose from ${Object.keys(paths).join(", ")}`);
    process.exit(2);
  }
}
const results: PathResult[] = [];
for (const p of selected) {
  if (!flags.json) console.error(`alloc: ${p}, ${flags.ops} operations...`);
  results.push(measure(p, paths[p]!, flags.ops));
}

const out = {
  date: today(),
  kernel: kernelRelease(),
  bun: Bun.version,
  ops: flags.ops,
  method:
    "gcs: intervals of 1024 operations with at least one GC (WeakRef sentinel, bun:jsc releaseWeakRefs); objects_delta: heapStats().objectCount after minus before, no GC forced; heap_delta_bytes: heapStats().heapSize after minus before, each after Bun.gc(true)",
  results,
};
if (flags.json) console.log(JSON.stringify(out));
else {
  printTable(
    ["path", "ops", "s", "ops/s", "GCs", "objects +", "heap + (B)", "grew most"],
    results.map((r) => [
      r.path,
      r.ops,
      r.seconds,
      Math.round(r.ops_per_s),
      r.gcs,
      r.objects_delta,
      r.heap_delta_bytes,
      r.top_types,
    ]),
  );
  console.log(`recorded ${recordResult("alloc", out)}`);
}
