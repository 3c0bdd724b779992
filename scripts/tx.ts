// bun scripts/tx.ts: the zero-copy transmit experiment (also `npm start`). Modelled on the kernel
// selftest io_uring_zerocopy_tx and liburing's examples/send-zerocopy.c, and interchangeable with
// the latter: the same options where the meaning is the same (-4 -6 -D -p -s -n -t -C -R -v), its
// payload pattern ('a' + i % 26), its default size (65435 bytes) and port (8000), connected UDP
// sockets. Stream or datagram sends in one of five modes, a batch of sends per submission, for a
// fixed time; each run's row is printed when it ends, with what the kernel really sent without a
// copy (IORING_SEND_ZC_REPORT_USAGE, which neither C tool reports) and the CPU it cost.
//
// With no arguments it runs on loopback only (npm start): every mode at a few sizes against a
// receiver child on 127.0.0.1, beside Bun's own sockets. Any other destination must be given with
// -D; nothing else is ever contacted.
import { c, errno } from "../ffi/index.ts";
import { Ring } from "../src/ring/ring.ts";
import { kernelRelease } from "../src/ring/kernel.ts";
import { tcpConnect, udpSocket, closeQuietly, setSocketOption } from "../src/sync.ts";
import { parseIPv4, parseIPv6 } from "../src/net/sockaddr.ts";
import { ZcSender, FixedBufferPool, type ZcMode } from "../src/zc/index.ts";
import { SOL_SOCKET, SO_SNDBUF } from "../src/abi/net.ts";
import { UringError } from "../src/error.ts";
import { DEFAULT_PORT, ToolError, UsageError, numberArg, parseCli, portArg, runTool, sizeArg } from "./lib/cli.ts";
import { LIBURING_PAYLOAD, PATTERN_PERIOD, UDP_MAX_IPV4, UDP_MAX_IPV6, fillPattern } from "./lib/wire.ts";
import { COLUMN_HELP, MB, pct, pctCell, rowHeader, rowLine, startWindow, type LabRow } from "./lib/report.ts";
import { UDP_BURST_SILENCE_MS, receive, type ReceiveExtra } from "./lib/receiver.ts";
import { bunSend } from "./lib/bun-sockets.ts";
import { lastJsonLine, spawnListening, type ListeningChild } from "./lib/child.ts";

type Proto = "tcp" | "udp";
const MODES = ["nonzc", "zc", "zc-fixed", "mixed", "adaptive"] as const;
type TxMode = (typeof MODES)[number];
const ZC_MODE: Record<TxMode, ZcMode> = {
  nonzc: "copy",
  zc: "zc",
  "zc-fixed": "zc-fixed",
  mixed: "mixed",
  adaptive: "adaptive",
};

/** npm start: sizes and seconds per run of the loopback comparison. */
const MATRIX_SIZES = [4096, 65536, 262144];
const MATRIX_SECONDS = 1;
/** Seconds a loopback run takes beyond its sending time (receiver child start, ring setup). */
const RUN_OVERHEAD_S = 0.2;
/** npm start's expected duration: every mode plus Bun's row at each size. */
const MATRIX_ESTIMATE_S = Math.ceil(MATRIX_SIZES.length * (MODES.length + 1) * (MATRIX_SECONDS + RUN_OVERHEAD_S));

