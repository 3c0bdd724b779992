// bun scripts/tx.ts: the zero-copy transmit experiment (also `npm start`). Modelled on the kernel
// selftest io_uring_zerocopy_tx and liburing's examples/send-zerocopy.c: stream or datagram sends
// in one of five modes, a batch of sends per submission, for a fixed time, with a progress line
// each second and a final table that also says how much the kernel really sent without a copy
// (IORING_SEND_ZC_REPORT_USAGE, which neither C tool reports) and what CPU it cost.
//
// With no arguments it runs on loopback only: for each mode and a few sizes it starts a copying
// receiver (this script with -R, as a child process), sends for a short time and prints the
// comparison table. Any other destination must be given with -D; nothing else is ever contacted.
import { c, errno } from "../ffi/index.ts";
import { Ring } from "../src/ring/ring.ts";
import { kernelRelease } from "../src/ring/kernel.ts";
import { tcpListen, tcpConnect, tcpAccept, udpSocket, closeQuietly, RecvLoop, setSocketOption, parseIPv4, parseIPv6 } from "../src/net/index.ts";
import { ZcSender, FixedBufferPool, type ZcMode } from "../src/zc/index.ts";
import { SOL_SOCKET, SO_SNDBUF, SO_RCVBUF } from "../src/abi/net.ts";
import { UringError } from "../src/error.ts";
import { printTable } from "../bench/lib/harness.ts";

const USAGE = `usage: bun scripts/tx.ts [tcp|udp] [options]
       bun scripts/tx.ts                      loopback comparison of every mode and a few sizes
       bun scripts/tx.ts -R [tcp|udp] [-p P]  receiver role (counts bytes, prints a line per second)

  tcp | udp            protocol (default tcp)
  -m, --mode M         nonzc | zc | zc-fixed | mixed | adaptive (default adaptive), or a comma
                       list of them; "all" runs each
  -4, -6               IPv4 (default) or IPv6
  -s, --size B         payload bytes per send (suffix K, M; default 64K for tcp, 8K for udp);
                       a comma list runs each size
  -n, --batch N        sends per submission (default 8)
  -t, --time S         seconds to send (default 2)
  -D, --dest ADDR      send to ADDR (numeric IPv4 or IPv6; the port comes from -p), where a
                       receiver runs. Without -D the run is loopback only:
                       a receiver child is started on 127.0.0.1 / ::1
  -p, --port P         destination port with -D; listen port with -R (default 8000; 0 = any)
  -C, --cpu N          pin this process to CPU N (sched_setaffinity)
  --receiver-cpu N     pin the loopback receiver child to CPU N
  --threshold B        mixed/adaptive: smallest payload sent with SEND_ZC (default 16K)
  --no-report-usage    SEND_ZC without IORING_SEND_ZC_REPORT_USAGE
  --nodelay            TCP_NODELAY on the sender
  -R, --receiver       receiver role: listen on --addr (default 127.0.0.1, ::1 with -6) and count
  --addr A             receiver listen address
  --once               receiver: exit after the first connection (tcp) or 1 s of silence (udp)
  --json               print one JSON object instead of the table
  -h, --help           this text`;

type Proto = "tcp" | "udp";
const MODES = ["nonzc", "zc", "zc-fixed", "mixed", "adaptive"] as const;
type TxMode = (typeof MODES)[number];

interface Args {
  proto: Proto;
  modes: TxMode[];
  ipv6: boolean;
  sizes: number[];
  batch: number;
  time: number;
  dest: string | null;
  port: number;
  cpu: number;
  receiverCpu: number;
  threshold: number;
  reportUsage: boolean;
  nodelay: boolean;
  receiver: boolean;
  addr: string | null;
  once: boolean;
  json: boolean;
  matrix: boolean;
}

function die(msg: string): never {
  console.error(`tx: ${msg}\n\n${USAGE}`);
  process.exit(2);
}

const MAX_SIZE = 1 << 30;
/** CPUs a sched_setaffinity mask here can name (its 128 bytes). */
const MAX_CPUS = 1024;

