// User-space cost of zero-copy receive per 4 KiB chunk, against the simulated kernel side
// (src/testing): CQE -> chunk -> release -> publish. The simulator posts the CQE32 entries
// untimed (postData: no bytes copied), then the timed part is what an application pays: the
// drain that copies CQE fields and dispatches them (as Ring.completions does), the handler that
// takes the chunk and releases it (one refill entry, plain stores), and the publish (one
// Atomics.store of the refill tail). The kernel side then takes the refills back, untimed.
// Variants, side by side in the same run: batched (one publish per drain), unbatched (a publish
// after every release, as liburing examples/zcrx.c stores the tail per buffer), batched with
// a Uint8Array view per chunk (one small object each), and the async API: "stream", a
// ZcrxStream that takes the CQEs, each chunk awaited with next() as `for await` does, its view
// read, released, and the turn's publish (RefillTurn.run, what the turn's setImmediate runs)
// ending each drain; "stream-poll", next() for a drain's first chunk and poll() for the rest;
// "stream-poll-noview", the same reading chunk.length instead of making the view. The event
// loop is let run between segments. Each sample runs in its own process after a warm-up run,
// timed in segments; a sample is its fastest segment (preemption by other load only adds time),
// and the mean over all segments is shown beside it. Medians of --rounds samples. Heap:
// bun:jsc heapStats() after a full GC before and after a batched run.
import { heapStats } from "bun:jsc";
import { SimulatedZcrx } from "../src/testing/index.ts";
import type { ZcrxReceiver } from "../src/zcrx/receiver.ts";
import { ZcrxStream, refillTurnOf, type ZcrxChunk, type ZcrxStreamHost } from "../src/api/zcrx.ts";
import { median, parseFlags, printTable, recordResult, cpuTimes } from "./lib/harness.ts";

interface Flags extends Record<string, number | string | boolean> {
  chunks: number;
  batch: number;
  rounds: number;
  segment: number;
  json: boolean;
  child: string;
  vm: boolean;
}

const flags = parseFlags<Flags>(
  process.argv.slice(2),
  {
    chunks: { type: "number", default: 2_000_000, help: "chunks per measurement" },
    batch: { type: "number", default: 64, help: "CQEs per drain (and refill entries per publish)" },
    rounds: { type: "number", default: 5, help: "measurements per variant (medians are reported)" },
    segment: { type: "number", default: 65536, help: "chunks per timed segment (a sample is its fastest segment)" },
    json: { type: "boolean", default: false, help: "print one JSON object instead of the table" },
    child: { type: "string", default: "", help: "internal: measure one variant in this process and print it" },
    vm: {
      type: "boolean",
      default: false,
      help: "instead: run test/vm/zcrx-nodev.test.ts and test/vm/zcrx-async.test.ts in the newest kernel's VM (scripts/vm.ts) and report bytes verified, refills the kernel consumed, and the async API's releases per publish",
    },
  },
  "usage: bun bench/zcrx.ts [--chunks N] [--batch B] [--rounds R] [--json]",
);

if (!Number.isInteger(flags.batch) || flags.batch < 1 || flags.batch > 4096) throw new Error("--batch must be 1..4096");
if (!Number.isInteger(flags.chunks) || flags.chunks < flags.batch)
  throw new Error("--chunks must be an integer >= --batch");

const CHUNK = 4096;
type Variant = "batched" | "unbatched" | "view" | "stream" | "stream-poll" | "stream-poll-noview";

interface Setup {
  sim: SimulatedZcrx;
  rx: ZcrxReceiver;
  fd: number;
  sink: { n: number; bytes: number };
}

/** The async API's host, with nothing to submit or cancel: the simulator needs neither. */
const quietHost: ZcrxStreamHost = { kick() {}, cancelRecvZc() {} };