const USAGE = `usage: bun scripts/tx.ts [options] [tcp|udp]
       bun scripts/tx.ts                       loopback comparison (npm start): every mode at a
                                               few sizes, and Bun's own sockets, about ${MATRIX_ESTIMATE_S} s
       bun scripts/tx.ts --compare [-s B] [-t S]  the same comparison at chosen sizes and time
       bun scripts/tx.ts -R [options] [tcp|udp] receiver role

Options shared with liburing's examples/send-zerocopy (same letters, same meaning; its -d, -l,
-T, -I and -y have no counterpart here and are refused):
  tcp | udp            protocol (default tcp)
  -4, -6               IPv4 (default) or IPv6
  -D, --dest ADDR      send to ADDR (numeric IPv4, or IPv6 with -6) where a receiver listens;
                       without -D the run is loopback only, against a receiver child
  -p, --port P         destination port, or listen port with -R (default ${DEFAULT_PORT}; 0 = any with -R)
  -s, --size B         bytes per send (suffix K, M; default ${LIBURING_PAYLOAD}, send-zerocopy's); a comma
                       list runs each. With -R and udp: every datagram must be B bytes
  -n, --batch N        sends per submission (default 8)
  -t, --time S         seconds to send (default 2; fractions allowed)
  -C, --cpu N          pin this process to CPU N
  -z, --zc N           0: copying sends (-m nonzc); otherwise SEND_ZC, from a registered buffer
                       unless -b 0 (-m zc-fixed, or -m zc with -b 0), send-zerocopy's default
  -b, --fixed N        with -z: 0 sends from ordinary memory, otherwise a registered buffer
  -R, --receiver       receiver role: listen on --addr and count (and with -v check) each TCP
                       connection or UDP burst, printing a row as each ends
  -v, --verify         sender: TCP sends continue the pattern across sends (send-zerocopy's -v,
                       which needs -n 1 there; ZcSender links a batch's sends, so any -n keeps
                       the order);
                       receiver: check every byte against the pattern (TCP: one continuous stream,
                       as -v senders send; UDP: each datagram from the pattern's start)

Options of this tool:
  -m, --mode M         nonzc | zc | zc-fixed | mixed | adaptive (default adaptive), a comma list,
                       or "all"; each mode is a separate connection and row
  --receiver-cpu N     pin the loopback receiver child to CPU N
  --threshold B        mixed/adaptive: smallest payload sent with SEND_ZC (default 16K)
  --no-report-usage    SEND_ZC without IORING_SEND_ZC_REPORT_USAGE (zc % and copied % show "-")
  --nodelay            TCP_NODELAY on the sender
  --sockbuf B          SO_SNDBUF of the sender, SO_RCVBUF of the receiver (default 4M; 0 keeps
                       the kernel's default, as npm start does on every side, Bun's included)
  --addr A             receiver listen address (default 127.0.0.1, ::1 with -6)
  --once               receiver: exit after the first TCP connection, or the first UDP burst
                       (a burst ends after ${UDP_BURST_SILENCE_MS / 1000} s without a datagram); same as --conns 1
  --conns N            receiver: exit after N connections or bursts (default: run until stopped)
  --discard            receiver, TCP: count with MSG_TRUNC and drop the data in the kernel, as
                       send-zerocopy -R does (default: copy every byte out, as an application does)
  --compare            the loopback comparison npm start runs (every mode, TCP, and Bun's own
                       sockets beside each size, default socket buffers, a verdict); -s and -t
                       change its sizes (default 4K,64K,256K) and time per run (default 1)
  --json               one JSON object per row, on stdout, instead of the table
  -h, --help           this text

The payload is send-zerocopy's pattern, 'a' + i % 26, one buffer sent again and again (the kernel
only reads it). UDP sockets are connected, so a missing receiver is an error (ECONNREFUSED).

${COLUMN_HELP}`;

const CLI = { name: "tx", usage: USAGE };

/** One send's payload (and, for zc-fixed, one registered buffer): 1 GiB is the pool's limit. */
const MAX_SIZE = 1 << 30;
/** CPUs a sched_setaffinity mask here can name (its 128 bytes). */
const MAX_CPUS = 1024;
/** SO_SNDBUF / SO_RCVBUF unless --sockbuf says otherwise: room for a batch of large sends. */
const DEFAULT_SOCKBUF = 4 << 20;

interface Args {
  proto: Proto;
  modes: TxMode[];
  ipv6: boolean;
  sizes: number[];
  sizeGiven: boolean;
  batch: number;
  time: number;
  dest: string | null;
  port: number;
  cpu: number;
  receiverCpu: number;
  threshold: number;
  reportUsage: boolean;
  nodelay: boolean;
  /** SO_SNDBUF / SO_RCVBUF bytes; 0 leaves the kernel's default. */
  sockbuf: number;
  receiver: boolean;
  addr: string | null;
  /** Receiver: connections (or UDP bursts) to take before exiting; 0 = until stopped. */
  conns: number;
  discard: boolean;
  verify: boolean;
  json: boolean;
  matrix: boolean;
}

