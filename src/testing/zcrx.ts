// A simulated kernel side of zcrx for bun test suites: no NIC, no special kernel. It owns an area
// and a refill ring laid out as the kernel lays them out (head at 0, tail at 4, RQEs from byte
// 64, as on 6.18), posts 32-byte CQEs into its own completion ring the way io_zcrx_queue_cqe
// does (res = length, F_MORE, big_cqe = area id << 48 | offset), and takes buffers back by the
// refill head/tail protocol (io_zcrx_ring_refill / zcrx_parse_rq). The same ZcrxReceiver and the
// same user handlers run on it as on a Ring with a registered ifq.
//
// Running out of buffers: a real NIC queue stalls (its page pool cannot allocate, the NIC drops
// packets and TCP retransmits later), while the copy path (device-less zcrx, or data arriving on
// another queue) ends the RECV_ZC with -ENOMEM (io_zcrx_copy_chunk). onStarve picks which one to
// imitate; the default, "enomem", is what the device-less kernel in the VM tier does.
import { IORING_CQE_F_MORE } from "../abi/sqe.ts";
import { ECANCELED, EINVAL, ENOMEM, ENOSPC, ENOTSOCK } from "../abi/errno.ts";
import { IORING_ZCRX_AREA_SHIFT, ZCRX_EVENT_ALLOC_FAIL, ZCRX_RQE } from "../abi/zcrx.ts";
import { UringError, invalidArgument, shown } from "../error.ts";
import { PAGE_SIZE, allocShared } from "../ring/memory.ts";
import { isPowerOfTwo, refillRingBytes } from "../zcrx/sizes.ts";
import { ZcrxReceiver, type ReceiverOptions, type RefillLayout, type ZcrxSource } from "../zcrx/receiver.ts";

/** Byte written over a buffer when the simulated kernel takes it back (poisoning): a chunk read
 * after its release shows this instead of the data. */
export const POISON_BYTE = 0xdb;

/** The kernel's refill ring header on 6.18: struct io_uring {head, tail} aligned to a cache line. */
const SIM_RQ_HEADER = { size: 8, alignment: 64 } as const;
const SIM_RQ_HEAD = 0,
  SIM_RQ_TAIL = 4;
const U32_SPAN = 4294967296;
/** The "connection" of an event CQE in the simulated CQ (a real one has the event's user_data). */
const EVENT_CONN = 0xffffffff;
/** Fake file descriptors handed out by connect(), far above anything real. */
const FD_BASE = 1 << 20;

export interface SimulatedZcrxOptions {
  /** Area size in bytes (whole pages). Default 1 MiB. */
  areaBytes?: number;
  /** Refill ring entries, a power of two. Default 64. */
  rqEntries?: number;
  /** Bytes per buffer (niov): a power of two dividing the area. Default PAGE_SIZE. */
  bufferBytes?: number;
  /** Most bytes one CQE carries (<= bufferBytes). Default bufferBytes. */
  chunkBytes?: number;
  /** CQ entries: CQEs one drain can hold; a stream that would post more ends with -ENOSPC.
   * Default 4096. */
  cqEntries?: number;
  /** "alloc" (default): refills are taken when the free list runs dry, as a NIC page pool does.
   * "flush": taken right after each publish, as ZCRX_CTRL_FLUSH_RQ does for device-less zcrx. */
  reclaim?: "alloc" | "flush";
  /** With no free buffer: "enomem" (default) ends the request with -ENOMEM like the copy path;
   * "stall" leaves the data queued until buffers return, like a NIC queue. */
  onStarve?: "enomem" | "stall";
  /** Overwrite buffers with POISON_BYTE when they come back. Default true. */
  poison?: boolean;
  /** Area id, the top 16 bits of every offset (the kernel uses 0 today). Default 0. */
  areaId?: number;
  /** Throw at the refill that reveals a protocol violation (default true); false records it in
   * `violations` only. */
  strict?: boolean;
  /** Post ZCRX events as a 7.2 kernel with an event descriptor does: ZCRX_EVENT_ALLOC_FAIL when
   * a "stall" queue finds no free buffer, one-shot until the receiver re-arms it (its publish
   * does). Default false. */
  events?: boolean;
  /** Most CQEs one dispatch() hands to the receiver; the rest wait for the next one, as CQEs
   * past a ring's batch wait for its next drain. Default: all of them. */
  maxDispatch?: number;
}

