// The operation table: user_data is an index into it, never an object. Each entry holds the
// completion handler, one caller value passed back to it, and a strong reference to whatever
// memory the kernel may touch until the operation's last CQE (ptr() keeps nothing alive). A
// 128-byte scratch block per entry holds small kernel-read structs (timespec, sockaddr, msghdr
// and iovecs) without an allocation per operation.
import { addressOf } from "../../ffi/index.ts";
import { UringError } from "../error.ts";
import { ERRNO } from "../abi/errno.ts";

/** Called once per CQE of an operation. `index` is the CQE's position in ring.batch, for
 * reading the second half of a 32-byte CQE. */
export type CompletionHandler<T = any> = (data: T, res: number, flags: number, index: number) => void;

/** Bytes of per-operation scratch memory. */
export const OP_SCRATCH_BYTES = 128;

/** user_data = generation * 2^24 + index: below 2^53, and a stale CQE (for a freed entry) is
 * told apart by its generation. */
export const OP_INDEX_BITS = 24;
const INDEX_SPAN = 1 << OP_INDEX_BITS;
export const OP_MAX_CAPACITY = INDEX_SPAN - 1;

/** The table index inside a user_data (its low 24 bits), without a double modulo. */
function indexOf(userData: number): number {
  return userData - Math.floor(userData / INDEX_SPAN) * INDEX_SPAN;
}

export class OpTable {
  readonly capacity: number;
  private readonly handlers: (CompletionHandler | undefined)[];
  private readonly data: unknown[];
  private readonly holds: unknown[];
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
      throw new UringError("OpTable", ERRNO.EINVAL!, `capacity must be 1..${OP_MAX_CAPACITY}, got ${capacity}`);
    }
    this.capacity = capacity;
    // Index 0 is never handed out: user_data 0 means "no operation" (raw SQEs, internal waits).
    this.handlers = new Array(capacity + 1).fill(undefined);
    this.data = new Array(capacity + 1).fill(undefined);
    this.holds = new Array(capacity + 1).fill(undefined);
    this.gens = new Uint32Array(capacity + 1);
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
    if (this.freeTop === 0) {
      throw new UringError("OpTable.add", ERRNO.EBUSY!, `all ${this.capacity} operation slots are in flight`,
        "complete or cancel operations first, or open the ring with a larger maxInflight");
    }
    const i = this.freeList[--this.freeTop]!;
    this.handlers[i] = handler as CompletionHandler;
    this.data[i] = data;
    this.holds[i] = hold;
    this.inflight++;
    return this.gens[i]! * INDEX_SPAN + i;
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
    this.holds[indexOf(userData)] = hold;
  }

  /** Whether `userData` names a live entry. */
  isLive(userData: number): boolean {
    const gen = Math.floor(userData / INDEX_SPAN);
    const i = userData - gen * INDEX_SPAN;
    return i > 0 && i <= this.capacity && this.handlers[i] !== undefined && this.gens[i] === gen;
  }

  /** Deliver one CQE. The entry is freed before the handler runs when the CQE ends the operation
   * (no IORING_CQE_F_MORE), so the handler may start a new one at once. Returns false for a
   * user_data that names no live operation. */
  complete(userData: number, res: number, flags: number, more: boolean, index: number): boolean {
    // Split with a division and a floor, not `%`: user_data passes 2^31 once generations grow,
    // and a double modulo is a call into the runtime for every CQE.
    const gen = Math.floor(userData / INDEX_SPAN);
    const i = userData - gen * INDEX_SPAN;
    const handler = this.handlers[i];
    if (i === 0 || handler === undefined || this.gens[i] !== gen) return false;
    const data = this.data[i];
    if (!more) this.free(i);
    handler(data, res, flags, index);
    return true;
  }

  /** Free an entry that will get no CQE (its SQE was never submitted). */
  cancelUnsubmitted(userData: number): void {
    const i = userData % INDEX_SPAN;
    if (this.isLive(userData)) this.free(i);
  }

  /** End every live entry after the ring is gone (no CQE can arrive any more): each handler is
   * called once more with `res` (-ECANCELED from Ring.close), flags 0 and index -1, so owners of
   * buffers see a final completion and release them. Returns how many were ended. */
  abandon(res: number): number {
    let n = 0;
    for (let i = 1; i <= this.capacity; i++) {
      const handler = this.handlers[i];
      if (handler === undefined) continue;
      const data = this.data[i];
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
    this.handlers[i] = undefined;
    this.data[i] = undefined;
    this.holds[i] = undefined;
    this.gens[i] = (this.gens[i]! + 1) & 0x1fffffff; // stays below 2^29 so user_data < 2^53
    this.freeList[this.freeTop++] = i;
    this.inflight--;
  }
}