function parseSize(s: string): number {
  const m = /^(\d+)([kKmM]?)$/.exec(s);
  if (!m) die(`not a size: ${s}`);
  const v = Number(m[1]) * (m[2] === "" ? 1 : /k/i.test(m[2]!) ? 1024 : 1024 * 1024);
  if (v < 1) die(`size must be at least 1 byte: ${s}`);
  // One send's payload (and, for zc-fixed, one registered buffer): 1 GiB is the pool's limit.
  if (v > MAX_SIZE) die(`size must be at most 1G (${MAX_SIZE} bytes): ${s}`);
  return v;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    proto: "tcp", modes: ["adaptive"], ipv6: false, sizes: [], batch: 8, time: 2, dest: null, port: 8000, cpu: -1,
    receiverCpu: -1, threshold: 16384, reportUsage: true, nodelay: false, receiver: false, addr: null, once: false, json: false,
    matrix: argv.length === 0 || (argv.length === 1 && argv[0] === "--json"),
  };
  const num = (i: number, name: string): number => {
    const v = argv[i];
    if (v === undefined || !/^-?\d+(\.\d+)?$/.test(v)) die(`${name} needs a number`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    switch (x) {
      case "tcp": case "udp": a.proto = x; break;
      case "-m": case "--mode": {
        const v = argv[++i];
        if (v === "all") a.modes = [...MODES];
        else {
          const list = (v ?? "").split(",");
          for (const m of list) if (!(MODES as readonly string[]).includes(m)) die(`unknown mode ${m}`);
          a.modes = list as TxMode[];
        }
        break;
      }
      case "-4": a.ipv6 = false; break;
      case "-6": a.ipv6 = true; break;
      case "-s": case "--size": a.sizes = (argv[++i] ?? die("--size needs a value")).split(",").map(parseSize); break;
      case "-n": case "--batch": a.batch = num(++i, "--batch"); break;
      case "-t": case "--time": a.time = num(++i, "--time"); break;
      case "-D": case "--dest": a.dest = argv[++i] ?? die("--dest needs an address"); break;
      case "-p": case "--port": a.port = num(++i, "--port"); break;
      case "-C": case "--cpu": a.cpu = num(++i, "--cpu"); break;
      case "--receiver-cpu": a.receiverCpu = num(++i, "--receiver-cpu"); break;
      case "--threshold": a.threshold = parseSize(argv[++i] ?? die("--threshold needs a value")); break;
      case "--no-report-usage": a.reportUsage = false; break;
      case "--nodelay": a.nodelay = true; break;
      case "-R": case "--receiver": a.receiver = true; break;
      case "--addr": a.addr = argv[++i] ?? die("--addr needs an address"); break;
      case "--once": a.once = true; break;
      case "--json": a.json = true; break;
      case "-h": case "--help": console.log(USAGE); process.exit(0);
      default: die(`unknown argument ${x}`);
    }
  }
  if (!Number.isInteger(a.batch) || a.batch < 1 || a.batch > 512) die("--batch must be 1..512");
  if (!(a.time > 0)) die("--time must be > 0");
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) die("--port must be 0..65535");
  const cpus = navigator.hardwareConcurrency;
  for (const [flag, v] of [["--cpu", a.cpu], ["--receiver-cpu", a.receiverCpu]] as const) {
    if (v !== -1 && (!Number.isInteger(v) || v < 0 || v >= Math.min(cpus, MAX_CPUS))) die(`${flag} must be a CPU number 0..${Math.min(cpus, MAX_CPUS) - 1} (this machine has ${cpus}), got ${v}`);
  }
  if (a.dest !== null) {
    if (!(a.ipv6 ? parseIPv6(a.dest) : parseIPv4(a.dest))) die(`--dest must be a numeric ${a.ipv6 ? "IPv6 (with -6)" : "IPv4 (-6 for IPv6)"} address, got ${a.dest}`);
    if (a.port === 0) die("--dest needs a --port");
  }
  if (a.sizes.length === 0) a.sizes = a.matrix ? [1024, 16384, 65536, 262144] : [a.proto === "udp" ? 8192 : 65536];
  const udpMax = a.ipv6 ? 65527 : 65507;
  if (a.proto === "udp") for (const s of a.sizes) if (s > udpMax) die(`udp payloads are at most ${udpMax} bytes, got ${s}`);
  if (a.matrix) {
    a.modes = [...MODES];
    a.time = 1.5;
  }
  return a;
}

