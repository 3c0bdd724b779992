// The receiving side of zcrx, shared by the real kernel and the simulator: RECV_ZC completions
// become chunks (an area offset and a length, named by a small integer handle), releases become
// refill entries written with plain stores behind a cached tail, and one release store of the
// tail per drain publishes them (liburing examples/zcrx.c does one store per buffer; the kernel
// only needs the last). Where completions come from is a ZcrxSource: a Ring with a registered
// ifq, or src/testing's simulated kernel. The handler, release and publish code is the same.
import { IORING_CQE_F_MORE } from "../abi/sqe.ts";
import { EAGAIN, EBUSY, ECANCELED, EFAULT, EINTR, EINVAL, ENOMEM, ENOSPC, ETIME } from "../abi/errno.ts";
import { IORING_ZCRX_AREA_SHIFT, ZCRX_EVENT_ALLOC_FAIL, ZCRX_EVENT_COPY, ZCRX_RQE } from "../abi/zcrx.ts";
import { UringError, closedError, invalidArgument, shown } from "../error.ts";
import { BATCH_BUCKETS, ZcrxStats } from "./stats.ts";
import { RefillLock } from "./refill-lock.ts";

/** The refill ring as the kernel laid it out: a u32 view of its region and the byte offsets
 * io_uring_zcrx_ifq_reg.offsets reported (never constants). */
export interface RefillLayout {
  readonly words: Uint32Array;
  readonly head: number;
  readonly tail: number;
  readonly rqes: number;
  /** rq_entries as the kernel rounded it (a power of two). */
  readonly entries: number;
}

/** Where RECV_ZC completions come from. */
export interface ZcrxSource {
  readonly kind: "ring" | "simulator";
  /** The whole area; chunk offsets index into it. */
  readonly area: Uint8Array;
  /** rq_area_token >> 32: OR'd into the high word of every refill entry's offset. */
  readonly areaTokenHigh: number;
  readonly refill: RefillLayout;
  /** Called once by the receiver: completions for connection `conn` go to receiver.deliver. */
  bind(receiver: ZcrxReceiver): void;
  /** Post a multishot RECV_ZC on `fd` for connection `conn`, at most `maxBytes` (0: no limit). */
  arm(conn: number, fd: number, maxBytes: number): void;
  /** Dispatch completions: wait for `waitNr` (0: none) up to `timeoutMs`. Returns CQEs handled. */
  reap(waitNr: number, timeoutMs: number | undefined): number;
  /** After a tail store. A device-less zcrx has no page pool to pull refills, so the source asks
   * the kernel to take them now (ZCRX_CTRL_FLUSH_RQ) and returns true; a NIC queue takes them
   * when it needs buffers, and the source returns false. */
  afterPublish(): boolean;
  /** Re-arm the one-shot ZCRX events whose bits (1 << ZCRX_EVENT_*) are set (7.2). */
  armEvents?(types: number): void;
}

/** What a receiving application supplies per connection. */
export interface RecvZcHandler<T = unknown> {
  /** `length` bytes arrived at `offset` in receiver.area (receiver.view(chunk) gives a view).
   * The bytes stay valid, and the kernel will not reuse them, until receiver.release(chunk). */
  onData(ctx: T, chunk: number, offset: number, length: number): void;
  /** The stream ended: res 0 on EOF (or after maxBytes), -errno on an error. Delivered chunks
   * stay valid until released. */
  onEnd?(ctx: T, res: number): void;
  /** The area ran dry under this connection: its RECV_ZC ended with -ENOMEM (the copy path found
   * no free buffer) and waits, with nothing in the kernel, until enough releases are published
   * (ReceiverOptions.rearmLowWater) or releases stop coming. A consumer that holds chunks learns
   * here that it must give some back before more data can arrive. A NIC queue stalls instead
   * and reports nothing here. */
  onStarve?(ctx: T): void;
  /** Linux 7.2, NIC queues: the queue's page pool found no free buffer in the area
   * (ZCRX_EVENT_ALLOC_FAIL), so the NIC drops packets and TCP retransmits until buffers come
   * back. Called for every open connection of the receiver, at most once per publish. */
  onAllocFail?(ctx: T): void;
}

export interface RecvOptions {
  /** Stop after this many bytes (RECV_ZC len); 0 or absent: until EOF. */
  maxBytes?: number;
}

/** A chunk handle is (generation << indexBits) | index: a non-negative int32 (so the engine
 * keeps it unboxed; a handle above 2^31 made every CQE several times dearer) naming one delivery.
 * The index picks a slot of the chunk table, and indexBits is sized to this receiver's area, so
 * the rest of the 31 bits is generation: 21 bits for a 1 MiB area, 17 for 16 MiB, 11 for 1 GiB,
 * where the old fixed 22-bit index left 9. A slot's generation tells a stale handle from its current one, so a
 * second release of a handle is caught even after the slot was reused. Free slots are reused in
 * FIFO order, so a slot's generation advances once per lap of the free slots: a stale handle
 * could pass for a live chunk only after 2^genBits laps (2^21 laps of 1,024 slots for a 1 MiB
 * area: two billion deliveries), where the fixed 9 bits and a LIFO stack wrapped after 512. */