function setup(variant: Variant): Setup {
  // Enough buffers and refill slots that one drain never waits for the kernel side.
  const sim = new SimulatedZcrx({
    areaBytes: 4 * flags.batch * CHUNK,
    rqEntries: 4096,
    cqEntries: 4096,
    poison: false,
  });
  const rx = sim.createReceiver();
  const fd = sim.connect();
  const sink = { n: 0, bytes: 0 };
  if (variant.startsWith("stream")) return { sim, rx, fd, sink };
  const handler =
    variant === "batched"
      ? {
          onData(s: typeof sink, chunk: number, _offset: number, length: number) {
            s.n++;
            s.bytes += length;
            rx.release(chunk);
          },
        }
      : variant === "unbatched"
        ? {
            onData(s: typeof sink, chunk: number, _offset: number, length: number) {
              s.n++;
              s.bytes += length;
              rx.release(chunk);
              rx.publish();
            },
          }
        : {
            onData(s: typeof sink, chunk: number) {
              const v = rx.view(chunk);
              s.n++;
              s.bytes += v.length;
              rx.release(chunk);
            },
          };
  rx.recv(fd, handler, sink);
  return { sim, rx, fd, sink };
}

/** One measurement of `variant`: `--chunks` chunks in segments of `--segment` chunks. Returns
 * the mean nanoseconds per chunk over all of them and the fastest segment's. Timing is
 * wall-clock; preemption by other load only ever adds to it, so the fastest segment is the
 * estimate of the undisturbed cost and the mean shows how loaded the machine was. */
function measure(variant: Variant, s: Setup): { mean: number; best: number } {
  const { sim, rx, fd } = s;
  const drainsPerSegment = Math.max(1, Math.floor(flags.segment / flags.batch));
  const segments = Math.max(1, Math.floor(flags.chunks / (drainsPerSegment * flags.batch)));
  let total = 0;
  let best = Infinity;
  for (let g = 0; g < segments; g++) {
    let timed = 0;
    for (let r = 0; r < drainsPerSegment; r++) {
      sim.postData(fd, flags.batch, CHUNK);
      const t0 = Bun.nanoseconds();
      sim.dispatch();
      rx.publish();
      timed += Bun.nanoseconds() - t0;
      sim.reclaim();
    }
    total += timed;
    const per = timed / (drainsPerSegment * flags.batch);
    if (per < best) best = per;
  }
  if (rx.live !== 0 || rx.pending !== 0)
    throw new Error(`${variant}: ${rx.live} chunks held, ${rx.pending} pending after a run`);
  return { mean: total / (segments * drainsPerSegment * flags.batch), best };
}

/** measure() for the async API: per drain, next() for each chunk as `for await` calls it (or, with
 * `poll`, next() for the first and poll() for the rest), a read of its view's length, release(),
 * then the turn's publish. */
async function measureStream(
  s: Setup,
  stream: ZcrxStream,
  poll: boolean,
  view: boolean,
): Promise<{ mean: number; best: number }> {
  const { sim, rx, fd, sink } = s;
  const turn = refillTurnOf(rx, quietHost);
  const batch = flags.batch;
  const drainsPerSegment = Math.max(1, Math.floor(flags.segment / batch));
  const segments = Math.max(1, Math.floor(flags.chunks / (drainsPerSegment * batch)));
  let total = 0;
  let best = Infinity;
  for (let g = 0; g < segments; g++) {
    let timed = 0;
    for (let r = 0; r < drainsPerSegment; r++) {
      sim.postData(fd, batch, CHUNK);
      const t0 = Bun.nanoseconds();
      sim.dispatch();
      if (poll) {
        for (let c: ZcrxChunk | null = (await stream.next()).value!; c !== null; c = stream.poll()) {
          sink.n++;
          sink.bytes += view ? c.data.length : c.length;
          c.release();
        }
      } else {
        for (let k = 0; k < batch; k++) {
          const c = (await stream.next()).value!;
          sink.n++;
          sink.bytes += c.data.length;
          c.release();
        }
      }
      turn.run();
      timed += Bun.nanoseconds() - t0;
      sim.reclaim();
    }
    total += timed;
    const per = timed / (drainsPerSegment * batch);
    if (per < best) best = per;
    // The turn's own setImmediate (queued by the first release) runs here and finds nothing.
    await new Promise((r) => setImmediate(r));
  }
  if (rx.live !== 0 || rx.pending !== 0)
    throw new Error(`stream: ${rx.live} chunks held, ${rx.pending} pending after a run`);
  return { mean: total / (segments * drainsPerSegment * batch), best };
}