function pinCpu(cpu: number): void {
  if (cpu < 0) return;
  const mask = new Uint8Array(128);
  mask[cpu >> 3] = 1 << (cpu & 7);
  if (c.sched_setaffinity(0, mask.length, mask) !== 0) {
    // An online CPU outside this process's cpuset, say: a clear message, not a stack trace.
    const e = new UringError("sched_setaffinity", errno(), `cpu ${cpu}`);
    console.error(`tx: cannot pin to CPU ${cpu}: ${e.message}`);
    process.exit(2);
  }
}

function cpuNow(): { user: number; sys: number } {
  const u = process.resourceUsage();
  return { user: u.userCPUTime / 1e6, sys: u.systemCPUTime / 1e6 };
}

const ZC_MODE: Record<TxMode, ZcMode> = { nonzc: "copy", zc: "zc", "zc-fixed": "zc-fixed", mixed: "mixed", adaptive: "adaptive" };

interface RunResult {
  proto: Proto;
  family: string;
  mode: TxMode;
  size: number;
  batch: number;
  seconds: number;
  sends: number;
  bytes: number;
  mb_s: number;
  req_s: number;
  /** Shares of the sent bytes, null when zero-copy sends went out without REPORT_USAGE (the
   * kernel did not say whether it copied them). */
  zc_pct: number | null;
  copied_pct: number | null;
  cpu_user_s: number;
  cpu_sys_s: number;
  errors: number;
  decision: string;
  reason: string;
  receiver_bytes: number | null;
}

const MB = 1e6;

/** One sending run against host:port. Rings live in kernel memory (mmap): late notifications
 * after close can then never land in reused JavaScript memory. */
function sendRun(a: Args, mode: TxMode, size: number, host: string, port: number, quiet: boolean): RunResult {
  const ring = Ring.create({ entries: 512, memory: "mmap", maxInflight: 8192 });
  let fd = -1;
  let pool: FixedBufferPool | undefined;
  try {
    if (a.proto === "tcp") {
      fd = tcpConnect(ring, { host, port, noDelay: a.nodelay });
    } else {
      fd = udpSocket(ring, { host: a.ipv6 ? "::" : "0.0.0.0", port: 0 }).fd;
    }
    setSocketOption(ring, fd, SOL_SOCKET, SO_SNDBUF, 4 << 20, { via: "libc" });
    const window = a.batch * 4;
    // zc-fixed needs the pool; adaptive gets it too, so its zero-copy choice is the fixed one.
    if (mode === "zc-fixed" || mode === "adaptive") pool = FixedBufferPool.create(ring, { bufferSize: size, count: 1 });
    const sender = new ZcSender(ring, fd, {
      mode: ZC_MODE[mode], pool, threshold: a.threshold, reportUsage: a.reportUsage, capacity: window * 2, maxChain: a.batch,
      destination: a.proto === "udp" ? { host, port } : undefined,
    });
    // One payload, sent again and again (send-zerocopy.c does the same): the kernel only reads it.
    const payload = pool ? pool.view(0).subarray(0, size) : new Uint8Array(size);
    for (let i = 0; i < size; i++) payload[i] = (i * 7 + 1) & 0xff;
    const s = sender.stats;
    const cpu0 = cpuNow();
    const t0 = performance.now();
    const end = t0 + a.time * 1000;
    let nextTick = t0 + 1000, lastBytes = 0, lastSends = 0;
    while (performance.now() < end) {
      while (sender.inflight + a.batch <= window) {
        sender.cork();
        for (let i = 0; i < a.batch; i++) sender.send(payload);
        sender.uncork();
      }
      ring.run(1, 100);
      if (sender.isBroken) throw s.lastError ?? new Error("the stream broke");
      const now = performance.now();
      if (now >= nextTick && !quiet) {
        const db = s.sentBytes - lastBytes, dn = s.sent - lastSends;
        console.error(`tx ${a.proto} ${mode} ${size}B: ${(db / MB).toFixed(1)} MB/s, ${dn} req/s, decision ${s.decision}, zc ${pct(s.zcBytes, s.sentBytes)}%, copied ${pct(s.copiedBytes + s.copySendBytes, s.sentBytes)}%`);
        lastBytes = s.sentBytes;
        lastSends = s.sent;
        nextTick += 1000;
      }
    }
    ring.runUntil(() => sender.inflight === 0, 10_000);
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = cpuNow();
    const unreported = !a.reportUsage && s.sentBytes > s.copySendBytes;
    return {
      proto: a.proto, family: a.ipv6 ? "ipv6" : "ipv4", mode, size, batch: a.batch, seconds,
      sends: s.sent, bytes: s.sentBytes, mb_s: s.sentBytes / MB / seconds, req_s: s.sent / seconds,
      zc_pct: unreported ? null : pct(s.zcBytes, s.sentBytes), copied_pct: unreported ? null : pct(s.copiedBytes + s.copySendBytes, s.sentBytes),
      cpu_user_s: cpu1.user - cpu0.user, cpu_sys_s: cpu1.sys - cpu0.sys, errors: s.errors,
      decision: mode === "adaptive" && size < a.threshold ? "copy (below threshold)" : s.decision,
      reason: mode === "adaptive" && size < a.threshold ? `${size} bytes is below the ${a.threshold}-byte threshold: every send is SEND` : s.reason,
      receiver_bytes: null,
    };
  } finally {
    pool?.close();
    ring.close();
    closeQuietly(fd);
  }
}

