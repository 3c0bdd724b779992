// ZcSender: zero-copy sends on one socket, with the SEND_ZC lifecycle handled by the library. It
// reports two moments per send, onSent(tag, res, error) at the first CQE and onReleased(tag, usage)
// once the buffer may be reused, and never waits for a release before sending the next buffer. It
// is the one send engine of the library: the async API's TCP and UDP sockets send through it too
// (a destination per datagram, cancel(), and records that grow when the owner does its own
// backpressure).
//
// This file holds the public API and turns the queue into SQEs. The rest of src/zc, one concern
// per file:
//   options.ts    every option checked and the kernel probed before a sender is built
//   records.ts    one record per send (typed arrays, no object per send), the free list, the queue
//   plan.ts       which queued sends share an operation and how many operations a chain holds
//   encode.ts     one operation into an SQE and its scratch structs (msghdr, iovecs, sockaddr)
//   lifecycle.ts  first CQE, notification, release, failures, user callbacks
//   policy.ts     adaptive mode: SEND_ZC or SEND per size class
//   stats.ts      the counters (ZcStats, ZcSizeClass)
// The capability probes (probeSendZcFlags, probeReportUsage, probeNotifUserData) are in
// src/ring/kernel.ts.
//
// Ordering on stream sockets: several sends in flight on one TCP socket may complete out of order
// when one of them has to wait for socket space, so the sender submits queued sends as one chain
// linked with IOSQE_IO_LINK and MSG_WAITALL (the SEND_ZC man page: a short send in a link is only
// an error with MSG_WAITALL), and starts the next chain when the current one has reported "sent"
// (not "released"). On datagram sockets every send goes out at once. Either way at most `capacity`
// sends hold buffers in the kernel at once.
import { addressOf } from "../../ffi/index.ts";
import * as Q from "../abi/sqe.ts";
import { AF_UNIX, MSG_NOSIGNAL, MSG_WAITALL } from "../abi/net.ts";
import { IOVEC } from "../abi/register.ts";
import { EBUSY, ECANCELED } from "../abi/errno.ts";
import { addSqeFlags } from "../ops/sqe.ts";
import { prepCancel64 } from "../ops/prep.ts";
import { type Ring } from "../ring/ring.ts";
import { UringError, closedError, invalidArgument, shown } from "../error.ts";
import { type SocketAddress, type Sockaddr, checkSockaddr, formatAddress } from "../net/sockaddr.ts";
import type { FixedBufferPool } from "./pool.ts";
import { AdaptivePolicy, type AdaptivePolicyOptions } from "./policy.ts";
import { ZcStats } from "./stats.ts";
import {
  KIND_COPY,
  KIND_FIXED,
  KIND_MSG,
  KIND_VEC,
  KIND_ZC,
  SEND_AWAIT_NOTIF,
  SEND_SUBMITTED,
  SendQueue,
  SendRecords,
} from "./records.ts";
import { ChainPlan, planChain, type ChainLimits } from "./plan.ts";
import { ScratchBlock, SendOp, encodeSendOp, putIovec } from "./encode.ts";
import { SendLifecycle } from "./lifecycle.ts";
import { senderSettings } from "./options.ts";

export { ZcStats, ZcSizeClass } from "./stats.ts";
export { probeSendZcFlags, probeReportUsage } from "../ring/kernel.ts";
export { ZC_MODES, checkZcSqeFlags } from "./options.ts";

/** How a sender moves bytes.
 * - copy: IORING_OP_SEND (the kernel copies).
 * - zc: IORING_OP_SEND_ZC from the caller's memory (pages pinned per send).
 * - zc-fixed: SEND_ZC with IORING_RECVSEND_FIXED_BUF from a FixedBufferPool (pinned once).
 * - mixed: SEND below `threshold` bytes, SEND_ZC at or above it, order kept by the chain.
 * - adaptive (default): SEND below `threshold` bytes; above it, SEND_ZC or SEND per size class as
 *   measured on this socket: AdaptivePolicy (src/zc/policy.ts) says how, and its options
 *   (window, rounds, margin, ...) are passed through from ZcSenderOptions. */
export type ZcMode = "copy" | "zc" | "zc-fixed" | "mixed" | "adaptive";

