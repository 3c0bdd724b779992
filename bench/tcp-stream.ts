// bun bench/tcp-stream.ts: one TCP stream over loopback, sender against sender, in the same run.
// Every sender is a child process measured against its own copying receiver (the C receiver in
// bench/c/tcp_stream.c: recv() into a buffer until EOF), so only the sending side differs:
//   bun-uring   ZcSender in each mode: copy, zc, zc-fixed, mixed, adaptive
//   c-liburing  the project's C baseline: send, send_zc, send_zc fixed (same batch, same chains:
//               `batch` linked SQEs of one payload each), and copy-gather / zc-gather (the chain's
//               payloads gathered into one SENDMSG / SENDMSG_ZC with iovecs). ZcSender gathers
//               consecutive sends of one kind into one operation, so its copy and zc modes have
//               the gathered shape; the per-SQE modes are the goal's baseline, the gathered ones
//               show what is left once both sides gather.
//   bun-net     Bun.connect, write() with drain
//   node-net    node:net (a `node` child), write() with drain
// TCP_NODELAY is on and SO_SNDBUF is 4 MiB for every io_uring sender (Bun and Node keep their
// defaults). Each sender reports its bytes, seconds and CPU seconds of
// the send loop; rounds interleave the senders, and the table shows medians over the rounds. Results go to bench/results/ and the
// chart to docs/tcp-stream.svg.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Ring } from "../src/ring/ring.ts";
import { kernelRelease } from "../src/ring/kernel.ts";
import { tcpConnect, closeQuietly, setSocketOption, shutdownSocket } from "../src/net/index.ts";
import { ZcSender, FixedBufferPool, type ZcMode } from "../src/zc/index.ts";
import { SOL_SOCKET, SO_SNDBUF, SHUT_WR } from "../src/abi/net.ts";
import { BENCH_DIR, compileC, ensureDirFor, median, parseFlags, printTable, recordResult } from "./lib/harness.ts";
import { renderChart } from "./tcp-stream-chart.ts";

const USAGE = `usage: bun bench/tcp-stream.ts [--rounds N] [--seconds S] [--sizes 1,4,16,64,256] [--senders bun-uring,c-liburing,bun-net,node-net] [--modes copy,zc,...] [--batch N] [--json]`;

interface Flags extends Record<string, number | string | boolean> {
  rounds: number;
  seconds: number;
  sizes: string;
  batch: number;
  senders: string;
  modes: string;
  json: boolean;
  child: string;
  mode: string;
  size: number;
  port: number;
  host: string;
}

const SPEC = {
  rounds: { type: "number", default: 5, help: "rounds per sender and size (the median is reported)" },
  seconds: { type: "number", default: 1, help: "seconds each sender sends per round" },
  sizes: { type: "string", default: "1,4,16,64,256", help: "payload sizes in KiB" },
  batch: { type: "number", default: 8, help: "sends per linked chain (bun-uring and C)" },
  senders: { type: "string", default: "bun-uring,c-liburing,bun-net,node-net", help: "which senders to run" },
  modes: { type: "string", default: "copy,zc,zc-fixed,mixed,adaptive,copy-gather,zc-gather", help: "which modes to run (bun-uring and c-liburing)" },
  json: { type: "boolean", default: false, help: "print one JSON object" },
  pin: { type: "boolean", default: true, help: "pin each sender to the first CPU and its receiver to the last (taskset), when there are two or more" },
  child: { type: "string", default: "", help: "(internal) run one sender: uring | bun" },
  mode: { type: "string", default: "adaptive", help: "(internal) bun-uring mode" },
  size: { type: "number", default: 65536, help: "(internal) payload bytes" },
  port: { type: "number", default: 0, help: "(internal) receiver port" },
  host: { type: "string", default: "127.0.0.1", help: "(internal) receiver host (loopback only)" },
} as const;

interface SendReport {
  bytes: number;
  seconds: number;
  cpu_s: number;
  /** bun-uring adaptive: what each size class chose, and why. */
  decision?: string;
}