function pct(part: number, total: number): number {
  return total > 0 ? Math.round((part / total) * 1000) / 10 : 0;
}

/** Receiver role: count bytes per second until stopped (or once: one connection / 1 s silence). */
function receive(a: Args): void {
  const host = a.addr ?? (a.ipv6 ? "::1" : "127.0.0.1");
  const ring = Ring.create({ entries: 64, memory: "mmap" });
  const fds: number[] = [];
  try {
    let loop: RecvLoop;
    if (a.proto === "tcp") {
      const l = tcpListen(ring, { host, port: a.port, backlog: 4 });
      fds.push(l.fd);
      console.log(`listening ${l.address.port}`);
      const fd = tcpAccept(ring, l.fd, { timeoutMs: 600_000 });
      fds.push(fd);
      setSocketOption(ring, fd, SOL_SOCKET, SO_RCVBUF, 4 << 20, { via: "libc" });
      loop = new RecvLoop(ring, fd, { bufferSize: 1 << 20, discard: true });
    } else {
      const u = udpSocket(ring, { host, port: a.port });
      fds.push(u.fd);
      setSocketOption(ring, u.fd, SOL_SOCKET, SO_RCVBUF, 8 << 20, { via: "libc" });
      console.log(`listening ${u.address.port}`);
      loop = new RecvLoop(ring, u.fd, { bufferSize: 65536 });
    }
    let last = 0, lastAt = performance.now();
    let seen = 0, lastDataAt = performance.now();
    for (;;) {
      ring.run(1, 250);
      const now = performance.now();
      if (now - lastAt >= 1000) {
        if (!a.once && loop.bytes !== last) console.error(`rx ${a.proto}: ${((loop.bytes - last) / MB / ((now - lastAt) / 1000)).toFixed(1)} MB/s`);
        last = loop.bytes;
        lastAt = now;
      }
      if (loop.bytes !== seen) {
        seen = loop.bytes;
        lastDataAt = now;
      }
      if (loop.done) break;
      // A datagram receiver has no end of stream: with --once it stops after 1 s of silence.
      if (a.once && a.proto === "udp" && seen > 0 && now - lastDataAt > 1000) break;
    }
    console.log(JSON.stringify({ bytes: loop.bytes, recvs: loop.recvs, error: loop.error?.message ?? null }));
  } finally {
    ring.close();
    for (const fd of fds) closeQuietly(fd);
  }
}

