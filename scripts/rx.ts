// bun scripts/rx.ts: receive one TCP stream and report throughput, chunks/s, refill batch sizes
// and CPU, through plain recv() (the copying baseline) or through ZCRX (RECV_ZC on a NIC queue,
// or device-less on Linux 7.1+). With --self N the same process also sends N bytes to itself
// over loopback (a standalone run); otherwise it waits for one peer to connect and send.
import { addressOf, c, errno } from "../ffi/index.ts";
import { AF_INET, AF_INET6, SOCK_STREAM, SOCK_CLOEXEC, SOL_SOCKET, SO_REUSEADDR, SOCKADDR_IN, SOCKADDR_IN6, MSG_DONTWAIT, SHUT_WR, IPPROTO_IPV6, IPV6_V6ONLY } from "../src/abi/net.ts";
import { EAGAIN } from "../src/abi/errno.ts";
import { Ring } from "../src/ring/ring.ts";
import { registerZcrxIfq } from "../src/zcrx/ifq.ts";
import { kernelRelease } from "../src/ring/kernel.ts";
import { UringError } from "../src/error.ts";

const USAGE = `usage: bun scripts/rx.ts [options]

  --mode recv|zcrx   plain recv() into one buffer (copying baseline), or RECV_ZC (default zcrx)
  -i, --ifname IF -q, --rxq RXQ
                     zcrx on rx queue RXQ of IF (steer the flow there: bun scripts/zcrx-setup.ts)
  --nodev            zcrx without a device (ZCRX_REG_NODEV, Linux 7.1+; the kernel copies)
  --addr A           listen address (default 127.0.0.1; :: for IPv6)
  -p, --port P       listen port (default 9999; 0 picks one)
  --self N           also send N bytes to ourselves over loopback (suffixes K, M, G)
  -v, --verify       check every byte against the --self sender's pattern
  -S, --area BYTES   zcrx area size (default 64M)
  -R, --rq N         refill ring entries (default: one per area buffer, 64..32768)
  --json             one JSON object instead of the report
  -h, --help         this text`;

interface Args {
  mode: "recv" | "zcrx";
  ifname: string;
  rxq: number;
  nodev: boolean;
  addr: string;
  port: number;
  self: number;
  verify: boolean;
  area: number;
  rq: number;
  json: boolean;
}

function size(s: string): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(s);
  if (!m) die(`not a size: ${s}`);
  return Number(m[1]) * ({ "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[m[2]!.toLowerCase()]!;
}

function die(msg: string): never {
  console.error(`${msg}\n\n${USAGE}`);
  process.exit(2);
}

function parse(argv: string[]): Args {
  const a: Args = { mode: "zcrx", ifname: "", rxq: 0, nodev: false, addr: "127.0.0.1", port: 9999, self: 0, verify: false, area: 64 * 1024 * 1024, rq: 0, json: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const next = () => argv[++i] ?? die(`${k} needs a value`);
    switch (k) {
      case "-h": case "--help": console.log(USAGE); process.exit(0);
      case "--mode": { const m = next(); if (m !== "recv" && m !== "zcrx") die("--mode is recv or zcrx"); a.mode = m; break; }
      case "-i": case "--ifname": a.ifname = next(); break;
      case "-q": case "--rxq": a.rxq = Number(next()); break;
      case "--nodev": a.nodev = true; break;
      case "--addr": a.addr = next(); break;
      case "-p": case "--port": a.port = Number(next()); break;
      case "--self": a.self = size(next()); break;
      case "-v": case "--verify": a.verify = true; break;
      case "-S": case "--area": a.area = size(next()); break;
      case "-R": case "--rq": a.rq = Number(next()); break;
      case "--json": a.json = true; break;
      default: die(`unknown argument ${k}`);
    }
  }
  if (a.mode === "zcrx" && !a.nodev && !a.ifname) die("zcrx needs -i IF -q RXQ, or --nodev (or use --mode recv)");
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) die("--port must be 0..65535");
  if (a.verify && a.self === 0) die("--verify checks the --self sender's pattern: give --self N");
  return a;
}