export const CHUNK_INDEX_BITS_MAX = 22;
const CHUNK_INDEX_BITS_MIN = 10;
const CHUNK_MAX_SLOTS = 2 ** CHUNK_INDEX_BITS_MAX;
const U32_SPAN = 4294967296;
/** Area offsets are the low IORING_ZCRX_AREA_SHIFT (48) bits of a zcrx offset: these are the
 * ones in its high word. */
const OFF_HIGH_MASK = 2 ** (IORING_ZCRX_AREA_SHIFT - 32) - 1;

/** The receiver that writes each refill ring, keyed by the ring's memory. A refill ring has one
 * producer: each receiver caches its own tail, so a second one would write entries over the
 * first's and publish a tail that skips or repeats them. */
const refillOwners = new WeakMap<ArrayBufferLike, ZcrxReceiver>();

class Conn {
  armed = false;
  starved = false;
  /** stop() was called: the request is not re-armed or parked again, and its end is reported
   * as -ECANCELED unless the kernel ended it for a reason of its own (EOF, an error). */
  stopped = false;
  ended = false;
  received = 0;
  constructor(
    readonly id: number,
    readonly fd: number,
    readonly handler: RecvZcHandler<any>,
    readonly ctx: unknown,
    readonly maxBytes: number,
  ) {}
}

export interface ReceiverOptions {
  /** Chunk handles preallocated; the table doubles when more are live at once. Default: area
   * pages + refill entries. */
  chunkCapacity?: number;
  /** A receive parked because the area ran dry is posted again by publish() once this many
   * buffers went back since (or once every chunk is back). Re-arming on fewer lets the kernel
   * fill those few and run dry again, one CQE per refill. resumeStarved() re-arms regardless.
   * Default: a quarter of the area's pages, at most 64, at least 1. */
  rearmLowWater?: number;
  /** The refill ring is shared with other receivers (an ifq imported into rings in several
   * Workers, 6.19): releases wait in this receiver until publish(), which writes them under this
   * lock (see refill-lock.ts). Every receiver of the ring must use the same lock. */
  refillLock?: RefillLock;
}

/** Default cap on ReceiverOptions.rearmLowWater. */
const REARM_LOW_WATER_MAX = 64;

export class ZcrxReceiver {
  readonly stats = new ZcrxStats();
  /** The area: chunk `c` is area[offsetOf(c), offsetOf(c) + lengthOf(c)). */
  readonly area: Uint8Array;
  private readonly source: ZcrxSource;
  private readonly areaBytes: number;
  // The area's memory, for views: new Uint8Array(buffer, offset, length) costs about a quarter
  // less than area.subarray() per chunk (no species lookup).
  private readonly areaBuffer: ArrayBufferLike;
  private readonly areaBase: number;
  private readonly conns: Conn[] = [];
  private closed = false;
  private starvedCount = 0;
  /** Event types (bits) seen since the last publish, to re-arm there. */
  private eventsToArm = 0;
  /** Refill entries published since the area last ran dry (while a receive is parked). */
  private backSinceDry = 0;
  private readonly lowWater: number;
  private readonly lock: RefillLock | null;

  // Chunk table: parallel typed arrays, one slot per live chunk, and a stack of free slots.
  private chunkOff: Float64Array;
  private chunkLen: Uint32Array;
  /** Generation of each slot's latest delivery, and how many deliveries it has had. */
  private chunkGen: Uint32Array;
  private chunkUses: Float64Array;
  private chunkLive: Uint8Array;
  /** Connection each slot's latest chunk came in on. */
  private chunkConn: Int32Array;
  /** Free slots, a FIFO ring of chunkCap entries. */
  private freeChunks: Int32Array;
  private freeHead = 0;
  private freeCount: number;
  private chunkCap: number;
  /** Handle layout: index in the low idxBits, generation (1..genMask) above. */
  private readonly idxBits: number;
  private readonly idxMask: number;
  private readonly genMask: number;
  // The onData call in progress: a handler that throws leaves these set, and the next deliver
  // or publish finishes that CQE's work (the try stays out of the per-CQE path: the source's
  // dispatcher catches, goes on with the batch and rethrows after it, as Ring.completions does).
  private handlerConn = -1;
  private handlerChunk = 0;
  private handlerRes = 0;
  private handlerFlags = 0;
  /** Chunks delivered and not yet released. */
  live = 0;

