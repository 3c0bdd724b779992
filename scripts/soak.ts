// bun scripts/soak.ts — mixed traffic for a while, memory and in-flight counts printed as it goes,
// and a verdict on whether memory stayed flat.
//
//   bun scripts/soak.ts [--minutes M (10)] [--seconds S] [--interval S] [--json]
//
// Traffic, all on one ring over 127.0.0.1, each stream checked byte for byte at the receiver:
//   copy   ZcSender mode "copy" (IORING_OP_SEND)
//   zc     ZcSender mode "zc" (SEND_ZC; loopback copies, so usage says copied)
//   fixed  ZcSender mode "zc-fixed" from a FixedBufferPool (SEND_ZC with FIXED_BUF)
//   zcrx   ZcrxReceiver on the simulated kernel side (src/testing), chunks released at once
// Receivers are RECV operations re-armed from their handlers. Every --interval seconds (60 with
// --minutes, a tenth of the run with --seconds) it prints RSS, the JS heap after a full GC
// (bun:jsc heapStats().heapSize), ring.ops.inflight, the senders' in-flight sends and the live
// zcrx chunks. Verdict: flat when, from the second sample (after warm-up) to the last, the heap
// grew less than 2 MiB and RSS less than 16 MiB; the figures are printed either way. --json adds
// one JSON line at the end.
import { heapStats } from "bun:jsc";
import { Ring } from "../src/ring/ring.ts";
import { prepRecv } from "../src/ops/index.ts";
import { addressOf } from "../ffi/index.ts";
import { ZcSender, FixedBufferPool, type ZcMode } from "../src/zc/index.ts";
import { SimulatedZcrx } from "../src/testing/index.ts";
import { tcpListen, tcpConnect, tcpAccept, closeQuietly } from "../src/sync.ts";
import { kernelAtLeast, kernelRelease } from "../src/ring/kernel.ts";
import { errnoName } from "../src/abi/errno.ts";
import { parseCli, usageExit } from "./lib/cli.ts";

interface Args {
  seconds: number;
  intervalS: number;
  json: boolean;
}

const USAGE = `usage: bun scripts/soak.ts [options]

Zero-copy streams over loopback for a long time, checking every byte and that memory stays flat.
  --minutes M    run for M minutes (default 10)
  --seconds S    run for S seconds instead
  --interval S   seconds between progress lines (default 60, or a tenth of --seconds)
  --json         one JSON object instead of the report
  -h, --help     this text`;

function parseArgs(argv: string[]): Args {
  const cli = { name: "soak", usage: USAGE };
  const { values: v } = parseCli(cli, argv, {
    minutes: { type: "string" },
    seconds: { type: "string" },
    interval: { type: "string" },
    json: { type: "boolean" },
  });
  const positive = (flag: string, s: string | undefined) => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!/^\d+(\.\d+)?$/.test(s) || !(n > 0)) usageExit(cli, `${flag} needs a positive number, got ${s}`);
    return n;
  };
  const seconds = positive("--seconds", v.seconds);
  const total = seconds ?? (positive("--minutes", v.minutes) ?? 10) * 60;
  const interval = positive("--interval", v.interval);
  return {
    seconds: total,
    intervalS: interval ?? (seconds !== undefined ? Math.max(1, total / 10) : 60),
    json: v.json === true,
  };
}

const MiB = 1024 * 1024;
const PAYLOAD = 16384;
const SENDS_IN_FLIGHT = 32;

interface Stream {
  name: string;
  sender: ZcSender;
  peer: number;
  /** Next byte value the receiver expects: byte i of the stream is i & 0xff... per stream seed. */
  received: number;
  sent: number;
  bad: number;
  free: Int32Array;
  freeTop: number;
  recvBuf: Uint8Array;
}