const variants: Variant[] = ["batched", "unbatched", "view", "stream", "stream-poll", "stream-poll-noview"];

/** The VM run: real RECV_ZC through ZCRX_REG_NODEV on the newest kernel, the synchronous
 * receiver (test/vm/zcrx-nodev.test.ts, `zcrx-vm:` lines) and the async API's release-each loop
 * (test/vm/zcrx-async.test.ts, `zcrx-vm-async:` lines), collected into one table and
 * bench/results/zcrx-vm-<date>.json. */
async function vmReport(): Promise<void> {
  const root = new URL("..", import.meta.url).pathname;
  const p = Bun.spawn(
    [
      process.execPath,
      "scripts/vm.ts",
      "--kernel",
      "newest",
      "test/vm/zcrx-nodev.test.ts",
      "test/vm/zcrx-async.test.ts",
    ],
    { cwd: root, stdout: "pipe", stderr: "inherit" },
  );
  const out = await new Response(p.stdout).text();
  const code = await p.exited;
  const lines = out.split("\n");
  const runs = lines.filter((l) => l.startsWith("zcrx-vm: ")).map((l) => ({ api: "sync", ...JSON.parse(l.slice(9)) }));
  const asyncRuns = lines.filter((l) => l.startsWith("zcrx-vm-async: ")).map((l) => JSON.parse(l.slice(15)));
  const summary = lines.filter((l) => /^\d+ passed, \d+ failed/.test(l)).pop() ?? `scripts/vm.ts exited ${code}`;
  const result = { vm_exit_code: code, vm_summary: summary, runs, async_runs: asyncRuns };
  const written = recordResult("zcrx-vm", result);
  if (flags.json) {
    console.log(JSON.stringify(result));
  } else {
    printTable(
      ["test", "kernel", "bytes verified", "chunks", "area chunks", "refills consumed", "publishes", "ms"],
      runs.map((r) => [
        r.test,
        r.kernel,
        r.bytes_verified,
        r.chunks,
        r.area_chunks,
        r.refills_consumed,
        r.stats.publishes,
        r.elapsed_ms,
      ]),
    );
    console.log("\nasync API, for await + release() per chunk:");
    printTable(
      ["sender", "kernel", "bytes verified", "chunks", "publishes", "releases/publish", "flushes", "starvations", "ms"],
      asyncRuns.map((r) => [
        r.sender,
        r.kernel,
        r.first_mismatch < 0 ? r.bytes : 0,
        r.stats.chunks,
        r.stats.publishes,
        r.stats.batch_mean,
        r.stats.flushes,
        r.stats.starvations,
        r.elapsed_ms,
      ]),
    );
    console.log(summary);
    console.log(`written: ${written}`);
  }
  if (code !== 0) process.exit(code);
}

if (flags.vm) {
  await vmReport();
  process.exit(0);
}

/** One measurement in a fresh process, so each variant's handler is the only one the engine has
 * seen at its call sites (as in an application), with its own warm-up run first. */
function sampleInChild(v: Variant): { ns: number; mean: number; publishes: number; chunks: number } {
  const p = Bun.spawnSync(
    [
      process.execPath,
      import.meta.path,
      "--child",
      v,
      "--chunks",
      String(flags.chunks),
      "--batch",
      String(flags.batch),
    ],
    { stdout: "pipe", stderr: "inherit" },
  );
  if (p.exitCode !== 0) throw new Error(`bench child for ${v} failed (exit ${p.exitCode})`);
  return JSON.parse(p.stdout.toString());
}

