// The copying receiver of the lab tools (tx -R, rx udp): counts, and with `verify` checks, what a
// sender puts on the wire, one result row per TCP connection or UDP burst. It plays the part of
// send-zerocopy.c -R and also receives its traffic: liburing's pattern, its datagram sizes.
import { Ring } from "../../src/ring/ring.ts";
import { tcpListen, tcpAccept, udpSocket, closeQuietly, RecvLoop, setSocketOption } from "../../src/sync.ts";
import { SOL_SOCKET, SO_RCVBUF } from "../../src/abi/net.ts";
import { PatternChecker, udpDrops } from "./wire.ts";
import { startWindow, unreportedRow, type LabRow } from "./report.ts";
import { ToolError } from "./cli.ts";

export interface ReceiveOptions {
  proto: "tcp" | "udp";
  host: string;
  port: number;
  /** Check every byte against send-zerocopy.c's pattern (TCP: one continuous stream, as its -v
   * sends; UDP: each datagram from the pattern's start, as it always sends). */
  verify: boolean;
  /** SO_RCVBUF bytes; 0 leaves the kernel's default. */
  rcvbuf: number;
  /** TCP: count with MSG_TRUNC, the data dropped in the kernel and never copied out (what
   * send-zerocopy -R does); otherwise every byte is copied into this process, as an application
   * receives. Ignored with `verify`, which needs the bytes. */
  discard: boolean;
  /** UDP: the datagram size every datagram must have (send-zerocopy.c -R checks its -s). */
  size: number | null;
  /** Stop after this many connections (TCP) or bursts (UDP); 0: never. */
  conns: number;
  /** UDP: a burst ends after this much silence. */
  silenceMs: number;
  onListening(port: number): void;
  onResult(row: LabRow, extra: ReceiveExtra): void;
}

export interface ReceiveExtra {
  /** Datagrams the kernel dropped for this socket during the burst (UDP; null for TCP). */
  drops: number | null;
  /** Bytes that did not match the pattern, or datagrams of the wrong size or content; null
   * without `verify` (and, for sizes, without `size`). */
  mismatches: number | null;
  error: string | null;
}

/** A UDP burst ends after this much silence: long enough that a sender stalled on a busy machine
 * does not split its run in two, short enough to wait for at the end of a run. */
export const UDP_BURST_SILENCE_MS = 1000;

const TCP_BUFFER = 1 << 20;
/** Larger than any datagram (65527 bytes over IPv6), so none is truncated. */
const UDP_BUFFER = 65536;

/** Receive until `conns` rows are out (or forever); returns the mismatch count over all rows. */
export function receive(o: ReceiveOptions): number {
  const ring = Ring.create({ entries: 64, memory: "mmap" });
  const family = o.host.includes(":") ? "ipv6" : "ipv4";
  const fds: number[] = [];
  let totalMismatches = 0,
    rows = 0;
  try {
    if (o.proto === "tcp") {
      const l = tcpListen(ring, { host: o.host, port: o.port, backlog: 4 });
      fds.push(l.fd);
      o.onListening(l.address.port);
      const checker = o.verify ? new PatternChecker(TCP_BUFFER) : null;
      for (;;) {
        const fd = tcpAccept(ring, l.fd, { timeoutMs: 24 * 3600_000 });
        const stop = startWindow();
        let mismatches = 0;
        try {
          if (o.rcvbuf > 0) setSocketOption(ring, fd, SOL_SOCKET, SO_RCVBUF, o.rcvbuf, { via: "libc" });
          const loop: RecvLoop = new RecvLoop(ring, fd, {
            bufferSize: TCP_BUFFER,
            discard: o.discard && !checker,
            onData: checker
              ? (b) => {
                  if (!checker.matches(b, loop.bytes - b.length)) mismatches++;
                }
              : undefined,
          });
          while (!loop.done) ring.run(1, 250);
          const w = stop();
          totalMismatches += mismatches;
          o.onResult(
            row(
              o,
              family,
              loop.bytes,
              loop.recvs,
              w,
              checker ? (mismatches ? `${mismatches} chunks differ from the pattern` : "pattern verified") : "",
            ),
            { drops: null, mismatches: checker ? mismatches : null, error: loop.error?.message ?? null },
          );
        } finally {
          closeQuietly(fd);
        }
        if (++rows === o.conns) break;
      }
    } else {
      const u = udpSocket(ring, { host: o.host, port: o.port });
      fds.push(u.fd);
      if (o.rcvbuf > 0) setSocketOption(ring, u.fd, SOL_SOCKET, SO_RCVBUF, o.rcvbuf, { via: "libc" });
      // Drops are counted from the end of the last burst, or from before the port is announced:
      // a sender may start at once, and overflow the queue before this loop sees a datagram.
      let dropsBase = udpDrops(u.fd) ?? 0;
      o.onListening(u.address.port);
      const checker = o.verify ? new PatternChecker(UDP_BUFFER) : null;
      let bytes = 0,
        datagrams = 0,
        wrongSize = 0,
        wrongData = 0;
      const loop = new RecvLoop(ring, u.fd, {
        bufferSize: UDP_BUFFER,
        onData: (b) => {
          bytes += b.length;
          datagrams++;
          if (o.size !== null && b.length !== o.size) wrongSize++;
          else if (checker && !checker.matches(b, 0)) wrongData++;
        },
      });
      for (;;) {
        // One burst: from its first datagram until silenceMs pass without one.
        while (datagrams === 0 && !loop.done) ring.run(1, 250);
        if (loop.done) throw loop.error ?? new ToolError("the UDP receive loop ended without an error");
        const stop = startWindow();
        let last = stop(),
          lastCount = datagrams,
          lastAt = performance.now();
        while (performance.now() - lastAt < o.silenceMs && !loop.done) {
          ring.run(1, 50);
          if (datagrams !== lastCount) {
            lastCount = datagrams;
            lastAt = performance.now();
            last = stop();
          }
        }
        const dropsNow = udpDrops(u.fd) ?? dropsBase;
        const drops = dropsNow - dropsBase;
        dropsBase = dropsNow;
        const mismatches = wrongSize + wrongData;
        totalMismatches += mismatches;
        const checks = o.size !== null || checker !== null;
        const note = [
          `${drops} dropped`,
          checks
            ? mismatches
              ? `${wrongSize} of the wrong size, ${wrongData} differ from the pattern`
              : `${o.size !== null ? `every datagram ${o.size} bytes` : ""}${o.size !== null && checker ? ", " : ""}${checker ? "pattern verified" : ""}`
            : "",
        ]
          .filter(Boolean)
          .join("; ");
        const r = row(o, family, bytes, datagrams, last, note);
        r.size = o.size;
        o.onResult(r, { drops, mismatches: checks ? mismatches : null, error: loop.error?.message ?? null });
        bytes = datagrams = wrongSize = wrongData = 0;
        if (++rows === o.conns || loop.done) break;
      }
    }
  } finally {
    ring.close();
    for (const fd of fds) closeQuietly(fd);
  }
  return totalMismatches;
}

function row(
  o: ReceiveOptions,
  family: "ipv4" | "ipv6",
  bytes: number,
  ops: number,
  w: ReturnType<ReturnType<typeof startWindow>>,
  note: string,
): LabRow {
  return unreportedRow({ role: "receive", proto: o.proto, family, mode: "recv", size: null }, bytes, ops, w, note);
}
