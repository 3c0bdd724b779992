// A ZCRX (zero-copy receive) server: RECV_ZC chunks are read in place from the area and released
// into the refill ring, one tail store per drain.
//   bun scripts/examples/zcrx-receiver.ts -i IFNAME -q RXQ [-p 9999] [-s BYTES] [-v]
//       hardware: take over rx queue RXQ of IFNAME; steer the flow to it first, e.g.
//       ethtool -N IFNAME flow-type tcp6 dst-port 9999 action RXQ; then send from another host.
//   bun scripts/examples/zcrx-receiver.ts --nodev [-s BYTES]
//       device-less ZCRX (ZCRX_REG_NODEV, Linux 7.1+): a loopback client on this host sends a
//       pattern, the kernel copies it into the area, and every byte is checked.
//   bun scripts/examples/zcrx-receiver.ts --simulate [-s BYTES]
//       the same receiver code against src/testing's simulated kernel side.
// Without any of them it says why it cannot run here and exits 0; a receive mismatch exits 1.
import { c } from "../../ffi/index.ts";
import { MSG_DONTWAIT, SHUT_WR } from "../../src/abi/index.ts";
import { Ring, ZcrxIfq, UringError, type ZcrxReceiver } from "../../src/index.ts";
import { kernelAtLeast, kernelRelease } from "../../src/raw.ts";
import { tcpListen, tcpConnect, tcpAccept, closeQuietly } from "../../src/sync.ts";
import { SimulatedZcrx } from "../../src/testing/index.ts";
import { mismatch, parseArgs, pattern } from "./lib.ts";

const args = parseArgs(
  process.argv.slice(2),
  { ifname: "", rxq: -1, port: 9999, host: "::", size: 4 * 1024 * 1024, verify: false, nodev: false, simulate: false },
  { i: "ifname", q: "rxq", p: "port", s: "size", v: "verify" },
);
const size = args.size as number;

/** What a run received: bytes, chunks, and whether every byte matched the expected pattern. */
interface Tally {
  bytes: number;
  chunks: number;
  bad: number;
  ended: boolean;
  res: number;
}

/** Receive on `fd` until the stream ends, checking bytes against `expect` (when given) and
 * releasing every chunk as soon as it was read. */
function receive(rx: ZcrxReceiver, fd: number, expect: Uint8Array | null, drive: () => void): Tally {
  const t: Tally = { bytes: 0, chunks: 0, bad: -1, ended: false, res: 0 };
  rx.recv(
    fd,
    {
      onData(_ctx: null, chunk: number, _offset: number, length: number) {
        const view = rx.view(chunk);
        if (expect !== null && t.bad < 0) {
          for (let i = 0; i < length; i++) {
            if (view[i] !== expect[t.bytes + i]) {
              t.bad = t.bytes + i;
              break;
            }
          }
        }
        t.bytes += length;
        t.chunks++;
        rx.release(chunk);
      },
      onEnd(_ctx: null, res: number) {
        t.ended = true;
        t.res = res;
      },
    },
    null,
  );
  const deadline = performance.now() + 30_000;
  while (!t.ended) {
    if (performance.now() > deadline) mismatch(`stream did not end within 30 s (${t.bytes} bytes received)`);
    drive();
    rx.run(1, 100);
  }
  return t;
}

function report(kind: string, t: Tally, expected: number | null, extra = ""): void {
  if (t.res < 0) mismatch(`${kind}: the stream ended with ${new UringError("IORING_OP_RECV_ZC", -t.res).code}`);
  if (expected !== null && t.bytes !== expected) mismatch(`${kind}: received ${t.bytes} of ${expected} bytes`);
  if (t.bad >= 0) mismatch(`${kind}: byte ${t.bad} differs from what was sent`);
  console.log(
    `zcrx-receiver (${kind}): ${t.bytes} bytes in ${t.chunks} chunks, read in place and released${expected !== null ? ", byte-exact" : ""}${extra}`,
  );
}

