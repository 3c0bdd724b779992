// bun bench/server.ts: echo servers as real servers run: each server its own process, driven over
// loopback by a client in another process, every server given the same socket options and the
// same workload, side by side in one run.
//
// Servers (each started once, all of them kept running for the whole run):
//   bun-uring  this library's async API as a Bun developer writes it: openRing() and listen() with
//              no options, `for await (const chunk of sock.recv()) await sock.send(chunk)` per
//              connection (--uring-echo released awaits `.released` instead, the README example's
//              form)
//   bun        Bun.listen: data() writes the chunk back, what write() did not take waits for drain()
//   node       node:net (a `node` child): `socket.pipe(socket)`
//   c-epoll    bench/c/echo_epoll.c serve: level-triggered epoll, one recv and one send per
//              readiness (the floor)
// Socket options, the same on every side: the listener has SO_REUSEADDR and backlog 511 (Bun.listen
// fixes 512), every accepted and every client socket has TCP_NODELAY, and no side sets SO_SNDBUF /
// SO_RCVBUF (the kernel's autotuned defaults). These are the defaults of bun-uring and of Bun; Node's
// default is Nagle on, so the node server asks for `noDelay: true`, and the C programs set it.
//
// The client: one C program for every server (bench/c/echo_epoll.c client), a new process per
// measurement. It is neither Bun nor the library, so it favours no side, and it costs about what
// the C server costs per message (one recv and one send each; the kernel's TCP work dominates
// both), less than any server written in JavaScript. On 2 CPUs the client has one core at most:
// at 1,000 connections with --pin, the C server kept the client's core 98% busy (2026-12-05), so
// c-epoll's figure on that row is the ceiling with this client rather than C's own. The client's
// CPU share of its core is reported beside every result; near 100%, the client was the limit.
// Each connection keeps one message in flight: it sends a message, reads the echo back, compares
// every byte with what it sent, then sends the next. Sizes and contents come from --seed and the connection's index
// only, so every server is asked for the same bytes. A byte that differs, a connection closed or
// reset, or 10 s without progress fails the measurement: the row shows FAILED for that server
// (with the reason below the table) instead of a figure.
//
// Rows: 64 B ping-pong over one connection (p50 and p99 of the round trip); one connection of
// messages of random size 1 B–256 KiB (MiB/s echoed); 200 connections of the same; 1,000
// connections of 64 B requests (requests per second). Each measurement warms up (--warmup-ms),
// then counts for --measure-ms. Rounds interleave the servers (each round starts with the next
// one) and the table shows the median over rounds. Server CPU per message (user and system, which
// the client reads from /proc/PID/stat at both ends of its counted window) is reported as well.
//
// Nothing is pinned by default: servers run where the scheduler puts them, as real servers do.
// --pin puts the servers on the last CPU and the client on the first (taskset); on this 2-CPU VM
// that hid most of bun-uring's cross-process wake-up stall from the p50 (2026-12-05, before the
// fix in adfcfe5: p50 55 us pinned, 200 us to 15 ms unpinned, against Bun's 30-75 us either way),
// so it is not the default.
//
// --json prints one object; its `ratios` map holds, per row, each server's value divided by Bun's
// (for latency rows lower is better, for the rest higher). A full default run is recorded in
// bench/results/server-<date>.json.
import { openRing, type TcpSocket } from "../src/api/index.ts";
import { kernelRelease } from "../src/ring/kernel.ts";
import { compileC, median, parseFlags, printTable, recordResult } from "./lib/harness.ts";

const USAGE = `usage: bun bench/server.ts [--quick] [--rounds N] [--warmup-ms MS] [--measure-ms MS] [--servers bun-uring,bun,node,c-epoll] [--json]`;

const HOST = "127.0.0.1";
const SERVERS = ["bun-uring", "bun", "node", "c-epoll"] as const;
type ServerName = (typeof SERVERS)[number];
const BASELINE: ServerName = "bun";

interface Flags extends Record<string, number | string | boolean> {
  quick: boolean;
  rounds: number;
  "warmup-ms": number;
  "measure-ms": number;
  servers: string;
  seed: number;
  "conns-many": number;
  "conns-rps": number;
  "uring-echo": string;
  pin: boolean;
  json: boolean;
  serve: string;
}

