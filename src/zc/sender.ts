// ZcSender: zero-copy sends on one socket, with the SEND_ZC lifecycle handled by the library.
//
// A SEND_ZC posts a first CQE (bytes sent, or -errno) and, if and only if that CQE has
// IORING_CQE_F_MORE, a later notification CQE with IORING_CQE_F_NOTIF under the same user_data:
// only then may the buffer be reused (io_uring/net.c io_send_zc, io_uring/notif.c). Errors follow
// the same rule. Notifications can arrive out of order. The sender therefore keeps one record
// per send, indexed by the op-table data (a small integer: no allocation per send), holds the
// buffer until its own notification (or its first CQE without F_MORE), and reports two moments to
// the caller: onSent(tag, res) and onReleased(tag, usage). It never waits for a release before
// sending the next buffer.
//
// Ordering on stream sockets: several sends in flight on one TCP socket may complete out of order
// when one of them has to wait for socket space, so the sender submits queued sends as one chain
// linked with IOSQE_IO_LINK and MSG_WAITALL (the SEND_ZC man page: a short send in a link is only
// an error with MSG_WAITALL), and starts the next chain when the current one has reported "sent"
// (not "released"). On datagram sockets every send goes out at once.
import { addressOf, c } from "../../ffi/index.ts";
import * as Q from "../abi/sqe.ts";
import { AF_UNIX, MSGHDR, MSG_NOSIGNAL, MSG_WAITALL, SOCK_STREAM, SOL_SOCKET, SO_DOMAIN, SO_TYPE } from "../abi/net.ts";
import { IOVEC } from "../abi/register.ts";
import { EBADF, EBUSY, ECANCELED, EFAULT, EOPNOTSUPP } from "../abi/errno.ts";
import { prepSend, prepSendSetAddr, prepSendVectorized, prepSendZc, prepSendZcFixed, prepSendZcVectorized, prepSendmsg, prepSendmsgZc, prepSendmsgZcFixed } from "../ops/prep.ts";
import { addSqeFlags, retireSlot } from "../ops/sqe.ts";
import { kernelAtLeast } from "../ring/kernel.ts";
import { Ring as RingClass, type Ring } from "../ring/ring.ts";
import { UringError, closedError, invalidArgument, unsupported, shown } from "../error.ts";
import { type SocketAddress, type Sockaddr, sockaddr, formatAddress } from "../net/sockaddr.ts";
import type { FixedBufferPool } from "./pool.ts";
import { AdaptivePolicy } from "./policy.ts";
import { ZcStats } from "./stats.ts";

export { ZcStats, ZcSizeClass } from "./stats.ts";

/** How a sender moves bytes.
 * - copy: IORING_OP_SEND (the kernel copies).
 * - zc: IORING_OP_SEND_ZC from the caller's memory (pages pinned per send).
 * - zc-fixed: SEND_ZC with IORING_RECVSEND_FIXED_BUF from a FixedBufferPool (pinned once).
 * - mixed: SEND below `threshold` bytes, SEND_ZC at or above it, order kept by the chain.
 * - adaptive (default): SEND_ZC only where it pays, decided per size class (powers of two:
 *   2-4 KiB, 4-8 KiB, ...), since the crossover depends on the payload size and the route.
 *   Below `threshold` bytes always SEND. With REPORT_USAGE, each class above it starts with a
 *   usage probe: a window of SEND_ZC sends whose notifications say whether the kernel copied.
 *   When copies dominate (`copiedRatio`), the class settles on SEND at once: a copying SEND_ZC
 *   does SEND's copy plus pinning and a notification, so it cannot pay; the probe runs again
 *   after `probeEvery` sends and `remeasureMs`, the wait doubling (up to 32 times) while the
 *   kernel keeps copying, so a route that moves to a zero-copy NIC is found and a copying one
 *   costs almost nothing. Zero-copy confirmed for a class of 16 KiB or more settles on SEND_ZC.
 *   Otherwise (zero-copy below 16 KiB, or usage not reported, then after a warm-up) SEND_ZC and SEND
 *   alternate in `rounds` pairs of trial windows, and the other kind wins only when its pooled
 *   rate beats the current choice by `margin` and it won most pairs (hysteresis against a noisy
 *   machine; the first choice starts from SEND, which pins nothing). */
export type ZcMode = "copy" | "zc" | "zc-fixed" | "mixed" | "adaptive";

export const ZC_MODES: readonly ZcMode[] = ["copy", "zc", "zc-fixed", "mixed", "adaptive"];

/** What the kernel said about a released buffer: "zerocopy" (sent from the caller's pages),
 * "copied" (SEND_ZC, but the kernel copied: IORING_NOTIF_USAGE_ZC_COPIED), "unreported"
 * (SEND_ZC without REPORT_USAGE, or no notification because the send failed early), "copy-send"
 * (a plain SEND). */
export type ZcUsage = "zerocopy" | "copied" | "unreported" | "copy-send";