function parse(argv: string[]): Args {
  const { values: v, positionals } = parseCli(
    CLI,
    argv,
    {
      mode: { type: "string", short: "m" },
      "4": { type: "boolean", short: "4" },
      "6": { type: "boolean", short: "6" },
      size: { type: "string", short: "s" },
      batch: { type: "string", short: "n" },
      time: { type: "string", short: "t" },
      dest: { type: "string", short: "D" },
      port: { type: "string", short: "p" },
      cpu: { type: "string", short: "C" },
      zc: { type: "string", short: "z" },
      fixed: { type: "string", short: "b" },
      "receiver-cpu": { type: "string" },
      threshold: { type: "string" },
      "no-report-usage": { type: "boolean" },
      nodelay: { type: "boolean" },
      sockbuf: { type: "string" },
      receiver: { type: "boolean", short: "R" },
      addr: { type: "string" },
      once: { type: "boolean" },
      conns: { type: "string" },
      discard: { type: "boolean" },
      verify: { type: "boolean", short: "v" },
      json: { type: "boolean" },
      compare: { type: "boolean" },
    },
    { positionals: true },
  );
  if (positionals.length > 1) throw new UsageError(`one protocol at most, got ${positionals.join(" ")}`);
  const proto = positionals[0] ?? "tcp";
  if (proto !== "tcp" && proto !== "udp")
    throw new UsageError(`unexpected argument ${proto} (the protocol is tcp or udp)`);
  if (v["4"] && v["6"]) throw new UsageError("give one of -4 and -6");
  const ipv6 = v["6"] === true;
  let modes: TxMode[] = ["adaptive"];
  if (v.mode === "all") modes = [...MODES];
  else if (v.mode !== undefined) {
    modes = v.mode.split(",") as TxMode[];
    for (const m of modes)
      if (!(MODES as readonly string[]).includes(m))
        throw new UsageError(`unknown mode ${m} (modes: ${MODES.join(", ")}, all)`);
  }
  // send-zerocopy's -z/-b pick one of our modes: -z 0 copies; otherwise SEND_ZC, fixed unless -b 0.
  if (v.zc !== undefined || v.fixed !== undefined) {
    if (v.mode !== undefined) throw new UsageError("give -m, or send-zerocopy's -z/-b, not both");
    const zc = v.zc === undefined ? 1 : numberArg("-z", v.zc, { max: 2 ** 31 - 1 });
    const fixed = v.fixed === undefined ? 1 : numberArg("-b", v.fixed, { max: 2 ** 31 - 1 });
    modes = [zc === 0 ? "nonzc" : fixed === 0 ? "zc" : "zc-fixed"];
  }
  const cpus = Math.min(navigator.hardwareConcurrency, MAX_CPUS);
  const cpuArg = (flag: string, s: string | undefined) => {
    if (s === undefined) return -1;
    if (!/^\d+$/.test(s) || Number(s) >= cpus)
      throw new UsageError(
        `${flag} must be a CPU number 0..${cpus - 1} (this machine has ${navigator.hardwareConcurrency}), got ${s}`,
      );
    return Number(s);
  };
  const matrix = v.compare === true || argv.length === 0 || (argv.length === 1 && argv[0] === "--json");
  if (v.compare) {
    const allowed = new Set(["compare", "size", "time", "json", "cpu", "receiver-cpu"]);
    const other = Object.keys(v).filter((k) => !allowed.has(k));
    if (other.length || positionals.length)
      throw new UsageError(
        `--compare takes only -s, -t, --json and the CPU pins, got --${[...other, ...positionals].join(", --")}`,
      );
  }
  const a: Args = {
    proto,
    modes,
    ipv6,
    sizes: v.size === undefined ? [] : v.size.split(",").map((s) => sizeArg("--size", s, { max: MAX_SIZE })),
    sizeGiven: v.size !== undefined,
    batch: v.batch === undefined ? 8 : numberArg("--batch", v.batch, { min: 1, max: 512 }),
    time: v.time === undefined ? 2 : numberArg("--time", v.time, { min: 0.01, max: 86400, fraction: true }),
    dest: v.dest ?? null,
    port: v.port === undefined ? DEFAULT_PORT : portArg("--port", v.port),
    cpu: cpuArg("--cpu", v.cpu),
    receiverCpu: cpuArg("--receiver-cpu", v["receiver-cpu"]),
    threshold: v.threshold === undefined ? 16384 : sizeArg("--threshold", v.threshold, { max: MAX_SIZE }),
    reportUsage: v["no-report-usage"] !== true,
    nodelay: v.nodelay === true,
    sockbuf:
      v.sockbuf === undefined
        ? DEFAULT_SOCKBUF
        : v.sockbuf === "0"
          ? 0
          : sizeArg("--sockbuf", v.sockbuf, { max: 1 << 30 }),
    receiver: v.receiver === true,
    addr: v.addr ?? null,
    conns: v.once ? 1 : v.conns === undefined ? 0 : numberArg("--conns", v.conns, { min: 1, max: 1e9 }),
    discard: v.discard === true,
    verify: v.verify === true,
    json: v.json === true,
    matrix,
  };
  if (v.once && v.conns !== undefined) throw new UsageError("give --once or --conns, not both");
  if (a.dest !== null) {
    if (a.receiver) throw new UsageError("-D is the sender's destination; the receiver listens on --addr");
    if (!(a.ipv6 ? parseIPv6(a.dest) : parseIPv4(a.dest)))
      throw new UsageError(
        `--dest must be a numeric ${a.ipv6 ? "IPv6 address (with -6)" : "IPv4 address (-6 for IPv6)"}, got ${a.dest}`,
      );
    if (a.port === 0) throw new UsageError("--dest needs a --port other than 0");
  }
  if (a.addr !== null && !(a.ipv6 ? parseIPv6(a.addr) : parseIPv4(a.addr)))
    throw new UsageError(
      `--addr must be a numeric ${a.ipv6 ? "IPv6 address (with -6)" : "IPv4 address (-6 for IPv6)"}, got ${a.addr}`,
    );
  if (a.sizes.length === 0) a.sizes = a.matrix ? MATRIX_SIZES : [LIBURING_PAYLOAD];
  const udpMax = a.ipv6 ? UDP_MAX_IPV6 : UDP_MAX_IPV4;
  if (a.proto === "udp")
    for (const s of a.sizes)
      if (s > udpMax)
        throw new UsageError(`udp payloads are at most ${udpMax} bytes over ${a.ipv6 ? "IPv6" : "IPv4"}, got ${s}`);
  if (a.receiver && a.sizes.length > 1) throw new UsageError("the receiver checks one datagram size: give one --size");
  if (a.matrix) {
    a.modes = [...MODES];
    if (v.time === undefined) a.time = MATRIX_SECONDS;
    // The same socket options as Bun's row: the kernel's defaults on both sides.
    a.sockbuf = 0;
  }
  return a;
}

