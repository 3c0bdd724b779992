// Round-trip latency over loopback TCP, ping-pong with one message in flight, and a 64 KiB stream.
// Side by side in one run, each with its client and its echo server in one process on one thread:
//   async   bun-uring async API (openRing: the loop driver in Bun's event loop, recv as an async
//           iterable, send with sent/released)
//   sync    bun-uring synchronous loop (Ring.run on this thread: prep, submit, wait in enter)
//   bun     Bun.listen + Bun.connect
//   node    node:net (a node child process runs the same ping-pong)
// Every size runs `runs` times (5); a run's p50 and p99 are taken over its round trips, and the
// table shows the median of the runs' p50s and of their p99s. The stream moves `streamMiB` in
// 64 KiB sends through the async API and through the synchronous loop, in MB/s; both are built
// from the same parts (ZcSender as a TCP socket's, one multishot receive over 64 provided buffers
// of 64 KiB), so their ratio is what the event-loop layer costs. A third table
// compares the ways the event loop can learn of a completion (what src/loop chose from): the time
// from submitting a NOP to its handler running, for each wait.
//   bun bench/latency.ts [--iters 2000] [--runs 5] [--stream-mib 128] [--json] [--no-record]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { read as fsRead } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addressOf, c } from "../ffi/index.ts";
import { EFD_CLOEXEC, EFD_NONBLOCK, MSG_NOSIGNAL, MSG_WAITALL } from "../src/abi/net.ts";
import { Ring } from "../src/ring/ring.ts";
import { ProvidedBufferRing, registerEventfd } from "../src/ring/register.ts";
import { prepNop, prepRecv, prepRecvMultishot, prepSend } from "../src/ops/prep.ts";
import { ZcSender } from "../src/zc/sender.ts";
import { IORING_CQE_BUFFER_SHIFT, IORING_CQE_F_BUFFER, IORING_CQE_F_MORE } from "../src/abi/sqe.ts";
import { tcpAccept, tcpConnect, tcpListen, closeQuietly } from "../src/sync.ts";
import { openRing } from "../src/api/index.ts";
import { median, percentile, printTable, parseFlags, recordResult, cpuTimes } from "./lib/harness.ts";

const flags = parseFlags<{
  iters: number;
  runs: number;
  "stream-mib": number;
  json: boolean;
  "no-record": boolean;
  "spin-us": number;
}>(
  process.argv.slice(2),
  {
    iters: { type: "number", default: 2000, help: "round trips per run and size" },
    runs: { type: "number", default: 5, help: "runs per implementation and size" },
    "stream-mib": { type: "number", default: 128, help: "MiB moved by each 64 KiB stream run" },
    "spin-us": {
      type: "number",
      default: 0,
      help: "the async driver's poll window after completions (LoopDriver spinUs; 0 is openRing's default)",
    },
    json: { type: "boolean", default: false, help: "print one JSON object instead of tables" },
    "no-record": { type: "boolean", default: false, help: "do not write bench/results/latency-<date>.json" },
  },
  "bun bench/latency.ts: loopback TCP ping-pong latency and a 64 KiB stream",
);
const SIZES = [64, 4096];
const WARMUP = 200;
const STREAM_CHUNK = 64 * 1024;
const log = (s: string) => {
  if (!flags.json) console.log(s);
};
/** Progress on stderr (stdout stays the table or the JSON). */
const progress = (s: string) => process.stderr.write(`latency: ${s}\n`);

interface Row {
  impl: string;
  size: number;
  p50_us: number;
  p99_us: number;
}

function summarize(impl: string, size: number, runs: number[][]): Row {
  return {
    impl,
    size,
    p50_us: median(runs.map((r) => percentile(r, 50))),
    p99_us: median(runs.map((r) => percentile(r, 99))),
  };
}

// ---- bun-uring async API ----

async function asyncPingPong(size: number, iters: number): Promise<number[]> {
  await using r = openRing({ spinUs: flags["spin-us"] });
  const l = r.listen({ host: "127.0.0.1", port: 0 });
  const accepted = l.accept();
  const cl = await r.connect({ host: "127.0.0.1", port: l.port });
  const srv = await accepted;
  const echo = (async () => {
    for await (const chunk of srv.recv()) await srv.send(chunk).released;
    await srv.close();
  })();
  const msg = new Uint8Array(size).fill(7);
  const it = cl.recv()[Symbol.asyncIterator]();
  const samples: number[] = [];
  for (let i = 0; i < WARMUP + iters; i++) {
    const t0 = performance.now();
    cl.send(msg);
    let got = 0;
    while (got < size) {
      const c = await it.next();
      if (c.done) throw new Error("async: the echo server closed early");
      got += c.value.length;
    }
    if (i >= WARMUP) samples.push((performance.now() - t0) * 1000);
  }
  await it.return!();
  await cl.close();
  await echo;
  await l.close();
  return samples;
}

