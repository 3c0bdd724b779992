// NOP round trips: the TypeScript ring against the project's C program on the system liburing,
// side by side in the same run. Both use a 128-entry ring with SINGLE_ISSUER | COOP_TASKRUN |
// SUBMIT_ALL and a registered ring fd, queue `batch` NOPs, submit-and-wait for `batch`, and reap
// every CQE. Rounds alternate which side goes first; the table shows medians.
// Heap: 10 million NOPs through the TS ring at batch 64, heap measured with bun:jsc heapStats()
// after a full Bun.gc(true) before and after.
// A/B (--ab DIR): the same NOP loop with this checkout's ring and with the one in DIR (another
// checkout, e.g. the commit before a change), each measurement in a fresh child process
// (`--ab-child ROOT BATCH OPS`, which warms the JIT, then times one run), the two sides alternating
// round by round. Rates are taken over the child's CPU time (user + system), not wall time, so a
// core taken by another process costs neither side; `vs_base` is the median of A / B.
import { heapStats } from "bun:jsc";
import { resolve } from "node:path";
import { Ring } from "../src/ring/ring.ts";
import { prepNop } from "../src/ops/prep.ts";
import { kernelRelease } from "../src/ring/kernel.ts";
import { compileC, median, parseFlags, printTable, recordResult, today } from "./lib/harness.ts";

if (process.argv[2] === "--ab-child") {
  const [root, batchArg, opsArg] = process.argv.slice(3);
  const R = (await import(resolve(root!, "src/ring/ring.ts"))).Ring as typeof Ring;
  const nop = (await import(resolve(root!, "src/ops/prep.ts"))).prepNop as typeof prepNop;
  const batch = Number(batchArg),
    ops = Number(opsArg);
  const ring = R.create({
    entries: 128,
    singleIssuer: true,
    coopTaskrun: true,
    submitAll: true,
    noSqArray: false,
    memory: "mmap",
    registerRingFd: true,
  });
  const st = { n: 0 };
  const onDone = (x: typeof st) => {
    x.n++;
  };
  const run = (n: number) => {
    const sq = ring.sq;
    for (let r = 0; r < n / batch; r++) {
      for (let i = 0; i < batch; i++) {
        const slot = ring.getSqe();
        nop(sq, slot);
        ring.track(slot, onDone, st);
      }
      ring.submitAndWait(batch);
      ring.completions();
    }
  };
  run(Math.min(ops, 1_000_000)); // warm-up: the top JIT tier compiles the loop first
  const cpu0 = process.cpuUsage(),
    t0 = Bun.nanoseconds();
  run(ops);
  const wallNs = Bun.nanoseconds() - t0,
    cpu = process.cpuUsage(cpu0);
  ring.close();
  console.log(JSON.stringify({ wallNs, cpuNs: (cpu.user + cpu.system) * 1000, ops: Math.floor(ops / batch) * batch }));
  process.exit(0);
}

interface Flags extends Record<string, number | string | boolean> {
  ops: number;
  rounds: number;
  json: boolean;
  "heap-ops": number;
  batches: string;
  ab: string;
}

const flags = parseFlags<Flags>(
  process.argv.slice(2),
  {
    ops: { type: "number", default: 2_000_000, help: "NOPs per measurement" },
    rounds: { type: "number", default: 5, help: "measurements per side and batch size (alternating order)" },
    json: { type: "boolean", default: false, help: "print one JSON object instead of the table" },
    "heap-ops": { type: "number", default: 10_000_000, help: "NOPs for the heap-growth measurement (0 skips it)" },
    batches: { type: "string", default: "1,8,64", help: "comma-separated batch sizes" },
    ab: {
      type: "string",
      default: "",
      help: "another checkout's directory: measure its ring against this one's (A/B, CPU time, child processes) instead of the C comparison",
    },
  },
  "usage: bun bench/nop.ts [--ops N] [--rounds R] [--json] [--ab DIR]",
);

