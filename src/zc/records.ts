// The sends a ZcSender holds: one record per send from send() until its release, in parallel
// typed arrays indexed by record number (no object per send), a free list, and the FIFO of
// records queued but not yet written to the SQ. Nothing here talks to the kernel. Both can grow
// (an owner whose backpressure is its own, like the async API's sockets, never gets EBUSY); the
// arrays are replaced then, so users read them through the object, never keep one.
//
// An operation (one SQE) carries one record or several (gathered): its records are linked through
// `next` in queue order, and the first one, the head, holds what belongs to the whole operation
// (user_data, total bytes, opcode, write time). The op-table data of the operation is the head.

import type { Sockaddr } from "../net/sockaddr.ts";

/** What a record's send goes out as. The zero-copy kinds come after KIND_COPY, and the two that
 * carry a header and a body after KIND_FIXED (`kind >= KIND_MSG`). */
export const KIND_COPY = 0,
  KIND_ZC = 1,
  KIND_FIXED = 2,
  KIND_MSG = 3,
  KIND_VEC = 4;

/** Where a record is in its life: free, queued, written to the SQ, waiting for its notification. */
export const SEND_FREE = 0,
  SEND_QUEUED = 1,
  SEND_SUBMITTED = 2,
  SEND_AWAIT_NOTIF = 3;

export class SendRecords {
  capacity: number;
  state: Uint8Array;
  kind: Uint8Array;
  /** Bytes of the send (header and body together for KIND_MSG / KIND_VEC). */
  length: Float64Array;
  /** What "sent" reported for this send: its bytes, or -errno. */
  result: Float64Array;
  /** Address of the bytes (of the header for the two-part kinds). */
  address: Float64Array;
  /** The body of a two-part send. */
  address2: Float64Array;
  length2: Float64Array;
  /** Registered buffer index (-1: none). */
  bufIndex: Int32Array;
  /** Next record of the same operation (-1: last). */
  next: Int32Array;
  // At the head of an operation: its user_data, total bytes, opcode (for errors) and the
  // adaptive policy's write stamp.
  userData: Float64Array;
  /** At the head: the op-table entry its notification comes to (sqe->addr3, 7.1), 0 when the
   * notification carries the operation's own user_data. */
  notifUserData: Float64Array;
  opBytes: Float64Array;
  opcode: Uint8Array;
  writtenAt: Float64Array;
  /** The caller's tag, and what keeps the memory alive until release (a view, or the pool). */
  tag: unknown[];
  hold: unknown[];
  hold2: unknown[];
  /** Destination of a datagram send (null: the socket's own, or connected). */
  dest: (Sockaddr | null)[];
  private freeList: Int32Array;
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
    this.notifUserData = new Float64Array(capacity);
    this.opBytes = new Float64Array(capacity);
    this.opcode = new Uint8Array(capacity);
    this.writtenAt = new Float64Array(capacity);
    this.tag = new Array(capacity).fill(undefined);
    this.hold = new Array(capacity).fill(undefined);
    this.hold2 = new Array(capacity).fill(undefined);
    this.dest = new Array(capacity).fill(null);
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
    this.dest[r] = null;
    this.state[r] = SEND_FREE;
    this.next[r] = -1;
    this.freeList[this.freeTop++] = r;
  }

  /** Double the records (every one in use when called): the new ones are free. */
  grow(): void {
    const old = this.capacity;
    const cap = old * 2;
    const f64 = (a: Float64Array): Float64Array => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    const u8 = (a: Uint8Array): Uint8Array => {
      const b = new Uint8Array(cap);
      b.set(a);
      return b;
    };
    const i32 = (a: Int32Array, fill: number): Int32Array => {
      const b = new Int32Array(cap).fill(fill);
      b.set(a);
      return b;
    };
    this.state = u8(this.state);
    this.kind = u8(this.kind);
    this.opcode = u8(this.opcode);
    this.length = f64(this.length);
    this.result = f64(this.result);
    this.address = f64(this.address);
    this.address2 = f64(this.address2);
    this.length2 = f64(this.length2);
    this.userData = f64(this.userData);
    this.notifUserData = f64(this.notifUserData);
    this.opBytes = f64(this.opBytes);
    this.writtenAt = f64(this.writtenAt);
    this.bufIndex = i32(this.bufIndex, 0);
    this.next = i32(this.next, -1);
    for (const a of [this.tag, this.hold, this.hold2]) a.length = cap;
    this.tag.fill(undefined, old);
    this.hold.fill(undefined, old);
    this.hold2.fill(undefined, old);
    this.dest.length = cap;
    this.dest.fill(null, old);
    const free = new Int32Array(cap);
    free.set(this.freeList.subarray(0, this.freeTop));
    for (let i = cap - 1; i >= old; i--) free[this.freeTop++] = i;
    this.freeList = free;
    this.capacity = cap;
  }

  /** A record in use whose tag is `tag` (an owner's cancel), or -1. */
  find(tag: unknown): number {
    const tags = this.tag,
      state = this.state;
    for (let r = 0; r < this.capacity; r++) if (state[r] !== SEND_FREE && tags[r] === tag) return r;
    return -1;
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
    if (
      h instanceof Uint8Array &&
      h.byteLength !== (this.kind[r]! >= KIND_MSG ? this.length[r]! - this.length2[r]! : this.length[r]!)
    )
      return false;
    const h2 = this.hold2[r];
    return !(h2 instanceof Uint8Array) || h2.byteLength === this.length2[r]!;
  }
}

/** Records queued and not yet written to the SQ, in send order (a ring of record numbers). */
export class SendQueue {
  private items: Int32Array;
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

  /** Make room for `capacity` records (the records grew), keeping the order. */
  grow(capacity: number): void {
    const items = new Int32Array(capacity);
    for (let i = 0; i < this.count; i++) items[i] = this.at(i);
    this.items = items;
    this.head = 0;
  }

  /** Take out the record `i` places behind the front; the others keep their order. */
  removeAt(i: number): number {
    const len = this.items.length;
    const r = this.at(i);
    for (let k = i; k > 0; k--) this.items[(this.head + k) % len] = this.items[(this.head + k - 1) % len]!;
    this.head = (this.head + 1) % len;
    this.count--;
    return r;
  }

  /** The record `i` places behind the front (0: the front), without removing it. */
  at(i: number): number {
    return this.items[(this.head + i) % this.items.length]!;
  }
}