class Stream {
  queue: Uint8Array[] = [];
  queueOffset = 0;
  queued = 0;
  eof = false;
  error = 0;
  armed = false;
  conn = -1;
  left = 0; // bytes this request may still deliver (Infinity without a limit)
  constructor(readonly fd: number) {}
}

export class SimulatedZcrx implements ZcrxSource {
  readonly kind = "simulator" as const;
  readonly area: Uint8Array;
  readonly areaTokenHigh: number;
  readonly refill: RefillLayout;
  readonly bufferBytes: number;
  readonly chunkBytes: number;
  readonly cqEntries: number;
  /** Protocol violations seen in refill entries (each also thrown when strict). */
  readonly violations: string[] = [];
  /** What the simulated kernel did. */
  readonly counters = {
    cqes: 0,
    buffersHandedOut: 0,
    refillsConsumed: 0,
    reclaims: 0,
    enospc: 0,
    enomem: 0,
    stalls: 0,
    flushes: 0,
  };

  private receiver: ZcrxReceiver | undefined;
  private readonly areaId: number;
  private readonly reclaimMode: "alloc" | "flush";
  private readonly starveMode: "enomem" | "stall";
  private readonly poison: boolean;
  private readonly strict: boolean;
  private readonly maxDispatch: number;
  /** Event types (bits) armed: posted once, then off until armEvents. */
  private eventsArmed: number;
  private readonly nBuffers: number;
  /** User references per buffer: one per CQE pointing into it, dropped by its refill entry. */
  private readonly userRefs: Uint32Array;
  private readonly freeList: Int32Array;
  private freeCount: number;
  private rqHead = 0;
  // The completion ring: 8 u32 words per CQE32, as in the kernel's CQ.
  private readonly cq: Uint32Array;
  /** Copied CQE fields of one drain: user_data, res, flags, off low word (4 per CQE), then the
   * off high words after 4 * cqEntries. */
  private readonly batch: Uint32Array;
  private cqHead = 0;
  private cqTail = 0;
  private readonly overflow: number[] = [];
  private readonly streams = new Map<number, Stream>();
  private readonly order: Stream[] = [];
  private readonly badArms: number[] = [];