/** What the kernel said about a released buffer: "zerocopy" (sent from the caller's pages),
 * "copied" (SEND_ZC, but the kernel copied: IORING_NOTIF_USAGE_ZC_COPIED), "unreported"
 * (SEND_ZC without REPORT_USAGE, or no notification because the send failed early), "copy-send"
 * (a plain SEND). */
export type ZcUsage = "zerocopy" | "copied" | "unreported" | "copy-send";

/** The adaptive mode's options (AdaptivePolicyOptions: window, copiedRatio, rounds, margin,
 * probeEvery, trialMs, warmupMs, remeasureMs) apply to mode "adaptive" and are checked in every mode. */
export interface ZcSenderOptions extends Omit<AdaptivePolicyOptions, "threshold" | "reportUsage"> {
  /** Default "adaptive". */
  mode?: ZcMode;
  /** IORING_SEND_ZC_REPORT_USAGE (6.2) on every SEND_ZC. Default true. */
  reportUsage?: boolean;
  /** Size in bytes at which mixed starts using SEND_ZC, and below which adaptive never tries it.
   * Default 16384 for mixed (gRPC and rsync ports pick 16 KiB), 2048 for adaptive (a payload
   * below a few KiB costs more to pin and notify than to copy: 6.10's notification stacking put
   * the crossover near 3 KB on real NICs; adaptive measures the classes above). */
  threshold?: number;
  /** Sends that may be queued or in flight before release (records, preallocated), and the most
   * that hold buffers in the kernel at once. Default 1024. */
  capacity?: number;
  /** More sends than `capacity` wait in the queue (the records grow) instead of being refused
   * with EBUSY: for an owner with its own backpressure. Default false. */
  grow?: boolean;
  /** Stream sockets: most operations in one linked chain, and most sends gathered into one
   * operation. Default 64. */
  maxChain?: number;
  /** Stream sockets: send consecutive queued sends of the same kind as one operation with
   * iovecs. Default true. */
  gather?: boolean;
  /** Destination for every send on an unconnected datagram socket (sqe.addr2 / addr_len). */
  destination?: SocketAddress;
  /** Required for zc-fixed: the registered buffers sends come from. In the other modes, a
   * zero-copy send whose buffer lies in the pool uses it too (FIXED_BUF). */
  pool?: FixedBufferPool;
  /** Extra IOSQE_* flags for every SQE (IOSQE_ASYNC, IOSQE_FIXED_FILE). IOSQE_CQE_SKIP_SUCCESS is
   * refused (the kernel rejects it for SEND_ZC) and IOSQE_IO_LINK is the sender's own. */
  sqeFlags?: number;
  /** Use IORING_SEND_VECTORIZED (6.17) for sendmsg() where the kernel has it, else SENDMSG_ZC.
   * Default "auto". */
  vectorized?: boolean | "auto";
  /** A separate user_data for each notification CQE, given in sqe->addr3: its own op-table
   * entry, so a notification is matched by the table rather than by IORING_CQE_F_NOTIF on the
   * send's entry. Linux 7.1 (commit cb9487333652), probed (probeNotifUserData), not read from
   * the version. "auto" (default): on where the kernel has it; otherwise each notification
   * carries its send's user_data and IORING_CQE_F_NOTIF tells it apart, in any order. true:
   * UringError EOPNOTSUPP on a kernel without it, naming the probe's answer. false: off.
   * stats.notifUserData / notifUserDataReason say which and why. */
  notifUserData?: boolean | "auto";
  /** Socket type, read with getsockopt(SO_TYPE) when not given. */
  stream?: boolean;
  /** "sent": the first CQE (res = bytes, or -errno). */
  onSent?: (tag: any, res: number, error: UringError | null) => void;
  /** "released": the buffer may be reused; called exactly once per send. */
  onReleased?: (tag: any, usage: ZcUsage) => void;
}

/** Where a separate notification user_data comes from, for errors and reasons. */
export class ZcSender {
  readonly ring: Ring;
  readonly fd: number;
  readonly mode: ZcMode;
  readonly stream: boolean;
  /** Socket family from SO_DOMAIN (AF_INET, AF_INET6, AF_UNIX...), -1 when unknown. */
  readonly family: number;
  readonly stats = new ZcStats();
  readonly capacity: number;
  onSent: ((tag: any, res: number, error: UringError | null) => void) | undefined;
  onReleased: ((tag: any, usage: ZcUsage) => void) | undefined;

