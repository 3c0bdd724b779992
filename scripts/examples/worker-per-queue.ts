// A Worker-per-queue receiver: one Worker per receive queue, each with its own ring (a ring is
// single-issuer) driven by the Worker's own event loop, the way a host with a multi-queue NIC
// scales ZCRX (one ifq per rx queue, flows steered to queues with ethtool ntuple rules).
//   bun scripts/examples/worker-per-queue.ts [--workers 2] [--bytes 2097152]
//       here: each Worker owns a ring and a listening socket on 127.0.0.1 and receives through
//       the async API (multishot receive into its ring's provided buffers); the main thread
//       sends each Worker its own pattern and every Worker checks its bytes.
//   ... --simulate          each Worker runs a ZcrxReceiver against its own simulated kernel side.
//   ... -i IFNAME -q FIRST  hardware: Worker k registers an ifq on rx queue FIRST+k and serves
//                           port --port+k (steer: ethtool -N IFNAME flow-type tcp6 dst-port P action Q).
//   ... --nodev             device-less ZCRX per Worker (Linux 7.1+), loopback senders.
//   ... --shared            with --nodev or -i/-q: ONE queue for all Workers (Linux 6.19+): the
//                           main thread registers it and exports it (ZCRX_CTRL_EXPORT), each
//                           Worker imports it into its own ring (ZCRX_REG_IMPORT), and they share
//                           its refill ring under one RefillLock.
// Exits 0 when every Worker received its bytes intact (or, for ZCRX modes this machine cannot
// run, after saying why), 1 on a mismatch.
import { openRing, Ring, ZcrxIfq, RefillLock, UringError } from "../../src/index.ts";
import { closeQuietly } from "../../src/sync.ts";
import { mismatch, parseArgs, pattern } from "./lib.ts";

const args = parseArgs(
  process.argv.slice(2),
  { workers: 2, bytes: 2 * 1024 * 1024, simulate: false, nodev: false, shared: false, ifname: "", rxq: 0, port: 9100 },
  { i: "ifname", q: "rxq", p: "port" },
);
const workers = args.workers as number;
const bytes = args.bytes as number;
const mode = args.simulate ? "simulate" : args.ifname !== "" ? "hardware" : args.nodev ? "nodev" : "socket";
const shared = args.shared === true;
if (shared && mode !== "nodev" && mode !== "hardware") {
  console.error("worker-per-queue: --shared needs --nodev or -i IFNAME -q RXQ (a ZCRX queue to share)");
  process.exit(2);
}

// Shared-queue mode: the one queue, registered on a ring of this thread, exported to each Worker.
let exporter: { ring: Ring; ifq: ZcrxIfq; lock: RefillLock; fds: number[] } | null = null;
if (shared) {
  const ring = Ring.create({ entries: 64, deferTaskrun: true, cqe32: true });
  try {
    const ifq =
      mode === "hardware"
        ? ZcrxIfq.register(ring, { ifname: args.ifname as string, rxq: args.rxq as number, refillMemory: "user" })
        : ZcrxIfq.register(ring, { nodev: true, refillMemory: "user" });
    exporter = { ring, ifq, lock: new RefillLock(), fds: Array.from({ length: workers }, () => ifq.export()) };
  } catch (e) {
    ring.close();
    if (!(e instanceof UringError)) throw e;
    console.log(`worker-per-queue (${mode}, shared queue): cannot run here — ${e.message}`);
    process.exit(0);
  }
}

interface Reply {
  index: number;
  ready?: { port: number };
  result?: { bytes: number; chunks: number; badAt: number; inflight: number };
  skip?: string;
  error?: string;
}

const script = new URL("./worker-per-queue.worker.ts", import.meta.url).href;
const pool = Array.from({ length: workers }, () => new Worker(script));
const replies = pool.map(
  (w, index) =>
    new Promise<Reply>((resolve, reject) => {
      let ready = false;
      w.onmessage = (e: MessageEvent<Reply>) => {
        const m = e.data;
        if (m.ready && !ready) {
          ready = true;
          readyPorts[index]!(m.ready.port);
          return;
        }
        resolve(m);
      };
      w.onerror = (e) => reject(new Error(`worker ${index}: ${(e as ErrorEvent).message}`));
    }),
);
const readyPorts: ((port: number) => void)[] = [];
const ports = pool.map((_, i) => new Promise<number>((resolve) => (readyPorts[i] = resolve)));
pool.forEach((w, index) =>
  w.postMessage({
    index,
    mode,
    bytes,
    ifname: args.ifname,
    rxq: (args.rxq as number) + (shared ? 0 : index),
    port: mode === "hardware" ? (args.port as number) + index : 0,
    shared: exporter
      ? { fd: exporter.fds[index]!, queue: exporter.ifq.postable(), lock: exporter.lock.buffer }
      : undefined,
  }),
);

// Senders for the loopback modes: one connection per Worker through the main thread's own ring.
let senders: Promise<void> | null = null;
if (mode === "socket" || mode === "nodev") {
  senders = (async () => {
    await using ring = openRing();
    await Promise.all(
      ports.map(async (portP, index) => {
        const port = await Promise.race([portP, replies[index]!.then(() => -1)]);
        if (port < 0) return;
        const sock = await ring.connect({ host: "127.0.0.1", port });
        const op = sock.send(pattern(bytes, 1000 + index));
        await op;
        await op.released;
        await sock.close();
      }),
    );
  })();
}

const timer = setTimeout(() => mismatch("workers did not finish within 60 s"), 60_000);
const results = await Promise.all(replies);
await senders;
clearTimeout(timer);
for (const w of pool) w.terminate();
if (exporter) {
  for (const fd of exporter.fds) closeQuietly(fd);
  exporter.ring.close();
  exporter.ifq.close();
}

const skips = results.filter((r) => r.skip);
if (skips.length > 0) {
  console.log(`worker-per-queue (${mode}${shared ? ", shared queue" : ""}): cannot run here — ${skips[0]!.skip}`);
  process.exit(0);
}
for (const r of results) {
  if (r.error) mismatch(`worker ${r.index}: ${r.error}`);
  const res = r.result!;
  if (mode !== "hardware" && res.bytes !== bytes) mismatch(`worker ${r.index} received ${res.bytes} of ${bytes} bytes`);
  if (res.badAt >= 0) mismatch(`worker ${r.index}: byte ${res.badAt} differs`);
  if (res.inflight !== 0) mismatch(`worker ${r.index}: ${res.inflight} operations in flight after close`);
}
const total = results.reduce((a, r) => a + r.result!.bytes, 0);
const chunks = results.map((r) => r.result!.chunks).join("/");
const what = shared
  ? "ring, one queue shared through ZCRX_REG_IMPORT"
  : mode === "simulate"
    ? "simulated queue"
    : "ring";
console.log(
  `worker-per-queue (${mode}${shared ? ", shared queue" : ""}): ${workers} Workers, each with its own ${what}, received ${total} bytes byte-exact (chunks per Worker ${chunks})`,
);