  constructor(o: SimulatedZcrxOptions = {}) {
    const areaBytes = o.areaBytes ?? 1024 * 1024;
    if (!Number.isInteger(areaBytes) || areaBytes < PAGE_SIZE || areaBytes % PAGE_SIZE)
      throw invalidArgument("SimulatedZcrx", `areaBytes must be a whole number of pages, got ${shown(areaBytes)}`);
    const rqEntries = o.rqEntries ?? 64;
    if (!isPowerOfTwo(rqEntries) || rqEntries > 32768)
      throw invalidArgument("SimulatedZcrx", `rqEntries must be a power of two up to 32768, got ${shown(rqEntries)}`);
    this.bufferBytes = o.bufferBytes ?? PAGE_SIZE;
    if (!isPowerOfTwo(this.bufferBytes) || areaBytes % this.bufferBytes)
      throw invalidArgument(
        "SimulatedZcrx",
        `bufferBytes must be a power of two dividing the area, got ${shown(this.bufferBytes)}`,
      );
    this.chunkBytes = o.chunkBytes ?? this.bufferBytes;
    if (!Number.isInteger(this.chunkBytes) || this.chunkBytes < 1 || this.chunkBytes > this.bufferBytes)
      throw invalidArgument("SimulatedZcrx", `chunkBytes must be 1..bufferBytes, got ${shown(this.chunkBytes)}`);
    this.cqEntries = o.cqEntries ?? 4096;
    if (!isPowerOfTwo(this.cqEntries))
      throw invalidArgument("SimulatedZcrx", `cqEntries must be a power of two, got ${shown(this.cqEntries)}`);
    this.areaId = o.areaId ?? 0;
    if (!Number.isInteger(this.areaId) || this.areaId < 0 || this.areaId > 0xffff)
      throw invalidArgument("SimulatedZcrx", `areaId must be 0..65535, got ${shown(this.areaId)}`);
    this.reclaimMode = o.reclaim ?? "alloc";
    if (this.reclaimMode !== "alloc" && this.reclaimMode !== "flush")
      throw invalidArgument("SimulatedZcrx", `reclaim must be "alloc" or "flush", got ${shown(o.reclaim)}`);
    this.starveMode = o.onStarve ?? "enomem";
    if (this.starveMode !== "enomem" && this.starveMode !== "stall")
      throw invalidArgument("SimulatedZcrx", `onStarve must be "enomem" or "stall", got ${shown(o.onStarve)}`);
    this.poison = o.poison ?? true;
    this.strict = o.strict ?? true;
    this.maxDispatch = o.maxDispatch ?? Infinity;
    this.eventsArmed = o.events === true ? 1 << ZCRX_EVENT_ALLOC_FAIL : 0;
    if (this.maxDispatch !== Infinity && (!Number.isInteger(this.maxDispatch) || this.maxDispatch < 1))
      throw invalidArgument("SimulatedZcrx", `maxDispatch must be a positive integer, got ${shown(o.maxDispatch)}`);

    this.area = allocShared(areaBytes).bytes;
    this.areaTokenHigh = (this.areaId << (IORING_ZCRX_AREA_SHIFT - 32)) >>> 0;
    const region = allocShared(refillRingBytes(rqEntries, SIM_RQ_HEADER));
    const rqes = Math.ceil(SIM_RQ_HEADER.size / SIM_RQ_HEADER.alignment) * SIM_RQ_HEADER.alignment;
    this.refill = {
      words: new Uint32Array(region.buffer, region.bytes.byteOffset, region.byteLength >> 2),
      head: SIM_RQ_HEAD,
      tail: SIM_RQ_TAIL,
      rqes,
      entries: rqEntries,
    };
    this.nBuffers = areaBytes / this.bufferBytes;
    this.userRefs = new Uint32Array(this.nBuffers);
    this.freeList = new Int32Array(this.nBuffers);
    for (let i = 0; i < this.nBuffers; i++) this.freeList[i] = this.nBuffers - 1 - i;
    this.freeCount = this.nBuffers;
    this.cq = new Uint32Array(this.cqEntries * 8);
    this.batch = new Uint32Array(this.cqEntries * 5);
  }

  /** A ZcrxReceiver driven by this simulated kernel. */
  createReceiver(options: ReceiverOptions = {}): ZcrxReceiver {
    return new ZcrxReceiver(this, options);
  }

  /** A simulated connected TCP socket: returns the fd to pass to receiver.recv. */
  connect(): number {
    const fd = FD_BASE + this.order.length;
    const s = new Stream(fd);
    this.streams.set(fd, s);
    this.order.push(s);
    return fd;
  }

  /** Queue bytes on a simulated socket, as if the peer sent them (copied now). */
  send(fd: number, bytes: Uint8Array): void {
    const s = this.stream(fd, "send");
    if (s.eof) throw invalidArgument("SimulatedZcrx.send", `fd ${fd} was shut down`);
    if (!(bytes instanceof Uint8Array))
      throw invalidArgument("SimulatedZcrx.send", `bytes must be a Uint8Array, got ${typeof bytes}`);
    if (bytes.byteLength === 0) return;
    s.queue.push(bytes.slice());
    s.queued += bytes.byteLength;
  }

  /** The peer closed: once its bytes are delivered the request ends with res 0. */
  shutdown(fd: number): void {
    this.stream(fd, "shutdown").eof = true;
  }

  /** The connection failed with -errno (after the queued bytes). */
  fail(fd: number, errno: number): void {
    this.stream(fd, "fail").error = -Math.abs(errno);
  }

  /** IORING_OP_ASYNC_CANCEL of the RECV_ZC on `fd`: an armed request ends with -ECANCELED (its
   * last CQE, no F_MORE), queued bytes stay on the socket. Returns false when nothing was armed,
   * where the kernel's cancel would complete with -ENOENT. */
  cancel(fd: number): boolean {
    const s = this.stream(fd, "cancel");
    if (!s.armed) return false;
    this.terminate(s, -ECANCELED);
    return true;
  }

