// Zero-copy receive in the async API: RECV_ZC chunks of a ZcrxReceiver (src/zcrx) as an async
// iterable. Each chunk is a view into the ZCRX area, no copy, and must be released; releases are
// written to the refill ring at once and published with one tail store per event-loop turn
// (RefillTurn, from setImmediate). Not from a microtask: `for await` takes each queued chunk in a
// microtask of its own, so a microtask publish ran between every two releases and published one
// entry each time (and, device-less, paid a ZCRX_CTRL_FLUSH_RQ syscall for it and re-armed a
// starved receive for one buffer). A turn's check phase comes after all of them.
import { EBUSY, ECANCELED, ERRNO } from "../abi/errno.ts";
import { UringError, invalidArgument } from "../error.ts";
import type { ZcrxReceiver, RecvZcHandler } from "../zcrx/receiver.ts";
import type { ZcrxStats } from "../zcrx/stats.ts";
import { abortError } from "./recv.ts";

/** One received chunk: `length` bytes at `offset` in the area (`stream.receiver.area`), lent
 * until release(). `data` is a Uint8Array over them, made on first use: in JSC a view costs
 * about as much as the rest of a chunk's path, so code that can work from the offset and length
 * (hash the area, send from it) need not pay for one. */
export class ZcrxChunk {
  /** @internal */ handle: number;
  /** Byte offset of the chunk in the area. */
  readonly offset: number;
  /** Bytes received. */
  readonly length: number;
  private readonly stream: ZcrxStream;
  private view: Uint8Array | null = null;
  private released = false;

  /** @internal */
  constructor(stream: ZcrxStream, handle: number, offset: number, length: number) {
    this.stream = stream;
    this.handle = handle;
    this.offset = offset;
    this.length = length;
  }

  /** The chunk's bytes in place (no copy). Valid until release(); asked for after it, this
   * throws (the buffer may hold newer data by then). A view taken before stays a view of the
   * area: do not read it after release(). */
  get data(): Uint8Array {
    if (this.released)
      throw invalidArgument("ZcrxChunk.data", "this chunk was released: its buffer may already hold newer data");
    let v = this.view;
    if (v === null)
      v = this.view = new Uint8Array(this.stream.areaBuffer, this.stream.areaBase + this.offset, this.length);
    return v;
  }

  get isReleased(): boolean {
    return this.released;
  }

  /** Give the buffer back to the kernel (through the refill ring). Exactly once per chunk. */
  release(): void {
    if (this.released) throw invalidArgument("ZcrxChunk.release", "this chunk was already released");
    this.released = true;
    this.stream.releaseHandle(this.handle);
  }
}

/** What a stream needs from the place it runs: the submit after a (re-)arm, and a cancel of the
 * RECV_ZC on its fd. */
export interface ZcrxStreamHost {
  /** Submit SQEs prepared now (the RECV_ZC arm). */
  kick(): void;
  /** IORING_OP_ASYNC_CANCEL of the RECV_ZC requests on `fd` only (IORING_ASYNC_CANCEL_FD | ALL |
   * OP): sends and other requests in flight on the same socket go on. */
  cancelRecvZc(fd: number): void;
}

export interface ZcrxRecvOptions {
  /** End the stream after this many bytes (RECV_ZC len). */
  maxBytes?: number;
  /** Cancels the receive (IORING_OP_ASYNC_CANCEL of the fd's RECV_ZC, or at once when it waits
   * for buffers with nothing in the kernel); next() rejects with ECANCELED. */
  signal?: AbortSignal;
}

const handler: RecvZcHandler<ZcrxStream> = {
  onData(s, chunk, offset, length) {
    s.data(chunk, offset, length);
  },
  onEnd(s, res) {
    s.end(res);
  },
  onStarve(s) {
    s.starve();
  },
  onAllocFail(s) {
    s.allocFail();
  },
};

/** The publish of one receiver's releases, once per event-loop turn, whatever the number of
 * releases and streams. A receive parked because the area ran dry is re-armed by the publish
 * once the receiver's low-water mark of buffers is back, or at the first turn that released
 * nothing (the consumer holds the rest), with whatever came back. */
export class RefillTurn {
  /** The streams on this receiver, told when a publish fails. */
  readonly streams = new Set<ZcrxStream>();
  private queued = false;
  private readonly task = (): void => this.run();

  constructor(
    readonly receiver: ZcrxReceiver,
    private readonly host: ZcrxStreamHost,
  ) {}

  /** Publish at this turn's check phase (setImmediate), after every microtask of the turn. */
  schedule(): void {
    if (this.queued) return;
    this.queued = true;
    setImmediate(this.task);
  }