export interface ZcSenderOptions {
  /** Default "adaptive". */
  mode?: ZcMode;
  /** IORING_SEND_ZC_REPORT_USAGE (6.2) on every SEND_ZC. Default true. */
  reportUsage?: boolean;
  /** Size in bytes at which mixed starts using SEND_ZC, and below which adaptive never tries it.
   * Default 16384 for mixed (gRPC and rsync ports pick 16 KiB), 2048 for adaptive (a payload
   * below a few KiB costs more to pin and notify than to copy: 6.10's notification stacking put
   * the crossover near 3 KB on real NICs; adaptive measures the classes above). */
  threshold?: number;
  /** Sends that may be queued or in flight before release (records, preallocated). Default 1024. */
  capacity?: number;
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
  /** Adaptive: fewest sends of a size class in one trial window. Default 128. */
  window?: number;
  /** Adaptive: share of copied notifications from which copies dominate (the class settles on
   * SEND without throughput trials). Default 0.5. */
  copiedRatio?: number;
  /** Adaptive: pairs of trial windows (SEND_ZC, then SEND) per measurement. Default 3. */
  rounds?: number;
  /** Adaptive: how much faster (pooled rate) the other kind must be to replace the current
   * choice of a size class. Default 0.05. */
  margin?: number;
  /** Adaptive: sends of a size class between two measurements. Default 8192. */
  probeEvery?: number;
  /** Adaptive: shortest trial window, so a scheduler hiccup cannot decide it. Default 25 ms. */
  trialMs?: number;
  /** Adaptive without usage reports: time from the first measured send to the first trial (TCP
   * slow start and the JIT's first compilations would bias whichever trial ran first; a usage
   * probe counts notifications and needs no warm-up). Default 100 ms. */
  warmupMs?: number;
  /** Adaptive: shortest time between two measurements. Default 2000 ms; doubled (up to 32
   * times) after each usage probe in a row that found the kernel copying. */
  remeasureMs?: number;
  /** Extra IOSQE_* flags for every SQE (IOSQE_ASYNC, IOSQE_FIXED_FILE). IOSQE_CQE_SKIP_SUCCESS is
   * refused (the kernel rejects it for SEND_ZC) and IOSQE_IO_LINK is the sender's own. */
  sqeFlags?: number;
  /** Use IORING_SEND_VECTORIZED (6.17) for sendmsg() where the kernel has it, else SENDMSG_ZC.
   * Default "auto". */
  vectorized?: boolean | "auto";
  /** A separate user_data for the notification CQE. No Linux release through 7.2 defines a
   * SEND_ZC flag for it, so "auto" and false (default "auto") leave it off: each notification
   * carries its send's user_data with IORING_CQE_F_NOTIF, which tells it apart, in any order.
   * true is refused with EOPNOTSUPP. */
  notifUserData?: boolean | "auto";
  /** Socket type, read with getsockopt(SO_TYPE) when not given. */
  stream?: boolean;
  /** "sent": the first CQE (res = bytes, or -errno). */
  onSent?: (tag: any, res: number) => void;
  /** "released": the buffer may be reused; called exactly once per send. */
  onReleased?: (tag: any, usage: ZcUsage) => void;
}

const KIND_COPY = 0, KIND_ZC = 1, KIND_FIXED = 2, KIND_MSG = 3, KIND_VEC = 4;
/** The most iovecs one operation may carry (UIO_MAXIOV): the kernel refuses more, EINVAL for a
 * vectorized send and EMSGSIZE for SENDMSG, so a gathered group stops there. */
const UIO_MAXIOV = 1024;
const ST_FREE = 0, ST_QUEUED = 1, ST_SUBMITTED = 2, ST_AWAIT_NOTIF = 3;

// Layout of an op's 128-byte scratch block for the sender's structs.
const SCRATCH_MSGHDR = 0; // struct msghdr, 56 bytes
const SCRATCH_IOV = MSGHDR.size; // two struct iovec, 32 bytes
const SCRATCH_DEST = SCRATCH_IOV + 2 * IOVEC.size; // sockaddr_in6 at most, 28 bytes

const U32_SPAN = 4294967296;
/** Why ZcSender has no separate notification user_data (stats.notifUserDataReason, and the
 * error for notifUserData: true). */
const NOTIF_USER_DATA_ABSENT = "no Linux release through 7.2 defines a SEND_ZC flag for it (the uapi io_uring.h of 7.2 has IORING_RECVSEND_POLL_FIRST, IORING_RECVSEND_FIXED_BUF, IORING_SEND_ZC_REPORT_USAGE, IORING_RECVSEND_BUNDLE and IORING_SEND_VECTORIZED only), so each notification carries its send's user_data and the sender tells it apart by IORING_CQE_F_NOTIF, in any order";
/** What the kernel answered to SEND_ZC ioprio flags, by flag word (one probe per process). */
const zcFlagProbes = new Map<number, boolean>();

/** Whether this kernel accepts the SEND_ZC ioprio flags `zcFlags`. A SEND_ZC on fd -1 carrying
 * the flags: io_send_zc_prep refuses unknown flags with EINVAL before the file is looked up, so
 * EBADF means they were accepted. It runs on a private ring (kernel memory, closed at once), so it
 * may be called anywhere, inside a completion handler too; cached per process. */
export function probeSendZcFlags(zcFlags: number): boolean {
  const known = zcFlagProbes.get(zcFlags);
  if (known !== undefined) return known;
  const ring = RingClass.create({ entries: 4, memory: "mmap", registerRingFd: false });
  let ok = false;
  try {
    if (ring.supports(Q.IORING_OP_SEND_ZC)) {
      const st = { res: 1, done: false };
      const ud = ring.ops.add((p: typeof st, res: number, flags: number) => {
        if (flags & Q.IORING_CQE_F_NOTIF) {
          p.done = true;
          return;
        }
        p.res = res;
        // EBADF already answers (the flags passed io_send_zc_prep); the notification that follows
        // it is not needed, since this private ring is closed at once.
        if (!(flags & Q.IORING_CQE_F_MORE) || res === -EBADF) p.done = true;
      }, st, undefined);
      const slot = ring.getSqeFor(ud);
      prepSendZc(ring.sq, slot, -1, 0, 0, 0, zcFlags);
      ring.setUserData(slot, ud);
      ring.runUntil(() => st.done, 5000);
      if (ring.ops.isLive(ud)) ring.ops.cancelUnsubmitted(ud);
      ok = st.res === -EBADF;
    }
  } finally {
    ring.close();
  }
  zcFlagProbes.set(zcFlags, ok);
  return ok;
}

/** Whether this kernel accepts IORING_SEND_ZC_REPORT_USAGE (6.2, and backported: Debian's 6.1
 * has it); see probeSendZcFlags. */
export function probeReportUsage(): boolean {
  return probeSendZcFlags(Q.IORING_SEND_ZC_REPORT_USAGE);
}

/** Refuse SQE flags the sender cannot honour, before anything reaches the kernel. */
export function checkZcSqeFlags(where: string, flags: number): void {
  if (!Number.isInteger(flags) || flags < 0 || flags > 0x7f) throw invalidArgument(where, `sqeFlags must be IOSQE_* bits (0..0x7f), got ${shown(flags)}`);
  if (flags & Q.IOSQE_CQE_SKIP_SUCCESS) {
    throw invalidArgument(where, "IOSQE_CQE_SKIP_SUCCESS cannot be used with SEND_ZC: the kernel rejects it (io_send_zc_prep returns EINVAL), and the first CQE is how the sender learns whether a notification follows");
  }
  if (flags & (Q.IOSQE_IO_LINK | Q.IOSQE_IO_HARDLINK)) throw invalidArgument(where, "IOSQE_IO_LINK / IO_HARDLINK are set by the sender itself to keep stream order");
  if (flags & Q.IOSQE_BUFFER_SELECT) throw invalidArgument(where, "IOSQE_BUFFER_SELECT does not apply to zero-copy sends");
}