async function asyncStream(totalBytes: number): Promise<number> {
  // 64 KiB receive buffers, as the synchronous loop's receive uses.
  await using r = openRing({ spinUs: flags["spin-us"], recvBufferBytes: STREAM_CHUNK, recvBuffers: 64 });
  const l = r.listen({ host: "127.0.0.1", port: 0 });
  const accepted = l.accept();
  const cl = await r.connect({ host: "127.0.0.1", port: l.port });
  const srv = await accepted;
  const buf = new Uint8Array(STREAM_CHUNK).fill(1);
  const t0 = performance.now();
  const reading = (async () => {
    let n = 0;
    for await (const chunk of srv.recv()) {
      n += chunk.length;
      if (n >= totalBytes) break;
    }
    return n;
  })();
  // The same (never modified) buffer goes out many times: safe, since nothing writes it.
  for (let sent = 0; sent < totalBytes; sent += STREAM_CHUNK) {
    await cl.ready();
    cl.send(buf);
  }
  const n = await reading;
  const s = (performance.now() - t0) / 1000;
  await Promise.all([cl.close(), srv.close(), l.close()]);
  return n / s / 1e6;
}

// ---- bun-uring synchronous loop ----

interface SyncState {
  done: number;
  res: number;
}
function onSyncCqe(st: SyncState, res: number): void {
  st.res = res;
  st.done++;
}

function syncPingPong(size: number, iters: number): number[] {
  const ring = Ring.create({ entries: 64 });
  const l = tcpListen(ring, { host: "127.0.0.1", port: 0, via: "libc" });
  const cl = tcpConnect(ring, { host: "127.0.0.1", port: l.address.port, via: "libc", noDelay: true });
  const srv = tcpAccept(ring, l.fd, { via: "libc" });
  const msg = new Uint8Array(size).fill(7);
  const srvBuf = new Uint8Array(size);
  const clBuf = new Uint8Array(size);
  const aMsg = addressOf(msg),
    aSrv = addressOf(srvBuf),
    aCl = addressOf(clBuf);
  const st: SyncState = { done: 0, res: 0 };
  const samples: number[] = [];
  const sq = ring.sq;
  try {
    for (let i = 0; i < WARMUP + iters; i++) {
      const t0 = performance.now();
      st.done = 0;
      let slot = ring.getSqe();
      prepSend(sq, slot, cl, aMsg, size, MSG_NOSIGNAL);
      ring.setUserData(slot, ring.ops.add(onSyncCqe, st, msg));
      slot = ring.getSqe();
      prepRecv(sq, slot, srv, aSrv, size, MSG_WAITALL);
      ring.setUserData(slot, ring.ops.add(onSyncCqe, st, srvBuf));
      while (st.done < 2) ring.run(1);
      st.done = 0;
      slot = ring.getSqe();
      prepSend(sq, slot, srv, aSrv, size, MSG_NOSIGNAL);
      ring.setUserData(slot, ring.ops.add(onSyncCqe, st, srvBuf));
      slot = ring.getSqe();
      prepRecv(sq, slot, cl, aCl, size, MSG_WAITALL);
      ring.setUserData(slot, ring.ops.add(onSyncCqe, st, clBuf));
      while (st.done < 2) ring.run(1);
      if (i >= WARMUP) samples.push((performance.now() - t0) * 1000);
    }
  } finally {
    ring.close();
    closeQuietly(cl);
    closeQuietly(srv);
    closeQuietly(l.fd);
  }
  return samples;
}

interface StreamState {
  received: number;
  recvArmed: boolean;
}

/** The stream through the synchronous loop, built from the same parts the async API uses, so
 * the ratio is what the event-loop layer costs: a ZcSender as a TCP socket's (adaptive, 64 sends
 * in flight, gathered behind the chain in flight) and one multishot receive over a provided-buffer
 * ring of 64 buffers of 64 KiB, each buffer given back as soon as its bytes are counted. */
