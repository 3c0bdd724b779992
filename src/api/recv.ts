// Receives of the async API: one multishot receive per stream selecting buffers from the ring's
// provided-buffer ring — IORING_OP_RECV for recv() (io_uring_prep_recv_multishot) and
// IORING_OP_RECVMSG for UdpSocket.recvFrom() (io_uring_prep_recvmsg_multishot), whose buffers
// start with a struct io_uring_recvmsg_out and the sender's address. Each CQE names the buffer it
// filled; the stream queues (bid, length) pairs in preallocated arrays and hands them out as
// views. A chunk is valid until the next `next()` call, which gives its buffer back to the kernel
// (one tail store) — unless a send of the chunk still reads it: the host then keeps the buffer
// until that send is released (RingHost.holdChunk in ring.ts). Leaving a `for await` loop
// (return()) pauses the stream: the multishot receive is cancelled, and what was received is kept
// for the next reader of the socket.
import * as Q from "../abi/sqe.ts";
import { EBUSY, ECANCELED, ENOBUFS, ERRNO } from "../abi/errno.ts";
import { IO_URING_RECVMSG_OUT, MSGHDR, MSG_TRUNC, SOCKADDR_IN6 } from "../abi/net.ts";
import { UringError, invalidArgument, shown } from "../error.ts";
import { type DecodedAddress, decodeSockaddr } from "../net/sockaddr.ts";
import { prepRecvMultishot, prepRecvSetLimit, prepRecvmsgMultishot } from "../ops/prep.ts";
import type { ProvidedBufferRing } from "../ring/register.ts";
import type { Ring } from "../ring/ring.ts";

/** What a stream needs from the ring that owns it. */
export interface RecvHost {
  readonly ring: Ring;
  readonly closing: boolean;
  /** The shared provided-buffer ring (created on first use). */
  buffers(): ProvidedBufferRing;
  /** Buffers taken by the kernel and not yet given back, across all streams. */
  readonly buffersOut: number;
  /** The kernel filled buffer `bid` for `stream`: it counts against that stream until recycled. */
  taken(bid: number, stream: RecvStreamBase<any>): void;
  /** Buffers one stream may have out (queued, lent, or held by sends of its chunks) before its
   * receive is paused in the kernel: one socket whose data is not consumed (a peer that floods
   * an echo and never reads) cannot take the whole pool from the others. */
  readonly streamQuota: number;
  /** The kernel takes a byte limit on a multishot RECV (probeRecvLimit): a stream arms with what
   * its quota has left, so a burst cannot overshoot it before a cancel lands. */
  readonly recvLimit: boolean;
  /** Give a buffer back and re-arm streams that ran out; `viewed` false for a buffer that was
   * never handed out as a view. */
  recycle(bid: number, viewed?: boolean): void;
  /** Buffer `bid` is handed to a consumer as a chunk (a send of it may hold it past recycle). */
  lend(bid: number): void;
  /** Hold the receive buffers `bytes` views until a send of it is released (-1: other memory). */
  holdChunk(bytes: Uint8Array): number;
  unholdChunk(first: number, last: number): void;
  /** Re-arm `stream` once some buffer comes back. */
  starve(stream: RecvStreamBase<any>): void;
  kick(): void;
  /** A no-op handler's target for cancel SQEs (counted in flight like any op). */
  trackCancel(targetUserData: number): void;
  /** Op-table entries a receive may not take: a multishot receive holds its entry for as long as
   * the socket receives, so without a reserve, sockets that only receive could hold them all and
   * every send, connect and cancel would wait forever. */
  readonly recvReserve: number;
}

/** What a stream tells its socket. */
export interface RecvSocket {
  readonly fd: number;
  /** Operations of this socket in flight changed by `delta`. */
  opDelta(delta: number): void;
  /** The stream ended (EOF, error, cancel or return()). */
  streamEnded(stream: RecvStreamBase<any>): void;
  /** A receive failed: the socket keeps its first error (AsyncSocket.error, closed). */
  noteError(error: UringError): void;
}