function cpuSeconds(): number {
  const u = process.resourceUsage();
  return (u.userCPUTime + u.systemCPUTime) / 1e6;
}

function pattern(size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + 1) & 0xff;
  return b;
}

/** Child: bun-uring's ZcSender in one mode, the same shape as the C baseline (chains of `batch`,
 * four chains' worth in flight). Ring memory is kernel memory (see test/zc.test.ts). */
function childUring(f: Flags): SendReport {
  const ring = Ring.create({ entries: 512, memory: "mmap", maxInflight: 8192 });
  const fd = tcpConnect(ring, { host: f.host, port: f.port, noDelay: true });
  let pool: FixedBufferPool | undefined;
  try {
    setSocketOption(ring, fd, SOL_SOCKET, SO_SNDBUF, 4 << 20, { via: "libc" });
    const window = f.batch * 4;
    // zc-fixed needs the pool. Every other mode sends from the same JavaScript memory, so
    // adaptive is compared with the fixed modes on equal payload memory.
    if (f.mode === "zc-fixed") pool = FixedBufferPool.create(ring, { bufferSize: f.size, count: 1 });
    // Records for the window plus sends awaiting their notification: like the C baseline, the
    // loop waits for "sent", never for "released" (the payload is never rewritten).
    const sender = new ZcSender(ring, fd, { mode: f.mode as ZcMode, pool, capacity: window * 16, maxChain: f.batch });
    const payload = pool ? pool.view(0).subarray(0, f.size) : pattern(f.size);
    if (pool) payload.set(pattern(f.size));
    const cpu0 = cpuSeconds();
    const t0 = performance.now();
    const end = t0 + f.seconds * 1000;
    while (performance.now() < end) {
      while (sender.stats.sends - sender.stats.sent + f.batch <= window && sender.available >= f.batch) {
        sender.cork();
        for (let i = 0; i < f.batch; i++) sender.send(payload);
        sender.uncork();
      }
      ring.run(1, 100);
      if (sender.isBroken) throw sender.stats.lastError;
    }
    ring.runUntil(() => sender.inflight === 0, 10_000);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds() - cpu0;
    shutdownSocket(ring, fd, SHUT_WR);
    const decision = f.mode === "adaptive" ? sender.stats.sizeClasses.map((k) => `${k.decision}${k.measuring ? " (measuring)" : ""}: ${k.reason}`).join("; ") : undefined;
    return { bytes: sender.stats.sentBytes, seconds, cpu_s: cpu, decision };
  } finally {
    pool?.close();
    ring.close();
    closeQuietly(fd);
  }
}

/** Child: Bun.connect / socket.write with drain, TCP_NODELAY on. */
async function childBun(f: Flags): Promise<SendReport> {
  const payload = pattern(f.size);
  let bytes = 0, off = 0;
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  const end = t0 + f.seconds * 1000;
  await new Promise<void>((resolve, reject) => {
    const pump = (s: { write(b: Uint8Array): number; end(): void }) => {
      while (performance.now() < end) {
        const n = s.write(off === 0 ? payload : payload.subarray(off));
        if (n < 0) return reject(new Error("Bun socket closed"));
        bytes += n;
        off = (off + n) % f.size;
        if (n === 0 || off !== 0) return; // wait for drain
      }
      s.end();
      resolve();
    };
    Bun.connect({
      hostname: f.host,
      port: f.port,
      socket: {
        open(s) { s.setNoDelay(true); pump(s); },
        drain(s) { pump(s); },
        data() {},
        error(_s, e) { reject(e); },
      },
    }).catch(reject);
  });
  return { bytes, seconds: (performance.now() - t0) / 1000, cpu_s: cpuSeconds() - cpu0 };
}