  // Refill ring: the kernel-reported layout and our cached indices.
  private readonly rqWords: Uint32Array;
  private readonly rqHeadIdx: number;
  private readonly rqTailIdx: number;
  private readonly rqesIdx: number;
  private readonly rqEntries: number;
  private readonly rqMask: number;
  private readonly tokenHigh: number;
  private rqTail: number;
  private rqHead: number;
  private rqPublished: number;

  // Releases waiting for room in the refill ring (FIFO, grows when needed).
  private pendOff: Float64Array;
  private pendLen: Uint32Array;
  private pendHead = 0;
  private pendCount = 0;

  constructor(source: ZcrxSource, options: ReceiverOptions = {}) {
    this.source = source;
    this.area = source.area;
    this.areaBytes = source.area.byteLength;
    this.areaBuffer = source.area.buffer;
    this.areaBase = source.area.byteOffset;
    const r = source.refill;
    if (
      r.head % 4 ||
      r.tail % 4 ||
      r.rqes % 4 ||
      r.rqes + r.entries * ZCRX_RQE.size > r.words.byteLength ||
      (r.entries & (r.entries - 1)) !== 0
    ) {
      throw new UringError(
        "ZcrxReceiver",
        EINVAL,
        `refill layout head ${r.head} tail ${r.tail} rqes ${r.rqes} x${r.entries} does not fit ${r.words.byteLength} bytes`,
      );
    }
    this.rqWords = r.words;
    this.rqHeadIdx = r.head >> 2;
    this.rqTailIdx = r.tail >> 2;
    this.rqesIdx = r.rqes >> 2;
    this.rqEntries = r.entries;
    this.rqMask = r.entries - 1;
    this.tokenHigh = source.areaTokenHigh >>> 0;
    this.rqTail = this.rqPublished = this.loadRefillTail();
    this.rqHead = this.loadRefillHead();

    const areaPages = Math.ceil(this.areaBytes / 4096);
    const cap = options.chunkCapacity ?? Math.max(64, areaPages + r.entries);
    if (!Number.isInteger(cap) || cap < 1 || cap > CHUNK_MAX_SLOTS)
      throw invalidArgument("ZcrxReceiver", `chunkCapacity must be 1..${CHUNK_MAX_SLOTS}, got ${shown(cap)}`);
    this.chunkCap = cap;
    // Room for twice what the area and the refill ring can account for (a buffer can be in two
    // chunks when TCP splits what landed in it), and never less than the table asked for.
    const slotsMax = Math.max(cap, 2 * (areaPages + r.entries));
    this.idxBits = Math.min(CHUNK_INDEX_BITS_MAX, Math.max(CHUNK_INDEX_BITS_MIN, Math.ceil(Math.log2(slotsMax))));
    this.idxMask = (1 << this.idxBits) - 1;
    this.genMask = 2 ** (31 - this.idxBits) - 1;
    this.chunkOff = new Float64Array(cap);
    this.chunkLen = new Uint32Array(cap);
    this.chunkGen = new Uint32Array(cap);
    this.chunkUses = new Float64Array(cap);
    this.chunkLive = new Uint8Array(cap);
    this.chunkConn = new Int32Array(cap);
    this.freeChunks = new Int32Array(cap);
    for (let i = 0; i < cap; i++) this.freeChunks[i] = i;
    this.freeCount = cap;
    const lowWater =
      options.rearmLowWater ?? Math.max(1, Math.min(REARM_LOW_WATER_MAX, Math.floor(this.areaBytes / 4096 / 4)));
    if (!Number.isInteger(lowWater) || lowWater < 1)
      throw invalidArgument(
        "ZcrxReceiver",
        `rearmLowWater must be a positive integer, got ${shown(options.rearmLowWater)}`,
      );
    this.lowWater = lowWater;
    this.pendOff = new Float64Array(r.entries);
    this.pendLen = new Uint32Array(r.entries);
    const lock = options.refillLock ?? null;
    if (lock !== null && !(lock instanceof RefillLock))
      throw invalidArgument("ZcrxReceiver", "refillLock must be a RefillLock");
    this.lock = lock;
    // After bind, so that a source's own refusal (the simulator allows one receiver) speaks
    // first; a RingSource refuses nothing, and this is where a second ifq.receiver() stops.
    source.bind(this);
    // Producers that share the ring through a lock do not own it.
    if (lock !== null) return;
    const owner = refillOwners.get(r.words.buffer);
    if (owner !== undefined && !owner.closed) {
      throw new UringError(
        "ZcrxReceiver",
        EBUSY,
        "this refill ring already has a receiver",
        "an ifq has one refill ring and so one receiver, whose cached tail is the ring's only writer: reuse the first receiver (ifq.receiver() once), or close it before making another",
      );
    }
    refillOwners.set(r.words.buffer, this);
  }

