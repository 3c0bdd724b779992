// bun scripts/rx.ts: receive one TCP stream and report throughput, chunks/s, refill batch sizes
// and CPU, through plain recv() (the copying baseline) or through ZCRX (RECV_ZC on a NIC queue,
// or device-less on Linux 7.1+). With --self N the same process also sends N bytes to itself
// over loopback (a standalone run); otherwise it waits for one peer to connect and send.
import { addressOf, c, errno } from "../ffi/index.ts";
import {
  AF_INET,
  AF_INET6,
  SOCK_STREAM,
  SOCK_CLOEXEC,
  SOL_SOCKET,
  SO_REUSEADDR,
  SOCKADDR_IN,
  SOCKADDR_IN6,
  MSG_DONTWAIT,
  SHUT_WR,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
} from "../src/abi/net.ts";
import { EAGAIN } from "../src/abi/errno.ts";
import { Ring } from "../src/ring/ring.ts";
import { registerZcrxIfq, type ZcrxPlacement } from "../src/zcrx/ifq.ts";
import { kernelRelease } from "../src/ring/kernel.ts";
import { UringError } from "../src/error.ts";
import {
  DEFAULT_PORT,
  ToolError,
  UsageError,
  choiceArg,
  numberArg,
  parseCli,
  portArg,
  runTool,
  sizeArg,
} from "./lib/cli.ts";
import { PATTERN_PERIOD, UDP_MAX_IPV6, fillPattern } from "./lib/wire.ts";
import { UDP_BURST_SILENCE_MS, receive } from "./lib/receiver.ts";
import { rowHeader, rowLine, type LabRow } from "./lib/report.ts";

/** SO_RCVBUF of the UDP receiver: room for bursts of 64 KiB datagrams. */
const UDP_RCVBUF = 8 << 20;

const USAGE = `usage: bun scripts/rx.ts [options] [tcp|udp]

Receives one TCP stream (or one UDP burst) and reports bytes, seconds, MB/s, chunks/s and CPU,
through plain recv() (the copying baseline) or through ZCRX (RECV_ZC on a NIC queue, or
device-less on Linux 7.1+). Senders: bun scripts/tx.ts -D, liburing's send-zerocopy -D, or --self.

  tcp | udp          protocol (default tcp); udp receives with recv() only (ZCRX is TCP-only)
                     and ends after ${UDP_BURST_SILENCE_MS / 1000} s without a datagram
  --mode recv|zcrx   plain recv() into one buffer (copying baseline), or RECV_ZC (default zcrx)
  -i, --ifname IF -q, --rxq RXQ
                     zcrx on rx queue RXQ of IF (steer the flow there: bun scripts/zcrx-setup.ts)
  --nodev            zcrx without a device (ZCRX_REG_NODEV, Linux 7.1+; the kernel copies)
  -4, -6             IPv4 (default) or IPv6: the default --addr is 127.0.0.1 or ::1
  --addr A           listen address
  -p, --port P       listen port (default ${DEFAULT_PORT}, as tx and send-zerocopy; 0 picks one)
  --self N           also send N bytes to ourselves over loopback (suffixes K, M, G)
  -v, --verify       check every byte against send-zerocopy's pattern ('a' + i % 26): TCP as one
                     continuous stream (what --self, tx -v and send-zerocopy -v send), UDP each
                     datagram from the pattern's start
  -s, --size B       udp: every datagram must be B bytes (send-zerocopy -R checks its -s)
  -S, --area BYTES   zcrx area size (default 64M)
  --rq N             refill ring entries (default: one per area buffer, 64..32768)
  --json             one JSON object instead of the report
  -h, --help         this text`;

const CLI = { name: "rx", usage: USAGE };

interface Args {
  proto: "tcp" | "udp";
  mode: "recv" | "zcrx";
  ifname: string;
  rxq: number;
  nodev: boolean;
  addr: string;
  port: number;
  self: number;
  verify: boolean;
  size: number | null;
  area: number;
  rq: number;
  json: boolean;
}