if (args.simulate) {
  // The simulated kernel side: same receiver, same handler, same refill protocol.
  const sim = new SimulatedZcrx({ areaBytes: 1 << 20, rqEntries: 64 });
  const rx = sim.createReceiver();
  const fd = sim.connect();
  const data = pattern(size, 9);
  let sent = 0;
  const t = receive(rx, fd, data, () => {
    // Feed the simulated socket in 64 KiB writes, then the peer's FIN.
    if (sent < size) {
      const n = Math.min(65536, size - sent);
      sim.send(fd, data.subarray(sent, sent + n));
      sent += n;
      if (sent === size) sim.shutdown(fd);
    }
  });
  // Publish the last releases and let the simulated kernel take them, as a NIC's page pool would
  // when it next needs buffers: every buffer must be back.
  // Releases beyond the refill ring's size wait in the receiver and go in as the kernel makes room.
  for (let i = 0; i < 1024 && sim.buffersInUse > 0; i++) {
    rx.publish();
    sim.reclaim();
  }
  if (sim.buffersInUse !== 0) mismatch(`${sim.buffersInUse} buffers were never returned through the refill ring`);
  report("simulated kernel", t, size, "; every buffer back in the simulated kernel");
  rx.close();
  process.exit(0);
}

const hardware = args.ifname !== "";
if (!hardware && !args.nodev) {
  console.log(
    `zcrx-receiver: cannot run here — no ZCRX-capable NIC was given (-i IFNAME -q RXQ; needs a driver with queue management ops: ` +
      `bnxt, gve, mlx5 ConnectX-7, with tcp-data-split on and hds-thresh 0). Device-less ZCRX (--nodev, ZCRX_REG_NODEV) needs Linux 7.1+; ` +
      `this kernel is ${kernelRelease()}${kernelAtLeast("7.1") ? " (it may work: try --nodev)" : ""}. Use --simulate to run the same receive path against the simulator.`,
  );
  process.exit(0);
}
if (hardware && (args.rxq as number) < 0) {
  console.error("zcrx-receiver: -i needs -q RXQ (the hardware receive queue to take over)");
  process.exit(2);
}

// ZCRX needs DEFER_TASKRUN and 32-byte CQEs.
const ring = Ring.create({ entries: 256, cqEntries: 4096, deferTaskrun: true, cqe32: true });
let ifq: ZcrxIfq;
try {
  ifq = hardware
    ? ZcrxIfq.register(ring, { ifname: args.ifname as string, rxq: args.rxq as number })
    : ZcrxIfq.register(ring, { nodev: true });
} catch (e) {
  ring.close();
  if (!(e instanceof UringError)) throw e;
  // The registration's own error names what the kernel refused and the usual fix.
  console.log(`zcrx-receiver: cannot run here — ${e.message}`);
  process.exit(0);
}
const rx = ifq.receiver();
try {
  if (hardware) {
    const l = tcpListen(ring, { host: args.host as string, port: args.port as number, via: "libc" });
    console.log(`zcrx-receiver: listening on ${args.host}:${l.address.port}, rx queue ${args.rxq} of ${args.ifname}`);
    const fd = tcpAccept(ring, l.fd, { via: "libc", timeoutMs: 600_000 });
    const expect = args.verify ? patternAlphabet(size) : null;
    const t = receive(rx, fd, expect, () => {});
    report(`${args.ifname} rxq ${args.rxq}`, t, null, `; stats: ${JSON.stringify(rx.stats)}`);
    closeQuietly(fd);
    closeQuietly(l.fd);
  } else {
    // Device-less: a loopback connection; the kernel copies its bytes into the area.
    const l = tcpListen(ring, { host: "127.0.0.1", port: 0, via: "libc" });
    const client = tcpConnect(ring, { host: "127.0.0.1", port: l.address.port, via: "libc" });
    const fd = tcpAccept(ring, l.fd, { via: "libc" });
    const data = pattern(size, 11);
    let sent = 0;
    const t = receive(rx, fd, data, () => {
      if (sent < size) {
        const n = c.send(client, data.subarray(sent), Math.min(65536, size - sent), MSG_DONTWAIT);
        if (n > 0) sent += n;
        if (sent === size) c.shutdown(client, SHUT_WR);
      }
    });
    report("ZCRX_REG_NODEV", t, size);
    closeQuietly(fd);
    closeQuietly(client);
    closeQuietly(l.fd);
  }
} finally {
  rx.close();
  ring.close();
  ifq.close();
}

/** liburing examples/zcrx.c's verification pattern: 'a' + i % 26. */
function patternAlphabet(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = 97 + (i % 26);
  return b;
}