const SPEC = {
  quick: {
    type: "boolean",
    default: false,
    help: "one round of short windows (for tests): --rounds 1 --warmup-ms 50 --measure-ms 200",
  },
  rounds: {
    type: "number",
    default: 5,
    help: "rounds, each measuring every server on every row (medians are reported)",
  },
  "warmup-ms": { type: "number", default: 250, help: "untimed load before each measurement" },
  "measure-ms": { type: "number", default: 1000, help: "counted window of each measurement" },
  servers: {
    type: "string",
    default: SERVERS.join(","),
    help: "which servers to run (bun is the baseline of the ratios)",
  },
  seed: { type: "number", default: 1, help: "seed of the message sizes and contents (the same for every server)" },
  "conns-many": { type: "number", default: 200, help: "connections of the many-connection stream row" },
  "conns-rps": { type: "number", default: 1000, help: "connections of the requests-per-second row" },
  "uring-echo": {
    type: "string",
    default: "sent",
    help: "bun-uring echo loop: sent (await sock.send(chunk)) or released (await sock.send(chunk).released)",
  },
  pin: {
    type: "boolean",
    default: false,
    help: "servers on the last CPU, the client on the first (taskset), with two or more CPUs",
  },
  json: { type: "boolean", default: false, help: "print one JSON object" },
  serve: { type: "string", default: "", help: "(internal) run one server in this process: bun-uring | bun" },
} as const;

// ---- the servers written in TypeScript (run in a child: --serve NAME) ----

/** Errors a server hit on its connections, a few of them on stderr (the parent shows the tail if a
 * measurement fails). */
let serverErrors = 0;
function noteServerError(e: unknown): void {
  if (++serverErrors <= 5) console.error(`server error: ${e instanceof Error ? e.message : String(e)}`);
}

async function serveUring(echo: string): Promise<void> {
  const ring = openRing();
  const listener = ring.listen({ host: HOST, port: 0 });
  console.log(`listening ${listener.port}`);
  const serveOne = async (sock: TcpSocket): Promise<void> => {
    try {
      if (echo === "released") for await (const chunk of sock.recv()) await sock.send(chunk).released;
      else for await (const chunk of sock.recv()) await sock.send(chunk);
    } catch (e) {
      noteServerError(e);
    } finally {
      await sock.close();
    }
  };
  for await (const sock of listener) void serveOne(sock);
}

function serveBun(): void {
  const server = Bun.listen<{ pending: Uint8Array[] }>({
    hostname: HOST,
    port: 0,
    socket: {
      open(s) {
        s.data = { pending: [] };
      },
      data(s, chunk) {
        const q = s.data.pending;
        // What waits is copied, so the server never holds a buffer Bun might reuse.
        if (q.length > 0) {
          q.push(new Uint8Array(chunk));
          return;
        }
        const n = s.write(chunk);
        if (n < chunk.length) q.push(new Uint8Array(chunk.subarray(Math.max(n, 0))));
      },
      drain(s) {
        const q = s.data.pending;
        while (q.length > 0) {
          const head = q[0]!;
          const n = s.write(head);
          if (n < head.length) {
            q[0] = head.subarray(Math.max(n, 0));
            return;
          }
          q.shift();
        }
      },
      error(_s, e) {
        noteServerError(e);
      },
    },
  });
  console.log(`listening ${server.port}`);
}

/** The node:net server, run as `node -e` (Node's own event loop and sockets). */
const NODE_SERVER = `
const net = require("node:net");
let errors = 0;
const server = net.createServer({ noDelay: true }, (s) => {
  s.on("error", (e) => { if (++errors <= 5) console.error("server error: " + e.message); });
  s.pipe(s);
});
server.listen({ host: process.argv[1], port: 0, backlog: 511 }, () => console.log("listening " + server.address().port));
`;

// ---- the parent: servers, client runs, the table ----

interface Workload {
  id: string;
  label: string;
  conns: number;
  minBytes: number;
  maxBytes: number;
}

interface Row {
  id: string;
  label: string;
  workload: string;
  unit: string;
  better: "lower" | "higher";
  goal: string;
  pick(r: ClientReport): number;
}