const args = parseArgs(process.argv.slice(2));
const ring = Ring.create({ entries: 256, cqEntries: 1024 });
const fds: number[] = [];
const reportUsage = kernelAtLeast("6.2");
const pool = FixedBufferPool.create(ring, { bufferSize: PAYLOAD, count: SENDS_IN_FLIGHT });
const payloads: Uint8Array[] = [];
for (let i = 0; i < SENDS_IN_FLIGHT; i++) payloads.push(new Uint8Array(PAYLOAD));
// Every payload holds bytes 0..255 repeating, so the receiver can check any byte by its stream
// offset alone (PAYLOAD is a multiple of 256).
for (const p of payloads) for (let i = 0; i < PAYLOAD; i++) p[i] = i & 0xff;
for (let i = 0; i < SENDS_IN_FLIGHT; i++) {
  const v = pool.view(i);
  for (let k = 0; k < PAYLOAD; k++) v[k] = k & 0xff;
}
let errors = 0;
const errorNames: Record<string, number> = {};

function makeStream(name: string, mode: ZcMode): Stream {
  const l = tcpListen(ring, { host: "127.0.0.1", port: 0 });
  const a = tcpConnect(ring, { host: "127.0.0.1", port: l.address.port });
  const b = tcpAccept(ring, l.fd);
  fds.push(l.fd, a, b);
  const st: Stream = {
    name,
    peer: b,
    received: 0,
    sent: 0,
    bad: 0,
    free: new Int32Array(SENDS_IN_FLIGHT),
    freeTop: 0,
    recvBuf: new Uint8Array(65536),
    sender: undefined as unknown as ZcSender,
  };
  for (let i = 0; i < SENDS_IN_FLIGHT; i++) st.free[st.freeTop++] = i;
  st.sender = new ZcSender(ring, a, {
    mode,
    reportUsage,
    capacity: SENDS_IN_FLIGHT * 2,
    pool: mode === "zc-fixed" ? pool : undefined,
    onSent: (_tag: number, res: number) => {
      if (res < 0) {
        errors++;
        errorNames[errnoName(-res)] = (errorNames[errnoName(-res)] ?? 0) + 1;
      }
    },
    onReleased: (tag: number) => {
      st.free[st.freeTop++] = tag;
    },
  });
  armRecv(st);
  return st;
}

/** Set before the ring closes: the re-armed receives then end with ECANCELED, which is no error. */
let closing = false;

function onRecv(st: Stream, res: number): void {
  if (res <= 0) {
    if (res < 0 && !closing) {
      errors++;
      errorNames[errnoName(-res)] = (errorNames[errnoName(-res)] ?? 0) + 1;
    }
    return;
  }
  const buf = st.recvBuf;
  // Spot-check every 61st byte against its stream offset.
  for (let i = 0; i < res; i += 61) if (buf[i] !== ((st.received + i) & 0xff)) st.bad++;
  st.received += res;
  armRecv(st);
}

function armRecv(st: Stream): void {
  const s = ring.getSqe();
  prepRecv(ring.sq, s, st.peer, addressOf(st.recvBuf), st.recvBuf.length, 0);
  ring.track(s, onRecv, st, st.recvBuf);
}

const streams = [makeStream("copy", "copy"), makeStream("zc", "zc"), makeStream("fixed", "zc-fixed")];
const pump = (st: Stream) => {
  while (st.freeTop > 0 && st.sender.available > 0 && !st.sender.isBroken) {
    const i = st.free[--st.freeTop]!;
    if (st.name === "fixed") st.sender.sendFixed(i, PAYLOAD, i);
    else st.sender.send(payloads[i]!, i);
    st.sent += PAYLOAD;
  }
};

// ZCRX through the simulator: a connection fed PAYLOAD bytes per round, chunks released in the
// handler (checked byte for byte first).
const sim = new SimulatedZcrx({ areaBytes: 4 * MiB, rqEntries: 512, poison: false });
const rx = sim.createReceiver();
const zfd = sim.connect();
let zcrxBytes = 0,
  zcrxBad = 0;
rx.recv(
  zfd,
  {
    onData: (_ctx: null, chunk: number, off: number, len: number) => {
      const area = rx.area;
      for (let i = 0; i < len; i += 61) if (area[off + i] !== ((zcrxBytes + i) & 0xff)) zcrxBad++;
      zcrxBytes += len;
      rx.release(chunk);
    },
  },
  null,
);
let zcrxSent = 0;