function sockoptInt(fd: number, level: number, name: number): number {
  const v = new Int32Array(1), len = new Uint32Array([4]);
  if (c.getsockopt(fd, level, name, v, len) < 0) return -1;
  return v[0]!;
}

export class ZcSender {
  readonly ring: Ring;
  readonly fd: number;
  readonly mode: ZcMode;
  readonly stream: boolean;
  /** Socket family from SO_DOMAIN (AF_INET, AF_INET6, AF_UNIX...), -1 when unknown. */
  readonly family: number;
  readonly stats = new ZcStats();
  readonly capacity: number;
  onSent: ((tag: any, res: number) => void) | undefined;
  onReleased: ((tag: any, usage: ZcUsage) => void) | undefined;

  private readonly threshold: number;
  private readonly zcFlags: number;
  private readonly msgFlags: number;
  private readonly extraSqeFlags: number;
  private readonly maxChain: number;
  private readonly dest: Sockaddr | null;
  private readonly pool: FixedBufferPool | null;
  private readonly useVectorized: boolean;
  private readonly handler: (rec: number, res: number, flags: number, index: number) => void;
  /** Adaptive mode: which size classes go out as SEND_ZC (null in the other modes). */
  private readonly policy: AdaptivePolicy | null;
  // Records, one per send until released.
  private readonly recState: Uint8Array;
  private readonly recKind: Uint8Array;
  private readonly recLen: Float64Array;
  private readonly recRes: Float64Array;
  private readonly recAddr: Float64Array;
  private readonly recAddr2: Float64Array;
  private readonly recLen2: Float64Array;
  private readonly recBufIndex: Int32Array;
  private readonly recUd: Float64Array;
  /** Next record of the same operation (-1: last), and the operation's total bytes (at its head). */
  private readonly recNext: Int32Array;
  private readonly recTotal: Float64Array;
  /** Adaptive: when the operation headed by the record was written to the SQ. */
  private readonly recWrittenAt: Float64Array;
  private readonly recTag: unknown[];
  private readonly recHold: unknown[];
  private readonly recHold2: unknown[];
  private readonly freeList: Int32Array;
  private freeTop: number;
  // FIFO of queued (not yet submitted) records.
  private readonly queue: Int32Array;
  private qHead = 0;
  private qCount = 0;
  private chainLeft = 0;
  /** Gathering (stream sockets): iovecs of the chain being written, and the groups of a flush. */
  private readonly gather: boolean;
  private readonly iovArea: Uint8Array;
  private readonly iovView: DataView;
  /** The opcode each operation went out as (its first record's entry), for errors: a gathered
   * or two-part send is SENDMSG / SENDMSG_ZC on kernels without IORING_SEND_VECTORIZED. */
  private readonly recOpcode: Uint8Array;
  private readonly iovAddress: number;
  private iovUsed = 0;
  private readonly groupHeads: Int32Array;
  private readonly groupSizes: Int32Array;
  private corked = false;
  private broken = false;
  /** The first error a user callback threw, rethrown once the sender's state is whole again. */
  private callbackError: unknown = undefined;
  private callbackFailed = false;