function pinCpu(cpu: number): void {
  if (cpu < 0) return;
  const mask = new Uint8Array(128);
  mask[cpu >> 3] = 1 << (cpu & 7);
  // An online CPU outside this process's cpuset, say: a clear message, not a stack trace.
  if (c.sched_setaffinity(0, mask.length, mask) !== 0)
    throw new ToolError(
      `cannot pin to CPU ${cpu}: ${new UringError("sched_setaffinity", errno(), `cpu ${cpu}`).message}`,
    );
}

interface SendResult extends LabRow {
  batch: number;
  decision: string;
  reason: string;
  /** What the loopback receiver child counted (null with -D: the remote receiver reports it). */
  receiver_bytes: number | null;
  /** CPU seconds the loopback receiver child spent on this run (null with -D). */
  receiver_cpu_s: number | null;
}

/** One sending run against host:port. Rings live in kernel memory (mmap): late notifications
 * after close can then never land in reused JavaScript memory. */
function sendRun(a: Args, mode: TxMode, size: number, host: string, port: number, quiet: boolean): SendResult {
  const ring = Ring.create({ entries: 512, memory: "mmap", maxInflight: 8192 });
  let fd = -1;
  let pool: FixedBufferPool | undefined;
  try {
    // UDP is connected, as send-zerocopy's sender is: a missing receiver is ECONNREFUSED.
    fd =
      a.proto === "tcp"
        ? tcpConnect(ring, { host, port, noDelay: a.nodelay })
        : udpSocket(ring, { host: a.ipv6 ? "::" : "0.0.0.0", port: 0, connect: { host, port } }).fd;
    if (a.sockbuf > 0) setSocketOption(ring, fd, SOL_SOCKET, SO_SNDBUF, a.sockbuf, { via: "libc" });
    const window = a.batch * 4;
    // -v on TCP: each send starts where the last one's pattern stopped, so the buffer holds one
    // period more than a send (send-zerocopy's payload is allocated the same way).
    const phased = a.verify && a.proto === "tcp";
    const bufferBytes = size + (phased ? PATTERN_PERIOD : 0);
    // zc-fixed needs the pool; adaptive gets it too, so its zero-copy choice is the fixed one.
    if (mode === "zc-fixed" || mode === "adaptive")
      pool = FixedBufferPool.create(ring, { bufferSize: bufferBytes, count: 1 });
    const sender = new ZcSender(ring, fd, {
      mode: ZC_MODE[mode],
      pool,
      threshold: a.threshold,
      reportUsage: a.reportUsage,
      capacity: window * 2,
      maxChain: a.batch,
    });
    const buffer = fillPattern(pool ? pool.view(0).subarray(0, bufferBytes) : new Uint8Array(bufferBytes));
    const phases = phased ? Array.from({ length: PATTERN_PERIOD }, (_, p) => buffer.subarray(p, p + size)) : [buffer];
    const s = sender.stats;
    const stop = startWindow();
    const t0 = performance.now();
    const end = t0 + a.time * 1000;
    let queued = 0;
    let nextTick = t0 + 1000,
      lastBytes = 0,
      lastSends = 0;
    while (performance.now() < end) {
      while (sender.inflight + a.batch <= window) {
        sender.cork();
        for (let i = 0; i < a.batch; i++) {
          sender.send(phases[phased ? queued % PATTERN_PERIOD : 0]!);
          queued += size;
        }
        sender.uncork();
      }
      ring.run(1, 100);
      if (sender.isBroken || s.errors > 0) throw sendFailure(a, host, port, s.lastError);
      const now = performance.now();
      if (now >= nextTick && !quiet) {
        const db = s.sentBytes - lastBytes,
          dn = s.sent - lastSends;
        const usage =
          a.reportUsage || mode === "nonzc"
            ? `zc ${pct(s.zcBytes, s.sentBytes)}%, copied ${pct(s.copiedBytes + s.copySendBytes, s.sentBytes)}%`
            : "zc -, copied - (--no-report-usage)";
        process.stderr.write(
          `tx ${a.proto} ${mode} ${size}B: ${(db / MB).toFixed(1)} MB/s, ${dn} sends/s, decision ${s.decision}, ${usage}\n`,
        );
        lastBytes = s.sentBytes;
        lastSends = s.sent;
        nextTick += 1000;
      }
    }
    ring.runUntil(() => sender.inflight === 0, 10_000);
    if (s.errors > 0) throw sendFailure(a, host, port, s.lastError);
    const w = stop();
    const unreported = !a.reportUsage && s.sentBytes > s.copySendBytes;
    const belowThreshold = mode === "adaptive" && size < a.threshold;
    const zc = unreported ? null : pct(s.zcBytes, s.sentBytes);
    const copied = unreported ? null : pct(s.copiedBytes + s.copySendBytes, s.sentBytes);
    return {
      role: "send",
      proto: a.proto,
      family: a.ipv6 ? "ipv6" : "ipv4",
      mode,
      size,
      batch: a.batch,
      bytes: s.sentBytes,
      seconds: w.seconds,
      mb_s: s.sentBytes / MB / w.seconds,
      ops: s.sent,
      cpu_user_s: w.cpu_user_s,
      cpu_sys_s: w.cpu_sys_s,
      cpu_pct: w.cpu_pct,
      zc_pct: zc,
      copied_pct: copied,
      errors: s.errors,
      decision: belowThreshold ? "copy (below threshold)" : s.decision,
      reason: belowThreshold
        ? `${size} bytes is below the ${a.threshold}-byte threshold: every send is SEND`
        : s.reason,
      note: kernelDid(mode, zc, copied),
      receiver_bytes: null,
      receiver_cpu_s: null,
    };
  } finally {
    pool?.close();
    ring.close();
    closeQuietly(fd);
  }
}