  get kind(): "ring" | "simulator" {
    return this.source.kind;
  }

  // ---- memory ordering: the only Atomics of the receiver ----

  /** Acquire load of the kernel's refill head: entries before it have been consumed. */
  private loadRefillHead(): number {
    return Atomics.load(this.rqWords, this.rqHeadIdx);
  }

  /** Our own tail as last published (read once at start). */
  private loadRefillTail(): number {
    return Atomics.load(this.rqWords, this.rqTailIdx);
  }

  /** Release store of the refill tail: the entries' plain stores are visible before it
   * (smp_store_release in liburing's examples/zcrx.c). */
  private storeRefillTail(tail: number): void {
    Atomics.store(this.rqWords, this.rqTailIdx, tail);
  }

  // ---- connections ----

  /** Start receiving on a connected TCP socket: a multishot RECV_ZC, re-armed whenever it ends
   * without F_MORE for a reason that is not the end of the stream. Returns the connection id. */
  recv<T>(fd: number, handler: RecvZcHandler<T>, ctx: T, options: RecvOptions = {}): number {
    if (this.closed) throw closedError("ZcrxReceiver.recv", "zcrx receiver");
    if (!Number.isInteger(fd) || fd < 0)
      throw invalidArgument("ZcrxReceiver.recv", `fd must be a non-negative integer, got ${shown(fd)}`);
    if (!handler || typeof handler.onData !== "function")
      throw invalidArgument("ZcrxReceiver.recv", "handler.onData must be a function");
    const maxBytes = options.maxBytes ?? 0;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0 || maxBytes > 0xffffffff)
      throw invalidArgument("ZcrxReceiver.recv", `maxBytes must be 0..2^32-1, got ${shown(maxBytes)}`);
    const conn = new Conn(this.conns.length, fd, handler, ctx, maxBytes);
    this.conns.push(conn);
    this.arm(conn);
    return conn.id;
  }

  /** Stop connection `conn` (a stream's return() or abort): it is never re-armed again. Parked
   * for lack of buffers, with no request in the kernel, it ends at once: onEnd runs now with
   * -ECANCELED, as for a cancelled request, because no CQE will ever come to end it. Returns
   * true when a request is still in flight: the caller must cancel it in the kernel (an
   * IORING_OP_ASYNC_CANCEL of the RECV_ZC on its fd), and its last CQE ends the connection. An
   * ended or unknown connection returns false. */
  stop(conn: number): boolean {
    const c = this.conns[conn];
    if (c === undefined || c.ended) return false;
    c.stopped = true;
    if (c.armed) return true;
    if (c.starved) {
      c.starved = false;
      this.starvedCount--;
    }
    this.endConn(c, -ECANCELED);
    return false;
  }

  /** A ZCRX event CQE (7.2) for this ifq: its res is the ZCRX_EVENT_* type (checked on 7.2.13).
   * Events are one-shot in the kernel. ALLOC_FAIL is re-armed by the next publish (at most one
   * ZCRX_CTRL_ARM_EVENT per turn). COPY is not: its first CQE marks this receiver `copied`, and
   * ZcrxIfq.copyStats() counts every copy after it, where re-arming would cost a syscall per
   * publish on a queue that copies everything (device-less, or traffic on the wrong queue). */
  event(type: number): void {
    if (type === ZCRX_EVENT_COPY) this.stats.copyEvents++;
    else if (type === ZCRX_EVENT_ALLOC_FAIL) {
      this.stats.allocFailEvents++;
      this.eventsToArm |= 1 << ZCRX_EVENT_ALLOC_FAIL;
      for (const conn of this.conns) if (!conn.ended) conn.handler.onAllocFail?.(conn.ctx);
    } else this.stats.otherEvents++;
  }

  /** Whether the kernel reported copying data into the area instead of receiving it in place
   * (a ZCRX_EVENT_COPY since this receiver began; 7.2 only: before, nothing tells). */
  get copied(): boolean {
    return this.stats.copyEvents > 0;
  }

  /** Whether connection `conn` is parked because the area ran dry. */
  starvedOn(conn: number): boolean {
    return this.conns[conn]?.starved ?? false;
  }

  /** Whether connection `conn` has ended (EOF or error). */
  ended(conn: number): boolean {
    return this.conns[conn]?.ended ?? true;
  }

  /** Bytes received so far on connection `conn`. */
  receivedOn(conn: number): number {
    return this.conns[conn]?.received ?? 0;
  }

  private arm(conn: Conn): void {
    conn.armed = true;
    conn.starved = false;
    const left = conn.maxBytes === 0 ? 0 : conn.maxBytes - conn.received;
    this.source.arm(conn.id, conn.fd, left);
  }

  /** arm() again from a completion or from publish(), where nothing may throw: a refusal (the op
   * table full, EBUSY) ends the connection with that errno, as a kernel error would. */
  private rearm(conn: Conn): void {
    try {
      this.arm(conn);
    } catch (e) {
      if (!(e instanceof UringError)) throw e;
      conn.armed = false;
      this.endConn(conn, -e.errno);
    }
  }

  /** One RECV_ZC CQE, from either source. offLo/offHi are the two words of
   * io_uring_zcrx_cqe.off (CQE bytes 16..23). */
  deliver(connId: number, res: number, flags: number, offLo: number, offHi: number): void {
    if (this.handlerConn >= 0) this.afterHandlerThrew();
    const conn = this.conns[connId]!;
    if (res > 0) {
      const offset = (offHi & OFF_HIGH_MASK) * U32_SPAN + offLo;
      if (offset + res > this.areaBytes) {
        throw new UringError(
          "IORING_OP_RECV_ZC",
          EFAULT,
          `a CQE points at ${res} bytes at area offset ${offset}, past the ${this.areaBytes}-byte area`,
        );
      }
      const chunk = this.takeChunk(offset, res, connId);
      conn.received += res;
      this.stats.chunks++;
      this.stats.bytes += res;
      this.handlerConn = connId;
      this.handlerChunk = chunk;
      this.handlerRes = res;
      this.handlerFlags = flags;
      conn.handler.onData(conn.ctx, chunk, offset, res);
      this.handlerConn = -1;
    }
    if (!(flags & IORING_CQE_F_MORE)) this.finished(conn, res);
  }

  /** The last onData threw (its exception went to the source's dispatcher, which delivers the
   * rest of the batch and rethrows it after): give its chunk back unless the handler did, since
   * nothing else would, and finish what its CQE started (a last CQE ends or re-arms). */
  private afterHandlerThrew(): void {
    const conn = this.conns[this.handlerConn]!;
    this.handlerConn = -1;
    this.stats.handlerErrors++;
    if (this.slotOf(this.handlerChunk) >= 0) this.release(this.handlerChunk);
    if (!(this.handlerFlags & IORING_CQE_F_MORE)) this.finished(conn, this.handlerRes);
  }

  /** The request ended (no F_MORE): re-arm it, park it until refills arrive, or end the stream. */
  private finished(conn: Conn, res: number): void {
    conn.armed = false;
    if (conn.ended) return;
    const limitReached = conn.maxBytes !== 0 && conn.received >= conn.maxBytes;
    const retry = res === -ENOSPC || res === -EINTR || res === -EAGAIN || res > 0;
    if (conn.stopped && !limitReached && (retry || res === -ENOMEM)) {
      // The owner stopped this connection: what would have re-armed or parked it ends it
      // instead, as the cancel the owner asked for would have.
      this.endConn(conn, -ECANCELED);
      return;
    }
    if (!limitReached && retry) {
      // -ENOSPC: the CQ had no room for the next CQE (io_zcrx_queue_cqe failed); the data is
      // still in the socket, so post the request again (liburing examples/zcrx.c does too).
      this.stats.rearms++;
      if (res === -ENOSPC) this.stats.rearmsEnospc++;
      this.rearm(conn);
      return;
    }
    if (!limitReached && res === -ENOMEM) {
      // The copy path found no free buffer in the area (io_zcrx_copy_chunk): wait for our
      // releases to reach the kernel, then post it again from publish().
      this.stats.starvations++;
      conn.starved = true;
      if (this.starvedCount++ === 0) this.backSinceDry = 0;
      conn.handler.onStarve?.(conn.ctx);
      return;
    }
    this.endConn(conn, limitReached && res > 0 ? 0 : res);
  }

  private endConn(conn: Conn, res: number): void {
    conn.ended = true;
    this.stats.ends++;
    conn.handler.onEnd?.(conn.ctx, res);
  }

  // ---- chunks ----

  private takeChunk(offset: number, length: number, conn: number): number {
    if (this.freeCount === 0) this.growChunks();
    const i = this.freeChunks[this.freeHead]!;
    this.freeHead = this.freeHead + 1 === this.chunkCap ? 0 : this.freeHead + 1;
    this.freeCount--;
    const next = this.chunkGen[i]! + 1;
    const gen = next > this.genMask ? 1 : next;
    this.chunkGen[i] = gen;
    this.chunkUses[i]!++;
    this.chunkOff[i] = offset;
    this.chunkLen[i] = length;
    this.chunkConn[i] = conn;
    this.chunkLive[i] = 1;
    this.live++;
    return (gen << this.idxBits) | i;
  }

  private growChunks(): void {
    const old = this.chunkCap;
    const cap = Math.min(old * 2, this.idxMask + 1);
    if (cap === old)
      throw new UringError(
        "ZcrxReceiver",
        ENOMEM,
        `${old} chunks are held and none released`,
        "release chunks: the kernel cannot reuse their buffers until then",
      );
    const grow = <A extends Float64Array | Uint32Array | Uint8Array | Int32Array>(a: A, make: (n: number) => A): A => {
      const b = make(cap);
      b.set(a as never);
      return b;
    };
    this.chunkOff = grow(this.chunkOff, (n) => new Float64Array(n));
    this.chunkLen = grow(this.chunkLen, (n) => new Uint32Array(n));
    this.chunkGen = grow(this.chunkGen, (n) => new Uint32Array(n));
    this.chunkUses = grow(this.chunkUses, (n) => new Float64Array(n));
    this.chunkLive = grow(this.chunkLive, (n) => new Uint8Array(n));
    this.chunkConn = grow(this.chunkConn, (n) => new Int32Array(n));
    // Called with no slot free: the new FIFO holds the new slots only.
    const free = new Int32Array(cap);
    for (let k = 0; k < cap - old; k++) free[k] = old + k;
    this.freeChunks = free;
    this.freeHead = 0;
    this.freeCount = cap - old;
    this.chunkCap = cap;
  }

  /** Slot of a live chunk handle, or -1. A handle that is not a number, negative, fractional,
   * NaN or too large yields a slot no live chunk has (a fractional or NaN index reads undefined
   * from the table). */
  private slotOf(chunk: number): number {
    const i = chunk & this.idxMask;
    if (
      (chunk | 0) === chunk &&
      chunk >= 0 &&
      i < this.chunkCap &&
      this.chunkLive[i] === 1 &&
      this.chunkGen[i] === chunk >>> this.idxBits
    )
      return i;
    return -1;
  }

  private checkChunk(chunk: number, where: string): number {
    const i = this.slotOf(chunk);
    if (i < 0) throw this.badChunk(chunk, where);
    return i;
  }

  private badChunk(chunk: number, where: string): UringError {
    const i = chunk & this.idxMask;
    const gen = chunk >>> this.idxBits;
    if ((chunk | 0) === chunk && chunk >= 0 && gen >= 1 && i < this.chunkCap) {
      // How many deliveries ago this handle's generation was issued on its slot (generations
      // cycle through 1..genMask).
      const ago = (this.chunkGen[i]! - gen + this.genMask) % this.genMask;
      if (ago < this.chunkUses[i]!) {
        return new UringError(
          where,
          EINVAL,
          `chunk ${chunk} was already released`,
          "release each chunk exactly once; its bytes may already hold newer data",
        );
      }
    }
    return new UringError(
      where,
      EINVAL,
      `chunk ${chunk} was never issued by this receiver`,
      "pass the handle onData received",
    );
  }

  /** Every chunk delivered and not yet released, in slot order: its handle, the fd it came in
   * on, where it is in the area. For leak reports (bun-uring/testing's assertClean); it walks
   * the whole chunk table. */
  heldChunks(): { chunk: number; fd: number; offset: number; length: number }[] {
    const out: { chunk: number; fd: number; offset: number; length: number }[] = [];
    for (let i = 0; i < this.chunkCap; i++) {
      if (this.chunkLive[i] !== 1) continue;
      out.push({
        chunk: (this.chunkGen[i]! << this.idxBits) | i,
        fd: this.conns[this.chunkConn[i]!]!.fd,
        offset: this.chunkOff[i]!,
        length: this.chunkLen[i]!,
      });
    }
    return out;
  }

  /** Area offset of a live chunk. */
  offsetOf(chunk: number): number {
    return this.chunkOff[this.checkChunk(chunk, "ZcrxReceiver.offsetOf")]!;
  }

  /** Length of a live chunk. */
  lengthOf(chunk: number): number {
    return this.chunkLen[this.checkChunk(chunk, "ZcrxReceiver.lengthOf")]!;
  }

  /** A Uint8Array over a live chunk's bytes in the area (no copy; one small view object).
   * Valid until release(chunk). For a SharedArrayBuffer area it can be posted to a Worker. */
  view(chunk: number): Uint8Array {
    const i = this.checkChunk(chunk, "ZcrxReceiver.view");
    return this.viewAt(this.chunkOff[i]!, this.chunkLen[i]!);
  }

  /** A Uint8Array over area bytes [offset, offset + length), unchecked: for the chunk onData was
   * just given (the async API's ZcrxChunk.data). */
  viewAt(offset: number, length: number): Uint8Array {
    return new Uint8Array(this.areaBuffer, this.areaBase + offset, length);
  }

  /** Give a chunk's buffer back to the kernel: one refill entry, written now with plain stores
   * and made visible by the next publish() (ZcrxReceiver.run does it after each drain). When
   * the refill ring is full the entry waits and is published later. A second release of the
   * same handle, or a handle this receiver never issued, throws EINVAL. After close() the
   * handle is retired without a refill entry: the refill ring may have a new receiver by then,
   * and the kernel takes every buffer back when its ring closes. */
  release(chunk: number): void {
    const i = this.slotOf(chunk);
    if (i < 0) throw this.badChunk(chunk, "ZcrxReceiver.release");
    this.chunkLive[i] = 0;
    const tail = this.freeHead + this.freeCount;
    this.freeChunks[tail >= this.chunkCap ? tail - this.chunkCap : tail] = i;
    this.freeCount++;
    this.live--;
    this.stats.released++;
    if (this.closed) return;
    const off = this.chunkOff[i]!;
    const len = this.chunkLen[i]!;
    // Fast path: nothing waiting and the cached head says there is room (no kernel read). A
    // shared ring's tail is not ours between publishes: its releases always wait.
    if (this.lock !== null) this.pend(off, len);
    else if (this.pendCount === 0 && (this.rqTail - this.rqHead) >>> 0 < this.rqEntries) this.writeRqe(off, len);
    else if (this.pendCount === 0 && this.refillSpace() > 0) this.writeRqe(off, len);
    else this.pend(off, len);
  }

  /** Free refill slots, reloading the kernel's head only when the cached one says full. */
  private refillSpace(): number {
    let used = (this.rqTail - this.rqHead) >>> 0;
    if (used >= this.rqEntries) {
      this.rqHead = this.loadRefillHead();
      used = (this.rqTail - this.rqHead) >>> 0;
    }
    return this.rqEntries - used;
  }

  /** One io_uring_zcrx_rqe: off = area offset | rq_area_token, len, __pad = 0. */
  private writeRqe(off: number, len: number): void {
    const w = this.rqesIdx + ((this.rqTail & this.rqMask) << 2);
    const words = this.rqWords;
    words[w] = off >>> 0;
    words[w + 1] = ((off / U32_SPAN) >>> 0) | this.tokenHigh;
    words[w + 2] = len;
    words[w + 3] = 0;
    this.rqTail = (this.rqTail + 1) >>> 0;
  }

  private pend(off: number, len: number): void {
    // One event per time the ring filled up with releases behind it (a shared ring's releases
    // all wait for the publish: not a full ring).
    if (this.pendCount === 0 && this.lock === null) this.stats.rqFull++;
    if (this.pendCount === this.pendOff.length) {
      const n = this.pendOff.length * 2;
      const o = new Float64Array(n),
        l = new Uint32Array(n);
      for (let k = 0; k < this.pendCount; k++) {
        const j = (this.pendHead + k) % this.pendOff.length;
        o[k] = this.pendOff[j]!;
        l[k] = this.pendLen[j]!;
      }
      this.pendOff = o;
      this.pendLen = l;
      this.pendHead = 0;
    }
    const j = (this.pendHead + this.pendCount) % this.pendOff.length;
    this.pendOff[j] = off;
    this.pendLen[j] = len;
    this.pendCount++;
    if (this.pendCount > this.stats.pendingHighWater) this.stats.pendingHighWater = this.pendCount;
  }

  private movePending(): void {
    let space = this.refillSpace();
    const cap = this.pendOff.length;
    while (this.pendCount > 0 && space > 0) {
      this.writeRqe(this.pendOff[this.pendHead]!, this.pendLen[this.pendHead]!);
      this.pendHead = (this.pendHead + 1) % cap;
      this.pendCount--;
      space--;
      if (space === 0) space = this.refillSpace();
    }
  }

  /** Releases waiting for refill ring space. */
  get pending(): number {
    return this.pendCount;
  }

  /** Refill entries written and not yet published. */
  get unpublished(): number {
    return (this.rqTail - this.rqPublished) >>> 0;
  }

  /** Refill entries the kernel has consumed so far (published minus those still queued). */
  get refillsConsumed(): number {
    return this.stats.published - ((this.rqPublished - this.loadRefillHead()) >>> 0);
  }

  /** Publish every release since the last call with one release store of the refill tail,
   * after moving pending releases into the ring. A device-less zcrx is then flushed once
   * (ZCRX_CTRL_FLUSH_RQ); releases still pending (the ring was full) wait for the next publish
   * (`needsPublish` says so). Streams parked because the area ran dry are re-armed once
   * rearmLowWater buffers went back since, or once every chunk is back. Returns entries
   * published; 0 after close(), which ends this receiver's writes to the refill ring. */
  publish(): number {
    if (this.closed) return 0;
    if (this.handlerConn >= 0) this.afterHandlerThrew();
    const n = this.lock === null ? this.commit() : this.commitShared(this.lock);
    if (n > 0) {
      const s = this.stats;
      s.publishes++;
      s.published += n;
      if (n > s.batchMax) s.batchMax = n;
      const b = 31 - Math.clz32(n);
      s.batchHistogram[b < BATCH_BUCKETS ? b : BATCH_BUCKETS - 1]!++;
      if (this.source.afterPublish()) s.flushes++;
    }
    if (this.eventsToArm !== 0) {
      const types = this.eventsToArm;
      this.eventsToArm = 0;
      this.source.armEvents?.(types);
    }
    if (this.starvedCount > 0) {
      this.backSinceDry += n;
      if (this.backSinceDry >= this.lowWater || (this.live === 0 && this.pendCount === 0)) this.rearmStarved();
    }
    return n;
  }

  /** Move pending releases in and store the tail once: the entries published. */
  private commit(): number {
    if (this.pendCount > 0) this.movePending();
    const n = (this.rqTail - this.rqPublished) >>> 0;
    if (n > 0) {
      this.storeRefillTail(this.rqTail);
      this.rqPublished = this.rqTail;
    }
    return n;
  }

  /** commit() on a ring other receivers also fill: under their common lock, from the tail the
   * last of them stored and the kernel's current head. */
  private commitShared(lock: RefillLock): number {
    if (this.pendCount === 0) return 0;
    lock.acquire();
    try {
      this.rqTail = this.rqPublished = this.loadRefillTail();
      this.rqHead = this.loadRefillHead();
      return this.commit();
    } finally {
      lock.release();
    }
  }

  /** Whether a publish() is still due: releases written and not published, or waiting for room. */
  get needsPublish(): boolean {
    return this.pendCount > 0 || this.rqTail !== this.rqPublished;
  }

  /** Receives parked because the area ran dry. */
  get starved(): number {
    return this.starvedCount;
  }

  /** Buffers published since the area last ran dry (counted while a receive is parked). */
  get returnedSinceDry(): number {
    return this.starvedCount > 0 ? this.backSinceDry : 0;
  }

  /** Re-arm every parked receive now, whatever came back: for when no more releases are coming
   * soon (the synchronous run() does it after each publish that returned buffers; the async API
   * when a turn released nothing). Returns how many were re-armed. */
  resumeStarved(): number {
    if (this.closed || this.starvedCount === 0) return 0;
    return this.rearmStarved();
  }

  private rearmStarved(): number {
    this.starvedCount = 0;
    this.backSinceDry = 0;
    let n = 0;
    for (const conn of this.conns) {
      if (conn.starved && !conn.ended) {
        this.stats.rearms++;
        this.rearm(conn);
        n++;
      }
    }
    return n;
  }

  // ---- driving ----

  /** Dispatch the completions ready now, then publish. Returns CQEs handled. */
  completions(): number {
    if (this.closed) throw closedError("ZcrxReceiver.completions", "zcrx receiver");
    try {
      return this.source.reap(0, undefined);
    } finally {
      this.endDrain();
    }
  }

  /** Wait for at least `waitNr` completions (bounded by `timeoutMs`), dispatch, publish. */
  run(waitNr = 1, timeoutMs?: number): number {
    if (this.closed) throw closedError("ZcrxReceiver.run", "zcrx receiver");
    try {
      return this.source.reap(waitNr, timeoutMs);
    } finally {
      this.endDrain();
    }
  }

  /** A synchronous drain's end: publish, and re-arm a parked receive with whatever went back
   * (the caller's next wait would otherwise have nothing in the kernel to end it). */
  private endDrain(): void {
    if (this.closed) return;
    this.publish();
    if (this.starvedCount > 0 && this.backSinceDry > 0) this.rearmStarved();
  }

  /** run() until `done()`; throws ETIME after `timeoutMs`. */
  runUntil(done: () => boolean, timeoutMs = 30_000): void {
    const deadline = performance.now() + timeoutMs;
    while (!done()) {
      const left = deadline - performance.now();
      if (left <= 0)
        throw new UringError(
          "ZcrxReceiver.runUntil",
          ETIME,
          `condition not met within ${timeoutMs} ms (${this.live} chunks held, ${this.pendCount} pending)`,
        );
      this.run(1, Math.min(left, 200));
    }
  }

  /** Stop using the area: later calls throw, except release() (which then only retires the
   * handle) and publish() (which does nothing). The kernel side (ring, ifq) is closed by its
   * owner; chunks still held must not be read after that. Once closed, this receiver never writes
   * the refill ring again, so another receiver may take it over (ZcrxIfq.receiver()); releases
   * not yet published are dropped, and their buffers return to the kernel only with its ring. */
  close(): void {
    this.closed = true;
    if (refillOwners.get(this.rqWords.buffer) === this) refillOwners.delete(this.rqWords.buffer);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