  private readonly threshold: number;
  private readonly grow: boolean;
  /** The destination of sends that name none (the `destination` option). */
  private readonly dest: Sockaddr | null;
  private readonly zcFlags: number;
  private readonly extraSqeFlags: number;
  private readonly maxChain: number;
  private readonly pool: FixedBufferPool | null;
  private readonly useVectorized: boolean;
  private readonly handler: (rec: number, res: number, flags: number, index: number) => void;
  /** Notifications under a user_data of their own (notifUserData): their handler, and the
   * op-table entries one operation takes (2 with it: the send's and its notification's). */
  private readonly separateNotif: boolean;
  private readonly notifHandler: (rec: number, res: number, flags: number, index: number) => void;
  private readonly entriesPerOp: number;
  /** Adaptive mode: which size classes go out as SEND_ZC (null in the other modes). */
  private readonly policy: AdaptivePolicy | null;
  /** One record per send until released, and the queue of those not yet written. */
  private readonly records: SendRecords;
  private readonly queue: SendQueue;
  /** "sent" and "released" for each send, failures, and the user callbacks. */
  private readonly lifecycle: SendLifecycle;
  /** Operations of the chain in flight that have not reported "sent" (stream sockets). */
  private chainLeft = 0;
  /** Gathering (stream sockets): iovecs of the chain being written. */
  private readonly gather: boolean;
  private readonly iovArea: Uint8Array;
  private readonly iovView: DataView;
  private readonly iovAddress: number;
  private iovUsed = 0;
  // Reused from flush to flush and from operation to operation: no allocation per send.
  private readonly plan: ChainPlan;
  private readonly limits: ChainLimits;
  private readonly op = new SendOp();
  private readonly scratch = new ScratchBlock();
  private corked = false;

  constructor(ring: Ring, fd: number, o: ZcSenderOptions = {}) {
    const where = "ZcSender";
    // Every option is checked, and every probe asked, before anything is built.
    const set = senderSettings(ring, fd, o, where);
    const { mode, capacity, threshold, reportUsage, dest } = set;
    this.ring = ring;
    this.fd = fd;
    this.mode = mode;
    this.capacity = capacity;
    this.threshold = threshold;
    this.grow = set.grow;
    this.stream = set.stream;
    this.family = set.family;
    this.dest = dest;
    this.pool = set.pool;
    this.extraSqeFlags = set.sqeFlags;
    this.maxChain = set.maxChain;
    this.zcFlags = reportUsage ? Q.IORING_SEND_ZC_REPORT_USAGE : 0;
    this.useVectorized = set.vectorized;
    this.separateNotif = set.separateNotif;
    this.entriesPerOp = set.separateNotif ? 2 : 1;
    // Built in every mode, so its options are checked in every mode.
    const policy = new AdaptivePolicy(this.stats, { ...o, threshold, reportUsage }, where);
    this.policy = mode === "adaptive" ? policy : null;
    this.onSent = o.onSent;
    this.onReleased = o.onReleased;

    const s = this.stats;
    s.mode = mode;
    s.reportUsage = reportUsage;
    s.notifUserData = set.separateNotif;
    s.notifUserDataReason = set.notifUserDataReason;
    s.vectorized = set.vectorized;
    s.vectorizedReason = set.vectorizedReason;
    if (mode === "copy") s.decide("copy", "mode copy: every send is IORING_OP_SEND");
    else if (mode === "zc" || mode === "zc-fixed")
      s.decide(
        "zc",
        `mode ${mode}: every send is IORING_OP_SEND_ZC${mode === "zc-fixed" ? " from registered buffers" : ""}`,
      );
    else if (mode === "mixed") s.decide("zc", `mode mixed: SEND below ${threshold} bytes, SEND_ZC at or above`);
    else if (this.family === AF_UNIX)
      policy.refuseZeroCopy(
        "AF_UNIX sockets cannot send zero-copy (the kernel answers EOPNOTSUPP): every send is IORING_OP_SEND",
      );
    else s.decide("zc", policy.describe());
    s.switches = 0;

    this.records = new SendRecords(capacity);
    this.queue = new SendQueue(capacity);
    this.gather = this.stream && o.gather !== false;
    this.iovArea = new Uint8Array(Math.max(1, capacity) * IOVEC.size);
    this.iovView = new DataView(this.iovArea.buffer);
    this.iovAddress = addressOf(this.iovArea);
    this.plan = new ChainPlan(this.maxChain);
    this.limits = {
      maxOps: 1,
      maxGather: this.maxChain,
      maxSends: capacity,
      gather: this.gather,
      gatherFixed: this.useVectorized,
    };
    const op = this.op;
    op.fd = fd;
    // MSG_WAITALL makes a short stream send retry inside the kernel (io_net_retry), which a link
    // needs; MSG_NOSIGNAL keeps a reset peer from raising SIGPIPE (SEND_ZC adds it itself).
    op.msgFlags = (this.stream ? MSG_WAITALL : 0) | MSG_NOSIGNAL;
    op.zcFlags = this.zcFlags;
    op.vectorized = this.useVectorized;
    op.dest = dest;
    const scratch = this.scratch;
    scratch.bytes = ring.ops.scratch;
    scratch.view = ring.ops.scratchView;
    this.lifecycle = new SendLifecycle(this.records, this.stats, this.policy, this, this.stream, fd, reportUsage);
    // One handler for every CQE of this sender, made once: data is the record index.
    this.handler = (rec, res, flags, index) => this.onCqe(rec, res, flags, index);
    this.notifHandler = (rec, res, flags, index) => this.onNotificationCqe(rec, res, flags, index);
  }