/** What the kernel did with the bytes, so no row named after zero-copy hides a 100% copy. */
function kernelDid(mode: TxMode, zc: number | null, copied: number | null): string {
  if (mode === "nonzc") return "SEND (copies by design)";
  if (zc === null || copied === null) return "kernel did not report (--no-report-usage)";
  if (copied >= 99.95) return "the kernel copied every byte: no zero-copy happened";
  if (zc >= 99.95) return "zero-copy: the kernel sent every byte in place";
  return `partly zero-copy: ${zc}% in place, ${copied}% copied`;
}

function sendFailure(a: Args, host: string, port: number, e: UringError | null): ToolError {
  const where = `${a.proto} ${a.ipv6 ? `[${host}]` : host}:${port}`;
  if (e?.code === "ECONNREFUSED") return new ToolError(`no receiver at ${where}: ${e.message}`);
  return new ToolError(`sending to ${where} failed: ${e?.message ?? "the stream broke"}`);
}

/** A loopback receiver child (this script with -R --once --json), its port, and its row. */
async function startReceiver(
  a: Args,
  size: number,
): Promise<{ port: number; done: Promise<(LabRow & ReceiveExtra) | null>; kill(): void }> {
  const args = [
    process.execPath,
    import.meta.path,
    "-R",
    a.proto,
    a.ipv6 ? "-6" : "-4",
    "-p",
    "0",
    "--once",
    "--json",
    "--sockbuf",
    String(a.sockbuf),
  ];
  if (a.proto === "udp") args.push("-s", String(size));
  if (a.receiverCpu >= 0) args.push("-C", String(a.receiverCpu));
  return childReceiver(args);
}

