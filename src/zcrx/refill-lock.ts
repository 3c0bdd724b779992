// The lock of a refill ring shared by several producers. A refill ring is single-producer in
// the kernel's eyes (io_zcrx_ring_refill reads entries up to the tail, then stores its head);
// when one ifq is imported into several rings (ZCRX_REG_IMPORT, 6.19), each in its own Worker,
// userspace must serialise the producers. The design:
//   - A release writes nothing shared: it goes to the receiver's own pending list.
//   - A publish takes this lock, reloads the ring's tail (only producers write it, under the
//     lock) and the kernel's head, copies its pending entries in, stores the tail with release
//     semantics, and drops the lock. The critical section is a copy of at most the ring's size
//     of 16-byte entries, once per event-loop turn per Worker.
//   - The FLUSH_RQ of a device-less queue happens after the lock is dropped, through each
//     ring's own zcrx_id (any importer's flush takes every published entry).
// The lock word lives in its own SharedArrayBuffer, posted to every Worker with the area and
// the refill ring (which must then be user memory: refillMemory "user").
import { ETIME } from "../abi/errno.ts";
import { UringError, invalidArgument } from "../error.ts";

/** Spins before the first Atomics.wait: the holder is copying a few KiB at most. */
const SPIN_TRIES = 64;
/** Bound of one wait, in ms: a holder that died (a terminated Worker) cannot wedge the others
 * forever without anyone noticing; see acquire(). */
const WAIT_MS = 1;
/** Waits after which acquire() gives up and throws (about 5 s). */
const WAIT_MAX = 5000;

export class RefillLock {
  /** Word 0: 0 free, 1 held. */
  readonly word: Int32Array;

  /** A new lock, or one over the SharedArrayBuffer another thread created (lock.buffer). */
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < 4)
      throw invalidArgument(
        "RefillLock",
        "needs a SharedArrayBuffer of at least 4 bytes (lock.buffer of the first lock)",
      );
    this.word = new Int32Array(buffer, 0, 1);
  }

  /** What to post to another Worker: `new RefillLock(lock.buffer)` there. */
  get buffer(): SharedArrayBuffer {
    return this.word.buffer as SharedArrayBuffer;
  }

  acquire(): void {
    const w = this.word;
    for (let i = 0; i < SPIN_TRIES; i++) if (Atomics.compareExchange(w, 0, 0, 1) === 0) return;
    for (let i = 0; i < WAIT_MAX; i++) {
      if (Atomics.compareExchange(w, 0, 0, 1) === 0) return;
      Atomics.wait(w, 0, 1, WAIT_MS);
    }
    throw new UringError(
      "RefillLock.acquire",
      ETIME,
      "the refill ring's lock was held for 5 s",
      "a producer stopped while holding it (a Worker terminated in a publish?): its ring's refills are lost; close the rings",
    );
  }

  release(): void {
    Atomics.store(this.word, 0, 0);
    Atomics.notify(this.word, 0, 1);
  }
}
