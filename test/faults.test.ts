// Faults: a CQ far too small for the load, rings closed with sends and receives in flight, peers
// that reset or close in the middle of a SEND_ZC stream, and RLIMIT_MEMLOCK exhaustion. Each
// must end every operation exactly once, release every SEND_ZC buffer exactly once, leave nothing
// in flight and no fd open, and report failures as UringErrors naming the cause.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Ring } from "../src/ring/ring.ts";
import * as S from "../src/abi/setup.ts";
import * as Q from "../src/abi/sqe.ts";
import { LINGER_SIZE, SO_LINGER, SO_RCVBUF, SO_SNDBUF, SOL_SOCKET } from "../src/abi/net.ts";
import { errnoName } from "../src/abi/errno.ts";
import { prepNop, prepRecv, prepRead, prepTimeout, prepSendZc } from "../src/ops/index.ts";
import { addressOf, c } from "../ffi/index.ts";
import { tcpListen, tcpConnect, tcpAccept, closeQuietly } from "../src/sync.ts";
import { ZcSender, type ZcUsage } from "../src/zc/index.ts";
import { SimulatedZcrx } from "../src/testing/index.ts";
import { UringError } from "../src/error.ts";
import { supportedSetupFlags, kernelRelease, kernelAtLeast } from "../src/ring/kernel.ts";
import { testIf } from "./helpers.ts";
import { openFdCount, openPipe } from "./fixtures/reliability-checks.ts";

const hasDefer = (supportedSetupFlags() & S.IORING_SETUP_DEFER_TASKRUN) !== 0;
/** These tests are about lifetimes, not usage reports: ask for REPORT_USAGE only where the
 * sender accepts it (6.2+), so they run on 6.1 too. */
const reportUsage = kernelAtLeast("6.2");

function tcpPair(ring: Ring, bufBytes?: number): { a: number; b: number; listen: number } {
  const l = tcpListen(ring, { host: "127.0.0.1", port: 0 });
  const a = tcpConnect(ring, { host: "127.0.0.1", port: l.address.port });
  const b = tcpAccept(ring, l.fd);
  if (bufBytes !== undefined) {
    const v = new Int32Array([bufBytes]);
    c.setsockopt(a, SOL_SOCKET, SO_SNDBUF, v, 4);
    c.setsockopt(b, SOL_SOCKET, SO_RCVBUF, v, 4);
  }
  return { a, b, listen: l.fd };
}

/** close(2) that sends a RST: SO_LINGER on with a zero timeout. */
function resetClose(fd: number): void {
  // struct linger { int l_onoff = 1; int l_linger = 0; }
  const linger = new Int32Array([1, 0]);
  c.setsockopt(fd, SOL_SOCKET, SO_LINGER, linger, LINGER_SIZE);
  c.close(fd);
}

// ---- CQ overflow ----

describe("CQ overflow with a tiny CQ under load loses no completion", () => {
  const variants: Array<{ name: string; skip: string | null; options: Parameters<typeof Ring.create>[0] }> = [
    { name: "8 CQEs, 4096 NOPs", skip: null, options: { entries: 8, cqEntries: 8 } },
    { name: "8 CQEs with CQE32", skip: null, options: { entries: 8, cqEntries: 8, cqe32: true } },
    {
      name: "8 CQEs with DEFER_TASKRUN",
      skip: hasDefer ? null : `IORING_SETUP_DEFER_TASKRUN needs Linux 6.1+, this kernel is ${kernelRelease()}`,
      options: { entries: 8, cqEntries: 8, deferTaskrun: true },
    },
    { name: "8 CQEs, batch of 3", skip: null, options: { entries: 8, cqEntries: 8, batchSize: 3 } },
  ];
  for (const v of variants) {
    testIf(
      v.skip,
      v.name,
      () => {
        const ring = Ring.create(v.options);
        try {
          const total = 4096;
          const seen = new Uint8Array(total);
          let done = 0;
          const handler = (i: number, res: number) => {
            expect(res).toBe(0);
            seen[i]!++;
            done++;
          };
          // getSqe submits a full SQ without reaping: the CQ (8 entries) overflows hundreds of
          // times over, and the kernel keeps the rest on its overflow list (IORING_FEAT_NODROP).
          for (let i = 0; i < total; i++) {
            const s = ring.getSqe();
            prepNop(ring.sq, s);
            ring.track(s, handler, i);
          }
          ring.submit();
          ring.runUntil(() => done === total, 20_000);
          expect(done).toBe(total);
          expect(seen.every((x) => x === 1)).toBe(true);
          expect(ring.cqOverflow).toBe(0); // nothing dropped
          expect(ring.unknownCqes).toBe(0);
          expect(ring.ops.inflight).toBe(0);
        } finally {
          ring.close();
        }
      },
      30_000,
    );
  }
});

