// The async API's entry point: openRing() sets up a ring, drives it from Bun's event loop
// (src/loop), and makes TCP and UDP sockets whose operations are promises and async iterables.
// It owns one provided-buffer ring that every receive selects from, and it tracks its sockets so
// close() leaves nothing in flight: every operation completes or is cancelled, every buffer is
// given back.
import { c } from "../../ffi/index.ts";
import * as Q from "../abi/sqe.ts";
import { EBUSY, ECANCELED, ECONNABORTED, EMFILE, ENFILE, ENOBUFS, ENOMEM } from "../abi/errno.ts";
import {
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
  SO_REUSEADDR,
  SO_TYPE,
  SO_DOMAIN,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  AF_INET,
  AF_INET6,
} from "../abi/net.ts";
import { UringError, closedError, invalidArgument, unsupported, shown } from "../error.ts";
import { prepCancel64 } from "../ops/prep.ts";
import { OP_MAX_CAPACITY } from "../ring/optable.ts";
import { Ring, type RingOptions } from "../ring/ring.ts";
import { ProvidedBufferRing } from "../ring/register.ts";
import { kernelAtLeast } from "../ring/kernel.ts";
import { cqeTaken, disownFd, ownSocket, unwatchCqeFds, watchCqeFds } from "../ring/reclaim.ts";
import { LoopDriver } from "../loop/driver.ts";
import { type ZcMode } from "../zc/sender.ts";
import { probeRecvLimit, probeReportUsage } from "../ring/kernel.ts";
import {
  ZcrxIfq,
  ImportedZcrx,
  importZcrx,
  sharedQueueFrom,
  zcrxRingDefaults,
  zcrxRingProblem,
  type PostableZcrxQueue,
  type ZcrxIfqOptions,
} from "../zcrx/ifq.ts";
import { RefillLock } from "../zcrx/refill-lock.ts";
import type { ZcrxReceiver } from "../zcrx/receiver.ts";
import { prepCancelFdOp } from "../ops/prep.ts";
import { type DecodedAddress, type Sockaddr, formatAddress, sockaddr } from "../net/sockaddr.ts";
import { type SocketHandlers, checkHandlers, drive, reportHandlerError } from "./handlers.ts";
import { type HostAddress, bindAddress, connectAddresses, hostOf, tryNextAddress } from "./address.ts";
import {
  type SocketOptions,
  bufferSizeStep,
  checkBufferSize,
  checkSocketOptions,
  getIntOption,
  optionSteps,
} from "./sockopt.ts";
import { submitAccept } from "../net/submit.ts";
import { type IntOption, SocketSetup, checkBacklog, localAddress, setUpNow } from "../net/setup.ts";
import { abortError, type RecvStream, type RecvStreamBase } from "./recv.ts";
import { AsyncSocket, TcpSocket, UdpSocket, type SocketHost } from "./socket.ts";

export interface OpenRingOptions extends RingOptions {
  /** IORING_SETUP_DEFER_TASKRUN. Default: off. With it, a completion caused by another process
   * (data from a peer, a connection) reaches this ring from the network softirq, and the kernel
   * signals the ring's eventfd from there through an RCU callback (io_eventfd_signal →
   * call_rcu_hurry → io_eventfd_do_signal): the driver, asleep in Bun's epoll, wakes one RCU grace
   * period later, ≈ 16 ms per wake on this 6.18 host, 32 ms per cross-process round trip
   * (bench/results/wakeup-2026-12-05.md). Without it the kernel queues task work that interrupts
   * the wait and posts the CQE from this thread, which signals the eventfd at once. Turn it on
   * for ZCRX (registerZcrx needs it) or when completions come from this process only. */
  deferTaskrun?: boolean;
  /** Poll the CQ from setImmediate for this long after completions (see LoopDriver). Default 0:
   * polling pays only where a core would otherwise idle. */
  spinUs?: number;
  /** Buffers in the shared receive pool (a power of two). Default 256. */
  recvBuffers?: number;
  /** Bytes per receive buffer. Default 65536: a buffer is a CQE, a chunk and (in an echo) a send,
   * so larger buffers cost less per byte (bench/results/recv-buffers-2026-12-05.md). The pool is
   * allocated on the first receive. */
  recvBufferBytes?: number;
  /** Buffer group id of the receive pool. Default 0x7b01. */
  recvBufferGroup?: number;
  /** Send SQEs that may hold buffers at once, per socket: 1..maxInflight. Default 64 (or
   * maxInflight when that is smaller). */
  maxInflightSends?: number;
  /** Sends from this size up try SEND_ZC. Default 16384, for every send mode: the async API keeps
   * small sends (requests, replies) on SEND. A ZcSender made directly uses 2048 in adaptive mode
   * and 16384 in mixed mode. */
  zcThresholdBytes?: number;
  /** false: never SEND_ZC. Default true (where the kernel has it). */
  zeroCopy?: boolean;
  /** How TCP and UDP sockets send (their send engine's ZcSender mode): "adaptive" (default), "mixed",
   * "zc" or "copy". */
  sendMode?: Exclude<ZcMode, "zc-fixed">;
  /** Register this ZCRX queue at open, as registerZcrx(zcrx) would. Where not given otherwise,
   * the ring then gets what ZCRX needs: deferTaskrun, 32-byte CQEs, and a CQ with one entry per
   * area buffer (a drain of the whole area then never ends the receive with -ENOSPC). */
  zcrx?: ZcrxIfqOptions;
}

/** Where to connect (`host` or `hostname`: a numeric address or a name, resolved through Bun's
 * DNS, each address tried in order) and the new socket's options. */
export interface ConnectOptions extends HostAddress, SocketOptions {
  /** Bun.connect-shaped handlers (open, data, drain, end, close, error) that drive the socket;
   * see src/api/handlers.ts for how they map onto recv() and send(). */
  socket?: SocketHandlers;
  /** Cancels the connect (IORING_OP_ASYNC_CANCEL); the promise rejects with ECANCELED (an error
   * named "TimeoutError" for AbortSignal.timeout). */
  signal?: AbortSignal;
}

/** Where to listen (a numeric address or "localhost": listen() binds at once), and the options
 * of every accepted socket. */