/** A receiver child: its port, and the JSON object it prints last (null if it printed none). Its
 * stderr is passed on, so a child's failure is seen. */
async function childReceiver<T>(args: string[]): Promise<{ port: number; done: Promise<T | null>; kill(): void }> {
  let child: ListeningChild;
  try {
    child = await spawnListening(args);
  } catch (e) {
    throw new ToolError(`the loopback receiver child failed: ${(e as Error).message}`);
  }
  const done = child.result.then((r) => {
    if (r.err) process.stderr.write(r.err);
    return lastJsonLine<T>(r.out);
  });
  return { port: child.port, done, kill: child.kill };
}

/** Waits for a child's result, at most `ms`; null (and the child killed) past it. */
function resultWithin<T>(rx: { done: Promise<T | null>; kill(): void }, ms: number): Promise<T | null> {
  return Promise.race([
    rx.done,
    Bun.sleep(ms).then(() => {
      rx.kill();
      return null;
    }),
  ]);
}

function printRow(a: Args, r: LabRow & Partial<SendResult>): void {
  if (a.json) console.log(JSON.stringify({ kernel: kernelRelease(), destination: a.dest ?? "loopback", ...r }));
  else console.log(rowLine(r));
}

/** Receiver role: one row per TCP connection or UDP burst; exit 1 if any byte failed the check. */
function receiverRole(a: Args): void {
  const host = a.addr ?? (a.ipv6 ? "::1" : "127.0.0.1");
  const mismatches = receive({
    proto: a.proto,
    host,
    port: a.port,
    verify: a.verify,
    rcvbuf: a.sockbuf,
    discard: a.discard,
    size: a.proto === "udp" && a.sizeGiven ? a.sizes[0]! : null,
    conns: a.conns,
    silenceMs: UDP_BURST_SILENCE_MS,
    onListening(port) {
      console.log(`listening ${port}`);
      if (!a.json)
        console.log(
          `tx -R ${a.proto} on ${a.ipv6 ? `[${host}]` : host}:${port}, kernel ${kernelRelease()}: a row per ${a.proto === "tcp" ? "connection" : "burst"}\n${rowHeader()}`,
        );
    },
    onResult(row, extra) {
      if (a.json) console.log(JSON.stringify({ kernel: kernelRelease(), ...row, ...extra }));
      else console.log(rowLine(row) + (extra.error ? `  error: ${extra.error}` : ""));
    },
  });
  if (mismatches > 0)
    throw new ToolError(`${mismatches} ${a.proto === "udp" ? "datagrams" : "chunks"} failed the check`);
}