const ENTRIES = 128;
const batches = flags.batches.split(",").map(Number);
for (const b of batches) {
  if (!Number.isInteger(b) || b < 1 || b > ENTRIES) throw new Error(`batch sizes must be 1..${ENTRIES}, got ${b}`);
}
if (!Number.isInteger(flags.ops) || flags.ops < 1) throw new Error(`--ops must be a positive integer`);
if (!Number.isInteger(flags.rounds) || flags.rounds < 1) throw new Error(`--rounds must be a positive integer`);

function makeRing(): Ring {
  // The C side's flags exactly: liburing 2.3 knows neither NO_SQARRAY nor NO_MMAP, so the TS ring
  // keeps the SQ index array and maps kernel memory too.
  return Ring.create({
    entries: ENTRIES,
    singleIssuer: true,
    coopTaskrun: true,
    submitAll: true,
    noSqArray: false,
    memory: "mmap",
    registerRingFd: true,
  });
}

/** Completion state: one object for the whole run, so the handler allocates nothing. */
const state = { check: 0 };
function onNop(s: typeof state, res: number): void {
  s.check += res + 1;
}

/** `ops` NOPs in rounds of `batch` through `ring`; returns nanoseconds. */
function loop(ring: Ring, batch: number, ops: number): number {
  const rounds = Math.floor(ops / batch);
  const sq = ring.sq;
  const t0 = Bun.nanoseconds();
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < batch; i++) {
      const slot = ring.getSqe();
      prepNop(sq, slot);
      ring.track(slot, onNop, state);
    }
    ring.submitAndWait(batch);
    ring.completions();
  }
  return Bun.nanoseconds() - t0;
}

function runTs(batch: number, ops: number): number {
  const ring = makeRing();
  try {
    const before = state.check;
    const ns = loop(ring, batch, ops);
    const rounds = Math.floor(ops / batch);
    if (state.check - before !== rounds * batch)
      throw new Error(`TS ring completed ${state.check - before} NOPs, expected ${rounds * batch}`);
    return ns;
  } finally {
    ring.close();
  }
}

