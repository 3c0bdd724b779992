// bun scripts/fuzz.ts — random sequences of operations, valid and invalid, against live rings.
//
//   bun scripts/fuzz.ts [--sequences N] [--seed S] [--ring-every K] [--json]
//
// Each sequence prepares 1..12 operations with random arguments (NOP, TIMEOUT, LINK_TIMEOUT, link
// chains, ASYNC_CANCEL, READ/WRITE on a pipe, SEND/RECV/SEND_ZC on a loopback TCP pair, unknown
// opcodes, bad fds, addresses the kernel must refuse, library calls with bad arguments), submits
// them in random batches, then settles: waits for every operation's last CQE, cancelling what
// still waits for data. After each sequence it checks the invariants:
//   - in flight returns to zero (ring.ops.inflight), every operation's handler saw its last CQE
//     exactly once;
//   - the CQ lost nothing: each operation got exactly the CQEs its kind promises (one, or for
//     SEND_ZC a notification if and only if the first CQE had F_MORE), no CQE named an unknown
//     user_data, and the kernel's overflow (dropped) counter stayed 0;
//   - every SEND_ZC buffer was released exactly once (first CQE without F_MORE, or the
//     notification).
// Rings are recreated every K sequences with random setup (size, tiny CQ, shared or mmap memory,
// DEFER_TASKRUN, CQE32), and every recreation closes the old ring with operations still in flight,
// which must end each of them exactly once (ECANCELED from the cancel round or from close).
//
// Addresses handed to the kernel are either buffers this script holds, with lengths inside them,
// or addresses below 64 KiB (never mapped: vm.mmap_min_addr), so a fuzz run can only ever see
// EFAULT, never corrupt its own heap. The seed makes a run repeatable.
import { Ring, type RingOptions } from "../src/ring/ring.ts";
import * as Q from "../src/abi/sqe.ts";
import { errnoName } from "../src/abi/errno.ts";
import { UringError } from "../src/error.ts";
import {
  prepNop,
  prepTimeout,
  prepLinkTimeout,
  prepCancel64,
  prepRead,
  prepWrite,
  prepSend,
  prepRecv,
  prepSendZc,
  prepRw,
  prepTimeoutRemove,
  prepPollAdd,
  prepShutdown,
} from "../src/ops/index.ts";
import { addressOf, c } from "../ffi/index.ts";
import { O_CLOEXEC, O_NONBLOCK } from "../src/abi/net.ts";
import { tcpListen, tcpConnect, tcpAccept, closeQuietly } from "../src/sync.ts";
import * as S from "../src/abi/setup.ts";
import { supportedSetupFlags, kernelAtLeast } from "../src/ring/kernel.ts";
import { ZcSender, type ZcMode } from "../src/zc/index.ts";
import { SimulatedZcrx } from "../src/testing/index.ts";
import type { ZcrxReceiver } from "../src/zcrx/receiver.ts";
import { UsageError, numberArg, parseCli, usageExit } from "./lib/cli.ts";

export interface FuzzOptions {
  sequences: number;
  seed: number;
  /** Recreate the ring every this many sequences. */
  ringEvery?: number;
  /** Stop after this many milliseconds even if sequences remain (0: no limit). */
  maxMs?: number;
  /** Called every `progressEvery` sequences. */
  onProgress?: (r: FuzzReport) => void;
  progressEvery?: number;
}

export interface FuzzReport {
  seed: number;
  sequences: number;
  operations: number;
  cqes: number;
  rings: number;
  /** Errors seen by errno name: from CQEs (negative res) and from refused library calls. */
  errors_seen: Record<string, number>;
  /** Library calls refused with a UringError (bad arguments at the edge). */
  refused_calls: number;
  send_zc: number;
  send_zc_notifs: number;
  /** Notifications after a SEND_ZC first CQE without F_MORE (see the report's note). */
  stray_notifs: number;
  /** CQEs of refused track slots (user_data 0) cancelled inside a failed link chain. */
  refused_slot_cqes: number;
  /** Sequences whose IO_DRAIN kept requests out of ASYNC_CANCEL's reach; ended by ring close. */
  drain_stuck: number;
  /** ZcSender sends (src/zc) and their releases. */
  sender_sends: number;
  sender_released: number;
  /** ZCRX simulator sequences, bytes received through ZcrxReceiver and chunks released. */
  zcrx_sequences: number;
  zcrx_bytes: number;
  zcrx_chunks: number;
  /** Invariant failures, each described; `leaks` counts those about in-flight entries. */
  violations: string[];
  leaks: number;
  /** Non-UringError exceptions (a TypeError from deep inside is a bug too). */
  foreign_errors: number;
  seconds: number;
}