// ---- ring closed with operations in flight ----

describe("closing a ring with operations in flight ends each exactly once", () => {
  test("SEND_ZC stream to a peer that does not read, plus pending receives", () => {
    const fds = openFdCount();
    const ring = Ring.create({ entries: 64 });
    const { a, b, listen } = tcpPair(ring, 16384);
    try {
      const sent = new Map<number, number>();
      const released = new Map<number, ZcUsage[]>();
      const sender = new ZcSender(ring, a, {
        mode: "zc",
        reportUsage,
        capacity: 256,
        onSent: (tag: number) => sent.set(tag, (sent.get(tag) ?? 0) + 1),
        onReleased: (tag: number, usage: ZcUsage) => released.set(tag, [...(released.get(tag) ?? []), usage]),
      });
      const n = 64;
      for (let i = 0; i < n; i++) sender.send(new Uint8Array(65536).fill(i), i);
      // Receives that will never see data (the peer b never sends).
      const rbuf = new Uint8Array(4096);
      let recvEnded = 0;
      for (let i = 0; i < 4; i++) {
        const s = ring.getSqe();
        prepRecv(ring.sq, s, a, addressOf(rbuf), rbuf.length, 0);
        ring.track(
          s,
          (_d: null, res: number) => {
            expect(errnoName(-res)).toBe("ECANCELED");
            recvEnded++;
          },
          null,
          rbuf,
        );
      }
      ring.submit();
      ring.run(0, 10);
      expect(ring.ops.inflight).toBeGreaterThan(0);
      ring.close(500);
      expect(ring.ops.inflight).toBe(0);
      expect(recvEnded).toBe(4);
      // Every send: released exactly once. A send still queued in the sender (never submitted)
      // is not in the ring; the sender's own count must agree with what was released.
      for (const [tag, usages] of released) expect({ tag, n: usages.length }).toEqual({ tag, n: 1 });
      expect(sender.stats.anomalies).toBe(0);
      expect(sender.stats.released).toBe(released.size);
      expect(sender.inflight + sender.stats.released).toBe(n);
    } finally {
      closeQuietly(a);
      closeQuietly(b);
      closeQuietly(listen);
      ring.close();
    }
    expect(openFdCount()).toBeLessThanOrEqual(fds); // a leak adds fds; other files' async cleanup may close some meanwhile
  }, 20_000);

  test("reads on an empty pipe and long timeouts, mmap and shared memory", () => {
    for (const memory of ["mmap", "auto"] as const) {
      const ring = Ring.create({ entries: 16, memory });
      const [rd, wr] = openPipe();
      try {
        const ended = new Uint8Array(12);
        const buf = new Uint8Array(64);
        const ts = new BigInt64Array([100n, 0n]);
        for (let i = 0; i < 12; i++) {
          const s = ring.getSqe();
          if (i % 2) prepRead(ring.sq, s, rd, addressOf(buf), buf.length, -1);
          else prepTimeout(ring.sq, s, addressOf(ts), 0, 0);
          ring.track(
            s,
            (i: number) => {
              ended[i]!++;
            },
            i,
            i % 2 ? buf : ts,
          );
        }
        ring.submit();
        ring.close(300);
        expect([...ended]).toEqual(new Array(12).fill(1));
        expect(ring.ops.inflight).toBe(0);
      } finally {
        c.close(rd);
        c.close(wr);
        ring.close();
      }
    }
  });
});

// ---- peer reset / close in the middle of a SEND_ZC stream ----

for (const how of ["reset", "close"] as const) {
  test(`peer ${how === "reset" ? "resets (RST)" : "closes (FIN)"} in the middle of a SEND_ZC stream: every buffer released once, the error named`, () => {
    const fds = openFdCount();
    const ring = Ring.create({ entries: 64 });
    const { a, b, listen } = tcpPair(ring, 32768);
    let peer = b;
    try {
      const releasedCount = new Uint8Array(400);
      const sentRes: number[] = [];
      const sender = new ZcSender(ring, a, {
        mode: "zc",
        reportUsage,
        capacity: 512,
        onSent: (_tag: number, res: number) => sentRes.push(res),
        onReleased: (tag: number) => {
          releasedCount[tag]!++;
        },
      });
      const sink = new Uint8Array(1 << 16);
      let queued = 0;
      for (let round = 0; round < 400; round++) {
        if (sender.isBroken) break;
        if (sender.available === 0) {
          ring.run(1, 50);
          continue;
        }
        sender.send(new Uint8Array(32768).fill(round & 0xff), round);
        queued++;
        ring.run(0, 0);
        // The peer reads a little, then goes away a quarter of the way in.
        if (peer >= 0) c.recv(peer, sink, sink.length, 0x40);
        if (round === 100 && peer >= 0) {
          if (how === "reset") resetClose(peer);
          else c.close(peer);
          peer = -1;
        }
      }
      ring.runUntil(() => sender.inflight === 0, 10_000);
      expect(ring.ops.inflight).toBe(0);
      expect(sender.stats.anomalies).toBe(0);
      for (let i = 0; i < queued; i++) expect({ i, released: releasedCount[i] }).toEqual({ i, released: 1 });
      // The stream broke with a named error: ECONNRESET or EPIPE (after a RST or FIN the next
      // sends fail), and the sender refuses further sends rather than leave a gap.
      const errs = sentRes.filter((r) => r < 0).map((r) => errnoName(-r));
      expect(errs.length).toBeGreaterThan(0);
      for (const e of errs) expect(["ECONNRESET", "EPIPE", "ECANCELED"]).toContain(e);
      expect(sender.stats.lastError?.code).toMatch(/ECONNRESET|EPIPE|ECANCELED/);
    } finally {
      closeQuietly(a);
      if (peer >= 0) closeQuietly(peer);
      closeQuietly(listen);
      ring.close();
    }
    expect(openFdCount()).toBeLessThanOrEqual(fds); // a leak adds fds; other files' async cleanup may close some meanwhile
  }, 30_000);
}