export interface ListenOptions extends HostAddress, SocketOptions {
  /** Bun.listen-shaped handlers: the listener accepts every connection itself and drives each
   * socket with them (src/api/handlers.ts). */
  socket?: SocketHandlers;
  backlog?: number;
  /** SO_REUSEADDR. Default true. */
  reuseAddr?: boolean;
  /** IPV6_V6ONLY for an IPv6 listener. */
  ipv6Only?: boolean;
}

export interface AcceptOptions {
  /** Stops waiting; when no other accept waits, the multishot accept is cancelled
   * (IORING_OP_ASYNC_CANCEL). The promise rejects with ECANCELED. */
  signal?: AbortSignal;
}

export interface UdpOptions extends HostAddress {
  /** Connect to this peer (a numeric address or "localhost"): send() then needs no destination. */
  connect?: HostAddress;
  /** SO_SNDBUF in bytes. Default: the kernel's. */
  sendBufferSize?: number;
  /** SO_RCVBUF in bytes. Default: the kernel's. */
  receiveBufferSize?: number;
}

interface Pending<T> {
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

interface ConnectState extends Pending<TcpSocket> {
  host: RingHost;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | null;
  aborted: boolean;
}

/** The connect's set-up (socket, options, CONNECT) ended: the socket, or its error. Runs inside a
 * completion handler (or inside start() when a step failed before reaching the kernel). */
function onConnectDone(st: ConnectState, s: SocketSetup): void {
  st.host.opsDone(1);
  if (st.signal && st.onAbort) st.signal.removeEventListener("abort", st.onAbort);
  if (s.error !== null) {
    st.reject(s.error.errno === ECANCELED && st.aborted ? abortError(st.signal!, "IORING_OP_CONNECT") : s.error);
    return;
  }
  let sock: TcpSocket;
  try {
    sock = new TcpSocket(st.host, s.fd);
  } catch (e) {
    // Nothing may throw out of a completion handler: the promise carries it.
    c.close(s.fd);
    disownFd(s.fd);
    st.reject(e);
    return;
  }
  st.resolve(st.host.adopt(sock));
}

function onCancelCqe(host: RingHost): void {
  host.opsDone(1);
}

/** Receive-buffer settings of a host (validated by openRing). */
interface RecvBufferSettings {
  count: number;
  bytes: number;
  group: number;
}

/** What the sockets, listeners and streams of one AsyncRing share, and the calls they make into
 * it: the ring and its loop driver, the send settings, the provided-buffer ring every receive
 * selects from (with the chunk lending that lets a received chunk be sent back without a copy),
 * the ZCRX receiver, and the bookkeeping close() needs. The AsyncRing keeps it private, so its
 * own surface is the user's methods alone. */
export class RingHost implements SocketHost {
  /** Receive buffers the kernel filled and consumers hold. */
  buffersOut = 0;
  /** Set by close()/closeNow(): nothing new starts. */
  isClosing = false;
  readonly sockets = new Set<AsyncSocket>();
  readonly listeners = new Set<TcpListener>();
  /** The ZCRX receiver of this ring (registerZcrx or importZcrx), or null. */
  zcrxRx: ZcrxReceiver | null = null;
  /** Ring operations the async layer itself has in flight (connects, cancels). */
  ownOps = 0;
  pbuf: ProvidedBufferRing | null = null;
  /** Per receive buffer: handed to a consumer as a chunk (1) and not given back yet. */
  private chunkLent: Uint8Array | null = null;
  /** Per receive buffer: sends that read it and are not released yet (holdChunk). */
  private chunkHolds: Int32Array | null = null;
  /** Per receive buffer: given back while a send held it; recycled at that send's release. */
  private chunkDeferred: Uint8Array | null = null;
  private starved: RecvStream[] = [];
  /** Per receive buffer: the stream it was filled for, until it is back in the pool. */
  private owners: (RecvStreamBase<any> | null)[] = [];
  /** Set with the pool (buffers()): an eighth of it, at least 4 (or all of a smaller pool). */
  streamQuota = 0;
  recvLimit = false;
  readonly recvReserve: number;

  constructor(
    readonly ring: Ring,
    readonly loop: LoopDriver,
    private readonly recvBuffers: RecvBufferSettings,
    readonly maxInflightSends: number,
    readonly zcThresholdBytes: number,
    readonly sendZc: boolean,
    readonly zcFlags: number,
    readonly zcMode: ZcMode,
  ) {
    // A sixteenth of the table (at least two entries: a send plus its cancel, or a send with its
    // notification entry), never all of it.
    const capacity = ring.ops.capacity;
    this.recvReserve = Math.min(capacity - 1, Math.max(2, Math.ceil(capacity / 16)));
  }

  get closing(): boolean {
    return this.isClosing;
  }

  // ---- RecvHost ----

  buffers(): ProvidedBufferRing {
    if (this.pbuf === null) {
      if (this.isClosing) throw closedError("recv", "ring");
      // recv() is a multishot RECV selecting from a provided-buffer ring: IORING_RECV_MULTISHOT
      // came in 6.0 (the buffer ring itself in 5.19).
      if (!kernelAtLeast("6.0", this.ring.capabilities.kernel))
        throw unsupported("recv", "multishot receive (IORING_RECV_MULTISHOT)", "6.0", this.ring.capabilities.kernel);
      const b = this.recvBuffers;
      try {
        this.pbuf = ProvidedBufferRing.create(this.ring, { bgid: b.group, entries: b.count, bufferSize: b.bytes });
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
        // The JS allocator's bare "Out of memory": say which memory, and what to change.
        throw new UringError(
          "recv",
          ENOMEM,
          `the receive pool (recvBuffers ${b.count} × recvBufferBytes ${b.bytes} = ${b.count * b.bytes} bytes) could not be allocated: ${e.message}`,
          "open the ring with fewer or smaller receive buffers",
          { cause: e },
        );
      }
      this.chunkLent = new Uint8Array(b.count);
      this.chunkDeferred = new Uint8Array(b.count);
      this.chunkHolds = new Int32Array(b.count);
      this.owners = new Array<RecvStreamBase<any> | null>(b.count).fill(null);
      this.streamQuota = Math.min(b.count, Math.max(4, b.count >> 3));
      this.recvLimit = probeRecvLimit();
    }
    return this.pbuf;
  }