interface ClientReport {
  ok: boolean;
  error?: string;
  messages: number;
  bytes: number;
  seconds: number;
  p50_us: number;
  p99_us: number;
  samples: number;
  verified_bytes: number;
  client_cpu_s: number;
  server_user_s: number;
  server_sys_s: number;
}

interface Measurement {
  round: number;
  report: ClientReport | null;
  /** Why the measurement failed (the client's error, a server that died, a timeout). */
  failure: string | null;
}

function workloads(f: Flags): Workload[] {
  const big = 256 * 1024;
  return [
    { id: "pingpong", label: "64 B ping-pong, 1 connection", conns: 1, minBytes: 64, maxBytes: 64 },
    { id: "stream_1", label: "1 B-256 KiB echo, 1 connection", conns: 1, minBytes: 1, maxBytes: big },
    {
      id: "stream_many",
      label: `1 B-256 KiB echo, ${f["conns-many"]} connections`,
      conns: f["conns-many"],
      minBytes: 1,
      maxBytes: big,
    },
    {
      id: "rps",
      label: `64 B request/response, ${f["conns-rps"]} connections`,
      conns: f["conns-rps"],
      minBytes: 64,
      maxBytes: 64,
    },
  ];
}

function rows(f: Flags): Row[] {
  const mib = (r: ClientReport) => r.bytes / (1 << 20) / r.seconds;
  return [
    {
      id: "pingpong_p50_us",
      label: "64 B ping-pong p50 (us)",
      workload: "pingpong",
      unit: "us",
      better: "lower",
      goal: "<= 0.8",
      pick: (r) => r.p50_us,
    },
    {
      id: "pingpong_p99_us",
      label: "64 B ping-pong p99 (us)",
      workload: "pingpong",
      unit: "us",
      better: "lower",
      goal: "<= 1.0",
      pick: (r) => r.p99_us,
    },
    {
      id: "stream_1conn_mib_s",
      label: "1 conn, 1 B-256 KiB echo (MiB/s)",
      workload: "stream_1",
      unit: "MiB/s",
      better: "higher",
      goal: ">= 1.0",
      pick: mib,
    },
    {
      id: `stream_${f["conns-many"]}conns_mib_s`,
      label: `${f["conns-many"]} conns, 1 B-256 KiB echo (MiB/s)`,
      workload: "stream_many",
      unit: "MiB/s",
      better: "higher",
      goal: ">= 1.0",
      pick: mib,
    },
    {
      id: `rps_${f["conns-rps"]}conns`,
      label: `${f["conns-rps"]} conns, 64 B req/resp (req/s)`,
      workload: "rps",
      unit: "req/s",
      better: "higher",
      goal: ">= 1.3",
      pick: (r) => r.messages / r.seconds,
    },
  ];
}

class ServerProc {
  proc!: ReturnType<typeof Bun.spawn>;
  port = 0;
  restarts = 0;
  /** The server's stderr since the last measurement began (the last 600 characters). */
  private stderrTail = "";
  exitCode: number | null = null;

  constructor(
    readonly name: ServerName,
    private readonly cmd: string[],
  ) {}

  async start(): Promise<void> {
    const proc = Bun.spawn(this.cmd, { stdout: "pipe", stderr: "pipe" });
    this.proc = proc;
    this.exitCode = null;
    void proc.exited.then((code) => {
      if (this.proc === proc) this.exitCode = code;
    });
    void (async () => {
      const dec = new TextDecoder();
      for await (const b of proc.stderr as ReadableStream<Uint8Array>)
        this.stderrTail = (this.stderrTail + dec.decode(b)).slice(-600);
    })();
    const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
    const dec = new TextDecoder();
    let text = "";
    const deadline = setTimeout(() => proc.kill(), 15_000);
    try {
      while (!/listening (\d+)\n/.test(text)) {
        const { value, done } = await reader.read();
        if (done)
          throw new Error(`${this.name} server exited before listening: ${this.stderrTail.trim() || "(no output)"}`);
        text += dec.decode(value);
      }
    } finally {
      clearTimeout(deadline);
    }
    this.port = Number(/listening (\d+)/.exec(text)![1]);
    // Keep reading stdout so a chatty server never blocks on a full pipe.
    void (async () => {
      for (;;) if ((await reader.read()).done) break;
    })();
  }