  constructor(ring: Ring, fd: number, o: ZcSenderOptions = {}) {
    const where = "ZcSender";
    if (!(ring instanceof RingClass)) throw invalidArgument(where, "ring must be a Ring");
    if (ring.isClosed) throw closedError(where);
    if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) throw invalidArgument(where, `fd must be a non-negative integer, got ${shown(fd)}`);
    const mode = o.mode ?? "adaptive";
    if (!ZC_MODES.includes(mode)) throw invalidArgument(where, `mode must be one of ${ZC_MODES.join(", ")}, got ${String(mode)}`);
    checkZcSqeFlags(where, o.sqeFlags ?? 0);
    const capacity = o.capacity ?? 1024;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 20) throw invalidArgument(where, `capacity must be 1..2^20, got ${shown(capacity)}`);
    const threshold = o.threshold ?? (mode === "adaptive" ? 2048 : 16384);
    if (!Number.isInteger(threshold) || threshold < 0) throw invalidArgument(where, `threshold must be a non-negative integer, got ${shown(threshold)}`);
    if (mode !== "copy") ring.requireOp(Q.IORING_OP_SEND_ZC, where);
    if (mode === "zc-fixed" && !o.pool) throw invalidArgument(where, "mode zc-fixed needs a FixedBufferPool (options.pool)");
    if (o.pool && o.pool.ring !== ring) throw invalidArgument(where, "the pool is registered with another ring");
    this.ring = ring;
    this.fd = fd;
    this.mode = mode;
    this.capacity = capacity;
    this.threshold = threshold;
    const type = o.stream === undefined ? sockoptInt(fd, SOL_SOCKET, SO_TYPE) : o.stream ? SOCK_STREAM : 0;
    if (type < 0) throw new UringError("getsockopt", EBADF, `SO_TYPE of fd ${fd}`, "the fd is not an open socket");
    this.stream = type === SOCK_STREAM;
    this.family = sockoptInt(fd, SOL_SOCKET, SO_DOMAIN);
    this.dest = o.destination ? sockaddr(o.destination) : null;
    if (this.dest && this.stream) throw invalidArgument(where, `a destination (${formatAddress(this.dest)}) applies to datagram sockets; this one is a stream`);
    this.pool = o.pool ?? null;
    this.extraSqeFlags = o.sqeFlags ?? 0;
    this.maxChain = o.maxChain ?? 64;
    if (!Number.isInteger(this.maxChain) || this.maxChain < 1) throw invalidArgument(where, `maxChain must be a positive integer, got ${shown(o.maxChain)}`);
    // MSG_WAITALL makes a short stream send retry inside the kernel (io_net_retry), which a link
    // needs; MSG_NOSIGNAL keeps a reset peer from raising SIGPIPE (SEND_ZC adds it itself).
    this.msgFlags = (this.stream ? MSG_WAITALL : 0) | MSG_NOSIGNAL;
    // Default: on where the kernel takes it (probed, since distributions backport it).
    const reportUsage = o.reportUsage ?? (mode === "copy" ? false : probeReportUsage());
    if (reportUsage && mode !== "copy" && !probeReportUsage()) {
      throw unsupported(where, "IORING_SEND_ZC_REPORT_USAGE", "6.2", ring.capabilities.kernel);
    }
    this.zcFlags = reportUsage ? Q.IORING_SEND_ZC_REPORT_USAGE : 0;
    // Built in every mode, so its options are checked in every mode.
    const policy = new AdaptivePolicy(this.stats, {
      threshold, reportUsage, window: o.window, copiedRatio: o.copiedRatio, rounds: o.rounds, margin: o.margin,
      probeEvery: o.probeEvery, trialMs: o.trialMs, warmupMs: o.warmupMs, remeasureMs: o.remeasureMs,
    }, where);
    this.policy = mode === "adaptive" ? policy : null;
    this.onSent = o.onSent;
    this.onReleased = o.onReleased;

    const s = this.stats;
    s.mode = mode;
    s.reportUsage = reportUsage;
    const kernel = ring.capabilities.kernel;
    // No kernel number is guessed for this: the uapi io_uring.h of Linux 7.2 has only POLL_FIRST,
    // FIXED_BUF, REPORT_USAGE, BUNDLE and VECTORIZED among the SEND_ZC flags.
    const nud = o.notifUserData ?? "auto";
    if (nud !== true && nud !== false && nud !== "auto") throw invalidArgument(where, `notifUserData must be true, false or "auto", got ${String(nud)}`);
    if (nud === true) {
      throw new UringError(where, EOPNOTSUPP, `notifUserData: a separate user_data for SEND_ZC notifications is not in Linux through 7.2 (this kernel is ${kernel}); ${NOTIF_USER_DATA_ABSENT}`, "");
    }
    s.notifUserData = false;
    s.notifUserDataReason = `no separate notification user_data: ${NOTIF_USER_DATA_ABSENT}`;
    const vec = o.vectorized ?? "auto";
    const haveVec = kernelAtLeast("6.17", kernel);
    if (vec === true && !haveVec) throw unsupported(where, "IORING_SEND_VECTORIZED", "6.17", kernel);
    this.useVectorized = vec !== false && haveVec;
    s.vectorized = this.useVectorized;
    s.vectorizedReason = this.useVectorized ? "gathered sends and sendmsg() use SEND / SEND_ZC with IORING_SEND_VECTORIZED" : vec === false ? "gathered sends and sendmsg() use SENDMSG / SENDMSG_ZC (vectorized turned off)" : `gathered sends and sendmsg() use SENDMSG / SENDMSG_ZC: IORING_SEND_VECTORIZED needs Linux 6.17, this kernel is ${kernel}`;
    if (mode === "copy") s.decide("copy", "mode copy: every send is IORING_OP_SEND");
    else if (mode === "zc" || mode === "zc-fixed") s.decide("zc", `mode ${mode}: every send is IORING_OP_SEND_ZC${mode === "zc-fixed" ? " from registered buffers" : ""}`);
    else if (mode === "mixed") s.decide("zc", `mode mixed: SEND below ${threshold} bytes, SEND_ZC at or above`);
    else if (this.family === AF_UNIX) policy.refuseZeroCopy("AF_UNIX sockets cannot send zero-copy (the kernel answers EOPNOTSUPP): every send is IORING_OP_SEND");
    else s.decide("zc", policy.describe());
    s.switches = 0;

    this.recState = new Uint8Array(capacity);
    this.recKind = new Uint8Array(capacity);
    this.recLen = new Float64Array(capacity);
    this.recRes = new Float64Array(capacity);
    this.recAddr = new Float64Array(capacity);
    this.recAddr2 = new Float64Array(capacity);
    this.recLen2 = new Float64Array(capacity);
    this.recBufIndex = new Int32Array(capacity);
    this.recUd = new Float64Array(capacity);
    this.recNext = new Int32Array(capacity).fill(-1);
    this.recTotal = new Float64Array(capacity);
    this.recWrittenAt = new Float64Array(capacity);
    this.recOpcode = new Uint8Array(capacity);
    this.gather = this.stream && o.gather !== false;
    this.iovArea = new Uint8Array(Math.max(1, capacity) * IOVEC.size);
    this.iovView = new DataView(this.iovArea.buffer);
    this.iovAddress = addressOf(this.iovArea);
    this.groupHeads = new Int32Array(this.maxChain);
    this.groupSizes = new Int32Array(this.maxChain);
    this.recTag = new Array(capacity).fill(undefined);
    this.recHold = new Array(capacity).fill(undefined);
    this.recHold2 = new Array(capacity).fill(undefined);
    this.freeList = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.freeList[i] = capacity - 1 - i;
    this.freeTop = capacity;
    this.queue = new Int32Array(capacity);
    // One handler for every CQE of this sender, made once: data is the record index.
    this.handler = (rec, res, flags, index) => this.onCqe(rec, res, flags, index);
  }

  /** Sends accepted and not yet released. */
  get inflight(): number {
    return this.capacity - this.freeTop;
  }

  /** Records free for new sends. */
  get available(): number {
    return this.freeTop;
  }

  /** Sends queued behind the chain in flight (stream sockets) or while corked. */
  get queued(): number {
    return this.qCount;
  }

  /** Sends are queued, not corked, and no operation of this sender is in flight to flush them
   * when it completes: the last flush found the ring's op table full. Call flush() once other
   * operations have completed. */
  get stalled(): boolean {
    return this.qCount > 0 && !this.corked && !this.broken && this.chainLeft === 0;
  }

  /** Whether an earlier send on this stream failed: later sends are refused (their bytes would
   * land after a gap). */
  get isBroken(): boolean {
    return this.broken;
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
   * of the pool. */
  send(buf: Uint8Array, tag?: unknown): void {
    const len = buf?.byteLength;
    if (!(buf instanceof Uint8Array) || len === 0) throw invalidArgument("ZcSender.send", "buf must be a non-empty Uint8Array (not detached)");
    if (len > 0xffffffff) throw invalidArgument("ZcSender.send", `buf must be at most 4294967295 bytes (an SQE's length is a u32), got ${shown(len)}`);
    let kind: number;
    let bufIndex = -1;
    if (this.mode === "zc-fixed") {
      bufIndex = this.pool!.indexOf(buf);
      if (bufIndex < 0) throw invalidArgument("ZcSender.send", "in zc-fixed mode buf must be a view inside one buffer of the sender's FixedBufferPool");
      kind = KIND_FIXED;
    } else {
      kind = this.chooseKind(len);
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
    const rec = this.take();
    this.recKind[rec] = kind;
    this.recLen[rec] = len;
    this.recAddr[rec] = addressOf(buf);
    this.recBufIndex[rec] = bufIndex;
    this.recHold[rec] = buf;
    this.recTag[rec] = tag;
    this.enqueue(rec);
  }

  /** Send `length` bytes at `offset` of pool buffer `index` with FIXED_BUF (any mode; needs the
   * pool option). */
  sendFixed(index: number, length: number, tag?: unknown, offset = 0): void {
    const pool = this.pool;
    if (!pool) throw invalidArgument("ZcSender.sendFixed", "the sender has no FixedBufferPool (options.pool)");
    if (!Number.isInteger(index) || index < 0 || index >= pool.count) throw invalidArgument("ZcSender.sendFixed", `index must be 0..${pool.count - 1}, got ${shown(index)}`);
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 1 || offset + length > pool.bufferSize) {
      throw invalidArgument("ZcSender.sendFixed", `offset ${offset} + length ${length} must lie inside the ${pool.bufferSize}-byte buffer`);
    }
    const rec = this.take();
    this.recKind[rec] = KIND_FIXED;
    this.recLen[rec] = length;
    this.recAddr[rec] = pool.address(index) + offset;
    this.recBufIndex[rec] = index;
    this.recHold[rec] = pool;
    this.recTag[rec] = tag;
    this.enqueue(rec);
  }

  /** Send a header and a body as one message: SEND_ZC with IORING_SEND_VECTORIZED where the
   * kernel has it (6.17), else SENDMSG_ZC with two iovecs. Both arrays are held until released. */
  sendmsg(header: Uint8Array, body: Uint8Array, tag?: unknown): void {
    if (!(header instanceof Uint8Array) || !(body instanceof Uint8Array) || header.byteLength === 0 || body.byteLength === 0) {
      throw invalidArgument("ZcSender.sendmsg", "header and body must be non-empty Uint8Arrays");
    }
    if (this.mode === "copy") throw invalidArgument("ZcSender.sendmsg", "sendmsg() is zero-copy; a copy-mode sender sends the parts with send()");
    const kind = this.useVectorized ? KIND_VEC : KIND_MSG;
    if (kind === KIND_MSG) this.ring.requireOp(Q.IORING_OP_SENDMSG_ZC, "ZcSender.sendmsg");
    const rec = this.take();
    this.recKind[rec] = kind;
    this.recLen[rec] = header.byteLength + body.byteLength;
    this.recAddr[rec] = addressOf(header);
    this.recLen2[rec] = body.byteLength;
    this.recAddr2[rec] = addressOf(body);
    this.recBufIndex[rec] = -1;
    this.recHold[rec] = header;
    this.recHold2[rec] = body;
    this.recTag[rec] = tag;
    this.enqueue(rec);
  }

  /** Write queued sends into the SQ (the next ring.submit / run submits them). Called by send()
   * unless corked. On a stream, consecutive queued sends of the same kind go out as one gathered
   * operation (iovecs: SEND / SEND_ZC with IORING_SEND_VECTORIZED on 6.17+, else SENDMSG /
   * SENDMSG_ZC), several such operations are linked, and the next flush waits until this chain
   * has reported "sent". Datagrams go out one operation per send. */
  flush(): void {
    this.flushQueue();
    this.raiseCallbackError();
  }

  private flushQueue(): void {
    if (this.corked || this.qCount === 0) return;
    const ring = this.ring;
    // A closed ring takes nothing more: what is queued fails now instead of being pinned forever.
    if (ring.isClosed) {
      this.failQueued();
      return;
    }
    // Every operation needs an op-table entry. When the table is full, what does not fit stays
    // queued, in order and untouched (stats.slotWaits): this sender's next CQE flushes again,
    // and with nothing of it in flight (`stalled`) the caller flushes once operations complete.
    if (!this.stream) {
      while (this.qCount > 0) {
        if (ring.ops.available === 0) {
          this.stats.slotWaits++;
          return;
        }
        const rec = this.dequeue();
        // A datagram stands alone: one whose buffer went away fails by itself.
        if (!this.intact(rec)) this.failDetached(rec);
        else this.writeOp(rec, 1, false);
      }
      return;
    }
    if (this.chainLeft > 0) return;
    if (this.broken) {
      this.failQueued();
      return;
    }
    // Split the queue into groups (same kind and buffer, at most maxChain sends each), at most
    // maxChain groups per chain. A chain must sit whole in the SQ: getSqe would submit a full SQ
    // mid-chain and cut the link.
    const groupHeads = this.groupHeads, groupSizes = this.groupSizes;
    let groups = 0, i = 0;
    const slots = ring.ops.available;
    if (slots === 0) {
      this.stats.slotWaits++;
      return;
    }
    const maxGroups = Math.min(this.maxChain, Math.max(1, ring.sqSpace), slots);
    while (i < this.qCount && groups < maxGroups) {
      const first = this.queue[(this.qHead + i) % this.capacity]!;
      // A send whose buffer was detached or shrunk since send() is never written: its bytes are
      // gone, and the stream cannot skip them, so it and everything after it fail (broken).
      if (!this.intact(first)) {
        this.breakOnDetached(first);
        break;
      }
      let n = 1;
      // Fixed-buffer sends gather only on kernels with IORING_SEND_VECTORIZED (6.17): the group
      // goes out as one SENDMSG_ZC with FIXED_BUF, whose iovecs the kernel resolves in the
      // registered buffer (vectored registered buffers, 6.15). 6.1 and 6.12 take the same SQE
      // but cut it short (seen: "short send", the rest of the chain ECANCELED).
      const kind = this.recKind[first]!;
      if (this.gather && (kind < KIND_FIXED || (kind === KIND_FIXED && this.useVectorized))) {
        while (i + n < this.qCount && n < this.maxChain && n < UIO_MAXIOV) {
          const r = this.queue[(this.qHead + i + n) % this.capacity]!;
          if (this.recKind[r] !== this.recKind[first] || this.recBufIndex[r] !== this.recBufIndex[first]) break;
          if (!this.intact(r)) {
            this.breakOnDetached(r);
            break;
          }
          n++;
        }
      }
      groupHeads[groups] = first;
      groupSizes[groups] = n;
      groups++;
      i += n;
      if (this.broken) break;
    }
    if (groups === 0) {
      // The first queued send was the detached one: nothing goes out, everything queued fails.
      this.failQueued();
      return;
    }
    if (ring.sqSpace < groups) ring.submit();
    this.chainLeft = groups;
    this.iovUsed = 0;
    let g = 0;
    try {
      for (; g < groups; g++) this.writeGroup(groupHeads[g]!, groupSizes[g]!, g < groups - 1);
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
    let prev = -1;
    for (let k = 0; k < n; k++) {
      const r = this.dequeue();
      if (prev >= 0) this.recNext[prev] = r;
      prev = r;
    }
    this.recNext[prev] = -1;
    this.writeOp(head, n, link);
  }

  // ---- internals ----

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
      this.failQueued();
      throw closedError("ZcSender.send");
    }
    if (this.broken) {
      throw this.stats.lastError ?? new UringError("ZcSender.send", ECANCELED, "an earlier send on this stream failed");
    }
    if (this.freeTop === 0) {
      throw new UringError("ZcSender.send", EBUSY, `all ${this.capacity} send records are queued or awaiting release`,
        "run the ring until onReleased frees some, or create the sender with a larger capacity");
    }
    const rec = this.freeList[--this.freeTop]!;
    this.recState[rec] = ST_QUEUED;
    this.stats.sends++;
    return rec;
  }

  private enqueue(rec: number): void {
    const cap = this.capacity;
    this.queue[(this.qHead + this.qCount) % cap] = rec;
    this.qCount++;
    this.flushQueue();
  }

  private dequeue(): number {
    const rec = this.queue[this.qHead]!;
    this.qHead = (this.qHead + 1) % this.capacity;
    this.qCount--;
    return rec;
  }

  /** Write one operation for `n` records starting at `head` (linked through recNext when n > 1). */
  private writeOp(head: number, n: number, link: boolean): void {
    const ring = this.ring;
    const ud = ring.ops.add(this.handler, head, undefined);
    let slot = -1;
    try {
      slot = ring.getSqeFor(ud);
      this.writeSqe(head, n, link, ud, slot);
    } catch (e) {
      // Nothing of this operation may reach the kernel, and its sends must not be lost: the
      // slot becomes a NOP, the entry is given back, and each send fails and is released.
      if (slot >= 0) retireSlot(ring.sq, slot);
      ring.ops.cancelUnsubmitted(ud);
      this.failOp(head, e);
      throw e;
    }
  }

  /** Fail every send of an operation that could not be written, with the error's errno. */
  private failOp(head: number, e: unknown): void {
    const res = e instanceof UringError ? -e.errno : -ECANCELED;
    if (e instanceof UringError) this.stats.lastError = e;
    if (this.stream) this.broken = true;
    for (let r = head; r >= 0; r = this.recNext[r]!) {
      this.recRes[r] = res;
      this.stats.errors++;
      const cb = this.onSent;
      if (cb !== undefined) this.callSent(cb, this.recTag[r], res);
    }
    this.releaseOp(head, 0, false);
  }

  /** Prep the SQE of an operation in `slot` (user_data `ud`). */
  private writeSqe(head: number, n: number, link: boolean, ud: number, slot: number): void {
    const ring = this.ring;
    const sq = ring.sq;
    const kind = this.recKind[head]!;
    if (n === 1) this.recNext[head] = -1;
    const scratchOff = ring.ops.scratchOffset(ud);
    const scratchAddr = ring.ops.scratchAddressOf(ud);
    const dv = ring.ops.scratchView;
    const s = this.stats;
    let total = 0;
    if (n > 1) {
      // Gathered: one iovec per send in the sender's iovec area. The kernel copies the iovecs
      // when it takes the SQE (IORING_FEAT_SUBMIT_STABLE), and the area is rewritten only by the
      // next flush, which waits for this chain's CQEs.
      const iv = this.iovView;
      let at = this.iovUsed * IOVEC.size;
      for (let r = head; r >= 0; r = this.recNext[r]!) {
        putU64(iv, at + IOVEC.iov_base, this.recAddr[r]!);
        putU64(iv, at + IOVEC.iov_len, this.recLen[r]!);
        total += this.recLen[r]!;
        at += IOVEC.size;
      }
      const iov = this.iovAddress + this.iovUsed * IOVEC.size;
      this.iovUsed += n;
      if (this.useVectorized && kind !== KIND_FIXED) {
        if (kind === KIND_COPY) prepSendVectorized(sq, slot, this.fd, iov, n, this.msgFlags);
        else prepSendZcVectorized(sq, slot, this.fd, iov, n, this.msgFlags, this.zcFlags);
      } else {
        const m = scratchOff + SCRATCH_MSGHDR;
        ring.ops.scratch.fill(0, m, m + MSGHDR.size);
        putU64(dv, m + MSGHDR.msg_iov, iov);
        putU64(dv, m + MSGHDR.msg_iovlen, n);
        if (kind === KIND_COPY) prepSendmsg(sq, slot, this.fd, scratchAddr + SCRATCH_MSGHDR, this.msgFlags);
        else if (kind === KIND_ZC) prepSendmsgZc(sq, slot, this.fd, scratchAddr + SCRATCH_MSGHDR, this.msgFlags, this.zcFlags);
        else prepSendmsgZcFixed(sq, slot, this.fd, scratchAddr + SCRATCH_MSGHDR, this.msgFlags, this.zcFlags, this.recBufIndex[head]!);
      }
      s.gathered += n;
    } else {
      total = this.recLen[head]!;
      switch (kind) {
        case KIND_COPY:
          prepSend(sq, slot, this.fd, this.recAddr[head]!, total, this.msgFlags);
          break;
        case KIND_ZC:
          prepSendZc(sq, slot, this.fd, this.recAddr[head]!, total, this.msgFlags, this.zcFlags);
          break;
        case KIND_FIXED:
          prepSendZcFixed(sq, slot, this.fd, this.recAddr[head]!, total, this.msgFlags, this.zcFlags, this.recBufIndex[head]!);
          break;
        default: {
          // Two iovecs (header, body) in the scratch block, behind a msghdr for SENDMSG_ZC.
          const iov = scratchOff + SCRATCH_IOV;
          putU64(dv, iov + IOVEC.iov_base, this.recAddr[head]!);
          putU64(dv, iov + IOVEC.iov_len, total - this.recLen2[head]!);
          putU64(dv, iov + IOVEC.size + IOVEC.iov_base, this.recAddr2[head]!);
          putU64(dv, iov + IOVEC.size + IOVEC.iov_len, this.recLen2[head]!);
          if (kind === KIND_VEC) {
            prepSendZcVectorized(sq, slot, this.fd, scratchAddr + SCRATCH_IOV, 2, this.msgFlags, this.zcFlags);
          } else {
            const m = scratchOff + SCRATCH_MSGHDR;
            ring.ops.scratch.fill(0, m, m + MSGHDR.size);
            if (this.dest) {
              ring.ops.scratch.set(this.dest.bytes, scratchOff + SCRATCH_DEST);
              putU64(dv, m + MSGHDR.msg_name, scratchAddr + SCRATCH_DEST);
              dv.setUint32(m + MSGHDR.msg_namelen, this.dest.length, true);
            }
            putU64(dv, m + MSGHDR.msg_iov, scratchAddr + SCRATCH_IOV);
            putU64(dv, m + MSGHDR.msg_iovlen, 2);
            prepSendmsgZc(sq, slot, this.fd, scratchAddr + SCRATCH_MSGHDR, this.msgFlags, this.zcFlags);
          }
        }
      }
      if (this.dest && kind !== KIND_MSG) {
        ring.ops.scratch.set(this.dest.bytes, scratchOff + SCRATCH_DEST);
        prepSendSetAddr(sq, slot, scratchAddr + SCRATCH_DEST, this.dest.length);
      }
    }
    if (kind === KIND_COPY) s.copySends += n;
    else if (kind === KIND_ZC) s.zcSends += n;
    else if (kind === KIND_FIXED) s.fixedSends += n;
    else s.msgSends += n;
    s.ops++;
    ring.setUserData(slot, ud);
    const f = this.extraSqeFlags | (link ? Q.IOSQE_IO_LINK : 0);
    if (f) addSqeFlags(sq, slot, f);
    this.recUd[head] = ud;
    this.recTotal[head] = total;
    // The opcode is the low byte of the SQE's first word (little endian).
    this.recOpcode[head] = sq.u32[slot << 4]! & 0xff;
    // Adaptive: only an operation of a class under measurement is timed (0: not timed).
    const policy = this.policy;
    if (policy !== null) this.recWrittenAt[head] = policy.stampWrite(this.recLen[head]!);
    for (let r = head; r >= 0; r = this.recNext[r]!) this.recState[r] = ST_SUBMITTED;
  }

  private onCqe(head: number, res: number, flags: number, index: number): void {
    // index -1: the ring was closed before this operation's last CQE (Ring.close abandons it).
    // A send still waiting for its notification is released then, its usage unreported.
    if (index < 0 && this.recState[head] === ST_AWAIT_NOTIF) {
      this.releaseOp(head, 0, false);
      return;
    }
    if (flags & Q.IORING_CQE_F_NOTIF) {
      if (this.recState[head] !== ST_AWAIT_NOTIF) {
        this.stats.anomalies++;
        return;
      }
      this.releaseOp(head, res, true);
      return;
    }
    if (this.recState[head] !== ST_SUBMITTED) {
      this.stats.anomalies++;
      return;
    }
    const s = this.stats;
    const kind = this.recKind[head]!;
    const total = this.recTotal[head]!;
    if (res >= 0) {
      s.sentBytes += res;
      if (kind === KIND_COPY) s.copySendBytes += res;
      if (this.stream && res < total) {
        // With MSG_WAITALL a stream send comes back short only when the socket failed part way
        // (io_send_zc returns the bytes done before the error): later bytes would follow a gap.
        s.shortSends++;
        this.broken = true;
        s.lastError = new UringError(`IORING_OP_${Q.opcodeName(this.recOpcode[head]!)}`, ECANCELED, `fd ${this.fd}: short send, ${res} of ${total} bytes; the stream failed part way`, "the connection broke during the send (reset or shut down); later sends are refused");
      }
    } else {
      if (res !== -ECANCELED || s.lastError === null) {
        s.lastError = new UringError(`IORING_OP_${Q.opcodeName(this.recOpcode[head]!)}`, -res, `fd ${this.fd}, ${total} bytes`);
      }
      if (this.stream) this.broken = true;
      if (res === -EOPNOTSUPP && this.policy !== null) {
        this.policy.refuseZeroCopy("the kernel refused SEND_ZC on this socket (EOPNOTSUPP): every send is IORING_OP_SEND");
      }
    }
    const policy = this.policy;
    if (policy !== null && this.recWrittenAt[head]! > 0) policy.observeSent(this.recLen[head]!, kind !== KIND_COPY, res, this.opSends(head), this.recWrittenAt[head]!);
    const more = (flags & Q.IORING_CQE_F_MORE) !== 0;
    // "sent" for each send of the operation: its bytes, the part of a short result it got, or
    // the error.
    let left = res;
    const cb = this.onSent;
    for (let r = head; r >= 0; r = this.recNext[r]!) {
      let mine: number;
      if (res < 0) mine = res;
      else {
        const len = this.recLen[r]!;
        mine = left >= len ? len : left > 0 ? left : -ECANCELED;
        if (left > 0) left -= mine;
      }
      this.recRes[r] = mine;
      s.sent++;
      if (mine < 0) s.errors++;
      if (more) this.recState[r] = ST_AWAIT_NOTIF;
      if (cb !== undefined) this.callSent(cb, this.recTag[r], mine);
    }
    // With F_MORE the notification follows under the same user_data (the op-table entry stays
    // live for it); without, no notification comes and the sends are released now.
    if (!more) this.releaseOp(head, 0, false);
    if (this.stream && --this.chainLeft === 0) this.flushQueue();
    this.raiseCallbackError();
  }

  /** Release every send of an operation (exactly once each: records go back to the free list). */
  private releaseOp(head: number, res: number, notified: boolean): void {
    const s = this.stats;
    const kind = this.recKind[head]!;
    let usage: ZcUsage;
    if (kind === KIND_COPY) usage = "copy-send";
    else if (!notified || this.zcFlags === 0) usage = "unreported";
    else usage = (res & Q.IORING_NOTIF_USAGE_ZC_COPIED) !== 0 ? "copied" : "zerocopy";
    if (notified && this.policy !== null) this.policy.observeNotification(this.recLen[head]!, usage === "copied", this.opSends(head));
    const cb = this.onReleased;
    if (notified) s.notifCqes++;
    let r = head;
    while (r >= 0) {
      const next = this.recNext[r]!;
      const bytes = this.recRes[r]! > 0 ? this.recRes[r]! : 0;
      if (notified) {
        s.notifications++;
        if (usage === "copied") {
          s.copiedNotifications++;
          s.copiedBytes += bytes;
        } else if (usage === "zerocopy") {
          s.zcNotifications++;
          s.zcBytes += bytes;
        }
      }
      const tag = this.recTag[r];
      this.recTag[r] = undefined;
      this.recHold[r] = undefined;
      this.recHold2[r] = undefined;
      this.recState[r] = ST_FREE;
      this.recNext[r] = -1;
      this.freeList[this.freeTop++] = r;
      s.released++;
      if (cb !== undefined) this.callReleased(cb, tag, usage);
      r = next;
    }
  }

  /** Sends in the operation that starts at `head`. */
  private opSends(head: number): number {
    let n = 0;
    for (let r = head; r >= 0; r = this.recNext[r]!) n++;
    return n;
  }

  /** Fail every send still queued (not yet written to the SQ): each gets -ECANCELED in onSent
   * and is released. For an owner that stops using the sender, e.g. because the ring is going
   * away while the sends wait for op-table room (`stalled`). Sends already in the kernel are not
   * touched. */
  abandonQueued(): void {
    this.failQueued();
    this.raiseCallbackError();
  }

  /** A failed stream: queued sends never reach the kernel; each still gets both callbacks. */
  private failQueued(): void {
    while (this.qCount > 0) {
      const rec = this.dequeue();
      // The send whose buffer went away says so; the ones behind it were cancelled.
      const res = this.intact(rec) ? -ECANCELED : -EFAULT;
      this.recRes[rec] = res;
      this.recNext[rec] = -1;
      this.stats.errors++;
      const cb = this.onSent;
      if (cb !== undefined) this.callSent(cb, this.recTag[rec], res);
      this.releaseOp(rec, 0, false);
    }
  }

  /** Whether a queued send's memory is still what send() saw: a view's buffer can be transferred
   * (detached: length 0) or a resizable one shrunk after send(), and its old address would then
   * point the kernel at memory the process uses for something else. Checked when the SQE is
   * written; after that the buffer must stay put until onReleased (the caller's part). */
  private intact(rec: number): boolean {
    const h = this.recHold[rec];
    const kind = this.recKind[rec]!;
    if (h instanceof Uint8Array && h.byteLength !== (kind >= KIND_MSG ? this.recLen[rec]! - this.recLen2[rec]! : this.recLen[rec]!)) return false;
    const h2 = this.recHold2[rec];
    return !(h2 instanceof Uint8Array) || h2.byteLength === this.recLen2[rec]!;
  }

  /** The error for a send whose buffer went away before its SQE was written. */
  private detachedError(rec: number): UringError {
    return new UringError("ZcSender.send", EFAULT, `fd ${this.fd}: the buffer of a queued ${this.recLen[rec]}-byte send was detached (transferred) or shrunk before its SQE was written; nothing of it was sent`,
      "keep a sent buffer unchanged (no transfer(), no resize()) until onReleased");
  }

  /** A datagram whose buffer went away: it alone fails, with EFAULT, and is released. */
  private failDetached(rec: number): void {
    const s = this.stats;
    s.lastError = this.detachedError(rec);
    this.recRes[rec] = -EFAULT;
    this.recNext[rec] = -1;
    s.errors++;
    const cb = this.onSent;
    if (cb !== undefined) this.callSent(cb, this.recTag[rec], -EFAULT);
    this.releaseOp(rec, 0, false);
  }

  /** A stream send whose buffer went away: the stream is broken from it on (failQueued ends it). */
  private breakOnDetached(rec: number): void {
    this.broken = true;
    this.stats.lastError = this.detachedError(rec);
  }

  /** Run a user callback without letting its exception cut the sender's bookkeeping short: the
   * first error is kept and rethrown by raiseCallbackError once every record is accounted for. */
  private callSent(cb: (tag: any, res: number) => void, tag: unknown, res: number): void {
    try {
      cb(tag, res);
    } catch (e) {
      this.keepCallbackError(e);
    }
  }

  private callReleased(cb: (tag: any, usage: ZcUsage) => void, tag: unknown, usage: ZcUsage): void {
    try {
      cb(tag, usage);
    } catch (e) {
      this.keepCallbackError(e);
    }
  }

  private keepCallbackError(e: unknown): void {
    if (this.callbackFailed) return;
    this.callbackFailed = true;
    this.callbackError = e;
  }

  /** Rethrow the first callback error (once), after the sender's state is whole again. */
  private raiseCallbackError(): void {
    if (!this.callbackFailed) return;
    const e = this.callbackError;
    this.callbackFailed = false;
    this.callbackError = undefined;
    throw e;
  }
}

function putU64(dv: DataView, at: number, value: number): void {
  dv.setUint32(at, value >>> 0, true);
  dv.setUint32(at + 4, Math.floor(value / U32_SPAN) >>> 0, true);
}

/** The usual error for a failed zero-copy send result, for callers that drive SEND_ZC
 * themselves. */
export function zcSendError(res: number, detail?: string): UringError {
  return new UringError("IORING_OP_SEND_ZC", -res, detail);
}