export interface RecvStreamOptions {
  /** Cancels the receive (IORING_OP_ASYNC_CANCEL); the pending next() rejects with ECANCELED
   * (with `AbortSignal.timeout(ms)`: an error named "TimeoutError", ETIMEDOUT). */
  signal?: AbortSignal;
  /** Per-read timeout in milliseconds: a next() that waits this long for data rejects with an
   * error named "TimeoutError" (ETIMEDOUT). The stream pauses, losing nothing: the socket's next
   * recv() goes on from where it stopped. Default: none. */
  timeoutMs?: number;
}

/** The largest per-read timeout (setTimeout's limit, about 24.8 days). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Checks RecvStreamOptions at the edge; returns the timeout (0: none). */
export function checkRecvOptions(where: string, o: RecvStreamOptions): number {
  if (o === null || typeof o !== "object") throw invalidArgument(where, "options must be an object");
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    throw invalidArgument(where, "options.signal must be an AbortSignal");
  const t = o.timeoutMs;
  if (t === undefined) return 0;
  if (typeof t !== "number" || !Number.isInteger(t) || t < 1 || t > MAX_TIMEOUT_MS)
    throw invalidArgument(where, `options.timeoutMs must be an integer 1..${MAX_TIMEOUT_MS}, got ${shown(t)}`);
  return t;
}

const NO_BID = -1;

function onRecvCqe(s: RecvStreamBase<any>, res: number, flags: number): void {
  s.cqe(res, flags);
}

/** The multishot receive shared by recv() and recvFrom(): arming, buffer accounting, the queue of
 * filled buffers, cancel, abort and the iterator protocol. A subclass says which SQE to write
 * and what one filled buffer yields. */
export abstract class RecvStreamBase<T> implements AsyncIterableIterator<T> {
  protected readonly host: RecvHost;
  private readonly socket: RecvSocket;
  private readonly datagram: boolean;
  /** The opcode's name in errors. */
  private readonly opcode: string;
  private readonly bids: Int32Array;
  private readonly lens: Int32Array;
  private qHead = 0;
  private qCount = 0;
  private held = NO_BID;
  private userData = -1;
  private armed = false;
  private starved = false;
  /** Buffers of this stream not back in the pool (see RecvHost.streamQuota). */
  private out = 0;
  /** Paused in the kernel because `out` reached the quota; resumes at half of it. */
  private throttled = false;
  private eof = false;
  private ended = false;
  private error: UringError | null = null;
  private aborted = false;
  private waitResolve: ((r: IteratorResult<T>) => void) | null = null;
  private waitReject: ((e: unknown) => void) | null = null;
  private signal: AbortSignal | undefined;
  private readonly onAbort = (): void => this.abort();
  /** The consumer left (return()): the kernel side is cancelled, queued chunks are kept. */
  private paused = false;
  /** A cancel for the armed multishot is on its way (pause): its ECANCELED is no error. */
  private cancelling = false;
  private timeoutMs = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly onTimeout = (): void => this.timedOut();

  /** @internal — the subclass calls start() once its own fields are set. */
  constructor(host: RecvHost, socket: RecvSocket, datagram: boolean, opcode: string, o: RecvStreamOptions) {
    this.host = host;
    this.socket = socket;
    this.datagram = datagram;
    this.opcode = opcode;
    const cap = host.buffers().entries;
    this.bids = new Int32Array(cap);
    this.lens = new Int32Array(cap);
    this.timeoutMs = checkRecvOptions(opcode === "IORING_OP_RECV" ? "recv" : "recvFrom", o);
    this.signal = o.signal;
  }

  /** Write the receive SQE into `slot` (user_data is set by the caller); `userData` names the
   * op-table entry, whose scratch block the SQE may point into. */
  protected abstract prep(ring: Ring, slot: number, userData: number, fd: number, bgid: number): void;

  /** The value one filled buffer yields (`len` is the CQE's res). */
  protected abstract value(bid: number, len: number): T;