interface Sample {
  t_s: number;
  rss_mib: number;
  heap_mib: number;
  inflight: number;
  senders_inflight: number;
  zcrx_live: number;
  bytes_mib: number;
}
const samples: Sample[] = [];
const started = performance.now();
function sample(): Sample {
  Bun.gc(true);
  const s: Sample = {
    t_s: Math.round((performance.now() - started) / 100) / 10,
    rss_mib: process.memoryUsage().rss / MiB,
    heap_mib: heapStats().heapSize / MiB,
    inflight: ring.ops.inflight,
    senders_inflight: streams.reduce((a, st) => a + st.sender.inflight, 0),
    zcrx_live: rx.live,
    bytes_mib: (streams.reduce((a, st) => a + st.received, 0) + zcrxBytes) / MiB,
  };
  samples.push(s);
  if (!args.json) {
    console.log(
      `${String(s.t_s).padStart(7)} s  rss ${s.rss_mib.toFixed(1)} MiB  heap ${s.heap_mib.toFixed(2)} MiB  in flight ${s.inflight} (sends ${s.senders_inflight}, zcrx chunks ${s.zcrx_live})  moved ${s.bytes_mib.toFixed(0)} MiB`,
    );
  }
  return s;
}

if (!args.json)
  console.log(
    `soak: ${args.seconds} s on ${kernelRelease()}, sample every ${args.intervalS} s (copy, zc, zc-fixed over 127.0.0.1; zcrx simulator)`,
  );
sample();
let nextSample = performance.now() + args.intervalS * 1000;
const end = started + args.seconds * 1000;
const chunk = new Uint8Array(PAYLOAD);
for (let i = 0; i < PAYLOAD; i++) chunk[i] = i & 0xff;
while (performance.now() < end) {
  for (const st of streams) pump(st);
  ring.run(1, 20);
  if (sim.queuedOn(zfd) < 4 * PAYLOAD) {
    sim.send(zfd, chunk);
    zcrxSent += PAYLOAD;
  }
  rx.completions();
  if (performance.now() >= nextSample) {
    sample();
    nextSample += args.intervalS * 1000;
  }
}
const last = sample();

// Drain and close: everything in flight must come back.
for (let i = 0; i < 500 && streams.some((st) => st.sender.inflight > 0); i++) ring.run(1, 10);
const sendsLeft = streams.reduce((a, st) => a + st.sender.inflight, 0);
closing = true;
for (const fd of fds) closeQuietly(fd);
pool.close();
ring.close();
rx.close();

const base = samples[Math.min(1, samples.length - 1)]!;
const heapGrowth = last.heap_mib - base.heap_mib;
const rssGrowth = last.rss_mib - base.rss_mib;
const flat = heapGrowth < 2 && rssGrowth < 16;
const bad = streams.reduce((a, st) => a + st.bad, 0) + zcrxBad;
const anomalies = streams.reduce((a, st) => a + st.sender.stats.anomalies, 0);
const verdict = `verdict: ${flat ? "FLAT" : "GROWING"} — heap ${heapGrowth >= 0 ? "+" : ""}${heapGrowth.toFixed(2)} MiB, RSS ${rssGrowth >= 0 ? "+" : ""}${rssGrowth.toFixed(1)} MiB from ${base.t_s} s to ${last.t_s} s; ${last.bytes_mib.toFixed(0)} MiB moved (copy ${(streams[0]!.received / MiB).toFixed(0)}, zc ${(streams[1]!.received / MiB).toFixed(0)}, fixed ${(streams[2]!.received / MiB).toFixed(0)}, zcrx ${(zcrxBytes / MiB).toFixed(0)}); corrupt bytes ${bad}, send/receive errors ${errors}${
  errors
    ? ` (${Object.entries(errorNames)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")})`
    : ""
}, sender anomalies ${anomalies}, sends not released at the end ${sendsLeft}`;
console.log(verdict);
if (args.json) {
  console.log(
    JSON.stringify({
      seconds: args.seconds,
      flat,
      heap_growth_mib: heapGrowth,
      rss_growth_mib: rssGrowth,
      samples,
      corrupt_bytes: bad,
      send_errors: errors,
      error_names: errorNames,
      sender_anomalies: anomalies,
      sends_left: sendsLeft,
      zcrx_sent: zcrxSent,
      zcrx_received: zcrxBytes,
    }),
  );
}
process.exit(flat && bad === 0 && errors === 0 && anomalies === 0 && sendsLeft === 0 ? 0 : 1);