  /** One publish now (and the submit of what it re-armed). */
  run(): void {
    this.queued = false;
    const rx = this.receiver;
    if (rx.isClosed) return;
    const rearms = rx.stats.rearms;
    let n = 0;
    try {
      n = rx.publish();
    } catch (e) {
      // From a setImmediate an exception would take the process down. A publish that fails (the
      // shared refill lock timed out, FLUSH_RQ refused) leaves buffers the kernel cannot get
      // back: every stream on the receiver stops, and its next() rejects with the error.
      for (const s of [...this.streams]) s.publishFailed(e);
      return;
    } finally {
      if (n === 0 && rx.returnedSinceDry > 0) rx.resumeStarved();
      if (rx.stats.rearms !== rearms) this.host.kick();
      // Releases that found the refill ring full, or a parked receive waiting to see whether
      // more releases come: look again next turn.
      if (rx.needsPublish || rx.returnedSinceDry > 0) this.schedule();
    }
  }
}

const refillTurns = new WeakMap<ZcrxReceiver, RefillTurn>();

/** The receiver's RefillTurn, shared by its streams. */
export function refillTurnOf(receiver: ZcrxReceiver, host: ZcrxStreamHost): RefillTurn {
  let t = refillTurns.get(receiver);
  if (t === undefined) {
    t = new RefillTurn(receiver, host);
    refillTurns.set(receiver, t);
  }
  return t;
}

/** An async iterable of ZcrxChunk. The stream ends at EOF (or maxBytes); an error or an abort
 * rejects next(). Chunks handed out stay valid after the stream ends, until released. */
export class ZcrxStream implements AsyncIterableIterator<ZcrxChunk> {
  readonly receiver: ZcrxReceiver;
  readonly fd: number;
  /** @internal — the area's memory, for chunk views without a call per chunk. */
  readonly areaBuffer: ArrayBufferLike;
  /** @internal */
  readonly areaBase: number;
  private readonly host: ZcrxStreamHost;
  private readonly refill: RefillTurn;
  /** Resolvers of areaDry() promises waiting for the next time the area runs dry. */
  private dryWaiters: ((dry: boolean) => void)[] = [];
  /** The receiver's connection id (-1 when the signal was aborted before anything was armed). */
  private readonly conn: number = -1;
  private readonly queue: ZcrxChunk[] = [];
  private qHead = 0;
  private ended = false;
  private error: UringError | null = null;
  private aborted = false;
  private waitResolve: ((r: IteratorResult<ZcrxChunk>) => void) | null = null;
  private waitReject: ((e: unknown) => void) | null = null;
  private readonly signal: AbortSignal | undefined;
  /** @internal — called once, when the kernel ended the RECV_ZC (its last CQE). */
  onFinish: (() => void) | null = null;
  private readonly onAbort = (): void => {
    this.aborted = true;
    if (!this.ended) this.stop();
  };

  constructor(receiver: ZcrxReceiver, fd: number, host: ZcrxStreamHost, o: ZcrxRecvOptions = {}) {
    this.receiver = receiver;
    this.fd = fd;
    this.areaBuffer = receiver.area.buffer;
    this.areaBase = receiver.area.byteOffset;
    this.host = host;
    this.refill = refillTurnOf(receiver, host);
    this.signal = o.signal;
    if (o.signal?.aborted) {
      this.aborted = true;
      this.ended = true;
      this.finished = true;
      this.error = abortError(o.signal, "IORING_OP_RECV_ZC");
      return;
    }
    this.conn = receiver.recv(fd, handler, this, { maxBytes: o.maxBytes ?? 0 });
    this.refill.streams.add(this);
    o.signal?.addEventListener("abort", this.onAbort, { once: true });
    host.kick();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Chunks received and not yet taken. */
  get queued(): number {
    return this.queue.length - this.qHead;
  }

  /** The receiver's counters (shared by the ring's streams): chunks, publishes, starvations... */
  get stats(): ZcrxStats {
    return this.receiver.stats;
  }

  /** Whether the receive is parked now because the area ran dry: nothing arrives until chunks
   * are released (the receive resumes by itself once enough are back). */
  get starved(): boolean {
    return this.conn >= 0 && this.receiver.starvedOn(this.conn);
  }

  /** Resolves true the next time the area runs dry under this stream (at once if it is dry
   * now): its receive parked for buffers (-ENOMEM: device-less or copy fallback), or, on 7.2, the
   * NIC queue's page pool found none (ZCRX_EVENT_ALLOC_FAIL). False if the stream ends first. A consumer that holds chunks awaits it beside next():
   * `await Promise.race([it.next(), stream.areaDry()])`, and releases some when it wins. */
  areaDry(): Promise<boolean> {
    if (this.starved) return Promise.resolve(true);
    if (this.finished) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => this.dryWaiters.push(resolve));
  }