function parse(argv: string[]): Args {
  const { values: v, positionals } = parseCli(
    CLI,
    argv,
    {
      mode: { type: "string" },
      ifname: { type: "string", short: "i" },
      rxq: { type: "string", short: "q" },
      nodev: { type: "boolean" },
      "4": { type: "boolean", short: "4" },
      "6": { type: "boolean", short: "6" },
      addr: { type: "string" },
      port: { type: "string", short: "p" },
      self: { type: "string" },
      verify: { type: "boolean", short: "v" },
      size: { type: "string", short: "s" },
      area: { type: "string", short: "S" },
      rq: { type: "string" },
      json: { type: "boolean" },
    },
    { positionals: true },
  );
  if (positionals.length > 1 || (positionals[0] !== undefined && positionals[0] !== "tcp" && positionals[0] !== "udp"))
    throw new UsageError(`unexpected argument ${positionals.join(" ")} (the protocol is tcp or udp)`);
  const proto = (positionals[0] ?? "tcp") as "tcp" | "udp";
  if (v["4"] && v["6"]) throw new UsageError("give one of -4 and -6");
  const a: Args = {
    proto,
    mode:
      v.mode === undefined
        ? proto === "udp"
          ? "recv"
          : "zcrx"
        : choiceArg("--mode", v.mode, ["recv", "zcrx"] as const),
    ifname: v.ifname ?? "",
    rxq: v.rxq === undefined ? 0 : numberArg("--rxq", v.rxq, { max: 65535 }),
    nodev: v.nodev === true,
    addr: v.addr ?? (v["6"] ? "::1" : "127.0.0.1"),
    port: v.port === undefined ? DEFAULT_PORT : portArg("--port", v.port),
    self: v.self === undefined ? 0 : sizeArg("--self", v.self),
    verify: v.verify === true,
    size: v.size === undefined ? null : sizeArg("--size", v.size, { max: UDP_MAX_IPV6 }),
    area: v.area === undefined ? 64 * 1024 * 1024 : sizeArg("--area", v.area),
    rq: v.rq === undefined ? 0 : numberArg("--rq", v.rq, { min: 1, max: 32768 }),
    json: v.json === true,
  };
  if (a.proto === "udp") {
    if (a.mode === "zcrx") throw new UsageError("ZCRX receives TCP only; udp uses --mode recv");
    if (a.self > 0)
      throw new UsageError("--self sends a TCP stream; for udp run a sender (tx udp -D, send-zerocopy udp -D)");
  } else if (a.size !== null) throw new UsageError("--size checks UDP datagrams; a TCP stream has no message size");
  if (a.mode === "zcrx" && !a.nodev && !a.ifname)
    throw new UsageError("zcrx needs -i IF -q RXQ, or --nodev (or use --mode recv)");
  return a;
}

const PERIOD = PATTERN_PERIOD;
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
    else if (addr !== "::") throw new UsageError(`IPv6 listen addresses supported here: :: and ::1, got ${addr}`);
    return sa;
  }
  const parts = addr.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    throw new UsageError(`--addr: not a numeric IPv4 address: ${addr}`);
  const sa = new Uint8Array(SOCKADDR_IN.size);
  const dv = new DataView(sa.buffer);
  dv.setUint16(SOCKADDR_IN.family, AF_INET, true);
  dv.setUint16(SOCKADDR_IN.port, port, false);
  sa.set(parts, SOCKADDR_IN.addr);
  return sa;
}

/** UDP: the shared receiver (tx -R's), one burst, reported with the same row as TCP. */
function udpMain(args: Args): void {
  const mismatches = receive({
    proto: "udp",
    host: args.addr,
    port: args.port,
    verify: args.verify,
    rcvbuf: UDP_RCVBUF,
    discard: false,
    size: args.size,
    conns: 1,
    silenceMs: UDP_BURST_SILENCE_MS,
    onListening(port) {
      // With --json, stdout carries only the result: the listening line goes to stderr.
      (args.json ? console.error : console.log)(
        `listening on ${args.addr} port ${port}; send UDP datagrams (a burst ends after ${UDP_BURST_SILENCE_MS / 1000} s of silence)`,
      );
    },
    onResult(row, extra) {
      if (args.json) console.log(JSON.stringify({ kernel: kernelRelease(), ...row, ...extra }));
      else console.log(`${rowHeader()}\n${rowLine(row)}`);
    },
  });
  if (mismatches > 0) throw new ToolError(`${mismatches} datagrams failed the check`);
}

