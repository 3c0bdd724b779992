// The operation table: user_data is an index into it, never an object. Each entry holds the
// completion handler, one caller value passed back to it, and a strong reference to whatever
// memory the kernel may touch until the operation's last CQE (ptr() keeps nothing alive). A
// 128-byte scratch block per entry holds small kernel-read structs (timespec, sockaddr, msghdr
// and iovecs) without an allocation per operation.
import { addressOf } from "../../ffi/index.ts";
import { UringError, shown } from "../error.ts";
import { ERRNO } from "../abi/errno.ts";

/** Called once per CQE of an operation. `index` is the CQE's position in ring.batch, for
 * reading the second half of a 32-byte CQE. */
export type CompletionHandler<T = any> = (data: T, res: number, flags: number, index: number) => void;

/** Bytes of per-operation scratch memory. */
export const OP_SCRATCH_BYTES = 128;

/** user_data = generation * 2^32 + index: the SQE's low u32 word is the table index and its high
 * word the entry's generation, so neither side splits or joins a double on the hot path. A stale
 * CQE (for a freed and reused entry) is told apart by its generation. Generations run from 1 and
 * wrap below 2^21 back to 1, never 0: every tracked user_data is at least 2^32 and below 2^53 (an
 * exact JS number), so a raw SQE whose user_data fits in 32 bits can never be taken for a tracked
 * operation. */
export const OP_MAX_CAPACITY = (1 << 24) - 1;
const GEN_MASK = (1 << 21) - 1;
const U32_SPAN = 4294967296;

/** The table index inside a user_data (its low u32 word). */
function indexOf(userData: number): number {
  return userData % U32_SPAN;
}