function syncStream(totalBytes: number): number {
  const ring = Ring.create({ entries: 256 });
  const l = tcpListen(ring, { host: "127.0.0.1", port: 0, via: "libc" });
  const cl = tcpConnect(ring, { host: "127.0.0.1", port: l.address.port, via: "libc", noDelay: true });
  const srv = tcpAccept(ring, l.fd, { via: "libc" });
  const buf = new Uint8Array(STREAM_CHUNK).fill(1);
  const pb = ProvidedBufferRing.create(ring, { bgid: 1, entries: 64, bufferSize: STREAM_CHUNK });
  const sender = new ZcSender(ring, cl, { mode: "adaptive", threshold: 16384, capacity: 64, maxChain: 64 });
  const st: StreamState = { received: 0, recvArmed: false };
  const onRecv = (_: null, res: number, flags: number): void => {
    if (flags & IORING_CQE_F_BUFFER) {
      const bid = flags >>> IORING_CQE_BUFFER_SHIFT;
      pb.view(bid, 0);
      pb.recycle(bid);
      pb.publish();
    }
    if (res > 0) st.received += res;
    if (!(flags & IORING_CQE_F_MORE)) st.recvArmed = false;
  };
  let queued = 0;
  const t0 = performance.now();
  try {
    while (st.received < totalBytes) {
      if (!st.recvArmed) {
        const slot = ring.getSqe();
        prepRecvMultishot(ring.sq, slot, srv, pb.bgid, 0);
        ring.setUserData(slot, ring.ops.add(onRecv, null));
        st.recvArmed = true;
      }
      // The same (never modified) buffer goes out many times, as in the async stream.
      sender.cork();
      while (sender.inflight < 64 && queued < totalBytes) {
        sender.send(buf);
        queued += STREAM_CHUNK;
      }
      sender.uncork();
      ring.run(1);
    }
  } finally {
    ring.close();
    pb.close();
    closeQuietly(cl);
    closeQuietly(srv);
    closeQuietly(l.fd);
  }
  return st.received / ((performance.now() - t0) / 1000) / 1e6;
}

// ---- Bun.listen / Bun.connect ----

async function bunPingPong(size: number, iters: number): Promise<number[]> {
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: { data: (s, d) => void s.write(d) },
  });
  let got = 0;
  let wake: (() => void) | null = null;
  const client = await Bun.connect({
    hostname: "127.0.0.1",
    port: server.port,
    socket: {
      data: (_s, d) => {
        got += d.length;
        if (got >= size && wake) {
          const w = wake;
          wake = null;
          w();
        }
      },
    },
  });
  client.setNoDelay(true);
  const msg = new Uint8Array(size).fill(7);
  const samples: number[] = [];
  for (let i = 0; i < WARMUP + iters; i++) {
    const t0 = performance.now();
    got = 0;
    const p = new Promise<void>((r) => (wake = r));
    client.write(msg);
    await p;
    if (i >= WARMUP) samples.push((performance.now() - t0) * 1000);
  }
  client.end();
  server.stop(true);
  return samples;
}

// ---- node:net (a node child process) ----

const NODE_SCRIPT = `
const net = require("net");
const [sizes, iters, warmup, runs] = JSON.parse(process.argv[1]);
const out = {};
async function one(size) {
  const server = net.createServer((s) => { s.setNoDelay(true); s.on("data", (d) => s.write(d)); });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const c = net.connect(server.address().port, "127.0.0.1");
  c.setNoDelay(true);
  await new Promise((r) => c.on("connect", r));
  let got = 0, wake = null;
  c.on("data", (d) => { got += d.length; if (got >= size && wake) { const w = wake; wake = null; w(); } });
  const msg = Buffer.alloc(size, 7);
  const samples = [];
  for (let i = 0; i < warmup + iters; i++) {
    const t0 = performance.now();
    got = 0;
    const p = new Promise((r) => (wake = r));
    c.write(msg);
    await p;
    if (i >= warmup) samples.push((performance.now() - t0) * 1000);
  }
  c.destroy(); server.close();
  return samples;
}
(async () => {
  for (const size of sizes) { out[size] = []; for (let r = 0; r < runs; r++) out[size].push(await one(size)); }
  process.stdout.write(JSON.stringify(out));
})();
`;

