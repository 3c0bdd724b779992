// The Worker of worker-per-queue.ts: one ring, one queue (or one loopback listener), one stream
// of bytes checked against the pattern its index selects.
import {
  openRing,
  Ring,
  ZcrxIfq,
  importZcrx,
  sharedQueueFrom,
  RefillLock,
  UringError,
  type PostableZcrxQueue,
  type ZcrxReceiver,
} from "../../src/index.ts";
import { tcpListen, tcpAccept, closeQuietly } from "../../src/sync.ts";
import { SimulatedZcrx } from "../../src/testing/index.ts";
import { ETIME } from "../../src/abi/index.ts";
import { pattern } from "./lib.ts";

declare const self: Worker;

interface Job {
  index: number;
  mode: "socket" | "simulate" | "hardware" | "nodev";
  bytes: number;
  ifname: string;
  rxq: number;
  port: number;
  /** Shared-queue mode: the main thread's exported ifq (its fd), its memory and the lock every
   * Worker's receiver takes to write the one refill ring. */
  shared?: { fd: number; queue: PostableZcrxQueue; lock: SharedArrayBuffer };
}

function check(expect: Uint8Array, at: number, chunk: Uint8Array, badAt: number): number {
  if (badAt >= 0) return badAt;
  for (let i = 0; i < chunk.length; i++) if (chunk[i] !== expect[at + i]) return at + i;
  return -1;
}

async function socketMode(job: Job): Promise<void> {
  const expect = pattern(job.bytes, 1000 + job.index);
  await using ring = openRing({ recvBuffers: 64 });
  const l = ring.listen({ host: "127.0.0.1", port: 0 });
  self.postMessage({ index: job.index, ready: { port: l.port } });
  const sock = await l.accept();
  let n = 0,
    chunks = 0,
    badAt = -1;
  for await (const chunk of sock.recv()) {
    badAt = check(expect, n, chunk, badAt);
    n += chunk.length;
    chunks++;
  }
  await sock.close();
  await l.close();
  self.postMessage({ index: job.index, result: { bytes: n, chunks, badAt, inflight: ring.inflight } });
}

function zcrxRun(
  rx: ZcrxReceiver,
  fd: number,
  expect: Uint8Array | null,
  feed: () => void,
): { bytes: number; chunks: number; badAt: number } {
  let n = 0,
    chunks = 0,
    badAt = -1,
    ended = false,
    res = 0;
  rx.recv(
    fd,
    {
      onData(_c: null, chunk: number) {
        const v = rx.view(chunk);
        if (expect) badAt = check(expect, n, v, badAt);
        n += v.length;
        chunks++;
        rx.release(chunk);
      },
      onEnd(_c: null, r: number) {
        ended = true;
        res = r;
      },
    },
    null,
  );
  const deadline = performance.now() + 30_000;
  while (!ended && performance.now() < deadline) {
    feed();
    rx.run(1, 100);
  }
  if (!ended) throw new UringError("IORING_OP_RECV_ZC", ETIME, `stream did not end within 30 s (${n} bytes)`);
  if (res < 0) throw new UringError("IORING_OP_RECV_ZC", -res);
  return { bytes: n, chunks, badAt };
}

function simulateMode(job: Job): void {
  const expect = pattern(job.bytes, 1000 + job.index);
  const sim = new SimulatedZcrx({ areaBytes: 1 << 20, rqEntries: 64 });
  const rx = sim.createReceiver();
  const fd = sim.connect();
  let sent = 0;
  const r = zcrxRun(rx, fd, expect, () => {
    if (sent < job.bytes) {
      const k = Math.min(65536, job.bytes - sent);
      sim.send(fd, expect.subarray(sent, sent + k));
      sent += k;
      if (sent === job.bytes) sim.shutdown(fd);
    }
  });
  rx.close();
  self.postMessage({ index: job.index, result: { ...r, inflight: 0 } });
}

function zcrxMode(job: Job): void {
  const ring = Ring.create({ entries: 256, cqEntries: 4096, deferTaskrun: true, cqe32: true });
  let ifq: ZcrxIfq | null = null;
  let rx: ZcrxReceiver;
  try {
    if (job.shared) {
      // One queue for all Workers: this ring imports it, and the refill ring is written under
      // the common lock.
      const imported = importZcrx(ring, job.shared.fd, sharedQueueFrom(job.shared.queue));
      rx = imported.receiver({ refillLock: new RefillLock(job.shared.lock) });
    } else {
      ifq =
        job.mode === "hardware"
          ? ZcrxIfq.register(ring, { ifname: job.ifname, rxq: job.rxq })
          : ZcrxIfq.register(ring, { nodev: true });
      rx = ifq.receiver();
    }
  } catch (e) {
    ring.close();
    if (!(e instanceof UringError)) throw e;
    self.postMessage({ index: job.index, skip: e.message });
    return;
  }
  try {
    const l = tcpListen(ring, { host: job.mode === "hardware" ? "::" : "127.0.0.1", port: job.port, via: "libc" });
    self.postMessage({ index: job.index, ready: { port: l.address.port } });
    const fd = tcpAccept(ring, l.fd, { via: "libc", timeoutMs: 600_000 });
    const r = zcrxRun(rx, fd, job.mode === "nodev" ? pattern(job.bytes, 1000 + job.index) : null, () => {});
    closeQuietly(fd);
    closeQuietly(l.fd);
    self.postMessage({ index: job.index, result: { ...r, inflight: 0 } });
  } finally {
    rx.close();
    ring.close();
    ifq?.close();
  }
}

self.onmessage = async (e: MessageEvent<Job>) => {
  const job = e.data;
  try {
    if (job.mode === "socket") await socketMode(job);
    else if (job.mode === "simulate") simulateMode(job);
    else zcrxMode(job);
  } catch (err) {
    self.postMessage({ index: job.index, error: err instanceof Error ? err.message : String(err) });
  }
};