/** The node:net sender, run as `node -e` (Node's own event loop and sockets). */
const NODE_SENDER = `
const net = require("node:net");
const [host, port, size, seconds] = process.argv.slice(1).map((x, i) => (i === 0 ? x : Number(x)));
const payload = Buffer.alloc(size);
for (let i = 0; i < size; i++) payload[i] = (i * 7 + 1) & 0xff;
const c0 = process.cpuUsage();
const t0 = performance.now();
const end = t0 + seconds * 1000;
const s = net.connect({ host, port, noDelay: true }, () => {
  const pump = () => {
    while (performance.now() < end) if (!s.write(payload)) return s.once("drain", pump);
    s.end();
  };
  pump();
});
s.on("finish", () => {
  const c = process.cpuUsage(c0);
  console.log(JSON.stringify({ bytes: s.bytesWritten, seconds: (performance.now() - t0) / 1000, cpu_s: (c.user + c.system) / 1e6 }));
});
s.on("error", (e) => { console.error(e.message); process.exit(1); });
`;

interface SenderSpec {
  sender: string;
  mode: string;
  cmd(port: number, size: number): string[];
}

/** CPU pinning of one run: the sender on the first CPU, its receiver on the last. Unpinned, the
 * scheduler sometimes puts both on one CPU of a 2-CPU machine for a whole round, and rates split
 * into two clusters (a round at half speed) whatever the sender. */
let pinSender: string[] = [];
let pinReceiver: string[] = [];