async function nodePingPong(): Promise<Record<string, number[][]> | null> {
  const node = Bun.which("node");
  if (!node) return null;
  const proc = Bun.spawn([node, "-e", NODE_SCRIPT, JSON.stringify([SIZES, flags.iters, WARMUP, flags.runs])], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  if (code !== 0) return null;
  return JSON.parse(out);
}

// ---- wake-up: how the event loop learns of a completion ----

/** Time from submitting a NOP to its handler, with the wait named by `kind` on the ring's eventfd
 * (blocking eventfds for the thread-pool and Worker waits, non-blocking for the stream). */
async function wakeLatency(kind: string, iters: number): Promise<number[]> {
  const ring = Ring.create({ entries: 8 });
  const efd = c.eventfd(0, EFD_CLOEXEC | (kind === "stream" ? EFD_NONBLOCK : 0));
  registerEventfd(ring, efd);
  let woke: (() => void) | null = null;
  const wake = () => {
    const w = woke;
    woke = null;
    w?.();
  };
  let arm: () => void;
  let stop: () => void | Promise<void> = () => {};
  let dir = "";
  if (kind === "fs.read") {
    const b = Buffer.alloc(8);
    arm = () => fsRead(efd, b, 0, 8, null, wake);
  } else if (kind === "stream") {
    const reader = Bun.file(efd).stream().getReader();
    arm = () => void reader.read().then(wake);
    stop = () => void reader.cancel();
  } else if (kind === "worker") {
    // A Worker blocks in read(2) on the eventfd and bumps a shared counter; the main thread
    // waits on the counter with Atomics.waitAsync. Word 1 asks the Worker to stop: a blocked FFI
    // call ignores terminate(), so the stop is a flag plus one eventfd write, and the fd is closed
    // only after the Worker said it left its loop (else its next read could hit a new eventfd that
    // reused the number).
    dir = mkdtempSync(join(tmpdir(), "bun-uring-wake-"));
    const script = join(dir, "waiter.ts");
    writeFileSync(
      script,
      `import { c } from ${JSON.stringify(join(import.meta.dir, "../ffi/index.ts"))};
self.onmessage = (e) => { const { efd, sab } = e.data; const n = new Int32Array(sab); const b = new BigUint64Array(1);
  while (Atomics.load(n, 1) === 0) { if (c.read(efd, b, 8) === 8 && Atomics.load(n, 1) === 0) { Atomics.add(n, 0, 1); Atomics.notify(n, 0); } }
  postMessage("stopped"); };`,
    );
    const sab = new SharedArrayBuffer(8);
    const counter = new Int32Array(sab);
    const w = new Worker(script);
    const stopped = new Promise<void>((resolve) => (w.onmessage = () => resolve()));
    w.postMessage({ efd, sab });
    let seen = 0;
    arm = () => {
      const r = Atomics.waitAsync(counter, 0, seen);
      const done = () => {
        seen = Atomics.load(counter, 0);
        wake();
      };
      if (r.async) void r.value.then(done);
      else queueMicrotask(done);
    };
    stop = async () => {
      Atomics.store(counter, 1, 1);
      c.write(efd, new BigUint64Array([1n]), 8);
      await stopped;
      w.terminate();
    };
  } else {
    arm = () => {
      const poll = () => (ring.cqReady > 0 ? wake() : setImmediate(poll));
      setImmediate(poll);
    };
  }
  const samples: number[] = [];
  const handler = () => {};
  try {
    for (let i = 0; i < WARMUP + iters; i++) {
      const p = new Promise<void>((r) => (woke = r));
      arm();
      await new Promise<void>((r) => setImmediate(r));
      const t0 = performance.now();
      const slot = ring.getSqe();
      prepNop(ring.sq, slot);
      ring.track(slot, handler, null);
      ring.submit();
      await p;
      ring.completions();
      if (i >= WARMUP) samples.push((performance.now() - t0) * 1000);
    }
  } finally {
    await stop();
    ring.close();
    c.close(efd);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
  return samples;
}

const WAITS: Array<[string, string]> = [
  ["fs.read", "fs.read on the eventfd (Bun's thread pool)"],
  ["worker", "Worker in read(2) + Atomics.waitAsync"],
  ["stream", "Bun.file(eventfd).stream() (kept)"],
  ["poll", "setImmediate polling of the CQ"],
];

// ---- run ----

const cpu0 = cpuTimes();
const rows: Row[] = [];
for (const size of SIZES) {
  const a: number[][] = [],
    s: number[][] = [],
    b: number[][] = [];
  // Interleaved, so drift of the machine hits every implementation alike.
  for (let r = 0; r < flags.runs; r++) {
    progress(`ping-pong ${size} B, run ${r + 1}/${flags.runs}: async`);
    a.push(await asyncPingPong(size, flags.iters));
    progress(`ping-pong ${size} B, run ${r + 1}/${flags.runs}: sync`);
    s.push(syncPingPong(size, flags.iters));
    progress(`ping-pong ${size} B, run ${r + 1}/${flags.runs}: Bun`);
    b.push(await bunPingPong(size, flags.iters));
  }
  rows.push(
    summarize("bun-uring async", size, a),
    summarize("bun-uring sync", size, s),
    summarize("Bun.connect/listen", size, b),
  );
}
progress("ping-pong: node:net");
const nodeRuns = await nodePingPong();
if (nodeRuns) for (const size of SIZES) rows.push(summarize("node:net", size, nodeRuns[size]!));

const streamAsync: number[] = [],
  streamSync: number[] = [];
const streamBytes = flags["stream-mib"] * 1024 * 1024;
for (let r = 0; r < flags.runs; r++) {
  progress(`stream run ${r + 1}/${flags.runs}: async`);
  streamAsync.push(await asyncStream(streamBytes));
  progress(`stream run ${r + 1}/${flags.runs}: sync`);
  streamSync.push(syncStream(streamBytes));
}
const wakeRows: Array<{ wait: string; p50_us: number; p99_us: number }> = [];
for (const [kind, label] of WAITS) {
  const runs: number[][] = [];
  for (let r = 0; r < flags.runs; r++) {
    progress(`wake-up ${kind}, run ${r + 1}/${flags.runs}`);
    runs.push(await wakeLatency(kind, flags.iters));
  }
  wakeRows.push({
    wait: label,
    p50_us: median(runs.map((x) => percentile(x, 50))),
    p99_us: median(runs.map((x) => percentile(x, 99))),
  });
}
const cpu1 = cpuTimes();

const p50 = (impl: string, size: number) => rows.find((r) => r.impl === impl && r.size === size)!.p50_us;
const perSize = Object.fromEntries(
  SIZES.map((size) => [size, p50("bun-uring async", size) / p50("Bun.connect/listen", size)]),
);
const stream = {
  chunk_bytes: STREAM_CHUNK,
  total_mib: flags["stream-mib"],
  async_mb_per_s: median(streamAsync),
  sync_mb_per_s: median(streamSync),
};
const result = {
  rows,
  stream,
  ratios: {
    // The worse of the two sizes: the goal (<= 1.0) must hold for both.
    async_vs_bun_p50: Math.max(...Object.values(perSize)),
    async_vs_bun_p50_by_size: perSize,
    async_stream_vs_sync: stream.async_mb_per_s / stream.sync_mb_per_s,
  },
  wake: wakeRows,
  settings: {
    iters: flags.iters,
    runs: flags.runs,
    warmup: WARMUP,
    spin_us: flags["spin-us"],
    node: nodeRuns !== null,
  },
  cpu: { user_s: cpu1.user_s - cpu0.user_s, sys_s: cpu1.sys_s - cpu0.sys_s },
};

if (flags.json) {
  console.log(JSON.stringify(result));
} else {
  log(`loopback TCP ping-pong, ${flags.iters} round trips x ${flags.runs} runs (median of per-run p50 / p99), µs`);
  printTable(
    ["impl", "size", "p50_us", "p99_us"],
    rows.map((r) => [r.impl, r.size, r.p50_us, r.p99_us]),
  );
  log("");
  log(`64 KiB stream, ${flags["stream-mib"]} MiB x ${flags.runs} runs (median MB/s)`);
  printTable(
    ["impl", "MB/s"],
    [
      ["bun-uring async", stream.async_mb_per_s],
      ["bun-uring sync", stream.sync_mb_per_s],
    ],
  );
  log("");
  log(`wake-up of the event loop: NOP submitted -> handler ran, ${flags.iters} x ${flags.runs} runs, µs`);
  printTable(
    ["wait", "p50_us", "p99_us"],
    wakeRows.map((w) => [w.wait, w.p50_us, w.p99_us]),
  );
  log("");
  log(`async p50 / Bun p50: ${SIZES.map((s) => `${s} B ${perSize[s]!.toFixed(2)}x`).join(", ")} (goal <= 1.0)`);
  log(`async stream / sync stream: ${result.ratios.async_stream_vs_sync.toFixed(2)}x (goal >= 0.9)`);
}
if (!flags["no-record"]) {
  const path = recordResult("latency", result);
  log(`recorded ${path}`);
}