  /** Start the server; a server that cannot start is reported, not fatal (its rows fail). */
  async tryStart(): Promise<string | null> {
    try {
      await this.start();
      return null;
    } catch (e) {
      this.exitCode ??= -1;
      return e instanceof Error ? e.message : String(e);
    }
  }

  get alive(): boolean {
    return this.exitCode === null;
  }

  /** What the server said last on stderr (connection errors, a crash). */
  /** Forget what the server said so far: a measurement reports only its own. */
  clearTail(): void {
    this.stderrTail = "";
  }

  tail(): string {
    return this.stderrTail.trim().split("\n").slice(-3).join(" | ");
  }

  async stop(): Promise<void> {
    this.proc.kill();
    await this.proc.exited;
  }
}

function serverCommand(name: ServerName, f: Flags, cBin: string, pin: string[]): string[] {
  const self = [process.execPath, import.meta.path];
  switch (name) {
    case "bun-uring":
      return [...pin, ...self, "--serve", "bun-uring", "--uring-echo", f["uring-echo"]];
    case "bun":
      return [...pin, ...self, "--serve", "bun"];
    case "node":
      return [...pin, "node", "-e", NODE_SERVER, HOST];
    case "c-epoll":
      return [...pin, cBin, "serve", HOST, "0"];
  }
}

async function measure(
  server: ServerProc,
  w: Workload,
  f: Flags,
  cBin: string,
  pin: string[],
): Promise<Omit<Measurement, "round">> {
  if (!server.alive) {
    // Dead since an earlier measurement (which has its failure): start it again for this one.
    server.restarts++;
    const err = await server.tryStart();
    if (err !== null) return { report: null, failure: err };
  }
  const cmd = [
    ...pin,
    cBin,
    "client",
    HOST,
    String(server.port),
    String(w.conns),
    String(w.minBytes),
    String(w.maxBytes),
    String(f["warmup-ms"]),
    String(f["measure-ms"]),
    String(f.seed),
    String(server.proc.pid),
  ];
  server.clearTail();
  const client = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe" });
  const killer = setTimeout(() => client.kill(), f["warmup-ms"] + f["measure-ms"] + 60_000);
  const [out, err] = await Promise.all([new Response(client.stdout).text(), new Response(client.stderr).text()]);
  await client.exited;
  clearTimeout(killer);
  let report: ClientReport | null = null;
  try {
    report = JSON.parse(out.trim().split("\n").pop() ?? "") as ClientReport;
  } catch {
    report = null;
  }
  // Let the server notice the closed connections before judging whether it is still alive.
  await Bun.sleep(20);
  const serverNote = server.alive
    ? server.tail()
      ? `; server stderr: ${server.tail()}`
      : ""
    : `; the server exited (code ${server.exitCode}${server.tail() ? `: ${server.tail()}` : ""})`;
  if (report === null)
    return {
      report: null,
      failure: `client gave no report (exit ${client.exitCode}${err.trim() ? `: ${err.trim().slice(-300)}` : ""})${serverNote}`,
    };
  if (!report.ok) return { report: null, failure: `${report.error}${serverNote}` };
  return { report, failure: null };
}

interface Cell {
  value: number | null;
  rounds: number[];
  failure: string | null;
}

function cellOf(ms: Measurement[], pick: (r: ClientReport) => number): Cell {
  const failed = ms.find((m) => m.failure !== null);
  const values = ms.filter((m) => m.report).map((m) => pick(m.report!));
  if (failed) return { value: null, rounds: values, failure: `round ${failed.round + 1}: ${failed.failure}` };
  return { value: median(values), rounds: values, failure: null };
}