export class OpTable {
  readonly capacity: number;
  /** Entry i's handler, data and hold at [3i], [3i+1], [3i+2] (one array: one load and one
   * bounds check per access instead of three). */
  private readonly entries: unknown[];
  private readonly gens: Uint32Array;
  private readonly freeList: Int32Array;
  private freeTop: number;
  /** Operations submitted and not yet finished (their last CQE not seen). */
  inflight = 0;
  /** Scratch memory: entry i owns bytes [i*128, i*128+128). */
  readonly scratch: Uint8Array;
  readonly scratchView: DataView;
  readonly scratchAddress: number;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > OP_MAX_CAPACITY) {
      throw new UringError("OpTable", ERRNO.EINVAL!, `capacity must be 1..${OP_MAX_CAPACITY}, got ${shown(capacity)}`);
    }
    this.capacity = capacity;
    // Index 0 is never handed out: user_data 0 means "no operation" (raw SQEs, internal waits).
    this.entries = new Array(3 * (capacity + 1)).fill(undefined);
    this.gens = new Uint32Array(capacity + 1).fill(1);
    this.freeList = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.freeList[i] = capacity - i;
    this.freeTop = capacity;
    this.scratch = new Uint8Array((capacity + 1) * OP_SCRATCH_BYTES);
    this.scratchView = new DataView(this.scratch.buffer);
    this.scratchAddress = addressOf(this.scratch);
  }

  /** Entries free right now. */
  get available(): number {
    return this.freeTop;
  }

  /** Reserve an entry; returns its user_data. `hold` is kept referenced until the op finishes. */
  add<T>(handler: CompletionHandler<T>, data: T, hold?: unknown): number {
    const i = this.reserve(handler, data, hold);
    return this.gens[i]! * U32_SPAN + i;
  }

  /** Reserve an entry and return its index (the user_data's low word; `genOf` gives the high
   * word); throws EBUSY when every entry is in flight. */
  reserve(handler: CompletionHandler, data: unknown, hold: unknown): number {
    const i = this.take(handler, data, hold);
    if (i === 0) this.refuseFull();
    return i;
  }

  /** reserve() that answers 0 (an index never handed out) instead of throwing when every entry is
   * in flight. Ring.track uses it: small enough for the JIT to inline, and the ring's refusal
   * retires the prepared slot. */
  take(handler: CompletionHandler, data: unknown, hold: unknown): number {
    if (this.freeTop === 0) return 0;
    const i = this.freeList[--this.freeTop]!;
    const e = this.entries;
    const k = i * 3;
    e[k] = handler;
    e[k + 1] = data;
    e[k + 2] = hold;
    this.inflight++;
    return i;
  }

  /** Every entry is in flight (cold). */
  private refuseFull(): never {
    throw this.fullError();
  }

  /** The error for a table with every entry in flight (EBUSY). */
  fullError(): UringError {
    return new UringError(
      "OpTable.add",
      ERRNO.EBUSY!,
      `all ${this.capacity} operation slots are in flight`,
      "complete or cancel operations first, or open the ring with a larger maxInflight",
    );
  }

  /** The generation of entry `index` (the high word of its user_data). */
  genOf(index: number): number {
    return this.gens[index]!;
  }

  /** Byte offset of an entry's scratch block in `scratch`. */
  scratchOffset(userData: number): number {
    return indexOf(userData) * OP_SCRATCH_BYTES;
  }

  /** Kernel address of an entry's scratch block. */
  scratchAddressOf(userData: number): number {
    return this.scratchAddress + this.scratchOffset(userData);
  }

  /** Replace the held reference (e.g. once a buffer is known). */
  setHold(userData: number, hold: unknown): void {
    this.entries[indexOf(userData) * 3 + 2] = hold;
  }

  /** Whether `userData` names a live entry. */
  isLive(userData: number): boolean {
    const i = indexOf(userData);
    const gen = (userData - i) / U32_SPAN;
    return i > 0 && i <= this.capacity && this.entries[i * 3] !== undefined && this.gens[i] === gen;
  }

  /** Deliver one CQE, given the two u32 words of its user_data. The entry is freed before the
   * handler runs when the CQE ends the operation (no IORING_CQE_F_MORE), so the handler may start
   * a new one at once. Returns false for a user_data that names no live operation. */
  complete(lo: number, hi: number, res: number, flags: number, more: boolean, index: number): boolean {
    if (lo > this.capacity) return false;
    const e = this.entries;
    const handler = e[lo * 3] as CompletionHandler | undefined;
    if (handler === undefined || lo === 0 || this.gens[lo] !== hi) return false;
    const data = e[lo * 3 + 1];
    if (!more) this.free(lo);
    handler(data, res, flags, index);
    return true;
  }

  /** Free an entry that will get no CQE (its SQE was never submitted). */
  cancelUnsubmitted(userData: number): void {
    if (this.isLive(userData)) this.free(indexOf(userData));
  }

  /** cancelUnsubmitted by table index (Ring.begin's slots keep the index). */
  freeUnsubmitted(index: number): void {
    if (index > 0 && index <= this.capacity && this.entries[index * 3] !== undefined) this.free(index);
  }

  /** The user_data of every live entry, in index order. */
  liveUserData(): number[] {
    const out: number[] = [];
    for (let i = 1; i <= this.capacity; i++)
      if (this.entries[i * 3] !== undefined) out.push(this.gens[i]! * U32_SPAN + i);
    return out;
  }

  /** End every live entry after the ring is gone (no CQE can arrive any more): each handler is
   * called once more with `res` (-ECANCELED from Ring.close), flags 0 and index -1, so owners of
   * buffers see a final completion and release them. Returns how many were ended. */
  abandon(res: number): number {
    let n = 0;
    for (let i = 1; i <= this.capacity; i++) {
      const handler = this.entries[i * 3] as CompletionHandler | undefined;
      if (handler === undefined) continue;
      const data = this.entries[i * 3 + 1];
      this.free(i);
      n++;
      try {
        handler(data, res, 0, -1);
      } catch {
        // A handler's own failure must not stop the others from releasing their buffers.
      }
    }
    return n;
  }

  private free(i: number): void {
    const e = this.entries;
    const k = i * 3;
    e[k] = undefined;
    e[k + 1] = undefined;
    e[k + 2] = undefined;
    // The next generation: 1..GEN_MASK, then 1 again (never 0).
    const gen = this.gens[i]!;
    this.gens[i] = gen === GEN_MASK ? 1 : gen + 1;
    this.freeList[this.freeTop++] = i;
    this.inflight--;
  }
}