/** mulberry32: small, fast and good enough to pick fuzz arguments; the seed repeats a run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function blankRecord(kind: Kind = "nop"): OpRecord {
  return {
    kind,
    ud: 0,
    cqes: 0,
    finals: 0,
    firstMore: false,
    notifs: 0,
    releases: 0,
    firstRes: undefined,
    mores: 0,
    hold: undefined,
    desc: "",
  };
}

type Kind =
  | "nop"
  | "timeout"
  | "link_timeout"
  | "cancel"
  | "timeout_remove"
  | "read"
  | "write"
  | "send"
  | "recv"
  | "send_zc"
  | "poll"
  | "bad_opcode"
  | "shutdown";

/** What one operation saw; checked after its sequence settles. */
interface OpRecord {
  kind: Kind;
  ud: number;
  cqes: number;
  finals: number;
  firstMore: boolean;
  notifs: number;
  releases: number;
  firstRes: number | undefined;
  /** CQEs with F_MORE (multishot). */
  mores: number;
  hold: unknown;
  /** fd and flags, for the violation report. */
  desc: string;
}

interface Fds {
  pipeRd: number;
  pipeWr: number;
  tcpA: number;
  tcpB: number;
  listen: number;
  closedFd: number;
}

export function runFuzz(o: FuzzOptions): FuzzReport {
  const rand = rng(o.seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const chance = (p: number) => rand() < p;

  const report: FuzzReport = {
    seed: o.seed,
    sequences: 0,
    operations: 0,
    cqes: 0,
    rings: 0,
    errors_seen: {},
    refused_calls: 0,
    send_zc: 0,
    send_zc_notifs: 0,
    stray_notifs: 0,
    refused_slot_cqes: 0,
    drain_stuck: 0,
    sender_sends: 0,
    sender_released: 0,
    zcrx_sequences: 0,
    zcrx_bytes: 0,
    zcrx_chunks: 0,
    violations: [],
    leaks: 0,
    foreign_errors: 0,
    seconds: 0,
  };
  const started = performance.now();
  const seen = (name: string) => {
    report.errors_seen[name] = (report.errors_seen[name] ?? 0) + 1;
  };
  const violation = (seq: number, what: string, leak = false) => {
    if (report.violations.length < 50) report.violations.push(`seed ${o.seed} sequence ${seq}: ${what}`);
    if (leak) report.leaks++;
  };

  const supported = supportedSetupFlags();
  const scratch = new Uint8Array(1 << 16);
  const sink = new Uint8Array(1 << 16);

  function newRing(): Ring {
    const entries = pick([2, 4, 8, 16, 32, 64]);
    const opts: RingOptions = { entries, maxInflight: 256 };
    if (chance(0.3)) opts.cqEntries = entries; // a tiny CQ: overflow under load
    if (chance(0.3)) opts.memory = "mmap";
    if (chance(0.3) && supported & S.IORING_SETUP_DEFER_TASKRUN) opts.deferTaskrun = true;
    if (chance(0.2) && supported & S.IORING_SETUP_CQE32) opts.cqe32 = true;
    if (chance(0.2)) opts.batchSize = pick([1, 2, 3, 7]);
    report.rings++;
    const r = Ring.create(opts);
    r.onUnknownCqe = (ud, res, flags) => {
      if (ud === 0) {
        // A slot refused by track became a NOP with user_data 0 and CQE_SKIP_SUCCESS; it posts a
        // CQE only when a failed link chain cancels it.
        report.refused_slot_cqes++;
        return;
      }
      // A notification for no live operation: after a first CQE without F_MORE (checked exactly
      // for this script's own SEND_ZCs; the ZcSender's user_data are its own, so any F_NOTIF
      // counts there).
      if (flags & Q.IORING_CQE_F_NOTIF && (endedWithoutMore.has(ud) || sender !== null)) {
        report.stray_notifs++;
        return;
      }
      unexplainedUnknown++;
      lastUnknown = `user_data ${ud} res ${res} flags 0x${flags.toString(16)}`;
    };
    return r;
  }

  function openFds(ring: Ring): Fds {
    const p = new Int32Array(2);
    if (c.pipe2(p, O_NONBLOCK | O_CLOEXEC) !== 0) throw new Error("pipe2 failed");
    const q = new Int32Array(2);
    c.pipe2(q, O_CLOEXEC);
    c.close(q[0]!);
    c.close(q[1]!);
    const l = tcpListen(ring, { host: "127.0.0.1", port: 0 });
    const a = tcpConnect(ring, { host: "127.0.0.1", port: l.address.port });
    const b = tcpAccept(ring, l.fd);
    return { pipeRd: p[0]!, pipeWr: p[1]!, tcpA: a, tcpB: b, listen: l.fd, closedFd: q[0]! };
  }

  function closeFds(f: Fds): void {
    for (const fd of [f.pipeRd, f.pipeWr, f.tcpA, f.tcpB, f.listen]) closeQuietly(fd);
  }

  /** Drain what the sequence left in the pipe and the TCP receive queues, so the next sequence's
   * writes have room. MSG_DONTWAIT = 0x40. */
  function drain(f: Fds): void {
    while (c.read(f.pipeRd, sink, sink.length) > 0);
    while (c.recv(f.tcpA, sink, sink.length, 0x40) > 0);
    while (c.recv(f.tcpB, sink, sink.length, 0x40) > 0);
  }

  const handler = (rec: OpRecord, res: number, flags: number, index: number) => {
    report.cqes++;
    rec.cqes++;
    const more = (flags & Q.IORING_CQE_F_MORE) !== 0;
    const notif = (flags & Q.IORING_CQE_F_NOTIF) !== 0;
    if (index === -1) {
      // Ring.close ended it without a CQE.
      rec.finals++;
      if (rec.kind === "send_zc") rec.releases++;
      seen("ECANCELED(close)");
      return;
    }
    if (notif) {
      rec.notifs++;
      rec.releases++;
      report.send_zc_notifs++;
    } else {
      if (rec.firstRes === undefined) {
        rec.firstRes = res;
        rec.firstMore = more;
        if (res < 0) seen(errnoName(-res));
        if (rec.kind === "send_zc" && !more) {
          rec.releases++;
          endedWithoutMore.add(rec.ud);
        }
      }
    }
    if (more && !notif) rec.mores++;
    if (!more) {
      rec.finals++;
      rec.hold = undefined;
    }
  };

  let lastUnknown = "";
  /** Whether any request on this ring carried IOSQE_IO_DRAIN: the kernel's drain state outlives
   * the sequence that set it, and requests it holds back are out of ASYNC_CANCEL's reach. */
  let ringDrained = false;
  /** CQEs for no live operation that are not explained below. */
  let unexplainedUnknown = 0;
  /** SEND_ZC operations whose first CQE came without F_MORE: a notification for one of them is a
   * "stray" (the kernel posted it although it promised none), which the op table must drop. */
  const endedWithoutMore = new Set<number>();
  let ring = newRing();
  let fds = openFds(ring);
  // A ZcSender on the TCP pair (src/zc), rebuilt with each ring: released counts per send tag.
  let sender: ZcSender | null = null;
  let senderReleases = new Map<number, number>();
  let senderTag = 0;
  function newSender(): void {
    const mode: ZcMode = pick(["zc", "zc", "mixed", "adaptive", "copy"]);
    senderReleases = new Map();
    const releases = senderReleases;
    sender = new ZcSender(ring, fds.tcpA, {
      mode,
      capacity: 64,
      threshold: pick([0, 1024, 16384]),
      reportUsage: kernelAtLeast("6.2"),
      onReleased: (tag: number) => {
        releases.set(tag, (releases.get(tag) ?? 0) + 1);
        report.sender_released++;
      },
    });
  }
  newSender();
  const ringEvery = o.ringEvery ?? 200;
  const timespecs: BigInt64Array[] = [];

  function track(rec: OpRecord, slot: number, hold: unknown, flags: number): void {
    rec.hold = hold;
    rec.ud = ring.track(slot, handler, rec, hold, flags);
    report.operations++;
  }

  function timespec(ns: number): BigInt64Array {
    const ts = new BigInt64Array(2);
    ts[0] = BigInt(Math.floor(ns / 1e9));
    ts[1] = BigInt(ns % 1e9);
    timespecs.push(ts);
    return ts;
  }

  /** One random library call with a bad argument: must throw UringError and change nothing. */
  function badCall(seq: number): void {
    const calls: Array<() => unknown> = [
      () => ring.track(-1, handler, blankRecord()),
      () => ring.track(ring.sqEntries + int(100), handler, blankRecord()),
      () => ring.submitAndWait(-1 - int(5), 0),
      () => ring.submitAndWait(1, -1),
      () => ring.register(255, new Uint8Array(8), 0),
      () => ring.register(0, new ArrayBuffer(8) as never, 1),
      () => ring.setUserData(0, -1),
      () => {
        const s = ring.getSqe();
        prepNop(ring.sq, s);
        return ring.track(s, handler, blankRecord(), undefined, 0x80 | int(0x80));
      },
      () => {
        const s = ring.getSqe();
        prepWrite(ring.sq, s, fds.pipeWr, addressOf(scratch), 16, -1);
        return ring.track(s, 42 as never, null);
      },
      () => Ring.create({ entries: pick([0, -1, 1e9, NaN, 1.5]) }),
    ];
    try {
      pick(calls)();
      violation(seq, "a bad library call returned instead of throwing");
    } catch (e) {
      if (e instanceof UringError) {
        report.refused_calls++;
        seen(`${e.code}(refused)`);
      } else {
        report.foreign_errors++;
        violation(seq, `a bad library call threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
      }
    }
  }

  function oneSequence(seq: number): void {
    const recs: OpRecord[] = [];
    const n = 1 + int(12);
    let maxWaitNs = 0;
    for (let i = 0; i < n; i++) {
      if (chance(0.08)) badCall(seq);
      if (ring.ops.inflight >= ring.ops.capacity - 4) break;
      if (sender && chance(0.1)) {
        // Through src/zc: the sender queues, links and submits on its own; a full sender or a
        // broken stream refuses with a UringError.
        try {
          const tag = senderTag++;
          sender.send(new Uint8Array(pick([1, 100, 4096, 20000, 65536])).fill(tag & 0xff), tag);
          senderReleases.set(tag, 0);
          report.sender_sends++;
        } catch (e) {
          if (!(e instanceof UringError)) throw e;
          seen(`${e.code}(ZcSender.send)`);
        }
        continue;
      }
      const kind: Kind = pick([
        "nop",
        "nop",
        "timeout",
        "link_timeout",
        "cancel",
        "timeout_remove",
        "read",
        "write",
        "send",
        "recv",
        "send_zc",
        "send_zc",
        "poll",
        "bad_opcode",
        "shutdown",
      ]);
      const rec = blankRecord(kind);
      let flags = 0;
      if (chance(0.2)) flags |= Q.IOSQE_IO_LINK;
      if (chance(0.05)) flags |= Q.IOSQE_IO_HARDLINK;
      if (chance(0.05)) flags |= Q.IOSQE_ASYNC;
      if (chance(0.03)) flags |= Q.IOSQE_IO_DRAIN;
      if (flags & Q.IOSQE_IO_DRAIN) ringDrained = true;
      if (chance(0.02)) flags |= Q.IOSQE_BUFFER_SELECT; // no group registered: ENOBUFS or EINVAL
      const badFd = () => pick([-1, fds.closedFd, 99999, fds.listen]);
      const len = () => pick([0, 1, 7, 64, 4096, 65536]);
      const slot = ring.getSqe();
      let hold: unknown = undefined;
      switch (kind) {
        case "nop":
          prepNop(ring.sq, slot);
          break;
        case "timeout": {
          const ns = pick([0, 1000, 50_000, 200_000, 1_000_000]);
          maxWaitNs = Math.max(maxWaitNs, ns);
          const ts = chance(0.05) ? null : timespec(ns);
          prepTimeout(ring.sq, slot, ts ? addressOf(ts) : pick([0, 8]), int(3), chance(0.1) ? 1 << (4 + int(12)) : 0);
          hold = ts;
          break;
        }
        case "link_timeout": {
          const ts = timespec(pick([1000, 100_000, 500_000]));
          prepLinkTimeout(ring.sq, slot, addressOf(ts), 0);
          hold = ts;
          break;
        }
        case "cancel": {
          const target = recs.length && chance(0.8) ? pick(recs).ud : 1 + int(1 << 20);
          prepCancel64(ring.sq, slot, target, chance(0.1) ? Q.IORING_ASYNC_CANCEL_ALL : 0);
          break;
        }
        case "timeout_remove": {
          const target = recs.length ? pick(recs).ud : int(1000);
          prepTimeoutRemove(ring.sq, slot, target, 0);
          break;
        }
        case "read": {
          const l = Math.min(len(), scratch.length);
          const fd = chance(0.15) ? badFd() : fds.pipeRd;
          prepRead(ring.sq, slot, fd, chance(0.05) ? pick([0, 8, 4096]) : addressOf(scratch), l, -1);
          hold = scratch;
          break;
        }
        case "write": {
          const l = Math.min(len(), scratch.length);
          const fd = chance(0.15) ? badFd() : fds.pipeWr;
          prepWrite(ring.sq, slot, fd, chance(0.05) ? pick([0, 8, 4096]) : addressOf(scratch), l, -1);
          hold = scratch;
          break;
        }
        case "send": {
          const fd = chance(0.15) ? badFd() : pick([fds.tcpA, fds.tcpB]);
          prepSend(ring.sq, slot, fd, addressOf(scratch), len(), chance(0.1) ? 0x40 : 0);
          hold = scratch;
          break;
        }
        case "recv": {
          const fd = chance(0.15) ? badFd() : pick([fds.tcpA, fds.tcpB]);
          prepRecv(ring.sq, slot, fd, addressOf(scratch), len(), chance(0.3) ? 0x40 : 0);
          hold = scratch;
          break;
        }
        case "send_zc": {
          const fd = chance(0.15) ? badFd() : pick([fds.tcpA, fds.tcpB, fds.pipeWr]);
          const zcFlags = chance(0.5) ? Q.IORING_SEND_ZC_REPORT_USAGE : chance(0.1) ? 0x8000 : 0;
          // A fresh buffer per send so "released exactly once" is about this buffer alone.
          const buf = new Uint8Array(Math.max(1, len()));
          prepSendZc(ring.sq, slot, fd, chance(0.03) ? 8 : addressOf(buf), buf.length, chance(0.1) ? 0x40 : 0, zcFlags);
          hold = buf;
          report.send_zc++;
          break;
        }
        case "poll":
          prepPollAdd(
            ring.sq,
            slot,
            chance(0.2) ? badFd() : pick([fds.pipeRd, fds.pipeWr, fds.tcpA]),
            pick([1, 4, 0x2000]),
          );
          break;
        case "bad_opcode":
          prepRw(ring.sq, slot, pick([100, 200, 255]), -1, 0, 0, 0);
          break;
        case "shutdown":
          // Shut down only bad fds: a real shutdown would end the TCP pair for later sequences.
          prepShutdown(ring.sq, slot, badFd(), 2);
          break;
      }
      track(rec, slot, hold, flags & 0x7f);
      rec.desc = `${kind}(fd ${ring.sq.u32[(slot << 4) + 1]! | 0}, len ${ring.sq.u32[(slot << 4) + 6]}, sqe flags 0x${flags.toString(16)})`;
      recs.push(rec);
      if (chance(0.3)) {
        try {
          ring.submit();
        } catch (e) {
          if (e instanceof UringError) seen(`${e.code}(submit)`);
          else throw e;
        }
      }
    }
    settle(seq, recs, maxWaitNs, ringDrained);
    check(seq, recs);
    drain(fds);
  }

  /** Wait for every operation's last CQE; cancel what still waits for data (twice: an
   * ASYNC_CANCEL can miss a request that is moving to io-wq at that moment). On a ring that has
   * seen IOSQE_IO_DRAIN, requests the kernel defers (the cancel among them) can stay out of reach
   * of ASYNC_CANCEL; only closing the ring ends those, and then close must end each of them
   * exactly once (checked in replaceRing). */
  function settle(seq: number, recs: OpRecord[], maxWaitNs: number, drained: boolean): void {
    ring.submit();
    const quietMs = Math.ceil(maxWaitNs / 1e6) + 2;
    const until = performance.now() + quietMs;
    // Drain the pipe and both TCP receive queues while waiting: a SEND_ZC's notification comes
    // only once the peer has taken the data, and a blocked write only moves when there is room.
    while (
      (ring.ops.inflight > 0 || (sender?.inflight ?? 0) > 0) &&
      performance.now() < until + (sender?.inflight ? 2000 : 0)
    ) {
      drain(fds);
      ring.run(1, 1);
    }
    for (let attempt = 0; attempt < 2 && ring.ops.inflight > 0; attempt++) {
      const cancel = blankRecord("cancel");
      const s = ring.getSqe();
      prepCancel64(ring.sq, s, 0, Q.IORING_ASYNC_CANCEL_ANY);
      track(cancel, s, undefined, 0);
      recs.push(cancel);
      const deadline = performance.now() + (drained ? 50 : 1000);
      while (ring.ops.inflight > 0 && performance.now() < deadline) {
        drain(fds);
        ring.run(1, 5);
      }
    }
    if (ring.ops.inflight > 0) {
      const stuck =
        recs
          .filter((r) => r.finals === 0)
          .map((r) => r.desc || r.kind)
          .join(", ") +
        ` on a ring with flags 0x${ring.flags.toString(16)}, ${ring.sqEntries}/${ring.cqEntries} entries; fds pipe ${fds.pipeRd}/${fds.pipeWr} tcp ${fds.tcpA}/${fds.tcpB} listen ${fds.listen}`;
      if (drained) report.drain_stuck++;
      else
        violation(
          seq,
          `${ring.ops.inflight} operations still in flight after two cancel-any rounds (no IO_DRAIN involved): ${stuck}`,
          true,
        );
      replaceRing(seq, recs);
    }
  }

  function check(seq: number, recs: OpRecord[]): void {
    if (ring.isClosed) return;
    if (ring.ops.inflight !== 0) violation(seq, `in flight ${ring.ops.inflight} after settle`, true);
    for (const r of recs) {
      if (r.finals !== 1) violation(seq, `${r.kind} ud ${r.ud} saw its last CQE ${r.finals} times`, true);
      if (r.kind === "send_zc") {
        const wantCqes = r.firstMore ? 2 : 1;
        if (r.cqes !== wantCqes)
          violation(seq, `SEND_ZC ud ${r.ud}: ${r.cqes} CQEs, expected ${wantCqes} (first F_MORE ${r.firstMore})`);
        if (r.releases !== 1) violation(seq, `SEND_ZC ud ${r.ud}: buffer released ${r.releases} times`);
        if (r.notifs !== (r.firstMore ? 1 : 0))
          violation(seq, `SEND_ZC ud ${r.ud}: ${r.notifs} notifications with first F_MORE ${r.firstMore}`);
      } else if (r.cqes !== r.mores + 1) {
        // One CQE, or for a multishot TIMEOUT (flag 1 << 6, which the random flags can hit) any
        // number with F_MORE and then one without.
        violation(
          seq,
          `${r.kind} ud ${r.ud}: ${r.cqes} CQEs of which ${r.mores} with F_MORE, expected exactly one without`,
        );
      }
    }
    if (unexplainedUnknown > 0)
      violation(seq, `${unexplainedUnknown} CQEs named no live operation (last: ${lastUnknown})`);
    unexplainedUnknown = 0;
    if (ring.cqOverflow !== 0) violation(seq, `the kernel dropped ${ring.cqOverflow} CQEs (overflow counter)`);
    checkSender(seq, false);
    if (sender?.isBroken) newSender();
    timespecs.length = 0;
    if (endedWithoutMore.size > 4096) endedWithoutMore.clear();
  }

  /** Close the ring with whatever is in flight (close must end each operation once) and open a
   * fresh one. */
  function replaceRing(seq: number, inflightRecs: OpRecord[] = []): void {
    closeFds(fds);
    ring.close(200);
    for (const r of inflightRecs)
      if (r.finals !== 1) violation(seq, `${r.kind} ud ${r.ud} ended ${r.finals} times across ring close`, true);
    if (ring.ops.inflight !== 0)
      violation(seq, `ring closed with ${ring.ops.inflight} entries still in the op table`, true);
    checkSender(seq, true);
    endedWithoutMore.clear();
    ringDrained = false;
    ring = newRing();
    fds = openFds(ring);
    newSender();
  }

  /** Every send the sender accepted was released exactly once (after settle, or after the ring
   * closed under it), and it saw no CQE it could not place. */
  function checkSender(seq: number, closing: boolean): void {
    if (!sender) return;
    for (const [tag, n] of senderReleases) if (n !== 1) violation(seq, `ZcSender send ${tag} released ${n} times`);
    if (sender.stats.anomalies !== 0)
      violation(
        seq,
        `ZcSender saw ${sender.stats.anomalies} CQEs for sends already released or never submitted${closing ? " (ring closed with sends in flight)" : ""}`,
      );
    if (sender.inflight !== 0)
      violation(
        seq,
        `ZcSender has ${sender.inflight} sends never released${closing ? " after the ring closed" : ""}`,
        true,
      );
    senderReleases.clear();
    sender.stats.anomalies = 0;
  }

  /** A sequence left unsettled on purpose: operations that wait (reads on an empty pipe, a long
   * timeout) are in flight when the ring closes. */
  function closeWithInflight(seq: number): void {
    const recs: OpRecord[] = [];
    const n = 1 + int(6);
    for (let i = 0; i < n && ring.sqSpace > 0; i++) {
      const rec = blankRecord(chance(0.5) ? "read" : "timeout");
      const slot = ring.getSqe();
      if (rec.kind === "read") prepRead(ring.sq, slot, fds.pipeRd, addressOf(scratch), 64, -1);
      else {
        const ts = timespec(10_000_000_000);
        prepTimeout(ring.sq, slot, addressOf(ts), 0, 0);
        rec.hold = ts;
      }
      track(rec, slot, rec.hold ?? scratch, 0);
      recs.push(rec);
    }
    ring.submit();
    replaceRing(seq, recs);
    timespecs.length = 0;
  }

  // ---- ZCRX through the simulated kernel side (src/testing): the real ZcrxReceiver ----

  let sim: SimulatedZcrx | null = null;
  let rx: ZcrxReceiver | null = null;
  /** Chunks delivered and not yet released, across sequences (held on purpose sometimes). */
  const heldChunks: number[] = [];

  function newSim(): void {
    const bufferBytes = 4096;
    sim = new SimulatedZcrx({
      areaBytes: pick([4, 16, 64]) * bufferBytes,
      rqEntries: pick([2, 4, 16, 64]),
      // Each buffer carries one chunk of at most chunkBytes: tiny chunks in a 4-page area move
      // a few bytes per refill round, which only makes the settle loop long.
      chunkBytes: pick([bufferBytes, 1000, 512]),
      cqEntries: pick([4, 64, 4096]),
      reclaim: pick(["alloc", "flush"] as const),
      onStarve: pick(["enomem", "stall"] as const),
    });
    rx = sim.createReceiver();
    heldChunks.length = 0;
  }

  function zcrxSequence(seq: number): void {
    if (!sim || chance(0.05)) newSim();
    const s = sim!,
      r = rx!;
    report.zcrx_sequences++;
    const conns: Array<{
      fd: number;
      id: number;
      sent: number;
      got: number;
      ended: boolean;
      res: number;
      bad: number;
      max: number;
    }> = [];
    const nConns = 1 + int(3);
    for (let k = 0; k < nConns; k++) {
      const fd = s.connect();
      const max = chance(0.2) ? 1 + int(20000) : 0;
      const conn = { fd, id: -1, sent: 0, got: 0, ended: false, res: 0, bad: 0, max };
      conn.id = r.recv(
        fd,
        {
          onData: (c: typeof conn, chunk: number, _off: number, len: number) => {
            const v = r.view(chunk);
            // Byte i of connection fd's stream is (fd * 31 + i) & 0xff.
            for (let i = 0; i < len; i += 97) if (v[i] !== ((c.fd * 31 + c.got + i) & 0xff)) c.bad++;
            c.got += len;
            report.zcrx_bytes += len;
            report.zcrx_chunks++;
            heldChunks.push(chunk);
          },
          onEnd: (c: typeof conn, res: number) => {
            c.ended = true;
            c.res = res;
          },
        },
        conn,
        max ? { maxBytes: max } : {},
      );
      conns.push(conn);
    }
    const steps = 1 + int(12);
    for (let k = 0; k < steps; k++) {
      const c = pick(conns);
      const action = int(10);
      if (action < 5 && !c.ended) {
        const n = pick([1, 100, 4096, 5000, 20000]);
        const bytes = new Uint8Array(n);
        for (let i = 0; i < n; i++) bytes[i] = (c.fd * 31 + c.sent + i) & 0xff;
        try {
          s.send(c.fd, bytes);
          c.sent += n;
        } catch (e) {
          if (!(e instanceof UringError)) throw e;
          seen(`${e.code}(SimulatedZcrx.send)`);
        }
      } else if (action === 5) {
        r.run(0, 0);
      } else if (action === 6 && heldChunks.length) {
        // Release some of what is held, in a random order.
        const n = 1 + int(heldChunks.length);
        for (let i = 0; i < n; i++) r.release(heldChunks.splice(int(heldChunks.length), 1)[0]!);
      } else if (action === 7 && heldChunks.length) {
        // A double release must be refused and change nothing.
        const chunk = heldChunks.pop()!;
        r.release(chunk);
        try {
          r.release(chunk);
          violation(seq, `ZcrxReceiver accepted a second release of chunk ${chunk}`);
        } catch (e) {
          if (!(e instanceof UringError)) throw e;
          seen(`${e.code}(double release)`);
        }
      } else if (action === 8 && chance(0.3) && !c.ended) {
        s.shutdown(c.fd);
      } else {
        r.run(0, 0);
      }
    }
    // Settle: end every connection, keep releasing until everything was delivered.
    for (const c of conns) if (!c.ended) s.shutdown(c.fd);
    let rounds = 0;
    do {
      while (heldChunks.length) r.release(heldChunks.pop()!);
      r.run(0, 0);
    } while ((conns.some((c) => !c.ended) || heldChunks.length > 0) && rounds++ < 100_000);
    if (rounds >= 100_000) {
      const st = conns
        .map(
          (c) =>
            `fd ${c.fd} ${c.got}/${c.sent}${c.max ? ` max ${c.max}` : ""} ended ${c.ended} queued ${s.queuedOn(c.fd)}`,
        )
        .join("; ");
      violation(
        seq,
        `zcrx made no progress: ${st}; live ${r.live}, pending ${r.pending}, unpublished ${r.unpublished}, sim in use ${s.buffersInUse}, counters ${JSON.stringify(s.counters)}`,
      );
    }
    for (const c of conns) {
      if (!c.ended) violation(seq, `zcrx connection ${c.fd} did not end (${c.got}/${c.sent} bytes)`, true);
      const want = c.max ? Math.min(c.max, c.sent) : c.sent;
      if (c.ended && c.res === 0 && c.got < want)
        violation(seq, `zcrx connection ${c.fd} ended at ${c.got} of ${want} bytes`);
      if (c.bad) violation(seq, `zcrx connection ${c.fd}: ${c.bad} bytes differ from what was sent`);
    }
    if (r.live !== 0) violation(seq, `${r.live} zcrx chunks still live after releasing all`, true);
    s.reclaim();
    if (r.pending === 0 && s.buffersInUse !== 0)
      violation(seq, `the simulated kernel still counts ${s.buffersInUse} buffers in use`, true);
    if (s.violations.length) violation(seq, `refill protocol violations: ${s.violations.slice(0, 3).join("; ")}`);
    if (r.stats.rqFull && report.zcrx_sequences === 1) seen("RQ_FULL(pending releases)");
  }

  const every = o.progressEvery ?? 0;
  try {
    for (let seq = 0; seq < o.sequences; seq++) {
      if (o.maxMs && performance.now() - started > o.maxMs) break;
      try {
        if (seq > 0 && seq % ringEvery === 0) closeWithInflight(seq);
        else if (chance(0.15)) zcrxSequence(seq);
        else oneSequence(seq);
      } catch (e) {
        if (e instanceof UringError) {
          // A refusal the sequence did not expect (the kernel said no to something valid).
          violation(seq, `unexpected ${e.message}`);
          seen(`${e.code}(unexpected)`);
        } else {
          report.foreign_errors++;
          violation(seq, `threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
        }
        replaceRing(seq);
      }
      report.sequences++;
      if (every && report.sequences % every === 0) {
        report.seconds = (performance.now() - started) / 1000;
        o.onProgress?.(report);
      }
    }
  } finally {
    closeFds(fds);
    ring.close(200);
  }
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

const USAGE = `usage: bun scripts/fuzz.ts [options]

Random valid and invalid operation sequences against a live ring; exit 1 on any violation.
  --sequences N    sequences to run (default 100000)
  --seed S         random seed (default 1)
  --ring-every K   a fresh ring every K sequences (default 200)
  --max-seconds T  stop after T seconds (default: no limit)
  --json           one JSON object instead of the report
  -h, --help       this text`;

function parseArgs(argv: string[]): {
  sequences: number;
  seed: number;
  ringEvery: number;
  json: boolean;
  maxMs: number;
} {
  const cli = { name: "fuzz", usage: USAGE };
  const { values: v } = parseCli(cli, argv, {
    sequences: { type: "string" },
    seed: { type: "string" },
    "ring-every": { type: "string" },
    "max-seconds": { type: "string" },
    json: { type: "boolean" },
  });
  try {
    return {
      sequences: v.sequences === undefined ? 100_000 : numberArg("--sequences", v.sequences),
      seed: v.seed === undefined ? 1 : numberArg("--seed", v.seed, { max: 2 ** 32 - 1 }),
      ringEvery: v["ring-every"] === undefined ? 200 : numberArg("--ring-every", v["ring-every"]),
      json: v.json === true,
      maxMs:
        v["max-seconds"] === undefined ? 0 : numberArg("--max-seconds", v["max-seconds"], { fraction: true }) * 1000,
    };
  } catch (e) {
    if (e instanceof UsageError) usageExit(cli, e.message);
    throw e;
  }
}

if (import.meta.main) {
  const a = parseArgs(process.argv.slice(2));
  const r = runFuzz({
    sequences: a.sequences,
    seed: a.seed,
    ringEvery: a.ringEvery,
    maxMs: a.maxMs,
    progressEvery: a.json ? 0 : 10_000,
    onProgress: (p) =>
      console.log(
        `  ${p.sequences} sequences, ${p.operations} operations, ${p.violations.length} violations, ${p.seconds.toFixed(1)} s`,
      ),
  });
  if (!a.json) {
    console.log(
      `fuzz seed ${r.seed}: ${r.sequences} sequences, ${r.operations} operations, ${r.cqes} CQEs, ${r.rings} rings, ${r.seconds.toFixed(1)} s`,
    );
    console.log(
      `  SEND_ZC ${r.send_zc} (notifications ${r.send_zc_notifs}, stray notifications after a first CQE without F_MORE ${r.stray_notifs}); refused library calls ${r.refused_calls}`,
    );
    console.log(
      `  refused-slot NOPs cancelled in a link chain ${r.refused_slot_cqes}; IO_DRAIN sequences ended by ring close ${r.drain_stuck}`,
    );
    console.log(
      `  ZcSender ${r.sender_sends} sends, ${r.sender_released} released; ZCRX simulator ${r.zcrx_sequences} sequences, ${r.zcrx_chunks} chunks, ${r.zcrx_bytes} bytes`,
    );
    const errs = Object.entries(r.errors_seen).sort((x, y) => y[1] - x[1]);
    console.log(`  errors seen: ${errs.map(([k, v]) => `${k} ${v}`).join(", ") || "none"}`);
    console.log(`  leaks ${r.leaks}, foreign errors ${r.foreign_errors}, violations ${r.violations.length}`);
    for (const v of r.violations) console.log(`    ${v}`);
  }
  if (a.json) console.log(JSON.stringify(r));
  process.exit(r.violations.length === 0 && r.foreign_errors === 0 ? 0 : 1);
}