async function main(): Promise<void> {
  const f = parseFlags<Flags>(process.argv.slice(2), SPEC, USAGE);
  if (f.serve === "bun-uring") return serveUring(f["uring-echo"]);
  if (f.serve === "bun") return serveBun();
  if (f.serve !== "") throw new Error(`--serve must be bun-uring or bun, got ${f.serve}`);
  if (!["sent", "released"].includes(f["uring-echo"]))
    throw new Error(`--uring-echo must be sent or released, got ${f["uring-echo"]}`);
  if (f.quick) {
    f.rounds = 1;
    f["warmup-ms"] = 50;
    f["measure-ms"] = 200;
  }
  const names = f.servers.split(",").map((s) => s.trim()) as ServerName[];
  for (const n of names)
    if (!SERVERS.includes(n)) throw new Error(`unknown server ${n} (known: ${SERVERS.join(", ")})`);
  if (!names.includes(BASELINE)) throw new Error(`--servers must include ${BASELINE}: the ratios are against it`);

  const cBin = await compileC("echo_epoll", "c/echo_epoll.c");
  const cpus = navigator.hardwareConcurrency;
  const pinned = f.pin && cpus >= 2;
  const pinServer = pinned ? ["taskset", "-c", String(cpus - 1)] : [];
  const pinClient = pinned ? ["taskset", "-c", "0"] : [];
  const servers = names.map((n) => new ServerProc(n, serverCommand(n, f, cBin, pinServer)));
  const ws = workloads(f);
  const results = new Map<string, Measurement[]>(); // `${server}/${workload}`
  const t0 = performance.now();
  try {
    // A server that cannot start is tried again (and its failure recorded) at each measurement.
    await Promise.all(servers.map((s) => s.tryStart()));
    for (let round = 0; round < f.rounds; round++) {
      for (const [wi, w] of ws.entries()) {
        for (let k = 0; k < servers.length; k++) {
          const s = servers[(k + round + wi) % servers.length]!;
          const m = await measure(s, w, f, cBin, pinClient);
          const key = `${s.name}/${w.id}`;
          if (!results.has(key)) results.set(key, []);
          results.get(key)!.push({ round, ...m });
          if (!f.json) {
            const r = m.report;
            console.error(
              `round ${round + 1} ${w.label} ${s.name}: ${r ? `${r.messages} messages, ${(r.bytes / (1 << 20) / r.seconds).toFixed(1)} MiB/s, p50 ${r.p50_us.toFixed(1)} us, p99 ${r.p99_us.toFixed(1)} us` : `FAILED: ${m.failure}`}`,
            );
          }
        }
      }
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop().catch(() => {})));
  }
  const seconds = (performance.now() - t0) / 1000;

  const rowList = rows(f);
  const table = rowList.map((row) => {
    const cells = Object.fromEntries(
      names.map((n) => [n, cellOf(results.get(`${n}/${row.workload}`) ?? [], row.pick)]),
    ) as Record<ServerName, Cell>;
    const base = cells[BASELINE].value;
    const ratios = Object.fromEntries(
      names.map((n) => [n, cells[n].value !== null && base !== null && base > 0 ? cells[n].value! / base : null]),
    );
    return { row, cells, ratios };
  });
  // Per workload and server: CPU per message of the server, CPU share of the client (medians).
  const profile = ws.map((w) => ({
    workload: w.id,
    label: w.label,
    servers: Object.fromEntries(
      names.map((n) => {
        const ok = (results.get(`${n}/${w.id}`) ?? []).filter((m) => m.report).map((m) => m.report!);
        // The client reports -1 when it could not read the server's /proc/PID/stat.
        const per = (x: (r: ClientReport) => number) =>
          ok.length && ok.every((r) => x(r) >= 0)
            ? median(ok.map((r) => (x(r) / Math.max(r.messages, 1)) * 1e6))
            : null;
        return [
          n,
          {
            server_user_us_per_msg: per((r) => r.server_user_s),
            server_sys_us_per_msg: per((r) => r.server_sys_s),
            client_cpu_share: ok.length ? median(ok.map((r) => r.client_cpu_s / r.seconds)) : null,
          },
        ];
      }),
    ),
  }));
  const echoedOk = Object.fromEntries(
    names.map((n) => [n, ws.every((w) => (results.get(`${n}/${w.id}`) ?? []).every((m) => m.failure === null))]),
  );
  const failures = names.flatMap((n) =>
    ws.flatMap((w) =>
      (results.get(`${n}/${w.id}`) ?? [])
        .filter((m) => m.failure)
        .map((m) => ({ server: n, workload: w.id, round: m.round + 1, failure: m.failure! })),
    ),
  );
  const json = {
    bench: "server",
    kernel: kernelRelease(),
    rounds: f.rounds,
    warmup_ms: f["warmup-ms"],
    measure_ms: f["measure-ms"],
    seed: f.seed,
    uring_echo: f["uring-echo"] === "released" ? "await sock.send(chunk).released" : "await sock.send(chunk)",
    socket_options:
      "listener SO_REUSEADDR, backlog 511 (Bun.listen: 512); TCP_NODELAY on every accepted and client socket; SO_SNDBUF/SO_RCVBUF at the kernel's defaults on every side",
    client: "bench/c/echo_epoll.c client (epoll, one message in flight per connection, every echoed byte compared)",
    pinning: pinned ? `servers on CPU ${cpus - 1}, client on CPU 0 (taskset)` : "none",
    seconds: Math.round(seconds),
    servers: names,
    rows: table.map(({ row, cells }) => ({
      id: row.id,
      label: row.label,
      unit: row.unit,
      better: row.better,
      values: Object.fromEntries(names.map((n) => [n, cells[n].value])),
      rounds: Object.fromEntries(names.map((n) => [n, cells[n].rounds])),
      failures: Object.fromEntries(names.filter((n) => cells[n].failure).map((n) => [n, cells[n].failure])),
    })),
    ratios: Object.fromEntries(table.map(({ row, ratios }) => [row.id, ratios])),
    goals: { server: "bun-uring", against: BASELINE, ...Object.fromEntries(rowList.map((r) => [r.id, r.goal])) },
    echoed_ok: echoedOk,
    restarts: Object.fromEntries(servers.map((s) => [s.name, s.restarts])),
    failures,
    profile,
  };
  // Only a run with every default is recorded: a quick or narrowed one would replace it.
  const full = !f.quick && Object.entries(SPEC).every(([k, v]) => k === "json" || f[k] === v.default);
  const path = full ? recordResult("server", json) : "not recorded (a quick or narrowed run)";
  if (f.json) {
    console.log(JSON.stringify(json));
    return;
  }
  const others = names.filter((n) => n !== BASELINE);
  const fmt = (v: number | null, unit: string) =>
    v === null ? "FAILED" : unit === "req/s" ? String(Math.round(v)) : v.toFixed(unit === "us" ? 1 : 0);
  printTable(
    ["row", ...names, ...others.map((n) => `${n}/bun`), "goal (bun-uring/bun)"],
    table.map(({ row, cells, ratios }) => [
      row.label,
      ...names.map((n) => fmt(cells[n].value, row.unit)),
      ...others.map((n) => (ratios[n] === null ? "-" : `${ratios[n]!.toFixed(2)}x`)),
      row.goal,
    ]),
  );
  console.log(
    `\nmedians of ${f.rounds} round(s), ${f["warmup-ms"]} ms warm-up + ${f["measure-ms"]} ms counted each; kernel ${kernelRelease()}; ${json.pinning}; ${Math.round(seconds)} s`,
  );
  console.log(`\nserver CPU per message (user / system, us) and the client's CPU share of its core:`);
  printTable(
    ["workload", ...names],
    profile.map((p) => [
      p.label,
      ...names.map((n) => {
        const s = p.servers[n]!;
        if (s.client_cpu_share === null) return "FAILED";
        const cpu =
          s.server_user_us_per_msg === null || s.server_sys_us_per_msg === null
            ? "n/a"
            : `${s.server_user_us_per_msg.toFixed(1)} / ${s.server_sys_us_per_msg.toFixed(1)}`;
        return `${cpu} (client ${(100 * s.client_cpu_share).toFixed(0)}%)`;
      }),
    ]),
  );
  for (const x of failures) console.log(`FAILED ${x.server} ${x.workload} round ${x.round}: ${x.failure}`);
  console.log(`echoed correctly: ${names.map((n) => `${n} ${echoedOk[n] ? "yes" : "NO"}`).join(", ")}`);
  console.log(path);
}

await main();