// ---- RLIMIT_MEMLOCK ----

/** Whether this process has CAP_IPC_LOCK (bit 14 of CapEff), which exempts it from memlock
 * accounting of registered buffers (io_uring's io_account_mem is skipped for it). */
function hasIpcLock(): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? (BigInt(`0x${m[1]}`) & (1n << 14n)) !== 0n : false;
}

const SETPRIV = "/usr/bin/setpriv";
const child = join(import.meta.dir, "fixtures", "memlock-child.ts");

async function runChild(
  prefix: string[],
): Promise<{ code: string; syscall?: string; message?: string; limit: number }> {
  const p = Bun.spawn([...prefix, process.execPath, child], { stdout: "pipe", stderr: "pipe" });
  const [out, err] = [await new Response(p.stdout).text(), await new Response(p.stderr).text()];
  expect({ exit: await p.exited, err: err.trim().slice(0, 400) }).toEqual({ exit: 0, err: "" });
  return JSON.parse(out.trim().split("\n").pop()!);
}

describe("RLIMIT_MEMLOCK exhaustion (in a child process)", () => {
  // As root, CAP_IPC_LOCK bypasses the accounting: the lowered limit changes nothing. Dropping the
  // capability from the bounding set before exec (setpriv, util-linux) makes root count again.
  const dropSkip =
    process.getuid?.() === 0 && !existsSync(SETPRIV)
      ? `dropping CAP_IPC_LOCK as root needs ${SETPRIV} (util-linux)`
      : null;
  testIf(
    dropSkip,
    "registering past the limit gives ENOMEM with the `ulimit -l` hint",
    async () => {
      const prefix = hasIpcLock() ? [SETPRIV, "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock"] : [];
      const r = await runChild(prefix);
      expect(r.limit).toBe(65536);
      expect(r.code).toBe("ENOMEM");
      expect(r.syscall).toMatch(/^IORING_REGISTER_BUFFERS/);
      expect(r.message).toContain("RLIMIT_MEMLOCK");
      expect(r.message).toContain("ulimit -l");
    },
    30_000,
  );

  testIf(
    hasIpcLock() ? null : "needs CAP_IPC_LOCK (root)",
    "with CAP_IPC_LOCK the lowered limit is bypassed (documents why the test above drops it)",
    async () => {
      const r = await runChild([]);
      expect(r.limit).toBe(65536);
      expect(r.code).toBe("none");
    },
    30_000,
  );
});

// ---- ZCRX on the simulated kernel side ----

