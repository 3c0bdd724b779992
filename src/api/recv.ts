// Receives of the async API: one multishot RECV per stream (io_uring_prep_recv_multishot) selecting
// buffers from the ring's provided-buffer ring. Each CQE names the buffer it filled; the stream
// queues (bid, length) pairs in preallocated arrays and hands them out as views. A chunk is
// valid until the next `next()` call, which gives its buffer back to the kernel (one tail store).
import * as Q from "../abi/sqe.ts";
import { EBUSY, ECANCELED, ENOBUFS } from "../abi/errno.ts";
import { UringError } from "../error.ts";
import { prepRecvMultishot } from "../ops/prep.ts";
import type { ProvidedBufferRing } from "../ring/register.ts";
import type { Ring } from "../ring/ring.ts";

/** What a stream needs from the ring that owns it. */
export interface RecvHost {
  readonly ring: Ring;
  readonly closing: boolean;
  /** The shared provided-buffer ring (created on first use). */
  buffers(): ProvidedBufferRing;
  /** Buffers taken by the kernel and not yet given back, across all streams. */
  buffersOut: number;
  /** Give a buffer back and re-arm streams that ran out; `viewed` false for a buffer that was
   * never handed out as a view. */
  recycle(bid: number, viewed?: boolean): void;
  /** Re-arm `stream` once some buffer comes back. */
  starve(stream: RecvStream): void;
  kick(): void;
  /** A no-op handler's target for cancel SQEs (counted in flight like any op). */
  trackCancel(targetUserData: number): void;
}

/** What a stream tells its socket. */
export interface RecvSocket {
  readonly fd: number;
  /** Operations of this socket in flight changed by `delta`. */
  opDelta(delta: number): void;
  /** The stream ended (EOF, error, cancel or return()). */
  streamEnded(stream: RecvStream): void;
}

export interface RecvStreamOptions {
  /** Cancels the receive (IORING_OP_ASYNC_CANCEL); the pending next() rejects with ECANCELED. */
  signal?: AbortSignal;
}

const NO_BID = -1;

function onRecvCqe(s: RecvStream, res: number, flags: number): void {
  s.cqe(res, flags);
}

/** An async iterable of received chunks. For a TCP socket the stream ends at EOF; for UDP each
 * chunk is one datagram (possibly empty) and the stream ends only by cancel or close. */
export class RecvStream implements AsyncIterableIterator<Uint8Array> {
  private readonly host: RecvHost;
  private readonly socket: RecvSocket;
  private readonly datagram: boolean;
  private readonly bids: Int32Array;
  private readonly lens: Int32Array;
  private qHead = 0;
  private qCount = 0;
  private held = NO_BID;
  private userData = -1;
  private armed = false;
  private starved = false;
  private eof = false;
  private ended = false;
  private error: UringError | null = null;
  private aborted = false;
  private waitResolve: ((r: IteratorResult<Uint8Array>) => void) | null = null;
  private waitReject: ((e: unknown) => void) | null = null;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = (): void => this.abort();

  /** @internal */
  constructor(host: RecvHost, socket: RecvSocket, datagram: boolean, o: RecvStreamOptions) {
    this.host = host;
    this.socket = socket;
    this.datagram = datagram;
    const cap = host.buffers().entries;
    this.bids = new Int32Array(cap);
    this.lens = new Int32Array(cap);
    this.signal = o.signal;
    if (o.signal) {
      if (o.signal.aborted) {
        this.aborted = true;
        this.error = abortError(o.signal);
      } else o.signal.addEventListener("abort", this.onAbort, { once: true });
    }
    if (this.error === null) this.arm();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Chunks received and not yet handed out. */
  get queued(): number {
    return this.qCount;
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    this.giveBack();
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
    if (this.waitResolve !== null) return Promise.reject(new UringError("RecvStream.next", EBUSY, "next() called again before the previous call settled"));
    if (!this.armed && !this.starved) this.arm();
    return new Promise<IteratorResult<Uint8Array>>((resolve, reject) => {
      this.waitResolve = resolve;
      this.waitReject = reject;
    });
  }

  /** Stop receiving: cancel the multishot receive and give every queued buffer back. */
  return(): Promise<IteratorResult<Uint8Array>> {
    this.stop();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** @internal — cancel (for close and return). */
  stop(): void {
    if (this.ended) return;
    this.ended = true;
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
      this.error = abortError(this.signal!);
      this.settleWaiter();
    }
  }

  private cancelKernelSide(): void {
    if (!this.armed || this.host.ring.isClosed) return;
    this.host.trackCancel(this.userData);
  }

  private arm(): void {
    if (this.host.closing || this.ended) return;
    const ring = this.host.ring;
    const pbuf = this.host.buffers();
    const ud = ring.ops.add(onRecvCqe, this);
    const slot = ring.getSqeFor(ud);
    prepRecvMultishot(ring.sq, slot, this.socket.fd, pbuf.bgid, 0);
    ring.setUserData(slot, ud);
    this.userData = ud;
    this.armed = true;
    this.starved = false;
    this.socket.opDelta(1);
    this.host.kick();
  }

  /** @internal — re-arm after buffers came back (called by the host). */
  rearm(): void {
    if (!this.starved || this.ended) return;
    this.starved = false;
    if (this.waitResolve !== null || this.qCount === 0) this.arm();
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
      this.host.buffersOut++;
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
      } else if (res === -ECANCELED && (this.ended || this.aborted)) {
        if (this.aborted && !this.ended) this.error = abortError(this.signal!);
      } else if (!this.ended) {
        this.error = new UringError("IORING_OP_RECV", -res, `fd ${this.socket.fd}`);
      }
    }
    if (final && !this.armed && !this.starved && !this.eof && this.error === null && !this.ended && !this.aborted) {
      // A multishot receive can end with data still to come (CQ overflow, or a kernel that ends
      // it after each buffer): arm it again.
      this.arm();
    }
    this.settleWaiter();
    if (final && (this.eof || this.ended) && this.qCount === 0) this.finish();
  }

  private push(bid: number, len: number): void {
    const cap = this.bids.length;
    const i = (this.qHead + this.qCount) % cap;
    this.bids[i] = bid;
    this.lens[i] = len;
    this.qCount++;
  }

  private take(): IteratorResult<Uint8Array> {
    const bid = this.bids[this.qHead]!;
    const len = this.lens[this.qHead]!;
    this.qHead = (this.qHead + 1) % this.bids.length;
    this.qCount--;
    this.held = bid;
    return { value: this.host.buffers().view(bid, len), done: false };
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
      reject(abortError(this.signal!));
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

/** The error an aborted operation rejects with: ECANCELED, the opcode, and the signal's reason
 * as the cause. */
export function abortError(signal: AbortSignal, opcode = "IORING_OP_RECV"): UringError {
  return new UringError(opcode, ECANCELED, "aborted by its AbortSignal (IORING_OP_ASYNC_CANCEL)", undefined, { cause: signal.reason });
}
