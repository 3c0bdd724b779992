// A pool of fixed (registered) send buffers: page-aligned SharedArrayBuffer memory cut into
// equal buffers, each registered with the ring as its own slot (IORING_REGISTER_BUFFERS2 through
// registerBuffers), so buffer i is buf_index i for SEND_ZC with IORING_RECVSEND_FIXED_BUF. The
// kernel pins the pages once at registration instead of per send (io_sqe_buffers_register), which
// is what makes zc-fixed cheaper than zc.
import { allocShared, PAGE_SIZE, type SharedRegion } from "../ring/memory.ts";
import { registerBuffers, unregisterBuffers, type BufferTable } from "../ring/register.ts";
import type { Ring } from "../ring/ring.ts";
import { UringError, closedError, invalidArgument, shown } from "../error.ts";
import { ENOMEM } from "../abi/errno.ts";

export interface FixedBufferPoolOptions {
  /** Bytes per buffer, rounded up to whole pages. Default 65536. */
  bufferSize?: number;
  /** Number of buffers (1..16384). Default 64. */
  count?: number;
}

/** The most buffers a ring can register (IORING_MAX_REG_BUFFERS). */
const MAX_BUFFERS = 1 << 14;

/** The most memory one pool may take (all of it registered, so pinned). */
const MAX_POOL_BYTES = 2 ** 32;

export class FixedBufferPool {
  readonly ring: Ring;
  /** Bytes per buffer (a multiple of the page size). */
  readonly bufferSize: number;
  readonly count: number;
  /** The memory: one SharedArrayBuffer, page aligned; Workers may share `region.buffer`. */
  readonly region: SharedRegion;
  /** Buffer i as a view (made once; `view(i)` returns the same object each time). */
  private readonly views: Uint8Array[];
  private readonly table: BufferTable;
  private readonly freeList: Int32Array;
  private readonly inUse: Uint8Array;
  private freeTop: number;
  private closed = false;

  private constructor(ring: Ring, bufferSize: number, count: number) {
    this.ring = ring;
    this.bufferSize = bufferSize;
    this.count = count;
    try {
      this.region = allocShared(bufferSize * count);
    } catch (e) {
      if (e instanceof UringError) throw e;
      throw new UringError(
        "FixedBufferPool.create",
        ENOMEM,
        `${bufferSize * count} bytes of shared memory could not be allocated`,
        "use fewer or smaller buffers",
        { cause: e },
      );
    }
    this.views = [];
    for (let i = 0; i < count; i++) this.views.push(this.region.bytes.subarray(i * bufferSize, (i + 1) * bufferSize));
    this.table = registerBuffers(ring, this.views);
    this.freeList = new Int32Array(count);
    for (let i = 0; i < count; i++) this.freeList[i] = count - 1 - i;
    this.freeTop = count;
    this.inUse = new Uint8Array(count);
  }

  /** Allocate the memory and register it with `ring` (which must have no registered buffers
   * yet). Registered pages are charged to RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK. */
  static create(ring: Ring, o: FixedBufferPoolOptions = {}): FixedBufferPool {
    const size = o.bufferSize ?? 65536;
    const count = o.count ?? 64;
    if (!Number.isInteger(size) || size < 1 || size > 1 << 30)
      throw invalidArgument("FixedBufferPool.create", `bufferSize must be 1..2^30 bytes, got ${shown(size)}`);
    if (!Number.isInteger(count) || count < 1 || count > MAX_BUFFERS)
      throw invalidArgument("FixedBufferPool.create", `count must be 1..${MAX_BUFFERS}, got ${shown(count)}`);
    const aligned = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    // One SharedArrayBuffer holds the pool, and all of it is pinned: a pool past MAX_POOL_BYTES
    // would fail inside the allocator with a bare RangeError, or pin most of the machine.
    if (aligned * count > MAX_POOL_BYTES) {
      throw invalidArgument(
        "FixedBufferPool.create",
        `bufferSize × count (${aligned} × ${count} = ${aligned * count} bytes after page rounding) must be at most ${MAX_POOL_BYTES} bytes (4 GiB)`,
      );
    }
    if (ring.isClosed) throw closedError("FixedBufferPool.create");
    return new FixedBufferPool(ring, aligned, count);
  }

  /** Buffers free right now. */
  get available(): number {
    return this.freeTop;
  }

  /** Take a free buffer: its index, or -1 when all are in use. */
  alloc(): number {
    if (this.freeTop === 0) return -1;
    const i = this.freeList[--this.freeTop]!;
    this.inUse[i] = 1;
    return i;
  }

  /** Return buffer `index` (after its send was released). */
  free(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.count || this.inUse[index] === 0) {
      throw invalidArgument("FixedBufferPool.free", `index ${index} is not an allocated buffer of this pool`);
    }
    this.inUse[index] = 0;
    this.freeList[this.freeTop++] = index;
  }

  /** Buffer `index` as a Uint8Array over the registered memory. */
  view(index: number): Uint8Array {
    const v = this.views[index];
    if (v === undefined)
      throw invalidArgument("FixedBufferPool.view", `index must be 0..${this.count - 1}, got ${shown(index)}`);
    return v;
  }

  /** Kernel address of byte 0 of buffer `index`. */
  address(index: number): number {
    // An address goes straight into an SQE: an index outside the pool would point the kernel at
    // memory the pool does not own.
    if (index >>> 0 !== index || index >= this.count)
      throw invalidArgument("FixedBufferPool.address", `index must be 0..${this.count - 1}, got ${shown(index)}`);
    return this.region.address + index * this.bufferSize;
  }

  /** The buffer index a view lies in, or -1 when `buf` is not inside one buffer of this pool. */
  indexOf(buf: Uint8Array): number {
    if (buf.buffer !== this.region.buffer) return -1;
    const start = buf.byteOffset - this.region.bytes.byteOffset;
    if (start < 0) return -1;
    const i = Math.floor(start / this.bufferSize);
    if (i >= this.count || start + buf.byteLength > (i + 1) * this.bufferSize) return -1;
    return i;
  }

  /** Unregister the buffers (the kernel unpins them once no send uses them). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.ring.isClosed && this.table.isRegistered) unregisterBuffers(this.ring);
  }
}