  /** Sends accepted and not yet released. */
  get inflight(): number {
    return this.records.capacity - this.records.available;
  }

  /** Sends written to the SQ and not yet released: they hold buffers in the kernel. */
  get held(): number {
    return this.inflight - this.queue.count;
  }

  /** Records free for new sends. */
  get available(): number {
    return this.records.available;
  }

  /** Sends queued behind the chain in flight (stream sockets) or while corked. */
  get queued(): number {
    return this.queue.count;
  }

  /** Sends are queued, not corked, and no operation of this sender is in flight to flush them
   * when it completes: the last flush found the ring's op table full. Call flush() once other
   * operations have completed. */
  get stalled(): boolean {
    // Below the bound on sends in the kernel (at the bound, a release flushes).
    return (
      this.queue.count > 0 &&
      !this.corked &&
      !this.lifecycle.broken &&
      this.chainLeft === 0 &&
      this.held < this.capacity
    );
  }

  /** Whether an earlier send on this stream failed: later sends are refused (their bytes would
   * land after a gap). */
  get isBroken(): boolean {
    return this.lifecycle.broken;
  }

  /** Hold sends in the queue until uncork() (to build one chain from many sends). */
  cork(): void {
    this.corked = true;
  }

  /** Release the queue (see cork). */
  uncork(): void {
    this.corked = false;
    this.flush();
  }

  /** Send `buf` (a view the sender holds until released; do not modify it before onReleased).
   * `tag` comes back in onSent and onReleased. In zc-fixed mode `buf` must lie inside one buffer
   * of the pool. On a datagram socket `dest` is this datagram's destination (default: the
   * `destination` option, or the connected peer), and `buf` may be empty (an empty datagram). */
  send(buf: Uint8Array, tag?: unknown, dest: Sockaddr | null = null): void {
    const len = buf?.byteLength;
    if (!(buf instanceof Uint8Array) || (len === 0 && (this.stream || (buf.buffer as ArrayBuffer).detached === true))) {
      throw invalidArgument("ZcSender.send", "buf must be a non-empty Uint8Array (not detached)");
    }
    if (dest !== null) {
      checkSockaddr("ZcSender.send", dest);
      if (this.stream)
        throw invalidArgument(
          "ZcSender.send",
          `a destination (${formatAddress(dest)}) applies to datagram sockets; this one is a stream`,
        );
    }
    if (len > 0xffffffff)
      throw invalidArgument(
        "ZcSender.send",
        `buf must be at most 4294967295 bytes (an SQE's length is a u32), got ${shown(len)}`,
      );
    let kind: number;
    let bufIndex = -1;
    if (this.mode === "zc-fixed") {
      bufIndex = this.pool!.indexOf(buf);
      if (bufIndex < 0)
        throw invalidArgument(
          "ZcSender.send",
          "in zc-fixed mode buf must be a view inside one buffer of the sender's FixedBufferPool",
        );
      kind = KIND_FIXED;
    } else {
      // An empty datagram has no memory to pin.
      kind = len === 0 ? KIND_COPY : this.chooseKind(len);
      // A zero-copy send from memory of the sender's pool goes out as a fixed-buffer send: the
      // pages were pinned once, at registration.
      if (kind === KIND_ZC && this.pool !== null) {
        const i = this.pool.indexOf(buf);
        if (i >= 0) {
          kind = KIND_FIXED;
          bufIndex = i;
        }
      }
    }
    const r = this.take();
    const rec = this.records;
    rec.kind[r] = kind;
    rec.length[r] = len;
    rec.address[r] = len === 0 ? 0 : addressOf(buf);
    rec.bufIndex[r] = bufIndex;
    rec.hold[r] = buf;
    rec.tag[r] = tag;
    rec.dest[r] = dest;
    this.enqueue(r);
  }