const PERIOD = 65521;
const SEND_MAX = 64 * 1024;

function ok(ret: number, what: string): number {
  if (ret < 0) throw new UringError(what, errno());
  return ret;
}

/** A sockaddr for `addr:port` (IPv4 dotted quad or IPv6 "::"/"::1"). */
function sockaddr(addr: string, port: number): Uint8Array {
  if (addr.includes(":")) {
    const sa = new Uint8Array(SOCKADDR_IN6.size);
    const dv = new DataView(sa.buffer);
    dv.setUint16(SOCKADDR_IN6.family, AF_INET6, true);
    dv.setUint16(SOCKADDR_IN6.port, port, false);
    if (addr === "::1") sa[SOCKADDR_IN6.addr + 15] = 1;
    else if (addr !== "::") die("IPv6 listen addresses supported here: :: and ::1");
    return sa;
  }
  const parts = addr.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) die(`bad IPv4 address ${addr}`);
  const sa = new Uint8Array(SOCKADDR_IN.size);
  const dv = new DataView(sa.buffer);
  dv.setUint16(SOCKADDR_IN.family, AF_INET, true);
  dv.setUint16(SOCKADDR_IN.port, port, false);
  sa.set(parts, SOCKADDR_IN.addr);
  return sa;
}

const args = parse(process.argv.slice(2));
const pattern = new Uint8Array(PERIOD + SEND_MAX);
for (let i = 0; i < pattern.length; i++) {
  const p = i % PERIOD;
  pattern[i] = (p * 7 + (p >>> 8)) & 0xff;
}
const patternAddress = addressOf(pattern);