  /** Buffers handed to the receiver and not yet returned through the refill ring. */
  get buffersInUse(): number {
    return this.nBuffers - this.freeCount;
  }

  /** Bytes still queued on `fd`. */
  queuedOn(fd: number): number {
    return this.stream(fd, "queuedOn").queued;
  }

  private stream(fd: number, where: string): Stream {
    const s = this.streams.get(fd);
    if (!s) throw invalidArgument(`SimulatedZcrx.${where}`, `fd ${fd} is not a simulated socket (use connect())`);
    return s;
  }

  // ---- ZcrxSource ----

  /** One receiver at a time, as on a real ifq. A closed one may be replaced once nothing of it is
   * left here: a real ring sends each request's CQEs to the receiver that armed it, while this
   * simulated kernel has one completion queue and would hand them to the new receiver. */
  bind(receiver: ZcrxReceiver): void {
    const prev = this.receiver;
    if (prev !== undefined) {
      if (!prev.isClosed)
        throw invalidArgument(
          "SimulatedZcrx",
          "one receiver per simulated zcrx: close the first before making another",
        );
      const armed = this.order.find((s) => s.armed);
      if (armed !== undefined)
        throw invalidArgument(
          "SimulatedZcrx",
          `fd ${armed.fd} still has a RECV_ZC of the closed receiver armed: end its streams before making another receiver`,
        );
      if (this.cqTail !== this.cqHead || this.overflow.length > 0 || this.badArms.length > 0)
        throw invalidArgument(
          "SimulatedZcrx",
          "completions for the closed receiver are still queued: dispatch them before making another receiver",
        );
    }
    this.receiver = receiver;
  }

  arm(conn: number, fd: number, maxBytes: number): void {
    const s = this.streams.get(fd);
    if (!s) {
      // The kernel's prep refuses a non-socket fd with a CQE and no F_MORE.
      this.badArms.push(conn);
      return;
    }
    if (s.armed) throw new UringError("IORING_OP_RECV_ZC", EINVAL, `fd ${fd} already has a RECV_ZC in flight`);
    s.armed = true;
    s.conn = conn;
    s.left = maxBytes === 0 ? Infinity : maxBytes;
  }

  reap(_waitNr: number, _timeoutMs: number | undefined): number {
    this.run();
    return this.dispatch();
  }

  armEvents(types: number): void {
    this.eventsArmed |= types & (1 << ZCRX_EVENT_ALLOC_FAIL);
  }

  afterPublish(): boolean {
    if (this.reclaimMode !== "flush") return false;
    this.counters.flushes++;
    this.reclaim();
    return true;
  }

  // ---- the simulated kernel ----

  /** Post CQEs for everything the armed streams can deliver now (one pass, like one task-work
   * run). */
  private run(): void {
    for (const c of this.badArms) this.post(c, -ENOTSOCK, 0, 0);
    this.badArms.length = 0;
    for (const s of this.order) {
      if (!s.armed) continue;
      while (s.queued > 0 && s.left > 0) {
        if (this.cqFull()) {
          // io_zcrx_queue_cqe found no CQ slot: the request ends with -ENOSPC, data stays.
          this.counters.enospc++;
          this.terminate(s, -ENOSPC);
          break;
        }
        const buf = this.allocBuffer();
        if (buf < 0) {
          if (this.starveMode === "stall") {
            this.counters.stalls++;
            if (this.eventsArmed & (1 << ZCRX_EVENT_ALLOC_FAIL)) {
              // io_pp_zc_alloc_netmems found nothing: an auxiliary CQE with the event's type.
              this.eventsArmed &= ~(1 << ZCRX_EVENT_ALLOC_FAIL);
              this.post(EVENT_CONN, ZCRX_EVENT_ALLOC_FAIL, 0, 0);
            }
          } else {
            this.counters.enomem++;
            this.terminate(s, -ENOMEM);
          }
          break;
        }
        const n = this.copyInto(s, buf * this.bufferBytes, Math.min(this.chunkBytes, s.left));
        s.left -= n;
        this.userRefs[buf]!++;
        this.counters.buffersHandedOut++;
        this.post(s.conn, n, IORING_CQE_F_MORE, buf * this.bufferBytes);
      }
      if (!s.armed) continue;
      if (s.left <= 0 || (s.queued === 0 && (s.eof || s.error)))
        this.terminate(s, s.left <= 0 || !s.error ? 0 : s.error);
    }
  }