  /** Send `length` bytes at `offset` of pool buffer `index` with FIXED_BUF (any mode; needs the
   * pool option). */
  sendFixed(index: number, length: number, tag?: unknown, offset = 0): void {
    const pool = this.pool;
    if (!pool) throw invalidArgument("ZcSender.sendFixed", "the sender has no FixedBufferPool (options.pool)");
    if (!Number.isInteger(index) || index < 0 || index >= pool.count)
      throw invalidArgument("ZcSender.sendFixed", `index must be 0..${pool.count - 1}, got ${shown(index)}`);
    if (
      !Number.isInteger(offset) ||
      !Number.isInteger(length) ||
      offset < 0 ||
      length < 1 ||
      offset + length > pool.bufferSize
    ) {
      throw invalidArgument(
        "ZcSender.sendFixed",
        `offset ${offset} + length ${length} must lie inside the ${pool.bufferSize}-byte buffer`,
      );
    }
    const r = this.take();
    const rec = this.records;
    rec.kind[r] = KIND_FIXED;
    rec.length[r] = length;
    rec.address[r] = pool.address(index) + offset;
    rec.bufIndex[r] = index;
    rec.hold[r] = pool;
    rec.tag[r] = tag;
    this.enqueue(r);
  }

  /** Send a header and a body as one message: SEND_ZC with IORING_SEND_VECTORIZED where the
   * kernel has it (6.17), else SENDMSG_ZC with two iovecs. Both arrays are held until released. */
  sendmsg(header: Uint8Array, body: Uint8Array, tag?: unknown): void {
    if (
      !(header instanceof Uint8Array) ||
      !(body instanceof Uint8Array) ||
      header.byteLength === 0 ||
      body.byteLength === 0
    ) {
      throw invalidArgument("ZcSender.sendmsg", "header and body must be non-empty Uint8Arrays");
    }
    if (this.mode === "copy")
      throw invalidArgument(
        "ZcSender.sendmsg",
        "sendmsg() is zero-copy; a copy-mode sender sends the parts with send()",
      );
    const kind = this.useVectorized ? KIND_VEC : KIND_MSG;
    if (kind === KIND_MSG) this.ring.requireOp(Q.IORING_OP_SENDMSG_ZC, "ZcSender.sendmsg");
    const r = this.take();
    const rec = this.records;
    rec.kind[r] = kind;
    rec.length[r] = header.byteLength + body.byteLength;
    rec.address[r] = addressOf(header);
    rec.length2[r] = body.byteLength;
    rec.address2[r] = addressOf(body);
    rec.bufIndex[r] = -1;
    rec.hold[r] = header;
    rec.hold2[r] = body;
    rec.tag[r] = tag;
    this.enqueue(r);
  }

  /** Write queued sends into the SQ (the next ring.submit / run submits them). Called by send()
   * unless corked. On a stream, consecutive queued sends of the same kind go out as one gathered
   * operation (iovecs: SEND / SEND_ZC with IORING_SEND_VECTORIZED on 6.17+, else SENDMSG /
   * SENDMSG_ZC), several such operations are linked, and the next flush waits until this chain
   * has reported "sent". Datagrams go out one operation per send. */
  flush(): void {
    this.flushQueue();
    this.lifecycle.raiseCallbackError();
  }