// Listener, then (with --self) our own client, then the accepted connection.
const v6 = args.addr.includes(":");
const listenAddr = sockaddr(args.addr, args.port);
const listener = ok(c.socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket");
c.setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, new Int32Array([1]), 4);
if (v6) c.setsockopt(listener, IPPROTO_IPV6, IPV6_V6ONLY, new Int32Array([0]), 4);
ok(c.bind(listener, listenAddr, listenAddr.length), `bind ${args.addr}:${args.port}`);
ok(c.listen(listener, 4), "listen");
const nameLen = new Uint32Array([listenAddr.length]);
ok(c.getsockname(listener, listenAddr, nameLen), "getsockname");
const port = new DataView(listenAddr.buffer).getUint16(2, false);
let client = -1;
if (args.self > 0) {
  const to = sockaddr(v6 ? "::1" : "127.0.0.1", port);
  client = ok(c.socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket");
  ok(c.connect(client, to, to.length), "connect");
} else if (!args.json) {
  console.log(`listening on ${args.addr} port ${port}; send one TCP stream and close it`);
}
const conn = ok(c.accept4(listener, null, null, SOCK_CLOEXEC), "accept4");

let sent = 0;
let shut = false;
/** One non-blocking send step of the --self sender. */
function sendStep(): void {
  if (client < 0) return;
  if (sent < args.self) {
    const n = c.send(client, patternAddress + (sent % PERIOD), Math.min(SEND_MAX, args.self - sent), MSG_DONTWAIT);
    if (n > 0) sent += n;
    else if (errno() !== EAGAIN) throw new UringError("send", errno());
  } else if (!shut) {
    c.shutdown(client, SHUT_WR);
    shut = true;
  }
}

let received = 0, mismatches = 0, chunks = 0;
let extra: Record<string, unknown> = {};
const cpu0 = process.cpuUsage();
const t0 = performance.now();
try {
  if (args.mode === "recv") {
    const buf = new Uint8Array(256 * 1024);
    const flags = client >= 0 ? MSG_DONTWAIT : 0;
    for (;;) {
      sendStep();
      const n = c.recv(conn, buf, buf.length, flags);
      if (n === 0) break;
      if (n < 0) {
        if (errno() === EAGAIN) continue;
        throw new UringError("recv", errno());
      }
      if (args.verify) {
        const base = received % PERIOD;
        for (let k = 0; k < n; k++) if (buf[k] !== pattern[(base + k) % PERIOD]) mismatches++;
      }
      received += n;
      chunks++;
    }
  } else {
    const ring = Ring.create({ entries: 256, cqEntries: 8192, deferTaskrun: true, cqe32: true });
    try {
      const ifq = registerZcrxIfq(ring, args.nodev ? { nodev: true, areaBytes: args.area, rqEntries: args.rq || undefined } : { ifname: args.ifname, rxq: args.rxq, areaBytes: args.area, rqEntries: args.rq || undefined });
      const rx = ifq.receiver();
      let end: number | null = null;
      rx.recv(conn, {
        onData(_: null, chunk: number, offset: number, length: number) {
          if (args.verify) {
            const area = rx.area, base = received % PERIOD;
            for (let k = 0; k < length; k++) if (area[offset + k] !== pattern[base + k]) mismatches++;
          }
          received += length;
          rx.release(chunk);
        },
        onEnd(_: null, res: number) {
          end = res;
        },
      }, null);
      while (end === null) {
        sendStep();
        rx.run(1, client >= 0 && sent < args.self ? 1 : 100);
      }
      if (end !== 0) throw new UringError("IORING_OP_RECV_ZC", -end, "the stream ended with an error");
      chunks = rx.stats.chunks;
      extra = { zcrx: { nodev: ifq.nodev, ifname: ifq.ifname ?? null, rxq: ifq.rxq, area_bytes: ifq.area.byteLength, rq_entries: ifq.rqEntries, refills_consumed: rx.refillsConsumed, stats: rx.stats.snapshot() } };
      ring.close();
      ifq.close();
    } finally {
      if (!ring.isClosed) ring.close();
    }
  }
} catch (e) {
  console.error((e as Error).message);
  process.exit(1);
} finally {
  c.close(conn);
  if (client >= 0) c.close(client);
  c.close(listener);
}
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const result = {
  kernel: kernelRelease(),
  mode: args.mode === "recv" ? "recv" : args.nodev ? "zcrx-nodev" : "zcrx",
  bytes: received,
  seconds,
  mb_per_s: received / 1e6 / seconds,
  gbit_per_s: (received * 8) / 1e9 / seconds,
  chunks,
  chunks_per_s: chunks / seconds,
  bytes_per_chunk: chunks ? received / chunks : 0,
  cpu_user_s: cpu.user / 1e6,
  cpu_sys_s: cpu.system / 1e6,
  cpu_percent: ((cpu.user + cpu.system) / 1e6 / seconds) * 100,
  self_sender: args.self > 0,
  verified: args.verify ? mismatches === 0 : null,
  mismatches: args.verify ? mismatches : null,
  ...extra,
};
if (args.json) console.log(JSON.stringify(result));
else {
  console.log(`${result.mode}: ${received} bytes in ${seconds.toFixed(3)} s = ${result.mb_per_s.toFixed(1)} MB/s (${result.gbit_per_s.toFixed(2)} Gbit/s)`);
  console.log(`chunks ${chunks} (${result.chunks_per_s.toFixed(0)}/s, ${result.bytes_per_chunk.toFixed(0)} bytes each); CPU user ${result.cpu_user_s.toFixed(2)} s, sys ${result.cpu_sys_s.toFixed(2)} s (${result.cpu_percent.toFixed(0)}% of one core${args.self ? ", sender included" : ""})`);
  if ("zcrx" in extra) {
    const z = (extra as { zcrx: { refills_consumed: number; stats: Record<string, number | number[]> } }).zcrx;
    console.log(`refill: ${z.stats.publishes} publishes, batch mean ${(z.stats.batch_mean as number).toFixed(1)}, max ${z.stats.batch_max}, histogram by 2^k ${JSON.stringify(z.stats.batch_histogram)}; kernel consumed ${z.refills_consumed}; rq full ${z.stats.rq_full}; re-arms ${z.stats.rearms}`);
  }
  if (args.verify) console.log(mismatches === 0 ? "verified: every byte matched" : `MISMATCH: ${mismatches} bytes differ`);
}
if (args.verify && mismatches !== 0) process.exit(1);