function tcpMain(args: Args): void {
  const pattern = fillPattern(new Uint8Array(PERIOD + SEND_MAX));
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
  } else {
    (args.json ? console.error : console.log)(
      `listening on ${args.addr} port ${port}; send one TCP stream and close it`,
    );
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

  let received = 0,
    mismatches = 0,
    chunks = 0;
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
        const ifq = registerZcrxIfq(
          ring,
          args.nodev
            ? { nodev: true, areaBytes: args.area, rqEntries: args.rq || undefined }
            : { ifname: args.ifname, rxq: args.rxq, areaBytes: args.area, rqEntries: args.rq || undefined },
        );
        const rx = ifq.receiver();
        let end: number | null = null;
        rx.recv(
          conn,
          {
            onData(_: null, chunk: number, offset: number, length: number) {
              if (args.verify) {
                const area = rx.area,
                  base = received % PERIOD;
                for (let k = 0; k < length; k++) if (area[offset + k] !== pattern[base + k]) mismatches++;
              }
              received += length;
              rx.release(chunk);
            },
            onEnd(_: null, res: number) {
              end = res;
            },
          },
          null,
        );
        while (end === null) {
          sendStep();
          rx.run(1, client >= 0 && sent < args.self ? 1 : 100);
        }
        if (end !== 0) throw new UringError("IORING_OP_RECV_ZC", -end, "the stream ended with an error");
        chunks = rx.stats.chunks;
        extra = {
          zcrx: {
            nodev: ifq.nodev,
            ifname: ifq.ifname ?? null,
            rxq: ifq.rxq,
            area_bytes: ifq.area.byteLength,
            rq_entries: ifq.rqEntries,
            refills_consumed: rx.refillsConsumed,
            stats: rx.stats.snapshot(),
            ...ifq.placement(received),
          },
        };
        ring.close();
        ifq.close();
      } finally {
        if (!ring.isClosed) ring.close();
      }
    }
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
    const row: LabRow = {
      role: "receive",
      proto: "tcp",
      family: v6 ? "ipv6" : "ipv4",
      mode: result.mode,
      size: null,
      bytes: received,
      seconds,
      mb_s: result.mb_per_s,
      ops: chunks,
      cpu_user_s: result.cpu_user_s,
      cpu_sys_s: result.cpu_sys_s,
      cpu_pct: result.cpu_percent,
      zc_pct: null,
      copied_pct: null,
      errors: 0,
      note: args.verify ? (mismatches === 0 ? "pattern verified" : `${mismatches} bytes differ from the pattern`) : "",
    };
    console.log(`${rowHeader()}\n${rowLine(row)}`);
    console.log(
      `${result.mode}: ${received} bytes in ${seconds.toFixed(3)} s = ${result.mb_per_s.toFixed(1)} MB/s (${result.gbit_per_s.toFixed(2)} Gbit/s)`,
    );
    console.log(
      `chunks ${chunks} (${result.chunks_per_s.toFixed(0)}/s, ${result.bytes_per_chunk.toFixed(0)} bytes each); CPU user ${result.cpu_user_s.toFixed(2)} s, sys ${result.cpu_sys_s.toFixed(2)} s (${result.cpu_percent.toFixed(0)}% of one core${args.self ? ", sender included" : ""})`,
    );
    if ("zcrx" in extra) {
      const z = (
        extra as { zcrx: ZcrxPlacement & { refills_consumed: number; stats: Record<string, number | number[]> } }
      ).zcrx;
      console.log(
        `refill: ${z.stats.publishes} publishes, batch mean ${(z.stats.batch_mean as number).toFixed(1)}, max ${z.stats.batch_max}, histogram by 2^k ${JSON.stringify(z.stats.batch_histogram)}; kernel consumed ${z.refills_consumed}; rq full ${z.stats.rq_full}; re-arms ${z.stats.rearms}`,
      );
      console.log(
        `placement: ${z.placement}${z.copy_bytes !== null ? ` (the kernel copied ${z.copy_bytes} bytes in ${z.copy_count} copies)` : ` (${z.why})`}`,
      );
    }
    if (args.verify)
      console.log(mismatches === 0 ? "verified: every byte matched" : `MISMATCH: ${mismatches} bytes differ`);
  }
  if (args.verify && mismatches !== 0) throw new ToolError(`${mismatches} bytes differ from the pattern`);
}

await runTool(CLI, () => {
  const args = parse(process.argv.slice(2));
  if (args.proto === "udp") udpMain(args);
  else tcpMain(args);
});