  /** Fail every send still queued (not yet written to the SQ): each gets -ECANCELED in onSent,
   * with `error` when given, and is released. For an owner that stops using the sender, e.g.
   * because the ring is going away while the sends wait for op-table room (`stalled`). Sends
   * already in the kernel are not touched. */
  abandonQueued(error: UringError | null = null): void {
    this.lifecycle.failQueued(this.queue, error);
    this.lifecycle.raiseCallbackError();
  }

  /** Cancel the send whose tag is `tag` (the first queued one with it, else the one in the
   * kernel). Queued (its SQE not written yet), it leaves the queue and fails with ECANCELED now
   * (onSent, then onReleased). A datagram in the kernel gets an IORING_OP_ASYNC_CANCEL, and its
   * CQE says which won: -ECANCELED, or its byte count if it had gone. A stream send in the kernel
   * is never cut (the rest of its chain and the byte stream depend on it). Returns whether the
   * send was taken out or its cancel submitted. */
  cancel(tag: unknown): boolean {
    if (tag === undefined)
      throw invalidArgument(
        "ZcSender.cancel",
        "tag must be the tag a send was given (a send without one cannot be cancelled)",
      );
    const rec = this.records;
    const queue = this.queue;
    for (let i = 0; i < queue.count; i++) {
      const q = queue.at(i);
      if (rec.tag[q] !== tag) continue;
      queue.removeAt(i);
      this.lifecycle.cancelQueued(
        q,
        new UringError(
          "ZcSender.cancel",
          ECANCELED,
          `fd ${this.fd}: a queued ${rec.length[q]}-byte send was cancelled before its SQE was written; nothing of it was sent`,
        ),
      );
      this.lifecycle.raiseCallbackError();
      return true;
    }
    const r = rec.find(tag);
    if (r < 0) return false;
    const ring = this.ring;
    if (this.stream || rec.state[r] !== SEND_SUBMITTED || ring.isClosed) return false;
    // With every op-table entry taken, the cancel goes out untracked (user_data 0: its CQE is
    // counted as unknown); a cancel needs nothing back.
    const slot = ring.ops.available > 0 ? ring.begin(ignoreCqe, undefined) : ring.getSqe();
    prepCancel64(ring.sq, slot, rec.userData[r]!, 0);
    return true;
  }

  private flushQueue(): void {
    const queue = this.queue;
    if (this.corked || queue.count === 0) return;
    const ring = this.ring;
    const life = this.lifecycle;
    // A closed ring takes nothing more: what is queued fails now instead of being pinned forever.
    if (ring.isClosed) {
      life.failQueued(queue);
      return;
    }
    // Every operation needs an op-table entry. When the table is full, what does not fit stays
    // queued, in order and untouched (stats.slotWaits): this sender's next CQE flushes again,
    // and with nothing of it in flight (`stalled`) the caller flushes once operations complete.
    if (!this.stream) {
      while (queue.count > 0 && this.held < this.capacity) {
        if (ring.ops.available < this.entriesPerOp) {
          this.stats.slotWaits++;
          return;
        }
        const r = queue.shift();
        // A datagram stands alone: one whose buffer went away fails by itself.
        if (!this.records.intact(r)) life.failDetached(r);
        else {
          this.records.next[r] = -1;
          this.writeOp(r, 1, false);
        }
      }
      return;
    }
    if (this.chainLeft > 0) return;
    if (life.broken) {
      life.failQueued(queue);
      return;
    }
    const room = this.capacity - this.held;
    // At the bound on sends in the kernel: a release flushes again.
    if (room <= 0) return;
    const slots = Math.floor(ring.ops.available / this.entriesPerOp);
    if (slots === 0) {
      this.stats.slotWaits++;
      return;
    }
    // At most maxChain operations per chain, and a chain must sit whole in the SQ: getSqe would
    // submit a full SQ mid-chain and cut the link.
    const plan = this.plan;
    this.limits.maxOps = Math.min(this.maxChain, Math.max(1, ring.sqSpace), slots);
    this.limits.maxSends = room;
    planChain(this.records, queue, this.limits, plan);
    // A send whose buffer was detached or shrunk since send() is never written: its bytes are
    // gone, and the stream cannot skip them, so it and everything after it fail (broken).
    if (plan.detached >= 0) life.breakOnDetached(plan.detached);
    const ops = plan.ops;
    if (ops === 0) {
      // The first queued send was the detached one: nothing goes out, everything queued fails.
      life.failQueued(queue);
      return;
    }
    if (ring.sqSpace < ops) ring.submit();
    this.chainLeft = ops;
    this.iovUsed = 0;
    let g = 0;
    try {
      for (; g < ops; g++) this.writeGroup(plan.heads[g]!, plan.sizes[g]!, g < ops - 1);
    } catch (e) {
      // writeOp failed group g (and released its sends): only the groups written before it will
      // report, and the stream is broken from it on.
      this.chainLeft = g;
      throw e;
    }
  }

