// bun bench/tcp-stream.ts: one TCP stream over loopback, sender against sender, in the same run.
// Every sender is a child process measured against its own copying receiver (the C receiver in
// bench/c/tcp_stream.c: recv() into a buffer until EOF), so only the sending side differs:
//   bun-uring   ZcSender in each mode: copy, zc, zc-fixed, mixed, adaptive (zc-fixed and
//               adaptive send from a registered buffer, so adaptive's SEND_ZC is zc-fixed's)
//   c-liburing  the project's C baseline: send, send_zc, send_zc fixed (same batch, same chains:
//               `batch` linked SQEs of one payload each), and copy-gather / zc-gather (the chain's
//               payloads gathered into one SENDMSG / SENDMSG_ZC with iovecs). ZcSender gathers
//               consecutive sends of one kind into one operation (zc-fixed too on 6.17+), so its
//               modes have the gathered shape; the per-SQE modes are the goal's baseline, the
//               gathered ones show what is left once both sides gather (no gathered C
//               zc-fixed mode exists).
//   bun-net     Bun.connect, write() with drain
//   node-net    node:net (a `node` child), write() with drain
// Socket options are the same on every sender: TCP_NODELAY on, and SO_SNDBUF at the kernel's
// default (autotuned) on all of them, io_uring senders included (Bun and Node offer no way to set
// it, so none sets it). The one C receiver is the same for every sender (its SO_RCVBUF is 4 MiB).
// Each sender reports its bytes, seconds and CPU seconds of
// the send loop; rounds interleave the senders, and the table shows medians over the rounds.
// Then, per size, adaptive runs against each fixed bun-uring mode within 10% of the best median
// in alternating slices inside one process (one connection and C receiver each, an untimed slice
// each first): separate 1 s runs on a shared 2-CPU host differ by 20% even between identical
// senders, which hides a 5% difference; slices side by side do not. At 64 KiB the C comparison is
// made that way too: the bun-uring and C senders both run, each with a counting receiver, and the
// parent lets one send at a time (SIGSTOP / SIGCONT), reading each receiver's count around every
// slice. Each A/B row also says what share of its bytes adaptive sent as SEND_ZC. --busy-cpu N
// adds load: a process spinning on CPU N for the whole run. Results go to bench/results/ and the
// chart to docs/tcp-stream.svg; a narrowed run (--sizes, --senders, --modes) is recorded only
// under a name of its own (--record NAME).
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { Ring } from "../src/ring/ring.ts";
import { allocShared } from "../src/ring/memory.ts";
import { kernelRelease } from "../src/ring/kernel.ts";
import { tcpConnect, closeQuietly, shutdownSocket } from "../src/sync.ts";
import { ZcSender, FixedBufferPool, type ZcMode } from "../src/zc/index.ts";
import { SHUT_WR } from "../src/abi/net.ts";
import { BENCH_DIR, compileC, ensureDirFor, median, parseFlags, printTable, recordResult } from "./lib/harness.ts";
import { renderChart } from "./tcp-stream-chart.ts";

const USAGE = `usage: bun bench/tcp-stream.ts [--rounds N] [--seconds S] [--sizes 1,4,16,64,256] [--senders bun-uring,c-liburing,bun-net,node-net] [--modes copy,zc,...] [--batch N] [--busy-cpu N] [--record NAME] [--json]`;

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
  "ab-slices": number;
  "slice-ms": number;
  "port-b": number;
  pin: boolean;
  "busy-cpu": number;
  record: string;
}