  /** @internal — the receive parked for buffers. A turn looks at it even if no release comes:
   * with every chunk already back (released before this CQE was seen), the publish re-arms it. */
  starve(): void {
    this.refill.schedule();
    this.settleDry(true);
  }

  /** @internal — the turn's publish threw: stop receiving, and hand the error to next(). */
  publishFailed(e: unknown): void {
    if (this.ended) return;
    this.error =
      e instanceof UringError
        ? e
        : new UringError("ZcrxStream.publish", ERRNO.EIO!, e instanceof Error ? e.message : String(e));
    this.ended = true;
    this.stop();
    const reject = this.waitReject;
    if (reject === null) return;
    this.waitResolve = this.waitReject = null;
    const err = this.error;
    this.error = null;
    reject(err);
  }

  /** @internal — the queue's page pool found no free buffer (7.2). */
  allocFail(): void {
    this.settleDry(true);
  }

  private settleDry(dry: boolean): void {
    const w = this.dryWaiters;
    if (w.length === 0) return;
    this.dryWaiters = [];
    for (const resolve of w) resolve(dry);
  }

  /** A chunk already received, or null when none is queued: no promise, no wait. Inside a
   * `for await` body it takes the rest of what one drain delivered at a fraction of next()'s
   * cost (one promise and one microtask per chunk):
   * `for await (const c of s) { use(c); for (let d = s.poll(); d; d = s.poll()) use(d); }` */
  poll(): ZcrxChunk | null {
    return this.qHead < this.queue.length ? this.take() : null;
  }

  next(): Promise<IteratorResult<ZcrxChunk>> {
    if (this.qHead < this.queue.length) return Promise.resolve({ value: this.take(), done: false });
    if (this.error !== null) {
      const e = this.error;
      this.error = null;
      return Promise.reject(e);
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    // One waiter at a time: a second would replace the first, whose promise would never settle.
    if (this.waitResolve !== null)
      return Promise.reject(
        new UringError("ZcrxStream.next", EBUSY, "next() called again before the previous call settled"),
      );
    return new Promise<IteratorResult<ZcrxChunk>>((resolve, reject) => {
      this.waitResolve = resolve;
      this.waitReject = reject;
    });
  }

  /** Stop: cancel the RECV_ZC and release every chunk not yet taken. */
  return(): Promise<IteratorResult<ZcrxChunk>> {
    const wasEnded = this.ended;
    // Ended first, so that a receive the receiver ends at once (parked for buffers) finishes
    // quietly, as a stream the caller left, not as an error.
    this.ended = true;
    if (!wasEnded) this.stop();
    while (this.qHead < this.queue.length) this.take().release();
    this.signal?.removeEventListener("abort", this.onAbort);
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Stop the receive: the receiver never re-arms it again. A receive parked after -ENOMEM has no
   * request in the kernel, so the receiver ends it at once (end(-ECANCELED) runs now); one in
   * flight is cancelled in the kernel, and its last CQE ends it. */
  private stop(): void {
    if (this.receiver.stop(this.conn)) this.host.cancelRecvZc(this.fd);
  }

  private take(): ZcrxChunk {
    const c = this.queue[this.qHead++]!;
    if (this.qHead === this.queue.length) {
      this.queue.length = 0;
      this.qHead = 0;
    }
    return c;
  }

  /** @internal */
  releaseHandle(handle: number): void {
    this.receiver.release(handle);
    this.refill.schedule();
  }

  /** @internal */
  data(handle: number, offset: number, length: number): void {
    // The receiver just issued the handle for these bytes: no check needed.
    const c = new ZcrxChunk(this, handle, offset, length);
    if (this.ended) {
      c.release();
      return;
    }
    const resolve = this.waitResolve;
    if (resolve !== null) {
      this.waitResolve = this.waitReject = null;
      resolve({ value: c, done: false });
    } else this.queue.push(c);
  }

  /** Whether the RECV_ZC is still in flight. */
  get armed(): boolean {
    return !this.finished;
  }
  private finished = false;

  /** @internal */
  end(res: number): void {
    this.finished = true;
    this.refill.streams.delete(this);
    this.settleDry(false);
    const fin = this.onFinish;
    this.onFinish = null;
    fin?.();
    const wasEnded = this.ended;
    this.ended = true;
    this.signal?.removeEventListener("abort", this.onAbort);
    if (res < 0 && !wasEnded) {
      this.error =
        res === -ECANCELED && this.aborted
          ? abortError(this.signal!, "IORING_OP_RECV_ZC")
          : new UringError("IORING_OP_RECV_ZC", -res, `fd ${this.fd}`);
    }
    const resolve = this.waitResolve;
    if (resolve === null) return;
    const reject = this.waitReject!;
    this.waitResolve = this.waitReject = null;
    if (this.error !== null) {
      const e = this.error;
      this.error = null;
      reject(e);
    } else resolve({ value: undefined, done: true });
  }
}