  private terminate(s: Stream, res: number): void {
    s.armed = false;
    this.post(s.conn, res, 0, 0);
  }

  private cqFull(): boolean {
    return (this.cqTail - this.cqHead) >>> 0 >= this.cqEntries;
  }

  /** Write one 32-byte CQE (user_data, res, flags, io_uring_zcrx_cqe{off, __pad}); a terminal
   * CQE with no room waits in the overflow list, as with IORING_FEAT_NODROP. */
  private post(conn: number, res: number, flags: number, offset: number): void {
    if (this.cqFull()) {
      this.overflow.push(conn, res, flags, offset);
      return;
    }
    const w = (this.cqTail & (this.cqEntries - 1)) * 8;
    const cq = this.cq;
    cq[w] = conn >>> 0;
    cq[w + 1] = 0;
    cq[w + 2] = res | 0;
    cq[w + 3] = flags;
    cq[w + 4] = offset >>> 0;
    cq[w + 5] = ((offset / U32_SPAN) >>> 0) | this.areaTokenHigh;
    cq[w + 6] = 0;
    cq[w + 7] = 0;
    this.cqTail = (this.cqTail + 1) >>> 0;
    this.counters.cqes++;
  }

  /** Read every CQE, advance the head, then hand them to the receiver (drain, then dispatch,
   * as Ring.completions does). Returns the CQEs dispatched. */
  dispatch(): number {
    const receiver = this.receiver;
    if (!receiver) return 0;
    const batch = this.batch;
    let total = 0;
    let failure: { error: unknown } | null = null;
    for (;;) {
      const n = Math.min((this.cqTail - this.cqHead) >>> 0, this.maxDispatch - total);
      if (n <= 0) break;
      for (let k = 0; k < n; k++) {
        const w = ((this.cqHead + k) & (this.cqEntries - 1)) * 8;
        const b = k * 4;
        batch[b] = this.cq[w]!;
        batch[b + 1] = this.cq[w + 2]!;
        batch[b + 2] = this.cq[w + 3]!;
        batch[b + 3] = this.cq[w + 4]!;
        batch[4 * this.cqEntries + k] = this.cq[w + 5]!;
      }
      this.cqHead = (this.cqHead + n) >>> 0;
      // Overflowed CQEs move in once there is room (GETEVENTS flushes the overflow list).
      while (this.overflow.length > 0 && !this.cqFull()) {
        const [c, r, f, o] = this.overflow.splice(0, 4) as [number, number, number, number];
        this.post(c, r, f, o);
      }
      const e = this.deliverBatch(receiver, n);
      if (e !== null && failure === null) failure = e;
      total += n;
    }
    if (failure !== null) throw failure.error;
    return total;
  }

  /** Hand `n` copied CQEs to the receiver. A handler that throws does not cost the CQEs after
   * it: the loop resumes past it and the first exception is returned, to be thrown once the
   * whole batch is through (as Ring.completions does; the try stays outside the per-CQE loop). */
  private deliverBatch(receiver: ZcrxReceiver, n: number): { error: unknown } | null {
    const batch = this.batch;
    const high = 4 * this.cqEntries;
    let failure: { error: unknown } | null = null;
    let k = 0;
    while (k < n) {
      try {
        for (; k < n; k++) {
          const b = k * 4;
          if (batch[b] === EVENT_CONN) receiver.event(batch[b + 1]! | 0);
          else receiver.deliver(batch[b]!, batch[b + 1]! | 0, batch[b + 2]!, batch[b + 3]!, batch[high + k]!);
        }
      } catch (e) {
        failure ??= { error: e };
        k++;
      }
    }
    return failure;
  }