/** Sends with each mode and size to -D, a row as each run ends. */
function remoteRuns(a: Args): void {
  if (!a.json) {
    console.log(
      `tx ${a.proto} ${a.ipv6 ? "IPv6" : "IPv4"} to ${a.ipv6 ? `[${a.dest}]` : a.dest}:${a.port}, batch ${a.batch}, ${a.time} s per run, kernel ${kernelRelease()}`,
    );
    console.log(rowHeader());
  }
  let first = true;
  for (const size of a.sizes) {
    for (const mode of a.modes) {
      // A datagram receiver tells runs apart by silence: leave it some between them.
      if (a.proto === "udp" && !first) Bun.sleepSync(UDP_BURST_SILENCE_MS * 2);
      first = false;
      const r = sendRun(a, mode, size, a.dest!, a.port, a.json);
      printRow(a, r);
      if (mode === "adaptive" && !a.json) console.log(`  adaptive: ${r.reason}`);
    }
  }
}

/** Loopback runs against receiver children (the comparison `npm start` prints, or the chosen
 * modes and sizes); with the matrix, Bun's own sockets too, and a verdict. */
async function loopbackRuns(a: Args): Promise<void> {
  const host = a.ipv6 ? "::1" : "127.0.0.1";
  const runs = a.sizes.length * a.modes.length + (a.matrix ? a.sizes.length : 0);
  if (!a.json) {
    console.log(
      `tx: ${runs} runs on loopback (${host}) of ${a.time} s each, about ${Math.ceil(runs * (a.time + RUN_OVERHEAD_S))} s in all; nothing leaves this machine and no NIC is needed.`,
    );
    console.log(
      `Each run: this process sends ${a.proto.toUpperCase()} for ${a.time} s, ${a.batch} sends per submission, to a receiver child that reads every byte (Bun's row: a Bun.listen child); socket buffers: ${a.sockbuf ? `${a.sockbuf} bytes` : "the kernel's defaults"}.`,
    );
    if (a.matrix)
      console.log(
        `Modes: nonzc (IORING_OP_SEND, copies), zc (SEND_ZC), zc-fixed (SEND_ZC from a registered buffer), mixed and adaptive (SEND_ZC from --threshold 16K up), and bun (Bun.connect to Bun.listen, default options) as the baseline.`,
      );
    console.log(`${COLUMN_HELP}\n\nkernel ${kernelRelease()}, ${a.proto} ${a.ipv6 ? "IPv6" : "IPv4"}`);
    console.log(rowHeader());
  }
  const rows: SendResult[] = [];
  const bunRows: Array<LabRow & { receiver_cpu_s?: number | null }> = [];
  for (const size of a.sizes) {
    for (const mode of a.modes) {
      const rx = await startReceiver(a, size);
      let r: SendResult;
      try {
        r = sendRun(a, mode, size, host, rx.port, a.json || a.matrix);
      } catch (e) {
        rx.kill();
        throw e;
      }
      const got = await resultWithin(rx, 5000 + UDP_BURST_SILENCE_MS);
      r.receiver_bytes = got ? got.bytes : null;
      r.receiver_cpu_s = got ? got.cpu_user_s + got.cpu_sys_s : null;
      if (a.proto === "tcp" && got && got.bytes !== r.bytes) r.note += `; RECEIVER COUNTED ${got.bytes} BYTES`;
      if (a.proto === "udp" && got)
        r.note += `; receiver got ${got.ops} of ${r.ops} datagrams, the kernel dropped ${got.drops ?? "?"}`;
      rows.push(r);
      printRow(a, r);
    }
    if (a.matrix) {
      const rx = await childReceiver<{ bytes: number; cpu_s: number }>([
        process.execPath,
        new URL("./lib/bun-sockets.ts", import.meta.url).pathname,
        host,
      ]);
      let b: LabRow & { receiver_cpu_s?: number | null };
      try {
        b = await bunSend(host, rx.port, size, a.time);
      } catch (e) {
        rx.kill();
        throw new ToolError(`Bun.connect baseline failed: ${(e as Error).message}`);
      }
      const got = await resultWithin(rx, 5000);
      if (got && got.bytes !== b.bytes) b.note += `; RECEIVER COUNTED ${got.bytes} BYTES`;
      b.receiver_cpu_s = got ? got.cpu_s : null;
      bunRows.push(b);
      printRow(a, b);
    }
  }
  if (a.json) return;
  const adaptive = rows.filter((r) => r.mode === "adaptive");
  if (adaptive.length) console.log(`\nadaptive: ${adaptive[adaptive.length - 1]!.reason}`);
  console.log(
    `loopback: the kernel copies every zero-copy send here (${a.reportUsage ? "copied % says so" : "run without --no-report-usage to see it reported"}): no page is sent without a copy on loopback, though a copied SEND_ZC can still outrun SEND (bench/results/tcp-stream-adaptive-2026-12-05.md; adaptive measures which wins on this socket). Run tx -D against a receiver across a NIC for real zero-copy.`,
  );
  if (a.matrix) console.log(verdict(rows, bunRows));
}