  taken(bid: number, stream: RecvStreamBase<any>): void {
    this.buffersOut++;
    this.owners[bid] = stream;
  }

  /** A stream handed buffer `bid` to its consumer as a chunk. */
  lend(bid: number): void {
    this.chunkLent![bid] = 1;
  }

  /** `bytes` is about to be sent. If it is a view of receive buffers that consumers
   * hold (a chunk from recv()/recvFrom(), or part of one), the buffers stay out of the kernel's
   * reach until that send releases them, whatever the consumer's stream does meanwhile: the
   * zero-copy echo. Returns the first and last buffer id held as `first * 65536 + last`, or -1
   * when `bytes` is other memory. A view of a buffer already given back is refused: the kernel
   * may be writing the next receive into it. */
  holdChunk(bytes: Uint8Array): number {
    const p = this.pbuf;
    if (p === null || bytes.byteLength === 0 || bytes.buffer !== p.bufferMemory.buffer) return -1;
    const rel = bytes.byteOffset - p.bufferMemory.bytes.byteOffset;
    if (rel < 0 || rel + bytes.byteLength > p.entries * p.bufferSize) return -1;
    const first = Math.floor(rel / p.bufferSize);
    const last = Math.floor((rel + bytes.byteLength - 1) / p.bufferSize);
    const lent = this.chunkLent!;
    for (let b = first; b <= last; b++) {
      if (lent[b] === 0)
        throw invalidArgument(
          "send",
          `the data is a received chunk whose buffer (${b}) was already given back to the kernel (a chunk is valid until the next iteration step, or until a send of it is released): copy it with chunk.slice() to keep it`,
        );
    }
    const holds = this.chunkHolds!;
    for (let b = first; b <= last; b++) holds[b]!++;
    return first * 65536 + last;
  }

  /** The send holding buffers `first..last` (holdChunk) released them. */
  unholdChunk(first: number, last: number): void {
    const holds = this.chunkHolds;
    if (holds === null) return;
    for (let b = first; b <= last; b++) {
      if (--holds[b]! === 0 && this.chunkDeferred![b] === 1) {
        this.chunkDeferred![b] = 0;
        this.recycle(b);
      }
    }
  }

  recycle(bid: number, viewed = true): void {
    const holds = this.chunkHolds;
    if (holds !== null) {
      this.chunkLent![bid] = 0;
      // A send still reads this buffer: it goes back when that send is released.
      if (holds[bid]! > 0) {
        this.chunkDeferred![bid] = 1;
        return;
      }
    }
    this.buffersOut--;
    const owner = this.owners[bid] ?? null;
    this.owners[bid] = null;
    const p = this.pbuf;
    if (p === null || p.isClosed) {
      owner?.returned();
      return;
    }
    // ProvidedBufferRing tracks which buffers the kernel handed out through view(); a buffer
    // dropped without being looked at is marked that way first.
    if (!viewed) p.view(bid, 0);
    p.recycle(bid);
    p.publish();
    owner?.returned();
    if (this.starved.length > 0) {
      const s = this.starved;
      this.starved = [];
      for (const st of s) st.rearm();
    }
  }

  /** `stream` ended with ENOBUFS. It waits for the next recycle, unless a buffer is already back:
   * without DEFER_TASKRUN the kernel posts the ENOBUFS CQE at any syscall's return, so a consumer
   * may have given a buffer back before the driver dispatched it, and no later recycle need come. */
  starve(stream: RecvStream): void {
    const p = this.pbuf;
    if (p !== null && !p.isClosed && this.buffersOut < p.entries) stream.rearm();
    else this.starved.push(stream);
  }

  kick(): void {
    this.loop.kick();
  }

  /** ASYNC_CANCEL of one operation by its user_data. */
  trackCancel(target: number): void {
    if (this.ring.isClosed) return;
    if (this.ring.ops.available === 0) {
      // Every op slot is taken (a socket per slot, each with its receive armed): the cancel goes
      // out untracked (user_data 0, its CQE counted as unknown), so closing never needs a slot.
      const slot = this.ring.getSqe();
      prepCancel64(this.ring.sq, slot, target, 0);
      this.ring.setUserData(slot, 0);
      this.loop.kick();
      return;
    }
    const slot = this.ring.begin(onCancelCqe, this);
    prepCancel64(this.ring.sq, slot, target, 0);
    this.ownOps++;
    this.loop.kick();
  }

  // ---- ZCRX ----

  zcrxReceiver(): ZcrxReceiver {
    if (this.zcrxRx === null) throw invalidArgument("recvZc", "this ring has no ZCRX queue: call registerZcrx first");
    return this.zcrxRx;
  }

  /** ASYNC_CANCEL of the zero-copy receive on `fd` and nothing else: the socket's
   * sends in flight must complete (a linked chain cut in the middle leaves a gap in the stream).
   * IORING_ASYNC_CANCEL_FD | OP (6.6; RECV_ZC itself needs 6.15) | ALL. */
  cancelRecvZc(fd: number): void {
    if (this.ring.isClosed) return;
    const slot = this.ring.begin(onCancelCqe, this);
    prepCancelFdOp(this.ring.sq, slot, fd, Q.IORING_OP_RECV_ZC, Q.IORING_ASYNC_CANCEL_ALL);
    this.ownOps++;
    this.loop.kick();
  }

  // ---- sockets and listeners ----

  opsDone(n: number): void {
    this.ownOps -= n;
  }

  adopt<T extends AsyncSocket>(s: T): T {
    this.sockets.add(s);
    // In the fd ledger: a terminated Worker's sockets are closed by another thread (src/ring/reclaim.ts).
    ownSocket(s.fd);
    return s;
  }

  socketClosed(s: AsyncSocket): void {
    this.sockets.delete(s);
    disownFd(s.fd);
  }