  /** Dequeue a group of `n` sends headed by `head`, link them, and write their operation. */
  private writeGroup(head: number, n: number, link: boolean): void {
    // Link the group's records in queue order; the op's data is the first record.
    const next = this.records.next;
    let prev = -1;
    for (let k = 0; k < n; k++) {
      const r = this.queue.shift();
      if (prev >= 0) next[prev] = r;
      prev = r;
    }
    next[prev] = -1;
    this.writeOp(head, n, link);
  }

  private chooseKind(len: number): number {
    switch (this.mode) {
      case "copy":
        return KIND_COPY;
      case "zc":
        return KIND_ZC;
      case "mixed":
        return len >= this.threshold ? KIND_ZC : KIND_COPY;
      default:
        return this.policy!.chooseZeroCopy(len) ? KIND_ZC : KIND_COPY;
    }
  }

  private take(): number {
    if (this.ring.isClosed) {
      // Whatever is still queued can never go out: release it now, then refuse.
      this.lifecycle.failQueued(this.queue);
      throw closedError("ZcSender.send");
    }
    if (this.lifecycle.broken) {
      throw this.stats.lastError ?? new UringError("ZcSender.send", ECANCELED, "an earlier send on this stream failed");
    }
    if (this.records.available === 0 && this.grow) {
      this.records.grow();
      this.queue.grow(this.records.capacity);
    } else if (this.records.available === 0) {
      throw new UringError(
        "ZcSender.send",
        EBUSY,
        `all ${this.capacity} send records are queued or awaiting release`,
        "run the ring until onReleased frees some, or create the sender with a larger capacity",
      );
    }
    this.stats.sends++;
    return this.records.take();
  }

  private enqueue(r: number): void {
    this.queue.push(r);
    this.flushQueue();
  }

  /** Write one operation for `n` records starting at `head` (linked through `next` when n > 1). */
  private writeOp(head: number, n: number, link: boolean): void {
    const ring = this.ring;
    let notifUd = 0;
    let slot = -1;
    try {
      slot = ring.begin(this.handler, head);
      // A zero-copy operation's notification gets an entry of its own where the kernel has that
      // (sqe->addr3): it is matched by the op table, never by a flag on a shared entry.
      if (this.separateNotif && this.records.kind[head] !== KIND_COPY)
        notifUd = ring.ops.add(this.notifHandler, head, undefined);
      this.op.notifUserData = notifUd;
      this.writeSqe(head, n, link, ring.userDataOf(slot), slot);
    } catch (e) {
      // Nothing of this operation may reach the kernel, and its sends must not be lost: the
      // slot becomes a NOP, the entries are given back, and each send fails and is released.
      if (slot >= 0) ring.abandon(slot);
      if (notifUd !== 0) ring.ops.cancelUnsubmitted(notifUd);
      this.lifecycle.failOp(head, e);
      throw e;
    }
    this.records.notifUserData[head] = notifUd;
  }