async function startReceiver(bin: string): Promise<{ port: number; done: Promise<number> }> {
  const child = Bun.spawn([...pinReceiver, bin, "recv", "127.0.0.1", "0"], { stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  const dec = new TextDecoder();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the receiver exited before listening");
    text += dec.decode(value);
  }
  const port = Number(/listening (\d+)/.exec(text)?.[1]);
  const done = (async () => {
    for (;;) {
      const { value, done: eof } = await reader.read();
      if (value) text += dec.decode(value);
      if (eof) break;
    }
    await child.exited;
    const m = /\{"bytes":(\d+)\}/.exec(text);
    return m ? Number(m[1]) : -1;
  })();
  return { port, done };
}

async function runOne(spec: SenderSpec, bin: string, size: number): Promise<SendReport & { received: number }> {
  const rx = await startReceiver(bin);
  const child = Bun.spawn([...pinSender, ...spec.cmd(rx.port, size)], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(child.stdout).text();
  const code = await child.exited;
  if (code !== 0) throw new Error(`${spec.sender} ${spec.mode} exited with ${code}`);
  const m = /\{.*\}/.exec(out);
  if (!m) throw new Error(`${spec.sender} ${spec.mode}: no report in ${JSON.stringify(out)}`);
  const r = JSON.parse(m[0]) as SendReport;
  return { ...r, received: await rx.done };
}

async function main(): Promise<void> {
  const f = parseFlags<Flags>(process.argv.slice(2), SPEC as never, USAGE);
  if (f.child) {
    if (f.host !== "127.0.0.1" && f.host !== "::1") throw new Error("the benchmark sends to loopback only");
    const r = f.child === "uring" ? childUring(f) : await childBun(f);
    console.log(JSON.stringify(r));
    return;
  }
  const bin = await compileC("tcp_stream", "c/tcp_stream.c");
  const cpus = navigator.hardwareConcurrency;
  const pinned = f.pin && cpus >= 2 && Bun.which("taskset") !== null;
  if (pinned) {
    pinSender = ["taskset", "-c", "0"];
    pinReceiver = ["taskset", "-c", String(cpus - 1)];
  }
  const sizes = f.sizes.split(",").map((s) => Number(s) * 1024);
  const wanted = new Set(f.senders.split(","));
  const wantedModes = new Set(f.modes.split(","));
  const self = [process.execPath, join(BENCH_DIR, "tcp-stream.ts")];
  const common = (port: number, size: number) => ["--port", String(port), "--size", String(size), "--seconds", String(f.seconds), "--batch", String(f.batch)];
  const specs: SenderSpec[] = [];
  if (wanted.has("bun-uring")) {
    for (const mode of ["copy", "zc", "zc-fixed", "mixed", "adaptive"].filter((m) => wantedModes.has(m))) {
      specs.push({ sender: "bun-uring", mode, cmd: (p, s) => [...self, "--child", "uring", "--mode", mode, ...common(p, s)] });
    }
  }
  if (wanted.has("c-liburing")) {
    for (const [mode, cmode] of ([["copy", "send"], ["zc", "zc"], ["zc-fixed", "zc-fixed"], ["copy-gather", "send-gather"], ["zc-gather", "zc-gather"]] as const).filter(([m]) => wantedModes.has(m))) {
      specs.push({ sender: "c-liburing", mode, cmd: (p, s) => [bin, "send", cmode, "127.0.0.1", String(p), String(s), String(f.seconds), String(f.batch)] });
    }
  }
  if (wanted.has("bun-net")) specs.push({ sender: "bun-net", mode: "copy", cmd: (p, s) => [...self, "--child", "bun", ...common(p, s)] });
  if (wanted.has("node-net")) specs.push({ sender: "node-net", mode: "copy", cmd: (p, s) => ["node", "-e", NODE_SENDER, "127.0.0.1", String(p), String(s), String(f.seconds)] });

  const rows: { size: number; sender: string; mode: string; mib_s: number; cpu_s: number; rounds_mib_s: number[]; decisions?: string[] }[] = [];
  for (const size of sizes) {
    // Rounds interleave the senders (each round starts one sender later), so a slow stretch of a
    // noisy machine lands on every sender alike instead of on all rounds of one.
    const samples = specs.map(() => ({ rates: [] as number[], cpus: [] as number[], decisions: [] as string[] }));
    for (let r = 0; r < f.rounds; r++) {
      for (let k = 0; k < specs.length; k++) {
        const i = (k + r) % specs.length;
        const rep = await runOne(specs[i]!, bin, size);
        samples[i]!.rates.push(rep.bytes / (1 << 20) / rep.seconds);
        samples[i]!.cpus.push(rep.cpu_s);
        if (rep.decision) samples[i]!.decisions.push(rep.decision);
      }
    }
    specs.forEach((spec, i) => {
      const { rates, cpus, decisions } = samples[i]!;
      rows.push({ size, sender: spec.sender, mode: spec.mode, mib_s: median(rates), cpu_s: median(cpus), rounds_mib_s: rates.map((x) => Math.round(x)), ...(decisions.length ? { decisions } : {}) });
      if (!f.json) {
        console.error(`${size / 1024} KiB ${spec.sender} ${spec.mode}: ${median(rates).toFixed(0)} MiB/s (rounds ${rates.map((x) => x.toFixed(0)).join(", ")})`);
        for (const d of decisions) console.error(`    ${d}`);
      }
    });
  }

  const at = (size: number, sender: string, mode: string) => rows.find((r) => r.size === size && r.sender === sender && r.mode === mode)?.mib_s ?? NaN;
  const bestUring = (size: number) => Math.max(...rows.filter((r) => r.size === size && r.sender === "bun-uring").map((r) => r.mib_s));
  const fixedBest = (size: number) => Math.max(...rows.filter((r) => r.size === size && r.sender === "bun-uring" && r.mode !== "adaptive").map((r) => r.mib_s));
  const k64 = 65536, k1 = 1024;
  const pairedAdaptive = (size: number): number => {
    const mine = rows.filter((r) => r.size === size && r.sender === "bun-uring");
    const ad = mine.find((r) => r.mode === "adaptive");
    const fixed = mine.filter((r) => r.mode !== "adaptive");
    if (!ad || fixed.length === 0) return NaN;
    return median(ad.rounds_mib_s.map((x, i) => x / Math.max(...fixed.map((r) => r.rounds_mib_s[i]!))));
  };
  const vsC = ["copy", "zc", "zc-fixed"].map((m) => at(k64, "bun-uring", m) / at(k64, "c-liburing", m));
  // ZcSender gathers the chain's sends into one operation with iovecs; the gathered C modes do
  // the same, so these ratios compare the library's overhead alone.
  const vsCGather = ["copy", "zc"].map((m) => at(k64, "bun-uring", m) / at(k64, "c-liburing", `${m}-gather`));
  const ratios = {
    vs_bun_64k: bestUring(k64) / at(k64, "bun-net", "copy"),
    vs_c_64k: Math.min(...vsC),
    vs_c_64k_by_mode: { copy: vsC[0], zc: vsC[1], "zc-fixed": vsC[2] },
    vs_c_gathered_64k_by_mode: { copy: vsCGather[0], zc: vsCGather[1] },
    vs_bun_1k: bestUring(k1) / at(k1, "bun-net", "copy"),
    adaptive_vs_best_min: Math.min(...sizes.map((s) => at(s, "bun-uring", "adaptive") / fixedBest(s))),
    // The same comparison made inside each round (adaptive against the best fixed mode of that
    // round, which ran right beside it), then the median over rounds: a slow stretch of the
    // machine that hits a whole round cancels out. Reported next to the goal's ratio of medians.
    adaptive_vs_best_paired_min: Math.min(...sizes.map((s) => pairedAdaptive(s))),
  };
  const goals = {
    vs_bun_64k: ">= 1.5", vs_c_64k: ">= 1.0 (each mode)", vs_bun_1k: ">= 2.0", adaptive_vs_best_min: ">= 0.95",
  };
  const meta = {
    kernel: kernelRelease(), rounds: f.rounds, seconds: f.seconds, batch: f.batch, tcp_nodelay: true,
    pinning: pinned ? `sender on CPU 0, receiver on CPU ${cpus - 1} (taskset)` : "none",
    receiver: "bench/c/tcp_stream.c recv(): one copying receiver process per sender run", route: "loopback 127.0.0.1 (the kernel copies SEND_ZC data: REPORT_USAGE says copied)",
  };
  const json = { ...meta, rows, ratios, goals };
  // A run narrowed with --sizes / --senders / --modes is for iterating: it would replace the
  // recorded full run with a partial one, so it is printed only.
  const full = f.sizes === SPEC.sizes.default && f.senders === SPEC.senders.default && f.modes === SPEC.modes.default;
  let path = "not recorded (a narrowed run)";
  if (full) {
    path = recordResult("tcp-stream", json);
    const svg = join(BENCH_DIR, "..", "docs", "tcp-stream.svg");
    ensureDirFor(svg);
    writeFileSync(svg, renderChart(rows, meta));
  }
  if (f.json) {
    console.log(JSON.stringify(json));
    return;
  }
  printTable(["size", "sender", "mode", "MiB/s", "cpu s"], rows.map((r) => [`${r.size / 1024} KiB`, r.sender, r.mode, r.mib_s, r.cpu_s]));
  console.log(`\nmedians of ${f.rounds} rounds of ${f.seconds} s, batch ${f.batch}, TCP_NODELAY on every sender, loopback, kernel ${kernelRelease()}`);
  const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");
  console.log(`vs Bun.connect at 64 KiB (best bun-uring mode): ${fmt(ratios.vs_bun_64k)}x (goal >= 1.5)`);
  console.log(`vs C baseline at 64 KiB, same mode: copy ${fmt(vsC[0]!)}x, zc ${fmt(vsC[1]!)}x, zc-fixed ${fmt(vsC[2]!)}x (goal >= 1.0)`);
  console.log(`vs gathered C (one SENDMSG / SENDMSG_ZC of the chain's iovecs) at 64 KiB: copy ${fmt(vsCGather[0]!)}x, zc ${fmt(vsCGather[1]!)}x (no goal; same shape as ZcSender's)`);
  console.log(`vs Bun.connect at 1 KiB: ${fmt(ratios.vs_bun_1k)}x (goal >= 2.0)`);
  console.log(`adaptive / best fixed mode, worst size: ${fmt(ratios.adaptive_vs_best_min)} (goal >= 0.95); paired within rounds: ${fmt(ratios.adaptive_vs_best_paired_min)}`);
  console.log(full ? `recorded ${path}; chart docs/tcp-stream.svg` : path);
}

await main();