  listenerClosed(l: TcpListener): void {
    this.listeners.delete(l);
    disownFd(l.fd);
  }
}

/** The host of an AsyncRing's sockets, for the library's own tests (sockets made over fds the
 * async API did not open). Not part of the package's surface. */
export let socketHostOf: (ring: AsyncRing) => RingHost;

/** A ring driven by Bun's event loop. Dispose with `using` / `await using`, or call close(). */
export class AsyncRing implements Disposable, AsyncDisposable {
  readonly ring: Ring;
  /** Runs the ring's completions inside Bun's event loop; after preparing SQEs on `ring` directly,
   * `loop.kick()` submits them. */
  readonly loop: LoopDriver;
  /** What this ring's sockets share and call into (RingHost). */
  readonly #host: RingHost;
  private zcrxIfq: ZcrxIfq | null = null;
  private closePromise: Promise<void> | null = null;

  static {
    socketHostOf = (r) => r.#host;
  }

  constructor(options: OpenRingOptions = {}) {
    if (options === null || typeof options !== "object")
      throw invalidArgument("openRing", `options must be an object, got ${shown(options)}`);
    const recvBuffers = options.recvBuffers ?? 256;
    if (
      !Number.isInteger(recvBuffers) ||
      recvBuffers < 1 ||
      recvBuffers > 32768 ||
      (recvBuffers & (recvBuffers - 1)) !== 0
    )
      throw invalidArgument(
        "openRing",
        `recvBuffers must be a power of two 1..32768, got ${shown(options.recvBuffers)}`,
      );
    const recvBufferBytes = options.recvBufferBytes ?? DEFAULT_RECV_BUFFER_BYTES;
    if (!Number.isInteger(recvBufferBytes) || recvBufferBytes < 1 || recvBufferBytes > 1 << 30)
      throw invalidArgument("openRing", `recvBufferBytes must be 1..2^30, got ${shown(options.recvBufferBytes)}`);
    // A socket's sends each need an op-table entry: more than the table holds can never be in
    // flight (and the sender's per-send arrays are sized by it).
    const opSlots = options.maxInflight ?? DEFAULT_OP_SLOTS;
    // Checked here too (Ring.create checks it again), so that a bad table size is not reported as
    // a bad maxInflightSends bound by it.
    if (!Number.isInteger(opSlots) || opSlots < 1 || opSlots > OP_MAX_CAPACITY)
      throw invalidArgument("openRing", `maxInflight must be an integer 1..${OP_MAX_CAPACITY}, got ${shown(opSlots)}`);
    const maxInflightSends = options.maxInflightSends ?? Math.min(64, opSlots);
    if (!Number.isInteger(maxInflightSends) || maxInflightSends < 1 || maxInflightSends > opSlots)
      throw invalidArgument(
        "openRing",
        `maxInflightSends must be an integer 1..${opSlots} (the op table, maxInflight), got ${shown(options.maxInflightSends)}`,
      );
    const zcThresholdBytes = options.zcThresholdBytes ?? 16384;
    if (!Number.isInteger(zcThresholdBytes) || zcThresholdBytes < 0)
      throw invalidArgument(
        "openRing",
        `zcThresholdBytes must be an integer >= 0, got ${shown(options.zcThresholdBytes)}`,
      );
    const group = options.recvBufferGroup ?? 0x7b01;
    if (!Number.isInteger(group) || group < 0 || group > 0xffff)
      throw invalidArgument("openRing", `recvBufferGroup must be 0..65535, got ${shown(options.recvBufferGroup)}`);
    const mode = options.sendMode ?? "adaptive";
    if (!["adaptive", "mixed", "zc", "copy"].includes(mode))
      throw invalidArgument("openRing", `sendMode must be "adaptive", "mixed", "zc" or "copy", got ${shown(mode)}`);
    const zcrx = options.zcrx;
    const deferTaskrun = options.deferTaskrun ?? zcrx !== undefined;
    if (typeof deferTaskrun !== "boolean")
      throw invalidArgument("openRing", `deferTaskrun must be a boolean, got ${shown(options.deferTaskrun)}`);
    this.ring = Ring.create({
      maxInflight: DEFAULT_OP_SLOTS,
      ...options,
      deferTaskrun,
      ...(zcrx !== undefined ? zcrxRingDefaults(options, zcrx) : {}),
    });
    // Closing the Ring itself (asyncRing.ring.close()) is the same as closeNow(): the sockets'
    // queued sends, accepts and receives settle, and the driver stops waiting on the eventfd
    // (else the process could never exit).
    const ring = this.ring;
    const closeRing = ring.close.bind(ring);
    ring.close = (timeoutMs?: number): void => {
      if (this.#host.isClosing) closeRing(timeoutMs);
      else this.closeNow();
    };
    try {
      this.loop = new LoopDriver(this.ring, { spinUs: options.spinUs });
    } catch (e) {
      // Nothing else exists yet: the ring alone goes.
      closeRing();
      throw e;
    }
    const sendZc = options.zeroCopy !== false && this.ring.supports(Q.IORING_OP_SEND_ZC);
    // Probed, not read off the version: distributions backport it (Debian's 6.1 has it).
    const zcFlags = sendZc && probeReportUsage() ? Q.IORING_SEND_ZC_REPORT_USAGE : 0;
    this.#host = new RingHost(
      this.ring,
      this.loop,
      { count: recvBuffers, bytes: recvBufferBytes, group },
      maxInflightSends,
      zcThresholdBytes,
      sendZc,
      zcFlags,
      mode,
    );
    if (zcrx !== undefined) {
      try {
        this.registerZcrx(zcrx);
      } catch (e) {
        this.closeNow();
        throw e;
      }
    }
  }

  /** Whether close() began. */
  get closing(): boolean {
    return this.#host.isClosing;
  }

  /** Operations in flight in the ring (0 after close). */
  get inflight(): number {
    return this.ring.isClosed ? 0 : this.ring.ops.inflight;
  }

  /** Receive buffers the kernel filled and consumers hold (0 once every chunk is given back). */
  get buffersOut(): number {
    return this.#host.buffersOut;
  }

  /** Whether sends may go out as SEND_ZC: the kernel has it and `zeroCopy` was not false. */
  get sendZc(): boolean {
    return this.#host.sendZc;
  }

  // ---- ZCRX ----