/** One line: does bun-uring beat Bun's own sockets here, at the largest size, and why: the CPU
 * each side spent per MB moved says whether the sender or the receiver made the difference. */
function verdict(rows: SendResult[], bunRows: Array<LabRow & { receiver_cpu_s?: number | null }>): string {
  const bun = bunRows[bunRows.length - 1]!;
  const ours = rows.filter((r) => r.size === bun.size).sort((x, y) => y.mb_s - x.mb_s)[0]!;
  const ratio = ours.mb_s / bun.mb_s;
  const perMb = (cpu: number | null | undefined, bytes: number) =>
    cpu === null || cpu === undefined || bytes === 0 ? null : (cpu / (bytes / MB)) * 1e6;
  const txOurs = perMb(ours.cpu_user_s + ours.cpu_sys_s, ours.bytes),
    txBun = perMb(bun.cpu_user_s + bun.cpu_sys_s, bun.bytes);
  const rxOurs = perMb(ours.receiver_cpu_s, ours.bytes),
    rxBun = perMb(bun.receiver_cpu_s, bun.bytes);
  const us = (v: number | null) => (v === null ? "?" : `${v.toFixed(0)} µs`);
  const cpu = `CPU per MB: sender ${us(txOurs)} vs Bun's ${us(txBun)}, receiver ${us(rxOurs)} vs Bun's ${us(rxBun)}`;
  // The side whose CPU per MB differs most from Bun's is where the difference is made.
  const txGain = txOurs && txBun ? txBun / txOurs : 1,
    rxGain = rxOurs && rxBun ? rxBun / rxOurs : 1;
  const where =
    rxGain > txGain
      ? "mostly on the receiving side (bun-uring's receiver: RECV into one reused 1 MiB buffer through the ring; Bun.listen: a data callback with a buffer per read)"
      : `mostly on the sending side (bun-uring: ${ours.batch} sends per io_uring_enter; Bun.connect: a write() per send)`;
  const same =
    "same payload, time and default socket options on both sides; loopback copies every byte, so zero-copy plays no part";
  return ratio >= 1
    ? `verdict: bun-uring wins on this machine at ${bun.size} bytes per send: its ${ours.mode} pair moves ${ratio.toFixed(2)}× the bytes of Bun.connect to Bun.listen (${same}). The difference is ${where}; ${cpu}.`
    : `verdict: bun-uring does not win on this machine at ${bun.size} bytes per send: its best pair, ${ours.mode}, moves ${ratio.toFixed(2)}× the bytes of Bun.connect to Bun.listen (${same}); ${cpu}.`;
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  pinCpu(a.cpu);
  if (a.receiver) receiverRole(a);
  else if (a.dest !== null) remoteRuns(a);
  else await loopbackRuns(a);
}

await runTool(CLI, main);
// Rings and children are closed; nothing is left to wait for, so exit now rather than when the
// event loop notices (npm start must return promptly).
process.exit(0);