function runC(bin: string, batch: number, ops: number): number {
  const p = Bun.spawnSync([bin, String(batch), String(ops)], { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${bin} failed: ${p.stderr.toString()}`);
  const r = JSON.parse(p.stdout.toString()) as { ops: number; ns: number };
  if (r.ops !== Math.floor(ops / batch) * batch) throw new Error(`C baseline completed ${r.ops} NOPs`);
  return r.ns;
}

const mops = (ops: number, ns: number) => (ops / ns) * 1e3;

if (flags.ab !== "") {
  const here = resolve(import.meta.dir, "..");
  const other = resolve(flags.ab);
  const child = (root: string, batch: number) => {
    const p = Bun.spawnSync(
      [process.execPath, import.meta.path, "--ab-child", root, String(batch), String(flags.ops)],
      { stdout: "pipe", stderr: "pipe" },
    );
    if (p.exitCode !== 0) throw new Error(`A/B child for ${root} failed: ${p.stderr.toString()}`);
    const r = JSON.parse(p.stdout.toString()) as { wallNs: number; cpuNs: number; ops: number };
    return { cpu: mops(r.ops, r.cpuNs), wall: mops(r.ops, r.wallNs) };
  };
  const abRows: {
    batch: number;
    a_cpu_mops: number;
    b_cpu_mops: number;
    a_wall_mops: number;
    b_wall_mops: number;
    vs_base: number;
  }[] = [];
  for (const b of batches) {
    const a: { cpu: number; wall: number }[] = [],
      base: { cpu: number; wall: number }[] = [],
      ratios: number[] = [];
    for (let r = 0; r < flags.rounds; r++) {
      // Alternate which side goes first, so a slow spell of the machine hits both alike.
      const [x, y] =
        r % 2 === 0
          ? [child(here, b), child(other, b)]
          : (() => {
              const yy = child(other, b);
              return [child(here, b), yy];
            })();
      a.push(x);
      base.push(y);
      ratios.push(x.cpu / y.cpu);
    }
    abRows.push({
      batch: b,
      a_cpu_mops: round3(median(a.map((v) => v.cpu))),
      b_cpu_mops: round3(median(base.map((v) => v.cpu))),
      a_wall_mops: round3(median(a.map((v) => v.wall))),
      b_wall_mops: round3(median(base.map((v) => v.wall))),
      vs_base: round3(median(ratios)),
    });
  }
  const abResult = {
    date: today(),
    kernel: kernelRelease(),
    ops: flags.ops,
    rounds: flags.rounds,
    a: here,
    b: other,
    method:
      "each measurement a fresh child process (1M-NOP warm-up, then one timed run); rates over the child's CPU time; vs_base = median of A/B per round, sides alternating",
    rows: abRows,
  };
  const abPath = recordResult("nop-ab", abResult);
  if (flags.json) console.log(JSON.stringify(abResult));
  else {
    printTable(
      ["batch", "a_cpu_mops", "b_cpu_mops", "a_wall_mops", "b_wall_mops", "vs_base"],
      abRows.map((r) => [r.batch, r.a_cpu_mops, r.b_cpu_mops, r.a_wall_mops, r.b_wall_mops, r.vs_base]),
      3,
    );
    console.log(`recorded ${abPath}`);
  }
  process.exit(0);
}

const bin = await compileC("nop", "c/nop.c");

// Warm the JIT on every batch size before anything is measured: JSC's top tier compiles the loop
// only after a few hundred thousand iterations, and the first measured round would otherwise time
// the compiler. C needs no warm-up.
for (let w = 0; w < 3; w++) for (const b of batches) runTs(b, flags.ops);

const rows: { batch: number; ts_mops: number; c_mops: number; ratio: number }[] = [];
const samples = new Map<number, { ts: number[]; c: number[] }>();
for (const b of batches) samples.set(b, { ts: [], c: [] });
for (let r = 0; r < flags.rounds; r++) {
  for (const b of batches) {
    const s = samples.get(b)!;
    const ops = Math.floor(flags.ops / b) * b;
    if (r % 2 === 0) {
      s.ts.push(mops(ops, runTs(b, flags.ops)));
      s.c.push(mops(ops, runC(bin, b, flags.ops)));
    } else {
      s.c.push(mops(ops, runC(bin, b, flags.ops)));
      s.ts.push(mops(ops, runTs(b, flags.ops)));
    }
  }
}
for (const b of batches) {
  const s = samples.get(b)!;
  const ts = median(s.ts),
    cm = median(s.c);
  rows.push({ batch: b, ts_mops: round3(ts), c_mops: round3(cm), ratio: round3(ts / cm) });
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

// Heap growth over many NOPs: any per-operation allocation shows up here.
let heapGrowthBytes: number | null = null;
let objectGrowth: number | null = null;
if (flags["heap-ops"] > 0) {
  const ring = makeRing();
  try {
    loop(ring, 64, 640_000);
    Bun.gc(true);
    const before = heapStats();
    loop(ring, 64, flags["heap-ops"]);
    Bun.gc(true);
    const after = heapStats();
    heapGrowthBytes = after.heapSize - before.heapSize;
    objectGrowth = after.objectCount - before.objectCount;
  } finally {
    ring.close();
  }
}

const result = {
  date: today(),
  kernel: kernelRelease(),
  ops: flags.ops,
  rounds: flags.rounds,
  ring: "128 entries, SINGLE_ISSUER|COOP_TASKRUN|SUBMIT_ALL, registered ring fd (TS: mmap memory, SQ array kept, as liburing 2.3)",
  rows,
  heap_ops: flags["heap-ops"],
  heap_growth_bytes: heapGrowthBytes,
  heap_object_growth: objectGrowth,
  heap_method:
    "bun:jsc heapStats().heapSize and objectCount, each after Bun.gc(true), around heap_ops NOPs at batch 64",
};
const path = recordResult("nop", result);

if (flags.json) {
  console.log(JSON.stringify(result));
} else {
  printTable(
    ["batch", "ts_mops", "c_mops", "ratio"],
    rows.map((r) => [r.batch, r.ts_mops, r.c_mops, r.ratio]),
    3,
  );
  if (heapGrowthBytes !== null)
    console.log(
      `heap growth over ${flags["heap-ops"]} NOPs: ${heapGrowthBytes} bytes, ${objectGrowth} objects (heapStats after Bun.gc(true))`,
    );
  console.log(`recorded ${path}`);
}