const SPEC = {
  rounds: { type: "number", default: 5, help: "rounds per sender and size (the median is reported)" },
  seconds: { type: "number", default: 1, help: "seconds each sender sends per round" },
  sizes: { type: "string", default: "1,4,16,64,256", help: "payload sizes in KiB" },
  batch: { type: "number", default: 8, help: "sends per linked chain (bun-uring and C)" },
  senders: { type: "string", default: "bun-uring,c-liburing,bun-net,node-net", help: "which senders to run" },
  modes: {
    type: "string",
    default: "copy,zc,zc-fixed,mixed,adaptive,copy-gather,zc-gather",
    help: "which modes to run (bun-uring and c-liburing)",
  },
  json: { type: "boolean", default: false, help: "print one JSON object" },
  "ab-slices": {
    type: "number",
    default: 40,
    help: "alternating slices per side: adaptive against each fixed mode within 10% of the best median, and bun-uring against C at 64 KiB (0 skips)",
  },
  "slice-ms": { type: "number", default: 250, help: "length of one A/B slice" },
  "port-b": { type: "number", default: 0, help: "(internal) second receiver port (A/B child)" },
  pin: {
    type: "boolean",
    default: true,
    help: "pin each sender to the first CPU and its receiver to the last (taskset), when there are two or more",
  },
  "busy-cpu": {
    type: "number",
    default: -1,
    help: "load: a busy-loop process pinned to this CPU for the whole run (-1: none)",
  },
  record: {
    type: "string",
    default: "",
    help: "record a narrowed run as bench/results/tcp-stream-NAME-<date>.json (no chart)",
  },
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

function pattern(size: number, into: Uint8Array = new Uint8Array(size)): Uint8Array {
  for (let i = 0; i < size; i++) into[i] = (i * 7 + 1) & 0xff;
  return into;
}

/** The payload of a bun-uring sender: page-aligned, as the C baseline's (posix_memalign), so the
 * kernel's copies read the same alignment on both sides and in every mode. */
function alignedPattern(size: number): Uint8Array {
  return pattern(size, allocShared(size).bytes.subarray(0, size));
}

/** One bun-uring sender: its own ring and connection, ZcSender in one mode, used as an
 * application would: up to four chains' worth (`batch` x 4 sends) queued or in flight, and the
 * sender gathers what waits behind a chain into operations with iovecs (on 6.17+ this includes
 * zc-fixed, through IORING_SEND_VECTORIZED). The C baseline's per-SQE modes keep one chain of
 * `batch` linked SQEs in flight; its gathered modes send each chain as one SENDMSG(_ZC). Ring
 * memory is kernel memory (see test/zc.test.ts). */
class UringSide {
  readonly ring: Ring;
  readonly fd: number;
  readonly sender: ZcSender;
  private readonly pool: FixedBufferPool | undefined;
  private readonly payload: Uint8Array;
  private readonly window: number;

  constructor(
    readonly mode: string,
    private readonly f: Flags,
    port: number,
  ) {
    this.ring = Ring.create({ entries: 512, memory: "mmap", maxInflight: 8192 });
    try {
      this.fd = tcpConnect(this.ring, { host: f.host, port, noDelay: true });
      this.window = f.batch * 4;
      // zc-fixed needs the pool, and adaptive gets one too: its SEND_ZC sends then use the
      // registered buffer (FIXED_BUF), so it chooses between SEND and what zc-fixed sends, on the
      // resources zc-fixed has. copy, zc and mixed send from the same kind of memory (allocShared,
      // page-aligned) without registering it.
      if (mode === "zc-fixed" || mode === "adaptive")
        this.pool = FixedBufferPool.create(this.ring, { bufferSize: f.size, count: 1 });
      // Records for the window plus sends awaiting their notification: like the C baseline, the
      // loop waits for "sent", never for "released" (the payload is never rewritten).
      this.sender = new ZcSender(this.ring, this.fd, {
        mode: mode as ZcMode,
        pool: this.pool,
        capacity: this.window * 16,
        maxChain: f.batch,
      });
      this.payload = this.pool ? pattern(f.size, this.pool.view(0).subarray(0, f.size)) : alignedPattern(f.size);
    } catch (e) {
      this.ring.close();
      throw e;
    }
  }

  /** Send for `ms`, then until every send is released; returns the bytes sent and the seconds
   * taken (the tail of notifications included, as the C baseline waits for its last CQE). */
  pump(ms: number): { bytes: number; seconds: number } {
    const { sender, ring, f } = this;
    const before = sender.stats.sentBytes;
    const t0 = performance.now();
    const end = t0 + ms;
    while (performance.now() < end) {
      while (sender.stats.sends - sender.stats.sent + f.batch <= this.window && sender.available >= f.batch) {
        sender.cork();
        for (let i = 0; i < f.batch; i++) sender.send(this.payload);
        sender.uncork();
      }
      ring.run(1, 100);
      if (sender.isBroken) throw sender.stats.lastError;
    }
    ring.runUntil(() => sender.inflight === 0, 10_000);
    return { bytes: sender.stats.sentBytes - before, seconds: (performance.now() - t0) / 1000 };
  }

  /** Wait for every notification, half-close (the receiver reads EOF), release everything. */
  close(): void {
    try {
      this.ring.runUntil(() => this.sender.inflight === 0, 10_000);
      shutdownSocket(this.ring, this.fd, SHUT_WR);
    } finally {
      this.pool?.close();
      this.ring.close();
      closeQuietly(this.fd);
    }
  }
}

/** Child: one bun-uring sender for `seconds`. */
function childUring(f: Flags): SendReport {
  const side = new UringSide(f.mode, f, f.port);
  try {
    const cpu0 = cpuSeconds();
    const { bytes, seconds } = side.pump(f.seconds * 1000);
    const cpu = cpuSeconds() - cpu0;
    const decision =
      f.mode === "adaptive"
        ? side.sender.stats.sizeClasses
            .map((k) => `${k.decision}${k.measuring ? " (measuring)" : ""}: ${k.reason}`)
            .join("; ")
        : undefined;
    return { bytes, seconds, cpu_s: cpu, decision };
  } finally {
    side.close();
  }
}

/** Child: adaptive against one fixed mode in alternating slices of `slice-ms` (each pair starts
 * with the other side), one connection and receiver each, in one process: what changes from slice
 * to slice on a shared machine changes for both. Prints the MiB/s of every slice of each. */
function childAb(f: Flags): {
  a_mib_s: number[];
  b_mib_s: number[];
  zc_share: number;
  switches: number;
  reason: string;
} {
  const a = new UringSide("adaptive", f, f.port);
  let b: UringSide | undefined;
  try {
    b = new UringSide(f.mode, f, f["port-b"]);
    const rate = (r: { bytes: number; seconds: number }) => r.bytes / (1 << 20) / r.seconds;
    const ra: number[] = [],
      rb: number[] = [];
    // One untimed slice each first: the JIT's compilations would otherwise land on whichever
    // side runs first.
    a.pump(f["slice-ms"]);
    b.pump(f["slice-ms"]);
    for (let k = 0; k < f["ab-slices"]; k++) {
      if (k % 2 === 0) {
        ra.push(rate(a.pump(f["slice-ms"])));
        rb.push(rate(b.pump(f["slice-ms"])));
      } else {
        rb.push(rate(b.pump(f["slice-ms"])));
        ra.push(rate(a.pump(f["slice-ms"])));
      }
    }
    // What adaptive did over the slices: its bytes sent zero-copy, its decision changes, and
    // the reason of its size class at the end.
    const st = a.sender.stats;
    const zcShare = st.sentBytes > 0 ? 1 - st.copySendBytes / st.sentBytes : 0;
    return {
      a_mib_s: ra,
      b_mib_s: rb,
      zc_share: zcShare,
      switches: st.switches,
      reason: st.sizeClasses.map((k) => k.reason).join("; "),
    };
  } finally {
    a.close();
    b?.close();
  }
}

/** Child: Bun.connect / socket.write with drain, TCP_NODELAY on. */
async function childBun(f: Flags): Promise<SendReport> {
  const payload = pattern(f.size);
  let bytes = 0,
    off = 0;
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
        open(s) {
          s.setNoDelay(true);
          pump(s);
        },
        drain(s) {
          pump(s);
        },
        data() {},
        error(_s, e) {
          reject(e);
        },
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
  /** The sender's command line; `seconds` overrides --seconds (the alternating runs). */
  cmd(port: number, size: number, seconds?: number): string[];
}

/** CPU pinning of one run: the sender on the first CPU, its receiver on the last. Unpinned, the
 * scheduler sometimes puts both on one CPU of a 2-CPU machine for a whole round, and rates split
 * into two clusters (a round at half speed) whatever the sender. */
let pinSender: string[] = [];
let pinReceiver: string[] = [];

async function startReceiver(bin: string): Promise<{ port: number; done: Promise<number>; kill(): void }> {
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
  return { port, done, kill: () => child.kill("SIGKILL") };
}

/** The interquartile mean of log(a[i] / b[i]) over the slice pairs, back as a ratio. Log space:
 * a pair twice as fast weighs as much as one twice as slow. Interquartile: on this host a slice now
 * and then runs at half speed (softirq work lands on the sender's CPU), on either side at random;
 * such pairs are outliers, and a plain mean would follow them while a median throws away most of
 * the data. */
function pairedRatio(a: number[], b: number[]): number {
  const logs = a.map((x, i) => Math.log(x / b[i]!)).sort((p, q) => p - q);
  const cut = Math.floor(logs.length / 4);
  const mid = logs.length - 2 * cut > 0 ? logs.slice(cut, logs.length - cut) : logs;
  return Math.exp(mid.reduce((s, x) => s + x, 0) / mid.length);
}

/** Fixed modes whose median is at least this share of the best one's run against adaptive in
 * alternating slices (at most AB_MAX_CONTENDERS of them, best first). */
const AB_CONTENDER_SHARE = 0.9;
const AB_MAX_CONTENDERS = 3;

interface AbRow {
  size: number;
  /** The fixed mode adaptive ran against: a bun-uring mode of this size within 10% of the best
   * median (AB_CONTENDER_SHARE). */
  against: string;
  /** Adaptive's MiB/s over the fixed mode's, slice pair by slice pair (pairedRatio). */
  ratio: number;
  adaptive_mib_s: number[];
  /** Adaptive's share of bytes sent as SEND_ZC over the whole child (warm-up slices included),
   * its decision changes, and its size class's reason at the end. */
  adaptive_zc_share: number;
  adaptive_switches: number;
  adaptive_reason: string;
  fixed_mib_s: number[];
}

/** Adaptive against `mode` in alternating slices (childAb), each with its own C receiver. */
async function runAb(self: string[], bin: string, size: number, mode: string, f: Flags): Promise<AbRow> {
  const rxA = await startReceiver(bin);
  const rxB = await startReceiver(bin);
  const child = Bun.spawn(
    [
      ...pinSender,
      ...self,
      "--child",
      "ab",
      "--mode",
      mode,
      "--port",
      String(rxA.port),
      "--port-b",
      String(rxB.port),
      "--size",
      String(size),
      "--batch",
      String(f.batch),
      "--ab-slices",
      String(f["ab-slices"]),
      "--slice-ms",
      String(f["slice-ms"]),
    ],
    { stdout: "pipe", stderr: "inherit" },
  );
  const out = await new Response(child.stdout).text();
  const code = await child.exited;
  if (code !== 0) {
    // A receiver the child never reached would wait for it forever.
    rxA.kill();
    rxB.kill();
    throw new Error(`adaptive against ${mode} exited with ${code}`);
  }
  await Promise.all([rxA.done, rxB.done]);
  const m = /\{.*\}/.exec(out);
  if (!m) throw new Error(`adaptive against ${mode}: no report in ${JSON.stringify(out)}`);
  const r = JSON.parse(m[0]) as {
    a_mib_s: number[];
    b_mib_s: number[];
    zc_share: number;
    switches: number;
    reason: string;
  };
  const ratio = pairedRatio(r.a_mib_s, r.b_mib_s);
  return {
    size,
    against: mode,
    ratio,
    adaptive_mib_s: r.a_mib_s.map(Math.round),
    fixed_mib_s: r.b_mib_s.map(Math.round),
    adaptive_zc_share: r.zc_share,
    adaptive_switches: r.switches,
    adaptive_reason: r.reason,
  };
}

/** A C receiver whose byte count can be read at any moment: SIGUSR1 makes it print
 * {"progress":N} (bench/c/tcp_stream.c). */
async function startCountingReceiver(
  bin: string,
): Promise<{ port: number; count(): Promise<number>; close(): Promise<void> }> {
  const child = Bun.spawn([...pinReceiver, bin, "recv", "127.0.0.1", "0"], { stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  const dec = new TextDecoder();
  let text = "";
  const nextMatch = async (re: RegExp): Promise<RegExpExecArray> => {
    for (;;) {
      const m = re.exec(text);
      if (m) {
        text = text.slice(m.index + m[0].length);
        return m;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error("the receiver exited early");
      text += dec.decode(value);
    }
  };
  const port = Number((await nextMatch(/listening (\d+)\n/))[1]);
  return {
    port,
    async count() {
      child.kill("SIGUSR1");
      return Number((await nextMatch(/\{"progress":(\d+)\}\n/))[1]);
    },
    async close() {
      child.kill("SIGTERM");
      await child.exited;
    },
  };
}

interface PairRow {
  size: number;
  /** bun-uring's mode. */
  mode: string;
  /** The C baseline's mode: the same per-SQE mode (the goal's), or its gathered form. */
  against: string;
  /** bun-uring's MiB/s over the C baseline's, slice pair by slice pair (pairedRatio). */
  ratio: number;
  uring_mib_s: number[];
  c_mib_s: number[];
}

/** bun-uring against the C baseline in one mode, in alternating slices: both senders run at once
 * (each with its own counting receiver), the parent lets one send at a time (SIGSTOP / SIGCONT)
 * and reads the bytes each receiver got in each slice. What the shared machine does to one slice
 * it does to the neighbouring slice of the other. */
async function runPair(uring: SenderSpec, cBase: SenderSpec, bin: string, size: number, f: Flags): Promise<PairRow> {
  const slices = f["ab-slices"],
    sliceMs = f["slice-ms"];
  const total = Math.ceil(((slices * 2 + 4) * (sliceMs + 60)) / 1000) + 5;
  const rx = [await startCountingReceiver(bin), await startCountingReceiver(bin)];
  const procs = [uring, cBase].map((spec, i) =>
    Bun.spawn([...pinSender, ...spec.cmd(rx[i]!.port, size, total)], { stdout: "ignore", stderr: "inherit" }),
  );
  const rates: number[][] = [[], []];
  try {
    // Both start and warm up together (a second), then only one sends at a time.
    await Bun.sleep(1000);
    for (const p of procs) p.kill("SIGSTOP");
    await Bun.sleep(50);
    const slice = async (i: number, record: boolean) => {
      const before = await rx[i]!.count();
      const t0 = performance.now();
      procs[i]!.kill("SIGCONT");
      await Bun.sleep(sliceMs);
      procs[i]!.kill("SIGSTOP");
      const ms = performance.now() - t0;
      // What the stopped sender already handed to the kernel drains to its receiver.
      await Bun.sleep(30);
      const after = await rx[i]!.count();
      if (record) rates[i]!.push((after - before) / (1 << 20) / (ms / 1000));
    };
    await slice(0, false);
    await slice(1, false);
    for (let k = 0; k < slices; k++) {
      const order = k % 2 === 0 ? [0, 1] : [1, 0];
      for (const i of order) await slice(i, true);
    }
  } finally {
    for (const p of procs) {
      p.kill("SIGKILL");
      p.kill("SIGCONT");
    }
    await Promise.all(procs.map((p) => p.exited));
    await Promise.all(rx.map((r) => r.close()));
  }
  const ratio = pairedRatio(rates[0]!, rates[1]!);
  return {
    size,
    mode: uring.mode,
    against: cBase.mode,
    ratio,
    uring_mib_s: rates[0]!.map(Math.round),
    c_mib_s: rates[1]!.map(Math.round),
  };
}

async function runOne(spec: SenderSpec, bin: string, size: number): Promise<SendReport & { received: number }> {
  const rx = await startReceiver(bin);
  const child = Bun.spawn([...pinSender, ...spec.cmd(rx.port, size)], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(child.stdout).text();
  const code = await child.exited;
  const m = /\{.*\}/.exec(out);
  if (code !== 0 || !m) {
    // The receiver would wait for a connection that never comes.
    rx.kill();
    throw new Error(
      code !== 0
        ? `${spec.sender} ${spec.mode} exited with ${code}`
        : `${spec.sender} ${spec.mode}: no report in ${JSON.stringify(out)}`,
    );
  }
  const r = JSON.parse(m[0]) as SendReport;
  return { ...r, received: await rx.done };
}

async function main(): Promise<void> {
  const f = parseFlags<Flags>(process.argv.slice(2), SPEC as never, USAGE);
  if (f.child) {
    if (f.host !== "127.0.0.1" && f.host !== "::1") throw new Error("the benchmark sends to loopback only");
    const r = f.child === "uring" ? childUring(f) : f.child === "ab" ? childAb(f) : await childBun(f);
    console.log(JSON.stringify(r));
    return;
  }
  if (f.record !== "" && !/^[a-z0-9-]+$/.test(f.record))
    throw new Error(`--record takes a name of a-z, 0-9 and -, got ${JSON.stringify(f.record)}`);
  const bin = await compileC("tcp_stream", "c/tcp_stream.c");
  const cpus = navigator.hardwareConcurrency;
  const busyCpu = f["busy-cpu"];
  if (busyCpu !== -1 && !(Number.isInteger(busyCpu) && busyCpu >= 0 && busyCpu < cpus))
    throw new Error(`--busy-cpu must be -1 or a CPU 0..${cpus - 1}, got ${busyCpu}`);
  if (busyCpu >= 0 && Bun.which("taskset") === null) throw new Error("--busy-cpu needs taskset");
  const loadBefore = loadavg();
  // The load, when asked for: one process spinning on one CPU for the whole run.
  const busy =
    busyCpu >= 0
      ? Bun.spawn(["taskset", "-c", String(busyCpu), process.execPath, "-e", "for (;;) {}"], {
          stdout: "ignore",
          stderr: "inherit",
        })
      : null;
  try {
    await measure(f, bin, cpus, busyCpu, loadBefore);
  } finally {
    if (busy) {
      busy.kill("SIGKILL");
      await busy.exited;
    }
  }
}

async function measure(f: Flags, bin: string, cpus: number, busyCpu: number, loadBefore: number[]): Promise<void> {
  const pinned = f.pin && cpus >= 2 && Bun.which("taskset") !== null;
  if (pinned) {
    pinSender = ["taskset", "-c", "0"];
    pinReceiver = ["taskset", "-c", String(cpus - 1)];
  }
  const sizes = f.sizes.split(",").map((s) => Number(s) * 1024);
  const wanted = new Set(f.senders.split(","));
  const wantedModes = new Set(f.modes.split(","));
  const self = [process.execPath, join(BENCH_DIR, "tcp-stream.ts")];
  const common = (port: number, size: number, seconds = f.seconds) => [
    "--port",
    String(port),
    "--size",
    String(size),
    "--seconds",
    String(seconds),
    "--batch",
    String(f.batch),
  ];
  const specs: SenderSpec[] = [];
  if (wanted.has("bun-uring")) {
    for (const mode of ["copy", "zc", "zc-fixed", "mixed", "adaptive"].filter((m) => wantedModes.has(m))) {
      specs.push({
        sender: "bun-uring",
        mode,
        cmd: (p, s, t) => [...self, "--child", "uring", "--mode", mode, ...common(p, s, t)],
      });
    }
  }
  if (wanted.has("c-liburing")) {
    for (const [mode, cmode] of (
      [
        ["copy", "send"],
        ["zc", "zc"],
        ["zc-fixed", "zc-fixed"],
        ["copy-gather", "send-gather"],
        ["zc-gather", "zc-gather"],
      ] as const
    ).filter(([m]) => wantedModes.has(m))) {
      specs.push({
        sender: "c-liburing",
        mode,
        cmd: (p, s, t = f.seconds) => [
          bin,
          "send",
          cmode,
          "127.0.0.1",
          String(p),
          String(s),
          String(t),
          String(f.batch),
        ],
      });
    }
  }
  if (wanted.has("bun-net"))
    specs.push({ sender: "bun-net", mode: "copy", cmd: (p, s) => [...self, "--child", "bun", ...common(p, s)] });
  if (wanted.has("node-net"))
    specs.push({
      sender: "node-net",
      mode: "copy",
      cmd: (p, s) => ["node", "-e", NODE_SENDER, "127.0.0.1", String(p), String(s), String(f.seconds)],
    });

  const rows: {
    size: number;
    sender: string;
    mode: string;
    mib_s: number;
    cpu_s: number;
    rounds_mib_s: number[];
    decisions?: string[];
  }[] = [];
  const abRows: AbRow[] = [];
  const pairRows: PairRow[] = [];
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
      rows.push({
        size,
        sender: spec.sender,
        mode: spec.mode,
        mib_s: median(rates),
        cpu_s: median(cpus),
        rounds_mib_s: rates.map((x) => Math.round(x)),
        ...(decisions.length ? { decisions } : {}),
      });
      if (!f.json) {
        console.error(
          `${size / 1024} KiB ${spec.sender} ${spec.mode}: ${median(rates).toFixed(0)} MiB/s (rounds ${rates.map((x) => x.toFixed(0)).join(", ")})`,
        );
        for (const d of decisions) console.error(`    ${d}`);
      }
    });
    // Adaptive against this size's best fixed bun-uring modes, slice by slice in one process.
    // Separate-run medians cannot tell modes within 10% of each other apart on this host, so every
    // fixed mode within 10% of the best median is a contender and adaptive runs against each; the
    // size's ratio is the worst of them.
    const fixed = rows
      .filter((r) => r.size === size && r.sender === "bun-uring" && r.mode !== "adaptive")
      .sort((x, y) => y.mib_s - x.mib_s);
    if (
      f["ab-slices"] > 0 &&
      fixed.length > 0 &&
      rows.some((r) => r.size === size && r.mode === "adaptive" && r.sender === "bun-uring")
    ) {
      for (const contender of fixed
        .filter((r) => r.mib_s >= AB_CONTENDER_SHARE * fixed[0]!.mib_s)
        .slice(0, AB_MAX_CONTENDERS)) {
        const ab = await runAb(self, bin, size, contender.mode, f);
        abRows.push(ab);
        if (!f.json)
          console.error(
            `${size / 1024} KiB adaptive against ${contender.mode}, ${f["ab-slices"]} alternating slices of ${f["slice-ms"]} ms each: ${ab.ratio.toFixed(3)} (interquartile mean of the slice pairs' log ratios); adaptive sent ${(ab.adaptive_zc_share * 100).toFixed(0)}% of its bytes as SEND_ZC, ${ab.adaptive_switches} decision changes`,
          );
      }
    }
    // The goal's C comparison (64 KiB, same mode), in alternating slices as well; then against
    // the gathered C modes, which have ZcSender's shape (its sends gathered into operations with
    // iovecs): what the TypeScript layer costs over C making the same kind of calls.
    if (f["ab-slices"] > 0 && size === 65536) {
      for (const [mode, cMode] of [
        ["copy", "copy"],
        ["zc", "zc"],
        ["zc-fixed", "zc-fixed"],
        ["copy", "copy-gather"],
        ["zc", "zc-gather"],
      ] as const) {
        const u = specs.find((x) => x.sender === "bun-uring" && x.mode === mode);
        const cb = specs.find((x) => x.sender === "c-liburing" && x.mode === cMode);
        if (!u || !cb) continue;
        const pr = await runPair(u, cb, bin, size, f);
        pairRows.push(pr);
        if (!f.json)
          console.error(
            `${size / 1024} KiB bun-uring ${mode} against C ${cMode}, ${f["ab-slices"]} alternating slices of ${f["slice-ms"]} ms each: ${pr.ratio.toFixed(3)}`,
          );
      }
    }
  }

  const at = (size: number, sender: string, mode: string) =>
    rows.find((r) => r.size === size && r.sender === sender && r.mode === mode)?.mib_s ?? NaN;
  const bestUring = (size: number) =>
    Math.max(...rows.filter((r) => r.size === size && r.sender === "bun-uring").map((r) => r.mib_s));
  const fixedBest = (size: number) =>
    Math.max(
      ...rows.filter((r) => r.size === size && r.sender === "bun-uring" && r.mode !== "adaptive").map((r) => r.mib_s),
    );
  const k64 = 65536,
    k1 = 1024;
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
    // Adaptive against each size's contenders for the best fixed mode (within 10% of the best
    // median) in alternating slices inside one process (one connection and receiver each), the
    // worst of them: the machine's slow stretches fall on both sides alike, which the separate
    // runs above cannot ensure on a shared 2-CPU host.
    adaptive_vs_best_ab_min: abRows.length ? Math.min(...abRows.map((r) => r.ratio)) : null,
    // The C comparison at 64 KiB made the same way: both senders running, one sending at a time.
    vs_c_64k_ab_by_mode: Object.fromEntries(pairRows.filter((r) => r.against === r.mode).map((r) => [r.mode, r.ratio])),
    // Against the gathered C modes, in the same slices (no goal: the same shape on both sides).
    vs_c_gathered_64k_ab_by_mode: Object.fromEntries(
      pairRows.filter((r) => r.against !== r.mode).map((r) => [r.mode, r.ratio]),
    ),
  };
  const goals = {
    vs_bun_64k: ">= 1.5",
    vs_c_64k: ">= 1.0 (each mode)",
    vs_bun_1k: ">= 2.0",
    adaptive_vs_best_min: ">= 0.95",
  };
  const meta = {
    kernel: kernelRelease(),
    rounds: f.rounds,
    seconds: f.seconds,
    batch: f.batch,
    tcp_nodelay: true,
    socket_options:
      "every sender: TCP_NODELAY, SO_SNDBUF at the kernel default; the C receiver (the same for every sender): SO_RCVBUF 4 MiB",
    pinning: pinned ? `sender on CPU 0, receiver on CPU ${cpus - 1} (taskset)` : "none",
    receiver: "bench/c/tcp_stream.c recv(): one copying receiver process per sender run",
    route: "loopback 127.0.0.1 (the kernel copies SEND_ZC data: REPORT_USAGE says copied)",
    load_added:
      busyCpu >= 0 ? `a busy-loop process (bun -e "for (;;) {}") pinned to CPU ${busyCpu} for the whole run` : "none",
    load_average_before: loadBefore.map((x) => Number(x.toFixed(2))),
    load_average_after: loadavg().map((x) => Number(x.toFixed(2))),
  };
  const json = { ...meta, rows, adaptive_ab: abRows, vs_c_ab: pairRows, ratios, goals };
  // A run narrowed with --sizes / --senders / --modes is for iterating: it would replace the
  // recorded full run with a partial one, so it is printed only, or recorded under its own name
  // (--record).
  const full =
    f.sizes === SPEC.sizes.default &&
    f.senders === SPEC.senders.default &&
    f.modes === SPEC.modes.default &&
    f.record === "";
  let path = "not recorded (a narrowed run)";
  if (f.record !== "") path = `recorded ${recordResult(`tcp-stream-${f.record}`, json)}`;
  else if (full) {
    path = recordResult("tcp-stream", json);
    const svg = join(BENCH_DIR, "..", "docs", "tcp-stream.svg");
    ensureDirFor(svg);
    writeFileSync(svg, renderChart(rows, meta));
  }
  if (f.json) {
    console.log(JSON.stringify(json));
    return;
  }
  printTable(
    ["size", "sender", "mode", "MiB/s", "cpu s"],
    rows.map((r) => [`${r.size / 1024} KiB`, r.sender, r.mode, r.mib_s, r.cpu_s]),
  );
  console.log(
    `\nmedians of ${f.rounds} rounds of ${f.seconds} s, batch ${f.batch}, TCP_NODELAY and default SO_SNDBUF on every sender, loopback, kernel ${kernelRelease()}`,
  );
  const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");
  const fmtx = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}x` : "n/a");
  console.log(`vs Bun.connect at 64 KiB (best bun-uring mode): ${fmtx(ratios.vs_bun_64k)} (goal >= 1.5)`);
  console.log(
    `vs C baseline at 64 KiB, same mode: copy ${fmtx(vsC[0]!)}, zc ${fmtx(vsC[1]!)}, zc-fixed ${fmtx(vsC[2]!)} (goal >= 1.0)`,
  );
  if (pairRows.length)
    console.log(
      `  the same in alternating slices (both running, one sending at a time): ${pairRows
        .filter((r) => r.against === r.mode)
        .map((r) => `${r.mode} ${fmtx(r.ratio)}`)
        .join(", ")}`,
    );
  console.log(
    `vs gathered C (one SENDMSG / SENDMSG_ZC of the chain's iovecs) at 64 KiB: copy ${fmtx(vsCGather[0]!)}, zc ${fmtx(vsCGather[1]!)} (no goal; same shape as ZcSender's)`,
  );
  const gatheredPairs = pairRows.filter((r) => r.against !== r.mode);
  if (gatheredPairs.length)
    console.log(
      `  the same in alternating slices: ${gatheredPairs.map((r) => `${r.mode} ${fmtx(r.ratio)}`).join(", ")}`,
    );
  console.log(`vs Bun.connect at 1 KiB: ${fmtx(ratios.vs_bun_1k)} (goal >= 2.0)`);
  console.log(
    `adaptive / best fixed mode, worst size: ${fmt(ratios.adaptive_vs_best_min)} (goal >= 0.95); paired within rounds: ${fmt(ratios.adaptive_vs_best_paired_min)}; alternating slices in one process: ${ratios.adaptive_vs_best_ab_min === null ? "not run" : fmt(ratios.adaptive_vs_best_ab_min)}`,
  );
  if (busyCpu >= 0) console.log(`load added: ${meta.load_added}`);
  console.log(`load average before ${meta.load_average_before.join(" ")}, after ${meta.load_average_after.join(" ")}`);
  console.log(full ? `recorded ${path}; chart docs/tcp-stream.svg` : path);
}

await main();