/** A loopback receiver child (this script with -R --once), its port, and its final byte count. */
async function startReceiver(a: Args): Promise<{ port: number; done: Promise<number>; kill(): void }> {
  const args = [process.execPath, import.meta.path, "-R", a.proto, a.ipv6 ? "-6" : "-4", "-p", "0", "--once"];
  if (a.receiverCpu >= 0) args.push("-C", String(a.receiverCpu));
  const child = Bun.spawn(args, { stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  let text = "";
  const dec = new TextDecoder();
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the receiver child exited before listening");
    text += dec.decode(value);
  }
  const m = /listening (\d+)/.exec(text);
  if (!m) throw new Error(`unexpected receiver output: ${text}`);
  const done = (async () => {
    for (;;) {
      const { value, done: eof } = await reader.read();
      if (value) text += dec.decode(value);
      if (eof) break;
    }
    await child.exited;
    const j = /\{.*\}/.exec(text);
    return j ? (JSON.parse(j[0]) as { bytes: number }).bytes : -1;
  })();
  return { port: Number(m[1]), done, kill: () => child.kill() };
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  pinCpu(a.cpu);
  if (a.receiver) {
    receive(a);
    return;
  }
  const results: RunResult[] = [];
  for (const size of a.sizes) {
    for (const mode of a.modes) {
      let r: RunResult;
      if (a.dest !== null) {
        r = sendRun(a, mode, size, a.dest, a.port, a.json);
      } else {
        // Loopback only: our own receiver child on 127.0.0.1 / ::1.
        const host = a.ipv6 ? "::1" : "127.0.0.1";
        const rx = await startReceiver(a);
        try {
          r = sendRun(a, mode, size, host, rx.port, a.json || a.matrix);
        } catch (e) {
          rx.kill();
          throw e;
        }
        if (a.proto === "udp") await Bun.sleep(50);
        r.receiver_bytes = await Promise.race([rx.done, Bun.sleep(5000).then(() => { rx.kill(); return -1; })]);
      }
      results.push(r);
      if (a.matrix && !a.json) console.error(`tx ${r.proto} ${r.mode} ${r.size}B: ${r.mb_s.toFixed(1)} MB/s (${r.decision})`);
    }
  }
  if (a.json) {
    console.log(JSON.stringify({ kernel: kernelRelease(), destination: a.dest ?? "loopback", config: { proto: a.proto, ipv6: a.ipv6, batch: a.batch, time_s: a.time, threshold: a.threshold, report_usage: a.reportUsage }, results }));
    return;
  }
  console.log(`\ntx ${a.proto} ${a.ipv6 ? "IPv6" : "IPv4"} to ${a.dest ?? "loopback (receiver child)"}, batch ${a.batch}, ${a.time} s per run, kernel ${kernelRelease()}`);
  printTable(
    ["mode", "size", "MB/s", "req/s", "zc %", "copied %", "user s", "sys s", "errors", "rx MB", "adaptive decision"],
    results.map((r) => [r.mode, r.size, r.mb_s, Math.round(r.req_s), r.zc_pct ?? "-", r.copied_pct ?? "-", r.cpu_user_s, r.cpu_sys_s, r.errors,
      r.receiver_bytes === null ? "-" : r.receiver_bytes < 0 ? "?" : (r.receiver_bytes / MB).toFixed(1), r.mode === "adaptive" ? r.decision : ""]),
  );
  const adaptive = results.filter((r) => r.mode === "adaptive");
  if (adaptive.length) console.log(`\nadaptive: ${adaptive[adaptive.length - 1]!.reason}`);
  if (a.dest === null) console.log(`loopback: the kernel copies every zero-copy send (${a.reportUsage ? "REPORT_USAGE says copied" : "run without --no-report-usage to see it reported"}), so zero-copy cannot win here; use -D with a NIC peer for real numbers.`);
}

await main();