  /** @internal */
  protected start(): void {
    const signal = this.signal;
    if (signal) {
      if (signal.aborted) {
        this.aborted = true;
        this.error = abortError(signal, this.opcode);
      } else signal.addEventListener("abort", this.onAbort, { once: true });
    }
    // A resumed stream may still have its multishot armed (a cancel on its way re-arms at its
    // last CQE) or have seen EOF already.
    if (this.error === null && !this.armed && !this.starved && !this.throttled && !this.eof) this.arm();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Chunks received and not yet handed out. */
  get queued(): number {
    return this.qCount;
  }

  /** Whether the consumer left (return()) with the stream able to go on: the socket's next
   * recv() resumes it. */
  get isPaused(): boolean {
    return this.paused && !this.ended;
  }

  /** @internal — the socket's next recv() takes the paused stream up again, with new options. */
  resume(o: RecvStreamOptions): void {
    const timeoutMs = checkRecvOptions(this.opcode === "IORING_OP_RECV" ? "recv" : "recvFrom", o);
    this.paused = false;
    this.timeoutMs = timeoutMs;
    this.aborted = false;
    this.signal = o.signal;
    this.start();
  }

  next(): Promise<IteratorResult<T>> {
    this.giveBack();
    this.paused = false;
    if (this.qCount > 0) return Promise.resolve(this.take());
    if (this.error !== null) {
      const e = this.error;
      this.error = null;
      this.finish();
      return Promise.reject(e);
    }
    if (this.eof || this.ended) {
      this.finish();
      return Promise.resolve({ value: undefined, done: true });
    }
    if (this.waitResolve !== null)
      return Promise.reject(
        new UringError("RecvStream.next", EBUSY, "next() called again before the previous call settled"),
      );
    if (!this.armed && !this.starved && !this.throttled && !this.arm()) {
      const e = this.error!;
      this.error = null;
      this.finish();
      return Promise.reject(e);
    }
    if (this.timeoutMs > 0) this.timer = setTimeout(this.onTimeout, this.timeoutMs);
    return new Promise<IteratorResult<T>>((resolve, reject) => {
      this.waitResolve = resolve;
      this.waitReject = reject;
    });
  }

  /** Leave the stream (what `break` out of `for await` calls): the multishot receive is
   * cancelled, and chunks already received (and any the kernel delivers before the cancel lands)
   * stay queued for the socket's next recv(). Nothing received is dropped. */
  return(): Promise<IteratorResult<T>> {
    this.pause();
    return Promise.resolve({ value: undefined, done: true });
  }

  private pause(): void {
    if (this.ended) return;
    this.giveBack();
    this.clearTimer();
    this.paused = true;
    this.signal?.removeEventListener("abort", this.onAbort);
    if (this.armed && !this.cancelling) {
      this.cancelling = true;
      this.cancelKernelSide();
    }
    const resolve = this.waitResolve;
    if (resolve !== null) {
      this.waitResolve = this.waitReject = null;
      resolve({ value: undefined, done: true });
    }
    // Nothing more can come (EOF or an error with nothing queued): end now, so the socket's next
    // recv() starts a fresh stream that reports it.
    if (!this.armed && this.qCount === 0 && (this.eof || this.error !== null)) {
      this.error = null;
      this.finish();
    }
  }

  private timedOut(): void {
    this.timer = null;
    const reject = this.waitReject;
    if (reject === null) return;
    this.waitResolve = this.waitReject = null;
    reject(
      new TimeoutError(
        this.opcode,
        `no data within ${this.timeoutMs} ms on fd ${this.socket.fd}; the stream is paused and the socket's next recv() goes on from here`,
      ),
    );
    this.pause();
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  /** @internal — cancel (for close and return). */
  stop(): void {
    if (this.ended) return;
    this.ended = true;
    this.clearTimer();
    this.cancelKernelSide();
    this.giveBack();
    this.drop();
    this.settleWaiter();
    this.finish();
  }

  private abort(): void {
    if (this.ended || this.aborted) return;
    this.aborted = true;
    if (this.armed) this.cancelKernelSide();
    else {
      this.error = abortError(this.signal!, this.opcode);
      this.settleWaiter();
    }
  }

  private cancelKernelSide(): void {
    if (!this.armed || this.host.ring.isClosed) return;
    this.host.trackCancel(this.userData);
  }

  /** Arm the multishot receive; false when the ring has no op-table entry for it (the stream
   * then holds the error and hands it to its reader). */
  private arm(): boolean {
    if (this.host.closing || this.ended) return true;
    const ring = this.host.ring;
    if (ring.ops.available <= this.host.recvReserve) return this.refuseArm(null);
    // Arming runs inside completion handlers too, where nothing may throw: a refusal (the pool
    // cannot be made, the SQ cannot take the entry) becomes the stream's error instead.
    let ud: number;
    try {
      const pbuf = this.host.buffers();
      const slot = ring.begin(onRecvCqe, this);
      ud = ring.userDataOf(slot);
      this.prep(ring, slot, ud, this.socket.fd, pbuf.bgid);
    } catch (e) {
      if (!(e instanceof UringError)) throw e;
      return this.refuseArm(e);
    }
    this.userData = ud;
    this.armed = true;
    this.starved = false;
    this.socket.opDelta(1);
    this.host.kick();
    return true;
  }

  /** The receive could not be armed: the stream fails with `cause`, or with EBUSY when no op-table
   * entry was left for it (the socket stays usable; its next recv() tries again). Cold. */
  private refuseArm(cause: UringError | null): false {
    const ops = this.host.ring.ops;
    this.error =
      cause ??
      new UringError(
        this.opcode,
        EBUSY,
        `fd ${this.socket.fd}: ${ops.capacity - ops.available} of the ring's ${ops.capacity} operation slots are in flight, and the last ${this.host.recvReserve} are kept for sends, connects and cancels (each receiving socket holds one slot)`,
        "close idle sockets, or open the ring with a larger maxInflight",
      );
    this.settleWaiter();
    return false;
  }

  /** @internal — re-arm after buffers came back (called by the host). */
  rearm(): void {
    if (!this.starved || this.ended) return;
    this.starved = false;
    this.armIfWanted();
  }

  /** @internal — one of this stream's buffers went back to the pool (called by the host). */
  returned(): void {
    this.out--;
    if (!this.throttled || this.out > this.host.streamQuota >> 1) return;
    this.throttled = false;
    this.armIfWanted();
  }

  /** Arm again after a stop that was not the reader's (the pool ran dry, or the quota was out),
   * if someone waits or nothing is queued; a paused stream is armed by its next reader. */
  private armIfWanted(): void {
    if (this.ended || this.paused || this.armed || this.starved || this.throttled || this.eof) return;
    if (this.error !== null) return;
    if (this.waitResolve !== null || this.qCount === 0) this.arm();
  }

  /** Bytes this stream may still receive before its quota is out (at least one buffer's worth). */
  protected allowance(): number {
    const left = Math.max(1, this.host.streamQuota - this.out);
    return Math.min(0xffffffff, left * this.host.buffers().bufferSize);
  }

  /** The stream has its quota of buffers out: stop the kernel filling more for it until they come
   * back. What the kernel delivers before the cancel lands is still queued. */
  private throttle(): void {
    this.throttled = true;
    if (this.armed && !this.cancelling) {
      this.cancelling = true;
      this.cancelKernelSide();
    }
  }

  /** @internal */
  cqe(res: number, flags: number): void {
    const final = (flags & Q.IORING_CQE_F_MORE) === 0;
    if (final) {
      this.armed = false;
      this.socket.opDelta(-1);
    }
    if (flags & Q.IORING_CQE_F_BUFFER) {
      const bid = flags >>> Q.IORING_CQE_BUFFER_SHIFT;
      this.host.taken(bid, this);
      if (++this.out >= this.host.streamQuota && !this.throttled && !this.ended) this.throttle();
      if (this.ended || (res <= 0 && !this.datagram)) this.host.recycle(bid, false);
      else this.push(bid, res);
    } else if (res === 0 && !this.datagram) {
      this.eof = true;
    } else if (res < 0) {
      if (res === -ENOBUFS) {
        // Every buffer of the group is out (held by consumers): resume when one comes back.
        if (final && !this.ended) {
          this.starved = true;
          this.host.starve(this);
        }
      } else if (res === -ECANCELED && (this.ended || this.aborted || this.cancelling)) {
        if (this.aborted && !this.ended) this.error = abortError(this.signal!, this.opcode);
      } else if (!this.ended) {
        this.error = new UringError(this.opcode, -res, `fd ${this.socket.fd}`);
        this.socket.noteError(this.error);
      }
    }
    if (final) this.cancelling = false;
    if (
      final &&
      !this.armed &&
      !this.starved &&
      !this.throttled &&
      !this.eof &&
      this.error === null &&
      !this.ended &&
      !this.aborted &&
      !this.paused
    ) {
      // A multishot receive can end with data still to come (CQ overflow, or a kernel that ends
      // it after each buffer): arm it again.
      this.arm();
    }
    this.settleWaiter();
    if (final && (this.eof || this.ended || (this.paused && this.error !== null)) && this.qCount === 0) {
      if (this.paused) this.error = null;
      this.finish();
    }
  }

  private push(bid: number, len: number): void {
    const cap = this.bids.length;
    const i = (this.qHead + this.qCount) % cap;
    this.bids[i] = bid;
    this.lens[i] = len;
    this.qCount++;
  }

  private take(): IteratorResult<T> {
    const bid = this.bids[this.qHead]!;
    const len = this.lens[this.qHead]!;
    this.qHead = (this.qHead + 1) % this.bids.length;
    this.qCount--;
    this.held = bid;
    this.host.lend(bid);
    return { value: this.value(bid, len), done: false };
  }

  private giveBack(): void {
    if (this.held !== NO_BID) {
      const bid = this.held;
      this.held = NO_BID;
      this.host.recycle(bid);
    }
  }

  private drop(): void {
    while (this.qCount > 0) {
      const bid = this.bids[this.qHead]!;
      this.qHead = (this.qHead + 1) % this.bids.length;
      this.qCount--;
      this.host.recycle(bid, false);
    }
  }

  private settleWaiter(): void {
    const resolve = this.waitResolve;
    if (resolve === null) return;
    if (this.timer !== null && (this.qCount > 0 || this.error !== null || this.eof || this.ended || this.aborted))
      this.clearTimer();
    if (this.qCount > 0) {
      this.waitResolve = this.waitReject = null;
      resolve(this.take());
    } else if (this.error !== null) {
      const reject = this.waitReject!;
      const e = this.error;
      this.error = null;
      this.waitResolve = this.waitReject = null;
      this.finish();
      reject(e);
    } else if (this.eof || (this.ended && !this.armed)) {
      this.waitResolve = this.waitReject = null;
      this.finish();
      resolve({ value: undefined, done: true });
    } else if (this.aborted && !this.armed) {
      const reject = this.waitReject!;
      this.waitResolve = this.waitReject = null;
      this.finish();
      reject(abortError(this.signal!, this.opcode));
    }
  }

  private finishedOnce = false;
  private finish(): void {
    if (this.finishedOnce || this.armed) return;
    this.finishedOnce = true;
    this.ended = true;
    this.drop();
    this.signal?.removeEventListener("abort", this.onAbort);
    this.socket.streamEnded(this);
  }
}

/** An async iterable of received chunks. For a TCP socket the stream ends at EOF; for UDP each
 * chunk is one datagram (possibly empty) and the stream ends only by cancel or close. */
export class RecvStream extends RecvStreamBase<Uint8Array> {
  /** @internal */
  constructor(host: RecvHost, socket: RecvSocket, datagram: boolean, o: RecvStreamOptions) {
    super(host, socket, datagram, "IORING_OP_RECV", o);
    this.start();
  }

  protected prep(ring: Ring, slot: number, _userData: number, fd: number, bgid: number): void {
    prepRecvMultishot(ring.sq, slot, fd, bgid, 0);
    if (this.host.recvLimit) prepRecvSetLimit(ring.sq, slot, this.allowance());
  }

  protected value(bid: number, len: number): Uint8Array {
    return this.host.buffers().view(bid, len);
  }
}

/** One datagram from UdpSocket.recvFrom(). */
export interface Datagram {
  /** The payload: a view of a provided buffer, valid until the next iteration step (copy it with
   * `data.slice()` to keep it). */
  data: Uint8Array;
  /** The sender's address. Frozen: the stream hands out the same object again for a sender it
   * saw recently, so comparing `from` objects is not a way to tell senders apart — compare host
   * and port. */
  from: DecodedAddress;
  /** The datagram did not fit in a receive buffer: `data` holds only its first bytes and the rest
   * is lost (MSG_TRUNC). Open the ring with a larger `recvBufferBytes` to receive it whole. */
  truncated: boolean;
  /** The datagram's size as sent (larger than `data.byteLength` when truncated). */
  datagramBytes: number;
}

/** Bytes each recvFrom buffer reserves for the sender's address: a struct sockaddr_in6, the
 * largest address a UDP socket reports. */
export const RECVFROM_NAME_BYTES = SOCKADDR_IN6.size;
/** Bytes at the start of each recvFrom buffer before the payload: io_uring_recvmsg_out, then the
 * name (no control data is asked for). */
export const RECVFROM_HEADER_BYTES = IO_URING_RECVMSG_OUT.size + RECVFROM_NAME_BYTES;

/** Recently seen senders per stream (a power of two): a repeated sender costs no decode and no
 * allocation. */
const FROM_CACHE_ENTRIES = 16;

/** The datagrams of a UDP socket with their senders' addresses: one multishot IORING_OP_RECVMSG
 * (6.0+) selecting from the ring's provided buffers. The kernel writes a struct
 * io_uring_recvmsg_out, the sender's sockaddr and the payload into each buffer; each step
 * yields `{ data, from, truncated, datagramBytes }`. A datagram longer than a buffer's room
 * (`maxPayloadBytes`) is not cut silently: it comes with `truncated: true` and its full size, and
 * the stream goes on (one oversized datagram from anyone must not end everyone's stream). */
export class RecvFromStream extends RecvStreamBase<Datagram> {
  /** The largest payload a datagram can have without being truncated: the buffer size minus the
   * io_uring_recvmsg_out header and the reserved address room. */
  readonly maxPayloadBytes: number;
  private readonly memory: Uint8Array;
  private readonly memoryView: DataView;
  private readonly bufferBytes: number;
  private readonly cacheKeys = new Uint8Array(FROM_CACHE_ENTRIES * RECVFROM_NAME_BYTES);
  private readonly cacheLens = new Uint8Array(FROM_CACHE_ENTRIES);
  private readonly cacheAddrs: (DecodedAddress | null)[] = new Array<DecodedAddress | null>(FROM_CACHE_ENTRIES).fill(
    null,
  );

  /** @internal */
  constructor(host: RecvHost, socket: RecvSocket, o: RecvStreamOptions) {
    super(host, socket, true, "IORING_OP_RECVMSG", o);
    const pbuf = host.buffers();
    this.bufferBytes = pbuf.bufferSize;
    this.maxPayloadBytes = pbuf.bufferSize - RECVFROM_HEADER_BYTES;
    const m = pbuf.bufferMemory;
    this.memory = m.bytes;
    this.memoryView = new DataView(m.buffer, m.bytes.byteOffset, m.bytes.byteLength);
    this.start();
  }

  protected prep(ring: Ring, slot: number, userData: number, fd: number, bgid: number): void {
    // The msghdr lives in the op's scratch block, which stays the op's until its last CQE. Only
    // its sizes matter for a multishot recvmsg (io_recvmsg_mshot_prep): msg_namelen reserves the
    // address room in every buffer, msg_controllen 0 asks for no control data, msg_iovlen 0 lets
    // the kernel use the whole selected buffer.
    const off = ring.ops.scratchOffset(userData);
    ring.ops.scratch.fill(0, off, off + MSGHDR.size);
    ring.ops.scratchView.setUint32(off + MSGHDR.msg_namelen, RECVFROM_NAME_BYTES, true);
    // MSG_TRUNC makes udp_recvmsg / udpv6_recvmsg return the datagram's full length, which the
    // kernel reports as payloadlen; the CQE's res still counts only the bytes that fit.
    prepRecvmsgMultishot(ring.sq, slot, fd, ring.ops.scratchAddressOf(userData), bgid, MSG_TRUNC);
  }

  protected value(bid: number, len: number): Datagram {
    // io_uring_recvmsg_validate: the CQE's res covers the header, the reserved name and whatever
    // payload fit; the payload starts after the reserved name room (io_uring_recvmsg_payload),
    // whatever namelen the kernel filled in.
    const base = bid * this.bufferBytes;
    const dv = this.memoryView;
    const namelen = dv.getUint32(base + IO_URING_RECVMSG_OUT.namelen, true);
    const payloadlen = dv.getUint32(base + IO_URING_RECVMSG_OUT.payloadlen, true);
    const msgFlags = dv.getUint32(base + IO_URING_RECVMSG_OUT.flags, true);
    const bytes = len > RECVFROM_HEADER_BYTES ? len - RECVFROM_HEADER_BYTES : 0;
    // The payload past the header; view() also records that the kernel handed the buffer out.
    const data = this.host.buffers().view(bid, bytes, RECVFROM_HEADER_BYTES);
    const from = this.sender(base + IO_URING_RECVMSG_OUT.size, Math.min(namelen, RECVFROM_NAME_BYTES));
    const truncated = (msgFlags & MSG_TRUNC) !== 0;
    return { data, from, truncated, datagramBytes: truncated ? Math.max(payloadlen, bytes) : bytes };
  }

  /** The sender's address at byte `at` of the buffer memory: from the cache when the same
   * sockaddr bytes were seen recently, else decoded once and cached. */
  private sender(at: number, namelen: number): DecodedAddress {
    const mem = this.memory;
    let h = namelen;
    for (let i = 0; i < namelen; i++) h = (Math.imul(h, 31) + mem[at + i]!) | 0;
    // murmur3's fmix32, so ports that differ in any bit spread over the entries.
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    const e = (h ^ (h >>> 16)) & (FROM_CACHE_ENTRIES - 1);
    const keys = this.cacheKeys;
    const k = e * RECVFROM_NAME_BYTES;
    const hit = this.cacheAddrs[e];
    if (hit !== null && this.cacheLens[e] === namelen) {
      let same = true;
      for (let i = 0; i < namelen; i++) {
        if (keys[k + i] !== mem[at + i]) {
          same = false;
          break;
        }
      }
      if (same) return hit!;
    }
    const addr = Object.freeze(decodeSockaddr(this.memoryView, at));
    keys.set(mem.subarray(at, at + namelen), k);
    this.cacheLens[e] = namelen;
    this.cacheAddrs[e] = addr;
    return addr;
  }
}

/** The error an aborted operation rejects with: ECANCELED, the opcode, and the signal's reason
 * as the cause. */
export function abortError(signal: AbortSignal, opcode = "IORING_OP_RECV"): UringError {
  const reason = signal.reason as { name?: unknown } | undefined;
  if (reason !== null && typeof reason === "object" && reason.name === "TimeoutError") {
    return new TimeoutError(opcode, "the AbortSignal's timeout fired (IORING_OP_ASYNC_CANCEL)", { cause: reason });
  }
  return new UringError(opcode, ECANCELED, "aborted by its AbortSignal (IORING_OP_ASYNC_CANCEL)", undefined, {
    cause: signal.reason,
  });
}

/** A timeout (a read's `timeoutMs`, or an `AbortSignal.timeout` signal): a UringError with errno
 * ETIMEDOUT whose `name` is "TimeoutError", as Bun and the DOM name timeouts. */
export class TimeoutError extends UringError {
  constructor(opcode: string, detail: string, options?: { cause?: unknown }) {
    super(opcode, ERRNO.ETIMEDOUT!, detail, "the operation took longer than its timeout", options);
    this.name = "TimeoutError";
  }
}
