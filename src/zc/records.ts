// The sends a ZcSender holds: one record per send from send() until its release, in parallel
// typed arrays indexed by record number (no object per send), a free list, and the FIFO of
// records queued but not yet written to the SQ. Nothing here talks to the kernel.
//
// An operation (one SQE) carries one record or several (gathered): its records are linked through
// `next` in queue order, and the first one, the head, holds what belongs to the whole operation
// (user_data, total bytes, opcode, write time). The op-table data of the operation is the head.

/** What a record's send goes out as. The zero-copy kinds come after KIND_COPY, and the two that
 * carry a header and a body after KIND_FIXED (`kind >= KIND_MSG`). */
export const KIND_COPY = 0, KIND_ZC = 1, KIND_FIXED = 2, KIND_MSG = 3, KIND_VEC = 4;

/** Where a record is in its life: free, queued, written to the SQ, waiting for its notification. */
export const SEND_FREE = 0, SEND_QUEUED = 1, SEND_SUBMITTED = 2, SEND_AWAIT_NOTIF = 3;

export class SendRecords {
  readonly capacity: number;
  readonly state: Uint8Array;
  readonly kind: Uint8Array;
  /** Bytes of the send (header and body together for KIND_MSG / KIND_VEC). */
  readonly length: Float64Array;
  /** What "sent" reported for this send: its bytes, or -errno. */
  readonly result: Float64Array;
  /** Address of the bytes (of the header for the two-part kinds). */
  readonly address: Float64Array;
  /** The body of a two-part send. */
  readonly address2: Float64Array;
  readonly length2: Float64Array;
  /** Registered buffer index (-1: none). */
  readonly bufIndex: Int32Array;
  /** Next record of the same operation (-1: last). */
  readonly next: Int32Array;
  // At the head of an operation: its user_data, total bytes, opcode (for errors) and the
  // adaptive policy's write stamp.
  readonly userData: Float64Array;
  readonly opBytes: Float64Array;
  readonly opcode: Uint8Array;
  readonly writtenAt: Float64Array;
  /** The caller's tag, and what keeps the memory alive until release (a view, or the pool). */
  readonly tag: unknown[];
  readonly hold: unknown[];
  readonly hold2: unknown[];
  private readonly freeList: Int32Array;
  private freeTop: number;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.state = new Uint8Array(capacity);
    this.kind = new Uint8Array(capacity);
    this.length = new Float64Array(capacity);
    this.result = new Float64Array(capacity);
    this.address = new Float64Array(capacity);
    this.address2 = new Float64Array(capacity);
    this.length2 = new Float64Array(capacity);
    this.bufIndex = new Int32Array(capacity);
    this.next = new Int32Array(capacity).fill(-1);
    this.userData = new Float64Array(capacity);
    this.opBytes = new Float64Array(capacity);
    this.opcode = new Uint8Array(capacity);
    this.writtenAt = new Float64Array(capacity);
    this.tag = new Array(capacity).fill(undefined);
    this.hold = new Array(capacity).fill(undefined);
    this.hold2 = new Array(capacity).fill(undefined);
    this.freeList = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.freeList[i] = capacity - 1 - i;
    this.freeTop = capacity;
  }

  /** Records free for new sends. */
  get available(): number {
    return this.freeTop;
  }

  /** A free record, now queued; the caller checked `available`. */
  take(): number {
    const r = this.freeList[--this.freeTop]!;
    this.state[r] = SEND_QUEUED;
    return r;
  }

  /** Give record `r` back: what it held is dropped, and it is free again. */
  free(r: number): void {
    this.tag[r] = undefined;
    this.hold[r] = undefined;
    this.hold2[r] = undefined;
    this.state[r] = SEND_FREE;
    this.next[r] = -1;
    this.freeList[this.freeTop++] = r;
  }

  /** Sends in the operation whose head is `head`. */
  sendsIn(head: number): number {
    let n = 0;
    for (let r = head; r >= 0; r = this.next[r]!) n++;
    return n;
  }

  /** Whether a queued send's memory is still what send() saw: a view's buffer can be transferred
   * (detached: length 0) or a resizable one shrunk after send(), and its old address would then
   * point the kernel at memory the process uses for something else. */
  intact(r: number): boolean {
    const h = this.hold[r];
    if (h instanceof Uint8Array && h.byteLength !== (this.kind[r]! >= KIND_MSG ? this.length[r]! - this.length2[r]! : this.length[r]!)) return false;
    const h2 = this.hold2[r];
    return !(h2 instanceof Uint8Array) || h2.byteLength === this.length2[r]!;
  }
}

/** Records queued and not yet written to the SQ, in send order (a ring of record numbers). */
export class SendQueue {
  private readonly items: Int32Array;
  private head = 0;
  count = 0;

  constructor(capacity: number) {
    this.items = new Int32Array(capacity);
  }

  push(r: number): void {
    this.items[(this.head + this.count) % this.items.length] = r;
    this.count++;
  }

  shift(): number {
    const r = this.items[this.head]!;
    this.head = (this.head + 1) % this.items.length;
    this.count--;
    return r;
  }

  /** The record `i` places behind the front (0: the front), without removing it. */
  at(i: number): number {
    return this.items[(this.head + i) % this.items.length]!;
  }
}