  /** Fill the operation of `n` records from `head` and encode it in `slot` (user_data `ud`). */
  private writeSqe(head: number, n: number, link: boolean, ud: number, slot: number): void {
    const ring = this.ring;
    const sq = ring.sq;
    const rec = this.records;
    const op = this.op;
    const kind = rec.kind[head]!;
    op.kind = kind;
    op.count = n;
    op.bufIndex = rec.bufIndex[head]!;
    op.dest = rec.dest[head] ?? this.dest;
    let total = 0;
    if (n > 1) {
      // Gathered: one iovec per send in the sender's iovec area. The kernel copies the iovecs
      // when it takes the SQE (IORING_FEAT_SUBMIT_STABLE), and the area is rewritten only by the
      // next flush, which waits for this chain's CQEs.
      const iv = this.iovView;
      let at = this.iovUsed * IOVEC.size;
      for (let r = head; r >= 0; r = rec.next[r]!) {
        putIovec(iv, at, rec.address[r]!, rec.length[r]!);
        total += rec.length[r]!;
        at += IOVEC.size;
      }
      op.iovecs = this.iovAddress + this.iovUsed * IOVEC.size;
      this.iovUsed += n;
      this.stats.gathered += n;
    } else {
      total = rec.length[head]!;
      op.address = rec.address[head]!;
      op.length = total;
      op.address2 = rec.address2[head]!;
      op.length2 = rec.length2[head]!;
    }
    const scratch = this.scratch;
    scratch.offset = ring.ops.scratchOffset(ud);
    scratch.address = ring.ops.scratchAddressOf(ud);
    // The opcode goes into the record for errors: a gathered or two-part send is SENDMSG /
    // SENDMSG_ZC on kernels without IORING_SEND_VECTORIZED.
    rec.opcode[head] = encodeSendOp(sq, slot, op, scratch);
    const s = this.stats;
    if (kind === KIND_COPY) s.copySends += n;
    else if (kind === KIND_ZC) s.zcSends += n;
    else if (kind === KIND_FIXED) s.fixedSends += n;
    else s.msgSends += n;
    s.ops++;
    const f = this.extraSqeFlags | (link ? Q.IOSQE_IO_LINK : 0);
    if (f) addSqeFlags(sq, slot, f);
    rec.userData[head] = ud;
    rec.opBytes[head] = total;
    // Adaptive: only an operation of a class under measurement is timed (0: not timed).
    const policy = this.policy;
    if (policy !== null) rec.writtenAt[head] = policy.stampWrite(rec.length[head]!);
    for (let r = head; r >= 0; r = rec.next[r]!) rec.state[r] = SEND_SUBMITTED;
  }

  private onCqe(head: number, res: number, flags: number, index: number): void {
    const notifUd = this.records.notifUserData[head]!;
    if (notifUd !== 0) {
      // The notification has its own entry, so this one gets no other CQE: with F_MORE the op
      // table kept it for one that goes elsewhere (free it now); without, no notification comes
      // (free the notification's entry). Done before the lifecycle runs callbacks that may reuse
      // the record.
      this.records.notifUserData[head] = 0;
      if (index >= 0 && (flags & Q.IORING_CQE_F_MORE) !== 0)
        this.ring.ops.cancelUnsubmitted(this.records.userData[head]!);
      else this.ring.ops.cancelUnsubmitted(notifUd);
    }
    const first = this.lifecycle.onCqe(head, res, flags, index);
    if (first && this.stream) this.chainLeft--;
    // The chain reported "sent", or a release made room under the bound: the queue goes on.
    if (this.queue.count > 0 && this.chainLeft === 0) this.flushQueue();
    if (first) this.lifecycle.raiseCallbackError();
  }

  /** A CQE on a notification's own entry (notifUserData). Ring.close abandons the entry (index
   * -1): the sends are released then if their first CQE came, else their own entry's
   * abandonment fails them. */
  private onNotificationCqe(head: number, res: number, flags: number, index: number): void {
    const life = this.lifecycle;
    if (index < 0) {
      if (this.records.state[head] === SEND_AWAIT_NOTIF) life.onCqe(head, res, 0, index);
      return;
    }
    if ((flags & Q.IORING_CQE_F_NOTIF) === 0) {
      this.stats.anomalies++;
      return;
    }
    life.onNotification(head, res);
    // A release made room under the bound on sends in the kernel: the queue goes on.
    if (this.queue.count > 0 && this.chainLeft === 0) this.flushQueue();
    life.raiseCallbackError();
  }
}

/** The usual error for a failed zero-copy send result, for callers that drive SEND_ZC
 * themselves. */
export function zcSendError(res: number, detail?: string): UringError {
  return new UringError("IORING_OP_SEND_ZC", -res, detail);
}

/** The handler of a cancel the sender submits: its result needs no action (the cancelled send's
 * own CQE reports the outcome). */
function ignoreCqe(): void {}