describe("ZCRX faults (simulated kernel side)", () => {
  test("the refill ring full for a long time: releases wait, none is dropped, all return", () => {
    // 64 buffers, a 4-entry refill ring, "alloc" reclaim: the kernel side takes refills only when
    // its free list runs dry, so 60 of 64 releases must wait in the receiver.
    const sim = new SimulatedZcrx({ areaBytes: 64 * 4096, rqEntries: 4, reclaim: "alloc", onStarve: "stall" });
    const rx = sim.createReceiver();
    const fd = sim.connect();
    const held: number[] = [];
    let got = 0;
    let bad = 0;
    rx.recv(
      fd,
      {
        onData: (_c: null, chunk: number, off: number, len: number) => {
          for (let i = 0; i < len; i += 101) if (rx.area[off + i] !== ((got + i) & 0xff)) bad++;
          got += len;
          held.push(chunk);
        },
      },
      null,
    );
    const total = 256 * 4096;
    const data = new Uint8Array(total);
    for (let i = 0; i < total; i++) data[i] = i & 0xff;
    sim.send(fd, data);
    rx.runUntil(() => held.length === 64, 5000);
    // Every buffer is with us; release all at once: 4 fit the ring, 60 wait.
    for (const c of held.splice(0)) rx.release(c);
    expect(rx.pending).toBe(60);
    // A long time of drains while we hold what arrives: the kernel side takes refills only as
    // it runs dry, so the ring stays full and releases keep waiting; every buffer is either with
    // us (live) or in the ring / waiting, never lost.
    for (let i = 0; i < 2000; i++) rx.completions();
    expect(rx.live).toBe(held.length);
    expect(rx.stats.rqFull).toBeGreaterThan(0);
    expect(rx.stats.pendingHighWater).toBeGreaterThanOrEqual(60);
    // Keep receiving and releasing until the whole stream is through (bounded: a stall that
    // never clears fails the test instead of hanging it).
    sim.shutdown(fd);
    for (let round = 0; round < 100_000 && !(rx.ended(0) && got === total); round++) {
      rx.run(0, 0);
      for (const c of held.splice(0)) rx.release(c);
    }
    expect(rx.ended(0)).toBe(true);
    // The stream is done, so the kernel side needs no buffers and takes no more refills by
    // itself ("alloc" reclaim): releases still wait in the receiver. Each reclaim frees ring
    // room and the next publish moves waiting releases in: all of them come back.
    for (let round = 0; round < 1000 && (rx.pending > 0 || rx.unpublished > 0 || sim.buffersInUse > 0); round++) {
      sim.reclaim();
      rx.publish();
    }
    expect(rx.pending).toBe(0);
    expect(got).toBe(total);
    expect(bad).toBe(0);
    expect(rx.live).toBe(0);
    sim.reclaim();
    expect(sim.buffersInUse).toBe(0);
    expect(sim.violations).toEqual([]);
  });

  test("the receiver closed with RECV_ZC armed and chunks held: later calls are EBADF, nothing crashes", () => {
    const sim = new SimulatedZcrx({ areaBytes: 16 * 4096, rqEntries: 16 });
    const rx = sim.createReceiver();
    const fd = sim.connect();
    const held: number[] = [];
    rx.recv(fd, { onData: (_c: null, chunk: number) => void held.push(chunk) }, null);
    sim.send(fd, new Uint8Array(8 * 4096).fill(1));
    rx.runUntil(() => held.length === 8, 5000);
    rx.close();
    expect(rx.isClosed).toBe(true);
    for (const call of [
      () => rx.completions(),
      () => rx.run(0, 0),
      () => rx.recv(sim.connect(), { onData: () => {} }, null),
    ]) {
      expect(() => call()).toThrow(UringError);
      try {
        call();
      } catch (e) {
        expect((e as UringError).code).toBe("EBADF");
      }
    }
    // A chunk held across close is either released (accounted) or refused with a UringError.
    for (const c of held) {
      try {
        rx.release(c);
      } catch (e) {
        expect(e).toBeInstanceOf(UringError);
      }
    }
    expect(rx.live).toBe(0);
  });
});

// ---- a SEND_ZC cancelled by its link ----

test("a SEND_ZC cancelled by a failed link ends once; a notification after it (6.18 posts one) is dropped, never delivered twice", () => {
  const ring = Ring.create({ entries: 16 });
  const { a, b, listen } = tcpPair(ring);
  try {
    const buf = new Uint8Array(64);
    const seen: Array<{ res: number; flags: number }> = [];
    let s = ring.getSqe();
    prepRead(ring.sq, s, -1, addressOf(buf), 8, 0);
    let readRes = 0;
    ring.track(
      s,
      (_d: null, res: number) => {
        readRes = res;
      },
      null,
      buf,
      Q.IOSQE_IO_LINK,
    );
    s = ring.getSqe();
    prepSendZc(ring.sq, s, a, addressOf(buf), 8, 0, 0);
    ring.track(s, (_d: null, res: number, flags: number) => void seen.push({ res, flags }), null, buf);
    ring.submit();
    ring.runUntil(() => ring.ops.inflight === 0, 5000);
    // Give a late notification the chance to arrive.
    for (let i = 0; i < 5; i++) ring.run(0, 20);
    expect(errnoName(-readRes)).toBe("EBADF");
    // The send's handler saw exactly its end: -ECANCELED, and if that CQE had F_MORE, the
    // notification too; a notification after a CQE without F_MORE went to no handler.
    expect(errnoName(-seen[0]!.res)).toBe("ECANCELED");
    const more = (seen[0]!.flags & Q.IORING_CQE_F_MORE) !== 0;
    expect(seen.length).toBe(more ? 2 : 1);
    expect(ring.unknownCqes).toBeLessThanOrEqual(1);
    expect(ring.ops.inflight).toBe(0);
  } finally {
    closeQuietly(a);
    closeQuietly(b);
    closeQuietly(listen);
    ring.close();
  }
});