if (flags.child) {
  const v = flags.child as Variant;
  if (!variants.includes(v)) throw new Error(`--child must be one of ${variants.join(", ")}`);
  const st = setup(v);
  let m: { mean: number; best: number };
  if (v.startsWith("stream")) {
    const stream = new ZcrxStream(st.rx, st.fd, quietHost);
    const poll = v !== "stream",
      view = v !== "stream-poll-noview";
    await measureStream(st, stream, poll, view);
    m = await measureStream(st, stream, poll, view);
  } else {
    measure(v, st);
    m = measure(v, st);
  }
  console.log(
    JSON.stringify({ ns: m.best, mean: m.mean, publishes: st.rx.stats.publishes, chunks: st.rx.stats.chunks }),
  );
  process.exit(0);
}

const samples = new Map<Variant, number[]>(variants.map((v) => [v, []]));
const means = new Map<Variant, number[]>(variants.map((v) => [v, []]));
const publishesPerChunk = new Map<Variant, number>();
const cpu0 = cpuTimes();
for (let r = 0; r < flags.rounds; r++) {
  // Rotate the order so no variant always runs first.
  for (let k = 0; k < variants.length; k++) {
    const v = variants[(r + k) % variants.length]!;
    const one = sampleInChild(v);
    samples.get(v)!.push(one.ns);
    means.get(v)!.push(one.mean);
    publishesPerChunk.set(v, one.publishes / one.chunks);
  }
}
const cpu1 = cpuTimes();

// Heap: the batched path in this process, after a full GC before and after.
const heapSetup = setup("batched");
measure("batched", heapSetup);
Bun.gc(true);
const heapBefore = heapStats().heapSize;
measure("batched", heapSetup);
Bun.gc(true);
const heapAfter = heapStats().heapSize;

const load = (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).map(Number);
const result = {
  ns_per_chunk_batched: median(samples.get("batched")!),
  ns_per_chunk_unbatched: median(samples.get("unbatched")!),
  ns_per_chunk_batched_view: median(samples.get("view")!),
  ns_per_chunk_stream: median(samples.get("stream")!),
  ns_per_chunk_stream_poll: median(samples.get("stream-poll")!),
  ns_per_chunk_stream_poll_no_view: median(samples.get("stream-poll-noview")!),
  goal_ns_per_chunk: 40,
  goal_ns_per_chunk_stream: 60,
  chunk_bytes: CHUNK,
  batch: flags.batch,
  chunks_per_measurement: Math.floor(flags.chunks / flags.batch) * flags.batch,
  rounds: flags.rounds,
  samples_ns: Object.fromEntries(variants.map((v) => [v, samples.get(v)!])),
  ns_per_chunk_batched_min: Math.min(...samples.get("batched")!),
  ns_per_chunk_mean_of_all_segments: Object.fromEntries(variants.map((v) => [v, median(means.get(v)!)])),
  segment_chunks: flags.segment,
  publishes_per_chunk_batched: publishesPerChunk.get("batched"),
  publishes_per_chunk_unbatched: publishesPerChunk.get("unbatched"),
  publishes_per_chunk_stream: publishesPerChunk.get("stream"),
  chunks_per_s_batched: 1e9 / median(samples.get("batched")!),
  heap_growth_bytes: heapAfter - heapBefore,
  cpu_user_s_children: cpu1.user_s - cpu0.user_s,
  loadavg: load,
  bun: Bun.version,
};

const written = recordResult("zcrx", result);
if (flags.json) {
  console.log(JSON.stringify(result));
} else {
  printTable(
    ["variant", "ns/chunk (median)", "min", "max", "mean incl. preemption", "publishes/chunk"],
    variants.map((v) => {
      const xs = samples.get(v)!;
      return [v, median(xs), Math.min(...xs), Math.max(...xs), median(means.get(v)!), publishesPerChunk.get(v)!];
    }),
  );
  console.log(
    `\nbatch ${flags.batch} CQEs per drain, ${result.chunks_per_measurement} chunks per measurement, ${flags.rounds} rounds; goal <= 40 ns/chunk batched, <= 60 for the stream (view included)`,
  );
  console.log(
    `heap growth over one batched run: ${result.heap_growth_bytes} bytes; load average ${load.join(" ")} (wall-clock timing: other load inflates it)`,
  );
  console.log(`written: ${written}`);
}