  /** For benchmarks: post `count` data CQEs of `length` bytes on `fd`'s armed request without
   * copying any bytes (the buffers keep whatever they held), so only the user-space side is
   * left to time with dispatch() and publish(). Returns the CQEs posted. */
  postData(fd: number, count: number, length = this.chunkBytes): number {
    const s = this.stream(fd, "postData");
    if (!s.armed) throw invalidArgument("SimulatedZcrx.postData", `fd ${fd} has no RECV_ZC armed`);
    if (!Number.isInteger(length) || length < 1 || length > this.bufferBytes)
      throw invalidArgument("SimulatedZcrx.postData", `length must be 1..${this.bufferBytes}`);
    let n = 0;
    while (n < count && !this.cqFull()) {
      const buf = this.allocBuffer();
      if (buf < 0) break;
      this.userRefs[buf]!++;
      this.counters.buffersHandedOut++;
      this.post(s.conn, length, IORING_CQE_F_MORE, buf * this.bufferBytes);
      n++;
    }
    return n;
  }

  private copyInto(s: Stream, at: number, max: number): number {
    let n = 0;
    while (n < max && s.queued > 0) {
      const head = s.queue[0]!;
      const take = Math.min(max - n, head.byteLength - s.queueOffset);
      this.area.set(head.subarray(s.queueOffset, s.queueOffset + take), at + n);
      n += take;
      s.queued -= take;
      s.queueOffset += take;
      if (s.queueOffset === head.byteLength) {
        s.queue.shift();
        s.queueOffset = 0;
      }
    }
    return n;
  }

  private allocBuffer(): number {
    if (this.freeCount === 0 && this.reclaimMode === "alloc") this.reclaim();
    if (this.freeCount === 0) return -1;
    return this.freeList[--this.freeCount]!;
  }

  /** Take every published refill entry (io_zcrx_ring_refill / zcrx_parse_rq): acquire-load the
   * tail, drop one user reference per entry, free buffers whose count reaches 0, then
   * release-store the head. Invalid entries are violations. */
  reclaim(): number {
    const words = this.refill.words;
    const tail = Atomics.load(words, SIM_RQ_TAIL >> 2);
    let n = (tail - this.rqHead) >>> 0;
    if (n > this.refill.entries) {
      this.violate(
        `refill tail ${tail} is ${n} entries past head ${this.rqHead}, more than the ring holds (${this.refill.entries})`,
      );
      n = this.refill.entries;
    }
    const mask = this.refill.entries - 1;
    const base = this.refill.rqes >> 2;
    for (let k = 0; k < n; k++) {
      const w = base + ((this.rqHead + k) & mask) * (ZCRX_RQE.size >> 2);
      const lo = words[w]!,
        hi = words[w + 1]!,
        pad = words[w + 3]!;
      const area = hi >>> (IORING_ZCRX_AREA_SHIFT - 32);
      const off = (hi & (2 ** (IORING_ZCRX_AREA_SHIFT - 32) - 1)) * U32_SPAN + lo;
      const buf = Math.floor(off / this.bufferBytes);
      if (pad !== 0) this.violate(`refill entry ${this.rqHead + k}: __pad is ${pad}, must be 0`);
      else if (area !== this.areaId)
        this.violate(
          `refill entry ${this.rqHead + k}: area id ${area}, expected ${this.areaId} (OR rq_area_token into off)`,
        );
      else if (buf >= this.nBuffers)
        this.violate(`refill entry ${this.rqHead + k}: offset ${off} is outside the ${this.area.byteLength}-byte area`);
      else if (this.userRefs[buf] === 0)
        this.violate(
          `refill entry ${this.rqHead + k}: buffer at offset ${buf * this.bufferBytes} was not handed out (never issued, or released twice)`,
        );
      else if (--this.userRefs[buf]! === 0) {
        if (this.poison) this.area.fill(POISON_BYTE, buf * this.bufferBytes, (buf + 1) * this.bufferBytes);
        this.freeList[this.freeCount++] = buf;
      }
    }
    this.rqHead = (this.rqHead + n) >>> 0;
    Atomics.store(words, SIM_RQ_HEAD >> 2, this.rqHead);
    this.counters.refillsConsumed += n;
    if (n > 0) this.counters.reclaims++;
    return n;
  }

  private violate(what: string): void {
    this.violations.push(what);
    if (this.strict) throw new UringError("SimulatedZcrx.refill", EINVAL, what);
  }
}