  /** Register a ZCRX interface queue on this ring (IORING_REGISTER_ZCRX_IFQ): a NIC rx queue
   * (ifname + rxq) or device-less (nodev, Linux 7.1+). The ring must have been opened with
   * `deferTaskrun: true` and `cqe32: true` (or `cqeMixed`). Sockets then receive with recvZc(). */
  registerZcrx(options: ZcrxIfqOptions): ZcrxIfq {
    this.ensureOpen("registerZcrx");
    if (this.zcrxIfq !== null) throw invalidArgument("registerZcrx", "this ring already has a ZCRX queue");
    const problem = zcrxRingProblem(this.ring);
    if (problem !== null)
      throw invalidArgument("registerZcrx", `${problem}: open it with openRing({ deferTaskrun: true, cqe32: true })`);
    const ifq = ZcrxIfq.register(this.ring, options);
    this.zcrxIfq = ifq;
    this.#host.zcrxRx = ifq.receiver();
    return ifq;
  }

  /** Take part in a ZCRX queue another ring registered and exported (ZcrxIfq.export(), Linux
   * 6.19), on this thread or in another Worker: `queue` is that ifq's postable() and
   * `refillLock` the RefillLock every ring sharing the queue takes to write its one refill ring.
   * The ring needs deferTaskrun and cqe32 like the exporter's. Sockets then receive with
   * recvZc(). The fd can be closed once this returns. */
  importZcrx(fd: number, queue: PostableZcrxQueue, refillLock: RefillLock): ImportedZcrx {
    this.ensureOpen("importZcrx");
    if (this.#host.zcrxRx !== null) throw invalidArgument("importZcrx", "this ring already has a ZCRX queue");
    if (!(refillLock instanceof RefillLock))
      throw invalidArgument(
        "importZcrx",
        "refillLock must be the RefillLock the queue's other rings use (new RefillLock(lock.buffer) in a Worker)",
      );
    const imported = importZcrx(this.ring, fd, sharedQueueFrom(queue));
    this.#host.zcrxRx = imported.receiver({ refillLock });
    return imported;
  }

  /** The ZCRX queue registered on this ring (registerZcrx or openRing({ zcrx })), or null. */
  get zcrxQueue(): ZcrxIfq | null {
    return this.zcrxIfq;
  }

  private ensureOpen(where: string): void {
    if (this.#host.isClosing) throw closedError(where, "ring");
  }

  // ---- sockets ----

  /** Connect a TCP socket (IORING_OP_CONNECT). A name is resolved through Bun's DNS first and
   * its addresses are tried in order. Rejects with UringError (ECONNREFUSED...). */
  connect(o: ConnectOptions): Promise<TcpSocket> {
    this.ensureOpen("connect");
    const host = hostOf("connect", o);
    checkSocketOptions("connect", o);
    if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
      throw invalidArgument("connect", "signal must be an AbortSignal");
    if (o.signal?.aborted) return Promise.reject(abortError(o.signal, "IORING_OP_CONNECT"));
    let numeric: Sockaddr | null = null;
    try {
      numeric = sockaddr({ host, port: o.port });
    } catch (e) {
      // Not a numeric address: a name (a bad port is refused the same way for both).
      sockaddr({ host: "0.0.0.0", port: o.port });
    }
    const handlers = o.socket === undefined ? null : checkHandlers("connect", o.socket);
    const connecting =
      numeric !== null ? this.connectTo(numeric, o, formatAddress({ host, port: o.port })) : this.connectByName(o);
    if (handlers === null) return connecting;
    return connecting.then((sock) => {
      void drive(sock, handlers, this.#host.maxInflightSends);
      return sock;
    });
  }

  private async connectByName(o: ConnectOptions): Promise<TcpSocket> {
    const addrs = await connectAddresses("connect", o);
    const name = hostOf("connect", o);
    let last: unknown = null;
    for (const a of addrs) {
      this.ensureOpen("connect");
      try {
        return await this.connectTo(sockaddr(a), o, `${name} (${formatAddress(a)})`);
      } catch (e) {
        if (o.signal?.aborted || !tryNextAddress(e)) throw e;
        last = e;
      }
    }
    throw last;
  }

  /** The socket's set-up (src/net/setup.ts): SOCKET, its options and CONNECT through the ring
   * where the kernel has them, each started from the previous one's completion. */
  private connectTo(addr: Sockaddr, o: ConnectOptions, label: string): Promise<TcpSocket> {
    return new Promise<TcpSocket>((resolve, reject) => {
      const host = this.#host;
      const st: ConnectState = { host, resolve, reject, signal: o.signal, onAbort: null, aborted: false };
      const setup = new SocketSetup(
        this.ring,
        {
          family: addr.family,
          type: SOCK_STREAM,
          options: optionSteps(o),
          connect: addr,
          connectLabel: label,
          nonBlocking: true,
          purpose: `TCP socket for ${label}`,
          record: true,
        },
        (s) => onConnectDone(st, s),
      );
      if (o.signal) {
        st.onAbort = () => {
          st.aborted = true;
          const inFlight = setup.stop(new UringError("IORING_OP_CONNECT", ECANCELED, `to ${label}: aborted`));
          if (inFlight >= 0) host.trackCancel(inFlight);
        };
        o.signal.addEventListener("abort", st.onAbort, { once: true });
      }
      host.ownOps++;
      setup.start();
      this.loop.kick();
    });
  }

  /** A listening TCP socket. It returns at once, so its set-up (socket, options, bind, listen)
   * takes the libc form of src/net/setup.ts: a ring step would complete on a later turn. Port 0
   * lets the kernel pick; read it from `listener.port`. */
  listen(o: ListenOptions): TcpListener {
    this.ensureOpen("listen");
    const where = bindAddress("listen", o);
    checkSocketOptions("listen", o);
    const handlers = o.socket === undefined ? null : checkHandlers("listen", o.socket);
    const addr = sockaddr(where);
    const backlog = checkBacklog("listen", o.backlog ?? 511);
    const options: IntOption[] = [];
    if (o.reuseAddr !== false) options.push({ level: SOL_SOCKET, name: SO_REUSEADDR, value: 1, label: "SO_REUSEADDR" });
    if (o.ipv6Only !== undefined && addr.family === AF_INET6)
      options.push({ level: IPPROTO_IPV6, name: IPV6_V6ONLY, value: o.ipv6Only ? 1 : 0, label: "IPV6_V6ONLY" });
    const fd = setUpNow(this.ring, {
      family: addr.family,
      type: SOCK_STREAM,
      options,
      bind: addr,
      listen: backlog,
      nonBlocking: true,
      purpose: `TCP listener on ${formatAddress(where)}`,
      record: true,
    });
    let l: TcpListener;
    try {
      l = new TcpListener(this.#host, fd, optionSteps(o));
    } catch (e) {
      c.close(fd);
      disownFd(fd);
      throw e;
    }
    this.#host.listeners.add(l);
    if (handlers !== null) void serve(l, handlers, this.#host.maxInflightSends);
    return l;
  }

  /** A UDP socket bound to host:port (port 0: any), connected to `connect` when given. */
  udp(o: UdpOptions): UdpSocket {
    this.ensureOpen("udp");
    const where = bindAddress("udp", o);
    const to = o.connect ? bindAddress("udp", o.connect) : null;
    if (o.sendBufferSize !== undefined) checkBufferSize("udp", "sendBufferSize", o.sendBufferSize);
    if (o.receiveBufferSize !== undefined) checkBufferSize("udp", "receiveBufferSize", o.receiveBufferSize);
    const addr = sockaddr(where);
    const options: IntOption[] = [];
    if (o.sendBufferSize !== undefined) options.push(bufferSizeStep(true, o.sendBufferSize));
    if (o.receiveBufferSize !== undefined) options.push(bufferSizeStep(false, o.receiveBufferSize));
    // Returns at once, so the libc form of the set-up (as listen()).
    const fd = setUpNow(this.ring, {
      family: addr.family,
      type: SOCK_DGRAM,
      options,
      bind: addr,
      connect: to === null ? undefined : sockaddr(to),
      nonBlocking: true,
      purpose: `UDP socket on ${formatAddress(where)}`,
      record: true,
    });
    return this.#host.adopt(new UdpSocket(this.#host, fd, o.connect !== undefined));
  }

  /** Wrap a connected TCP socket fd made elsewhere (the ring takes ownership and closes it). */
  adoptTcp(fd: number): TcpSocket {
    this.ensureOpen("adoptTcp");
    if (typeof fd !== "number" || !Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff)
      throw invalidArgument("adoptTcp", `fd must be a descriptor (an integer >= 0), got ${shown(fd)}`);
    for (const s of this.#host.sockets)
      if (s.fd === fd) throw invalidArgument("adoptTcp", `fd ${fd} already belongs to a socket of this ring`);
    for (const l of this.#host.listeners)
      if (l.fd === fd) throw invalidArgument("adoptTcp", `fd ${fd} is this ring's listener`);
    // The ring will send, receive and finally close(2) it: it must be a TCP socket (a wrong fd
    // would be closed from under its real owner).
    let type: number;
    let domain: number;
    try {
      type = getIntOption(fd, SOL_SOCKET, SO_TYPE, "SO_TYPE");
      domain = getIntOption(fd, SOL_SOCKET, SO_DOMAIN, "SO_DOMAIN");
    } catch (e) {
      throw invalidArgument("adoptTcp", `fd ${fd} is not a socket (${(e as UringError).code})`);
    }
    if (type !== SOCK_STREAM || (domain !== AF_INET && domain !== AF_INET6))
      throw invalidArgument("adoptTcp", `fd ${fd} is not a TCP socket (SO_TYPE ${type}, SO_DOMAIN ${domain})`);
    return this.#host.adopt(new TcpSocket(this.#host, fd));
  }

  // ---- teardown ----

  /** Close every listener and socket (cancelling their receives and accepts, letting sends
   * finish), then the loop driver, the receive pool and the ring. Once it resolves nothing is in
   * flight, every buffer is back and every fd of the ring is closed. */
  close(): Promise<void> {
    if (this.closePromise !== null) return this.closePromise;
    this.closePromise = (async () => {
      const pending: Promise<void>[] = [];
      for (const l of this.#host.listeners) pending.push(l.close());
      for (const s of this.#host.sockets) pending.push(s.close());
      const deadline = performance.now() + 5000;
      await Promise.race([Promise.all(pending), new Promise<void>((r) => setTimeout(r, 5000).unref())]);
      // Connects and cancels of the async layer itself finish on their own.
      while (this.#host.ownOps > 0 && performance.now() < deadline && !this.ring.isClosed)
        await new Promise<void>((r) => setImmediate(r));
      this.closeNow();
      // Resolved with every fd closed: the driver's eventfd goes once Bun lets go of its stream.
      await this.loop.released;
    })();
    return this.closePromise;
  }

  /** Synchronous teardown: fail queued sends, cancel everything in flight and wait (bounded) for
   * the kernel to finish with it (Ring.close), close every fd, the pool and the driver. */
  closeNow(): void {
    if (this.ring.isClosed) return;
    this.#host.isClosing = true;
    for (const s of this.#host.sockets) s.abandon();
    for (const l of this.#host.listeners) l.abandon();
    this.loop.close();
    if (this.ring.ops.inflight > 0) {
      // One cancel for everything left (IORING_ASYNC_CANCEL_ALL | ANY, 5.19): multishot receives
      // and accepts end only this way. With the op table full it goes out untracked (user_data
      // 0: its CQE is counted as unknown); Ring.close waits for the rest either way.
      const tracked = this.ring.ops.available > 0;
      const slot = tracked ? this.ring.begin(onCancelCqe, this.#host) : this.ring.getSqe();
      prepCancel64(this.ring.sq, slot, 0, Q.IORING_ASYNC_CANCEL_ALL | Q.IORING_ASYNC_CANCEL_ANY);
      if (tracked) this.#host.ownOps++;
    }
    // Ring.close cancels what is still in flight and dispatches each last CQE, so every handler
    // runs (promises reject with ECANCELED, buffers are released) before the ring goes.
    this.ring.close();
    for (const s of [...this.#host.sockets]) s.closeFd();
    for (const l of [...this.#host.listeners]) l.closeFd();
    this.#host.pbuf?.close();
    this.#host.pbuf = null;
    // The kernel drops the ifq with the ring; then the area and refill mapping can go.
    this.#host.zcrxRx?.close();
    this.zcrxIfq?.close();
  }

  [Symbol.dispose](): void {
    this.closeNow();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

interface AcceptWaiter extends Pending<TcpSocket> {
  signal: AbortSignal | undefined;
  onAbort: (() => void) | null;
}

function onAcceptCqe(l: TcpListener, res: number, flags: number, index: number): void {
  l.cqe(res, flags, index);
}

/** A listening TCP socket. `accept()` one connection at a time, or iterate with `for await`.
 * One multishot ACCEPT stays armed while someone waits. When nobody has waited for a whole turn
 * of the event loop, it is cancelled, so an idle listener keeps no operation in flight and the
 * process may exit; connections the kernel accepted before the cancel landed are kept for the
 * next accept(). */
export class TcpListener implements AsyncIterable<TcpSocket>, AsyncDisposable {
  readonly fd: number;
  /** The bound address; `port` is the kernel's pick when 0 was asked. */
  readonly address: DecodedAddress;
  private readonly owner: RingHost;
  /** The setsockopt steps of every accepted socket (ListenOptions' SocketOptions). */
  private readonly socketOptions: readonly IntOption[];
  private readonly fds: number[] = [];
  private waiters: AcceptWaiter[] = [];
  private userData = -1;
  /** The fd ledger's watch of the armed accept (watchCqeFds), or -1. */
  private watch = -1;
  private armed = false;
  private closing = false;
  private fdClosed = false;
  private error: UringError | null = null;
  private closePromise: Promise<void> | null = null;
  private closeResolve: (() => void) | null = null;
  /** A check for a multishot accept nobody waits for is queued (setImmediate). */
  private idleCheckQueued = false;
  private cancelling = false;
  private readonly idleCheck = (): void => {
    this.idleCheckQueued = false;
    if (this.waiters.length === 0 && this.armed && !this.cancelling && !this.closing && !this.owner.ring.isClosed) {
      this.cancelling = true;
      this.owner.trackCancel(this.userData);
    }
  };

  /** @internal */
  constructor(owner: RingHost, fd: number, socketOptions: readonly IntOption[]) {
    this.owner = owner;
    this.fd = fd;
    this.socketOptions = socketOptions;
    this.address = localAddress(fd);
    ownSocket(fd);
  }

  get port(): number {
    return this.address.port;
  }

  /** Whether close() began (or the ring closed). */
  get isClosed(): boolean {
    return this.closing;
  }

  /** The next connection. */
  accept(o: AcceptOptions = {}): Promise<TcpSocket> {
    if (this.closing) return Promise.reject(closedError("accept", "listener"));
    if (o.signal?.aborted) return Promise.reject(abortError(o.signal, "IORING_OP_ACCEPT"));
    if (this.fds.length > 0) {
      try {
        return Promise.resolve(this.wrap(this.fds.shift()!));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    if (this.error !== null) {
      const e = this.error;
      this.error = null;
      return Promise.reject(e);
    }
    return new Promise<TcpSocket>((resolve, reject) => {
      // Armed before the waiter is registered: a refusal (the op table full, EBUSY) leaves no
      // waiter behind for a later connection to be handed to.
      if (!this.armed) {
        try {
          this.arm();
        } catch (e) {
          reject(e);
          return;
        }
      }
      const w: AcceptWaiter = { resolve, reject, signal: o.signal, onAbort: null };
      if (o.signal) {
        w.onAbort = () => this.abortWaiter(w);
        o.signal.addEventListener("abort", w.onAbort, { once: true });
      }
      this.waiters.push(w);
    });
  }

  /** Accept failures that left the listener sound (out of fds or memory for now, the op table
   * full, or a connection that died before it was taken), counted since the listener opened; the
   * iterator waited and accepted again after each. */
  acceptErrors = 0;
  /** The last of those, or null. */
  lastAcceptError: UringError | null = null;

  /** Every connection until the listener closes. A failure that leaves the listener sound
   * (EMFILE, ENFILE, ENOBUFS, ENOMEM, ECONNABORTED, or EBUSY: the op table full) does not end the
   * loop: it is counted in `acceptErrors`, and accepting resumes after a pause that doubles from
   * 5 ms to 1 s while the failures last (connections wait in the kernel's backlog meanwhile). Any
   * other failure ends the loop with its error. */
  [Symbol.asyncIterator](): AsyncIterator<TcpSocket> {
    return this.connections(null);
  }

  /** @internal — the iterator, telling `onRetry` of each failure it waits out. */
  async *connections(onRetry: ((e: UringError) => void) | null): AsyncGenerator<TcpSocket> {
    let pause = ACCEPT_RETRY_FIRST_MS;
    for (;;) {
      let s: TcpSocket;
      try {
        s = await this.accept();
      } catch (e) {
        if (this.closing) return;
        if (!(e instanceof UringError) || !TRANSIENT_ACCEPT_ERRNOS.has(e.errno)) throw e;
        this.acceptErrors++;
        this.lastAcceptError = e;
        onRetry?.(e);
        await new Promise<void>((r) => setTimeout(r, pause));
        pause = Math.min(pause * 2, ACCEPT_RETRY_MAX_MS);
        continue;
      }
      pause = ACCEPT_RETRY_FIRST_MS;
      yield s;
    }
  }

  /** An accepted fd as a socket with the listener's options; a refused option closes the fd. */
  private wrap(fd: number): TcpSocket {
    let sock: TcpSocket;
    try {
      // The accepted socket's set-up is its options alone, at once (it resolves a waiting accept).
      setUpNow(this.owner.ring, { fd, options: this.socketOptions });
      sock = new TcpSocket(this.owner, fd);
    } catch (e) {
      c.close(fd);
      disownFd(fd);
      throw e;
    }
    return this.owner.adopt(sock);
  }

  private arm(): void {
    const ring = this.owner.ring;
    // Multishot ACCEPT needs 5.19; before that each accept is one SQE, re-armed while someone
    // waits (the CQE handler does that for a CQE without F_MORE either way).
    this.userData = submitAccept(ring, this.fd, onAcceptCqe, this, kernelAtLeast("5.19", ring.capabilities.kernel));
    // Until each accepted fd is in the ledger, a sweep after a termination finds it in the CQ.
    this.watch = watchCqeFds(ring.fd, this.userData);
    this.armed = true;
    this.owner.kick();
  }

  private rejectWaiters(e: unknown): void {
    for (const w of this.waiters.splice(0)) {
      if (w.signal && w.onAbort) w.signal.removeEventListener("abort", w.onAbort);
      w.reject(e);
    }
  }

  private abortWaiter(w: AcceptWaiter): void {
    const i = this.waiters.indexOf(w);
    if (i < 0) return;
    this.waiters.splice(i, 1);
    w.reject(abortError(w.signal!, "IORING_OP_ACCEPT"));
    if (this.waiters.length === 0 && this.armed && !this.cancelling) {
      this.cancelling = true;
      this.owner.trackCancel(this.userData);
    }
  }

  /** @internal */
  cqe(res: number, flags: number, index: number): void {
    const final = (flags & Q.IORING_CQE_F_MORE) === 0;
    if (res >= 0) {
      // Into the fd ledger first, then marked taken: a Worker terminated anywhere in between
      // leaves the fd findable by one or the other (src/ring/reclaim.ts watchCqeFds).
      ownSocket(res);
      cqeTaken(this.watch, this.owner.ring.fd, this.owner.ring.batch.count, index);
    }
    if (final) {
      this.armed = false;
      this.cancelling = false;
      unwatchCqeFds(this.watch);
      this.watch = -1;
    }
    if (res >= 0) {
      if (this.closing) {
        c.close(res);
        disownFd(res);
      } else {
        const w = this.waiters.shift();
        if (w) {
          if (w.signal && w.onAbort) w.signal.removeEventListener("abort", w.onAbort);
          try {
            w.resolve(this.wrap(res));
          } catch (e) {
            w.reject(e);
          }
        } else this.fds.push(res);
      }
    } else if (res === -ECANCELED && final && !this.closing && !this.cancelling && this.waiters.length > 0) {
      // Cancelled by nobody here: the ring went away underneath (its own close). Waiting on would
      // wait forever.
      this.rejectWaiters(
        new UringError(
          "IORING_OP_ACCEPT",
          ECANCELED,
          `listener fd ${this.fd}: the accept was cancelled outside the listener (the ring closed)`,
        ),
      );
    } else if (res !== -ECANCELED && !this.closing) {
      const e = new UringError("IORING_OP_ACCEPT", -res, `listener fd ${this.fd}`);
      const w = this.waiters.shift();
      if (w) {
        if (w.signal && w.onAbort) w.signal.removeEventListener("abort", w.onAbort);
        w.reject(e);
      } else this.error = e;
    }
    if (final && !this.closing && this.waiters.length > 0 && !this.owner.closing) {
      // Nothing may throw out of a completion handler: with the op table full the waiters get
      // the refusal (EBUSY, which the iterator waits out).
      try {
        this.arm();
      } catch (e) {
        this.rejectWaiters(e);
      }
    }
    // Nobody waits now: a `for await` loop asks again within this turn; if no one has by the
    // next turn, the multishot accept goes (idleCheck).
    if (this.armed && this.waiters.length === 0 && !this.idleCheckQueued && !this.cancelling) {
      this.idleCheckQueued = true;
      setImmediate(this.idleCheck);
    }
    if (final) this.checkClosed();
  }

  /** Stop accepting: cancel the multishot accept, close connections nobody took, then the fd. */
  close(): Promise<void> {
    if (this.closePromise !== null) return this.closePromise;
    this.closing = true;
    this.closePromise = new Promise<void>((resolve) => (this.closeResolve = resolve));
    this.rejectWaiters(closedError("accept", "listener"));
    if (this.armed && !this.cancelling && !this.owner.ring.isClosed) {
      this.cancelling = true;
      this.owner.trackCancel(this.userData);
    }
    this.checkClosed();
    return this.closePromise;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal */
  abandon(): void {
    if (!this.closing) void this.close();
  }

  private checkClosed(): void {
    if (!this.closing || this.armed) return;
    this.closeFd();
  }

  /** @internal */
  closeFd(): void {
    if (this.fdClosed) return;
    this.fdClosed = true;
    for (const fd of this.fds.splice(0)) {
      c.close(fd);
      disownFd(fd);
    }
    c.close(this.fd);
    this.owner.listenerClosed(this);
    this.closeResolve?.();
    this.closeResolve = null;
  }
}

/** A listener with handlers serves itself until it closes. A failed accept goes to the error
 * handler with a null socket: one that left the listener sound (EMFILE, ENFILE...) as the
 * iterator waits it out, any other once, and then the listener is closed (it cannot accept). */
async function serve(l: TcpListener, h: SocketHandlers, maxInflightSends: number): Promise<void> {
  try {
    for await (const sock of l.connections((e) => reportHandlerError(null, h, e)))
      void drive(sock, h, maxInflightSends);
  } catch (e) {
    if (l.isClosed) return;
    reportHandlerError(null, h, e);
    await l.close();
  }
}

/** Accept errors that leave the listener sound: the process or the system is out of fds or memory
 * for now, the ring's op table is full (EBUSY), or one connection was reset before it was taken. Waiting and accepting again is the
 * answer (Bun's and Node's servers keep listening through them too). */
const TRANSIENT_ACCEPT_ERRNOS: ReadonlySet<number> = new Set([EMFILE, ENFILE, ENOBUFS, ENOMEM, ECONNABORTED, EBUSY]);
/** Pause before accepting again after such an error: doubling from the first to the last. */
const ACCEPT_RETRY_FIRST_MS = 5;
const ACCEPT_RETRY_MAX_MS = 1000;

/** Bytes per receive buffer unless the options say otherwise. */
const DEFAULT_RECV_BUFFER_BYTES = 65536;

/** Op-table entries of an async ring (RingOptions.maxInflight) unless the options say otherwise. */
const DEFAULT_OP_SLOTS = 8192;

/** Open a ring driven by Bun's event loop. */
export function openRing(options: OpenRingOptions = {}): AsyncRing {
  return new AsyncRing(options);
}
