// Registration on a ring: registered (fixed) buffers and files, provided-buffer rings, an eventfd
// and NAPI busy polling. Names follow liburing's helpers (io_uring_register_buffers_sparse,
// io_uring_setup_buf_ring, io_uring_buf_ring_add...). Every call goes through ring.register, so a
// refusal names the register opcode and its usual cause. Arguments are checked here, before any
// pointer reaches the kernel, and the memory the kernel may touch stays referenced from a
// per-ring registry for as long as it is registered (ptr() keeps nothing alive).
import { addressOf } from "../../ffi/index.ts";
import * as R from "../abi/register.ts";
import { closedError, invalidArgument, unsupported, UringError, shown } from "../error.ts";
import { EBUSY } from "../abi/errno.ts";
import { kernelAtLeast } from "./kernel.ts";
import type { Region } from "./memory.ts";
import { allocKernelMemory, freeKernelMemory } from "./worker-memory.ts";
import type { Ring } from "./ring.ts";

/** Memory that can be registered: any typed array or DataView (never a bare ArrayBuffer). */
export type BufferView = NodeJS.TypedArray | DataView;

const U32_SPAN = 4294967296;

/** What one ring has registered, with the strong references that keep registered memory alive. */
interface Registry {
  buffers: BufferTable | null;
  /** Slots in the registered file table, or -1 when none is registered. */
  files: number;
  pbufRings: Map<number, ProvidedBufferRing>;
  eventfd: number;
}

const registries = new WeakMap<Ring, Registry>();

function registryOf(ring: Ring): Registry {
  let r = registries.get(ring);
  if (!r) {
    r = { buffers: null, files: -1, pbufRings: new Map(), eventfd: -1 };
    registries.set(ring, r);
  }
  return r;
}

function requireKernel(ring: Ring, where: string, what: string, since: string): void {
  if (!kernelAtLeast(since, ring.capabilities.kernel)) throw unsupported(where, what, since, ring.capabilities.kernel);
}

function requireOpen(ring: Ring, where: string): void {
  if (ring.isClosed) throw closedError(where);
}

function isView(v: unknown): v is BufferView {
  return ArrayBuffer.isView(v);
}

function putU64(dv: DataView, at: number, value: number): void {
  dv.setUint32(at, value >>> 0, true);
  dv.setUint32(at + 4, Math.floor(value / U32_SPAN) >>> 0, true);
}

// ---------------------------------------------------------------------------------------------
// Registered buffers (IORING_REGISTER_BUFFERS2, 5.13; sparse tables 5.19)

/** The registered buffer table of a ring. Slot i is what READ_FIXED / WRITE_FIXED / SEND_ZC with
 * FIXED_BUF name as buf_index i. The table holds every registered view until the slot is
 * replaced or the table unregistered, so the memory the kernel pinned cannot be collected. */
export class BufferTable {
  /** Number of slots. */
  readonly nr: number;
  private readonly views: (BufferView | null)[];
  private readonly addresses: Float64Array;
  /** Each slot's byteLength at registration: a view whose length changed since (its buffer was
   * transferred, or a resizable one shrunk) no longer covers the pages the kernel pinned. */
  private readonly lengths: Float64Array;
  private registered = true;

  /** @internal — made by registerBuffers / registerBuffersSparse. */
  constructor(
    private readonly ring: Ring,
    nr: number,
  ) {
    this.nr = nr;
    this.views = new Array(nr).fill(null);
    this.addresses = new Float64Array(nr);
    this.lengths = new Float64Array(nr);
  }

  /** Whether the table is still registered. */
  get isRegistered(): boolean {
    return this.registered && !this.ring.isClosed;
  }

  /** The view registered in slot `index`, or null for an empty slot. */
  view(index: number): BufferView | null {
    this.checkIndex(index, "BufferTable.view");
    return this.views[index]!;
  }

  /** Address of the first byte of slot `index` (what a fixed-buffer prep function takes as
   * `buf`); throws for an empty slot. */
  address(index: number): number {
    this.checkIndex(index, "BufferTable.address");
    const v = this.views[index];
    if (v === null || v === undefined)
      throw invalidArgument("BufferTable.address", `registered buffer slot ${index} is empty`);
    if (v.byteLength !== this.lengths[index]) {
      throw invalidArgument(
        "BufferTable.address",
        `the memory of registered buffer slot ${index} was detached (transferred) or resized since registration (${this.lengths[index]} bytes then, ${v.byteLength} now): the kernel still pins the old pages, which the process may reuse; replace the slot with updateBuffers`,
      );
    }
    return this.addresses[index]!;
  }

  /** Byte length of slot `index` (0 for an empty slot). */
  byteLength(index: number): number {
    this.checkIndex(index, "BufferTable.byteLength");
    return this.views[index]?.byteLength ?? 0;
  }

  private checkIndex(index: number, where: string): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.nr)
      throw invalidArgument(where, `index must be 0..${this.nr - 1}, got ${shown(index)}`);
  }

  /** @internal */
  store(offset: number, views: ReadonlyArray<BufferView | null>): void {
    for (let i = 0; i < views.length; i++) {
      const v = views[i]!;
      this.views[offset + i] = v;
      this.addresses[offset + i] = v === null ? 0 : addressOf(v);
      this.lengths[offset + i] = v === null ? 0 : v.byteLength;
    }
  }

  /** @internal */
  release(): void {
    this.registered = false;
    this.views.fill(null);
    this.addresses.fill(0);
    this.lengths.fill(0);
  }
}

/** Check a list of buffers and encode it as a struct iovec array (null = an empty slot). */
function iovecsOf(where: string, views: ReadonlyArray<BufferView | null>, allowNull: boolean): Uint8Array {
  const iov = new Uint8Array(Math.max(1, views.length) * R.IOVEC.size);
  const dv = new DataView(iov.buffer);
  for (let i = 0; i < views.length; i++) {
    const v = views[i];
    if (v === null && allowNull) continue;
    if (!isView(v))
      throw invalidArgument(
        where,
        `buffer ${i} must be a typed array or DataView${allowNull ? " (or null to empty the slot)" : ""}`,
      );
    if (v.byteLength === 0 || v.byteLength > R.IORING_MAX_REG_BUFFER_BYTES) {
      throw invalidArgument(where, `buffer ${i} must be 1 byte to 1 GiB long, got ${v.byteLength} bytes`);
    }
    putU64(dv, i * R.IOVEC.size + R.IOVEC.iov_base, addressOf(v));
    putU64(dv, i * R.IOVEC.size + R.IOVEC.iov_len, v.byteLength);
  }
  return iov;
}

function rsrcRegister(nr: number, flags: number, data: number): Uint8Array {
  const reg = new Uint8Array(R.RSRC_REGISTER.size);
  const dv = new DataView(reg.buffer);
  dv.setUint32(R.RSRC_REGISTER.nr, nr, true);
  dv.setUint32(R.RSRC_REGISTER.flags, flags, true);
  putU64(dv, R.RSRC_REGISTER.data, data);
  return reg;
}

function rsrcUpdate2(offset: number, data: number, nr: number): Uint8Array {
  const upd = new Uint8Array(R.RSRC_UPDATE2.size);
  const dv = new DataView(upd.buffer);
  dv.setUint32(R.RSRC_UPDATE2.offset, offset, true);
  putU64(dv, R.RSRC_UPDATE2.data, data);
  dv.setUint32(R.RSRC_UPDATE2.nr, nr, true);
  return upd;
}

/** io_uring_register_buffers: register `views` as fixed buffers 0..n-1 (through
 * IORING_REGISTER_BUFFERS2). The pages are pinned and charged to RLIMIT_MEMLOCK unless the
 * process has CAP_IPC_LOCK; ENOMEM means that limit. The returned table keeps every view
 * referenced until unregisterBuffers (or until its slot is replaced by updateBuffers). */
export function registerBuffers(ring: Ring, views: ReadonlyArray<BufferView>): BufferTable {
  const where = "registerBuffers";
  requireOpen(ring, where);
  requireKernel(ring, where, "IORING_REGISTER_BUFFERS2", "5.13");
  if (!Array.isArray(views) || views.length < 1 || views.length > R.IORING_MAX_REG_BUFFERS) {
    throw invalidArgument(where, `views must be an array of 1..${R.IORING_MAX_REG_BUFFERS} buffers`);
  }
  const reg = registryOf(ring);
  if (reg.buffers)
    throw new UringError(
      where,
      EBUSY,
      "this ring already has registered buffers",
      "call unregisterBuffers first, or updateBuffers to replace slots",
    );
  const iov = iovecsOf(where, views, false);
  ring.register(R.IORING_REGISTER_BUFFERS2, rsrcRegister(views.length, 0, addressOf(iov)), R.RSRC_REGISTER.size);
  const table = new BufferTable(ring, views.length);
  table.store(0, views);
  reg.buffers = table;
  return table;
}

/** io_uring_register_buffers_sparse (5.19): a table of `nr` empty slots, filled later with
 * updateBuffers. */
export function registerBuffersSparse(ring: Ring, nr: number): BufferTable {
  const where = "registerBuffersSparse";
  requireOpen(ring, where);
  requireKernel(ring, where, "sparse buffer tables (IORING_RSRC_REGISTER_SPARSE)", "5.19");
  if (!Number.isInteger(nr) || nr < 1 || nr > R.IORING_MAX_REG_BUFFERS)
    throw invalidArgument(where, `nr must be 1..${R.IORING_MAX_REG_BUFFERS}, got ${shown(nr)}`);
  const reg = registryOf(ring);
  if (reg.buffers)
    throw new UringError(where, EBUSY, "this ring already has registered buffers", "call unregisterBuffers first");
  ring.register(R.IORING_REGISTER_BUFFERS2, rsrcRegister(nr, R.IORING_RSRC_REGISTER_SPARSE, 0), R.RSRC_REGISTER.size);
  const table = new BufferTable(ring, nr);
  reg.buffers = table;
  return table;
}

/** io_uring_register_buffers_update_tag without tags (IORING_REGISTER_BUFFERS_UPDATE, 5.13):
 * replace slots offset..offset+n-1; null empties a slot. The kernel keeps an old buffer pinned
 * until requests using it finish; the table drops its reference at once, so keep your own
 * reference to a replaced buffer until those requests have completed. Returns the slots
 * updated. */
export function updateBuffers(ring: Ring, offset: number, views: ReadonlyArray<BufferView | null>): number {
  const where = "updateBuffers";
  requireOpen(ring, where);
  const table = registryOf(ring).buffers;
  if (!table)
    throw invalidArgument(where, "no registered buffer table: call registerBuffers or registerBuffersSparse first");
  if (!Array.isArray(views) || views.length < 1) throw invalidArgument(where, "views must be a non-empty array");
  if (!Number.isInteger(offset) || offset < 0 || offset + views.length > table.nr) {
    throw invalidArgument(where, `slots ${offset}..${offset + views.length - 1} do not fit a table of ${table.nr}`);
  }
  const iov = iovecsOf(where, views, true);
  const n = ring.register(
    R.IORING_REGISTER_BUFFERS_UPDATE,
    rsrcUpdate2(offset, addressOf(iov), views.length),
    R.RSRC_UPDATE2.size,
  );
  table.store(offset, views.slice(0, n));
  return n;
}

/** io_uring_unregister_buffers: the kernel unpins the buffers once no request uses them. */
export function unregisterBuffers(ring: Ring): void {
  const reg = registryOf(ring);
  ring.register(R.IORING_UNREGISTER_BUFFERS, null, 0);
  reg.buffers?.release();
  reg.buffers = null;
}

/** The registered buffer table of `ring`, or null. */
export function registeredBuffers(ring: Ring): BufferTable | null {
  return registries.get(ring)?.buffers ?? null;
}

// ---------------------------------------------------------------------------------------------
// Registered files (IORING_REGISTER_FILES2 / FILES_UPDATE2, 5.13)

function fdsOf(where: string, fds: ReadonlyArray<number>, allowSpecial: boolean): Int32Array {
  const arr = new Int32Array(Math.max(1, fds.length));
  for (let i = 0; i < fds.length; i++) {
    const fd = fds[i]!;
    const min = allowSpecial ? R.IORING_REGISTER_FILES_SKIP : -1;
    if (!Number.isInteger(fd) || fd < min || fd > 0x7fffffff) {
      throw invalidArgument(
        where,
        `fds[${i}] must be a file descriptor${allowSpecial ? ", -1 (empty the slot) or -2 (IORING_REGISTER_FILES_SKIP)" : " or -1 (empty slot)"}, got ${shown(fd)}`,
      );
    }
    arr[i] = fd;
  }
  return arr;
}

/** io_uring_register_files: fds become fixed files 0..n-1 (-1 leaves a slot empty). Use them with
 * IOSQE_FIXED_FILE and the slot index as fd. The kernel holds its own file references. */
export function registerFiles(ring: Ring, fds: ReadonlyArray<number>): number {
  const where = "registerFiles";
  requireOpen(ring, where);
  requireKernel(ring, where, "IORING_REGISTER_FILES2", "5.13");
  if (!Array.isArray(fds) || fds.length < 1 || fds.length > R.IORING_MAX_FIXED_FILES) {
    throw invalidArgument(where, `fds must be an array of 1..${R.IORING_MAX_FIXED_FILES} descriptors`);
  }
  const reg = registryOf(ring);
  if (reg.files >= 0)
    throw new UringError(
      where,
      EBUSY,
      "this ring already has registered files",
      "call unregisterFiles first, or updateFiles",
    );
  const arr = fdsOf(where, fds, false);
  ring.register(R.IORING_REGISTER_FILES2, rsrcRegister(fds.length, 0, addressOf(arr)), R.RSRC_REGISTER.size);
  reg.files = fds.length;
  return fds.length;
}

/** io_uring_register_files_sparse (5.19): `nr` empty file slots. */
export function registerFilesSparse(ring: Ring, nr: number): number {
  const where = "registerFilesSparse";
  requireOpen(ring, where);
  requireKernel(ring, where, "sparse file tables (IORING_RSRC_REGISTER_SPARSE)", "5.19");
  if (!Number.isInteger(nr) || nr < 1 || nr > R.IORING_MAX_FIXED_FILES)
    throw invalidArgument(where, `nr must be 1..${R.IORING_MAX_FIXED_FILES}, got ${shown(nr)}`);
  const reg = registryOf(ring);
  if (reg.files >= 0)
    throw new UringError(where, EBUSY, "this ring already has registered files", "call unregisterFiles first");
  ring.register(R.IORING_REGISTER_FILES2, rsrcRegister(nr, R.IORING_RSRC_REGISTER_SPARSE, 0), R.RSRC_REGISTER.size);
  reg.files = nr;
  return nr;
}

/** io_uring_register_files_update (FILES_UPDATE2): set slots offset..offset+n-1; -1 empties a
 * slot, -2 (IORING_REGISTER_FILES_SKIP) leaves it as it is. Returns the slots updated. */
export function updateFiles(ring: Ring, offset: number, fds: ReadonlyArray<number>): number {
  const where = "updateFiles";
  requireOpen(ring, where);
  const reg = registryOf(ring);
  if (reg.files < 0)
    throw invalidArgument(where, "no registered file table: call registerFiles or registerFilesSparse first");
  if (!Array.isArray(fds) || fds.length < 1) throw invalidArgument(where, "fds must be a non-empty array");
  if (!Number.isInteger(offset) || offset < 0 || offset + fds.length > reg.files) {
    throw invalidArgument(where, `slots ${offset}..${offset + fds.length - 1} do not fit a table of ${reg.files}`);
  }
  const arr = fdsOf(where, fds, true);
  return ring.register(
    R.IORING_REGISTER_FILES_UPDATE2,
    rsrcUpdate2(offset, addressOf(arr), fds.length),
    R.RSRC_UPDATE2.size,
  );
}

/** io_uring_unregister_files. */
export function unregisterFiles(ring: Ring): void {
  const reg = registryOf(ring);
  ring.register(R.IORING_UNREGISTER_FILES, null, 0);
  reg.files = -1;
}

// ---------------------------------------------------------------------------------------------
// Provided-buffer rings (IORING_REGISTER_PBUF_RING, 5.19)

export interface ProvidedBufferRingOptions {
  /** Buffer group id (sqe.buf_group of the receives that select from it), 0..65535. */
  bgid: number;
  /** Ring entries and buffers: a power of two, 1..32768. */
  entries: number;
  /** Bytes per buffer, 1 byte to 1 GiB (the total must fit in memory). */
  bufferSize: number;
}

/** A Worker's provided-buffer ring that is collected without close() gives its mappings back.
 * The ring's registry holds it while its Ring object lives, so it is collected only once that
 * Ring was collected too, and a Ring with operations in flight is pinned and never collected:
 * no receive is left to write into the memory. */
const droppedBufferRings = new FinalizationRegistry<Region[]>((regions) => {
  for (const r of regions) freeKernelMemory(r);
});

/** Bytes of a provided-buffer ring of `entries` (struct io_uring_buf each). */
export function bufRingBytes(entries: number): number {
  return entries * R.BUF.size;
}

/** A provided-buffer ring with its buffers, both in page-aligned memory the library owns
 * (io_uring_setup_buf_ring): SharedArrayBuffers in the main thread, anonymous mappings in a
 * Worker (src/ring/worker-memory.ts: never in a heap that terminate() frees while a receive may
 * still write). The kernel takes a buffer per receive and names it in the CQE
 * (IORING_CQE_F_BUFFER, id in flags >> 16); hand it back with recycle(bid) and publish the
 * batch with one tail store (publish). The memory stays referenced until close(); in a Worker,
 * close() then detaches it (views of it read as empty) and keeps the mapping for reuse. */
export class ProvidedBufferRing {
  readonly bgid: number;
  readonly entries: number;
  readonly bufferSize: number;
  /** The ring entries (struct io_uring_buf[entries]). */
  readonly ringMemory: Region;
  /** The buffers: buffer `bid` is bytes [bid*bufferSize, (bid+1)*bufferSize). */
  readonly bufferMemory: Region;
  private readonly ringU32: Uint32Array;
  private readonly ringU16: Uint16Array;
  private readonly mask: number;
  /** 1 while a buffer sits in the ring (added, not yet handed out through view()). */
  private readonly queued: Uint8Array;
  /** Local tail: entries written; `published` is the tail the kernel has seen. */
  private tail = 0;
  private published = 0;
  private closed = false;

  private constructor(
    private readonly ring: Ring,
    o: ProvidedBufferRingOptions,
    ringMemory: Region,
    bufferMemory: Region,
  ) {
    this.bgid = o.bgid;
    this.entries = o.entries;
    this.bufferSize = o.bufferSize;
    this.mask = o.entries - 1;
    this.ringMemory = ringMemory;
    this.bufferMemory = bufferMemory;
    this.ringU32 = new Uint32Array(ringMemory.buffer, ringMemory.bytes.byteOffset, ringMemory.byteLength >> 2);
    this.ringU16 = new Uint16Array(ringMemory.buffer, ringMemory.bytes.byteOffset, ringMemory.byteLength >> 1);
    this.queued = new Uint8Array(o.entries);
  }

  /** Allocate the ring and its buffers, register them as group `bgid`, and give every buffer to
   * the kernel. */
  static create(ring: Ring, o: ProvidedBufferRingOptions): ProvidedBufferRing {
    const where = "ProvidedBufferRing.create";
    requireOpen(ring, where);
    requireKernel(ring, where, "provided-buffer rings (IORING_REGISTER_PBUF_RING)", "5.19");
    if (o === null || typeof o !== "object")
      throw invalidArgument(where, "options {bgid, entries, bufferSize} are required");
    const { bgid, entries, bufferSize } = o;
    if (!Number.isInteger(bgid) || bgid < 0 || bgid > 0xffff)
      throw invalidArgument(where, `bgid must be 0..65535, got ${shown(bgid)}`);
    if (
      !Number.isInteger(entries) ||
      entries < 1 ||
      entries > R.PBUF_RING_MAX_ENTRIES ||
      (entries & (entries - 1)) !== 0
    ) {
      throw invalidArgument(
        where,
        `entries must be a power of two from 1 to ${R.PBUF_RING_MAX_ENTRIES}, got ${shown(entries)}`,
      );
    }
    if (!Number.isInteger(bufferSize) || bufferSize < 1 || bufferSize > R.IORING_MAX_REG_BUFFER_BYTES) {
      throw invalidArgument(where, `bufferSize must be 1 byte to 1 GiB, got ${shown(bufferSize)}`);
    }
    if (!Number.isSafeInteger(entries * bufferSize)) throw invalidArgument(where, `entries * bufferSize is too large`);
    const reg = registryOf(ring);
    if (reg.pbufRings.has(bgid))
      throw new UringError(
        where,
        EBUSY,
        `buffer group ${bgid} already has a ring on this ring`,
        "close it first or pick another bgid",
      );
    const ringMemory = allocKernelMemory(bufRingBytes(entries), where);
    let bufferMemory: Region;
    try {
      bufferMemory = allocKernelMemory(entries * bufferSize, where);
    } catch (e) {
      freeKernelMemory(ringMemory);
      throw e;
    }
    const breg = new Uint8Array(R.BUF_REG.size);
    const dv = new DataView(breg.buffer);
    putU64(dv, R.BUF_REG.ring_addr, ringMemory.address);
    dv.setUint32(R.BUF_REG.ring_entries, entries, true);
    dv.setUint16(R.BUF_REG.bgid, bgid, true);
    try {
      ring.register(R.IORING_REGISTER_PBUF_RING, breg, 1);
    } catch (e) {
      // Refused: the kernel never had the memory.
      freeKernelMemory(ringMemory);
      freeKernelMemory(bufferMemory);
      throw e;
    }
    const pbr = new ProvidedBufferRing(ring, o, ringMemory, bufferMemory);
    reg.pbufRings.set(bgid, pbr);
    if (ringMemory.kind === "mmap") droppedBufferRings.register(pbr, [ringMemory, bufferMemory], pbr);
    for (let bid = 0; bid < entries; bid++) pbr.add(bid);
    pbr.publish();
    return pbr;
  }

  /** Address of buffer `bid`. */
  bufferAddress(bid: number): number {
    return this.bufferMemory.address + bid * this.bufferSize;
  }

  /** io_uring_buf_ring_add: queue buffer `bid` at the cached tail (plain stores; the kernel sees
   * it after publish). The resv field of entry 0 is the ring's tail, so it is never written. */
  add(bid: number): void {
    if (this.closed) throw closedError("ProvidedBufferRing.add", "provided-buffer ring");
    if (!Number.isInteger(bid) || bid < 0 || bid >= this.entries)
      throw invalidArgument("ProvidedBufferRing.add", `bid must be 0..${this.entries - 1}, got ${shown(bid)}`);
    if (this.queued[bid] === 1) throw invalidArgument("ProvidedBufferRing.add", `buffer ${bid} is already in the ring`);
    this.queued[bid] = 1;
    const w = ((this.tail & this.mask) * R.BUF.size) >> 2;
    const addr = this.bufferMemory.address + bid * this.bufferSize;
    this.ringU32[w + (R.BUF.addr >> 2)] = addr >>> 0;
    this.ringU32[w + (R.BUF.addr >> 2) + 1] = Math.floor(addr / U32_SPAN);
    this.ringU32[w + (R.BUF.len >> 2)] = this.bufferSize;
    this.ringU16[(w << 1) + (R.BUF.bid >> 1)] = bid;
    this.tail = (this.tail + 1) & 0xffff;
  }

  /** Give a buffer the kernel filled back to it (same as add; publish to make it visible). */
  recycle(bid: number): void {
    this.add(bid);
  }

  /** io_uring_buf_ring_advance: one release store of the u16 tail for everything added since the
   * last publish, so the kernel sees the entries' contents before the new tail. Returns how many
   * buffers were published. */
  publish(): number {
    const n = (this.tail - this.published) & 0xffff;
    if (n !== 0 && !this.closed) {
      Atomics.store(this.ringU16, R.BUF_RING_TAIL >> 1, this.tail);
      this.published = this.tail;
    }
    return n;
  }

  /** Buffers added but not yet published. */
  get pending(): number {
    return (this.tail - this.published) & 0xffff;
  }

  /** A view of `len` bytes of buffer `bid` from byte `offset` (default 0; a RECVMSG buffer starts
   * with its io_uring_recvmsg_out header), over the ring's own memory: valid until the buffer is
   * recycled. Marks the buffer as handed out by the kernel. */
  view(bid: number, len: number, offset = 0): Uint8Array {
    if (!Number.isInteger(bid) || bid < 0 || bid >= this.entries)
      throw invalidArgument("ProvidedBufferRing.view", `bid must be 0..${this.entries - 1}, got ${shown(bid)}`);
    if (!Number.isInteger(offset) || offset < 0 || offset > this.bufferSize)
      throw invalidArgument("ProvidedBufferRing.view", `offset must be 0..${this.bufferSize}, got ${shown(offset)}`);
    if (!Number.isInteger(len) || len < 0 || len > this.bufferSize - offset)
      throw invalidArgument(
        "ProvidedBufferRing.view",
        `len must be 0..${this.bufferSize - offset} from offset ${offset}, got ${shown(len)}`,
      );
    // In a Worker close() detached the memory (the main thread's stays viewable after close).
    const m = this.bufferMemory;
    if (m.kind === "mmap" && m.buffer.detached) throw closedError("ProvidedBufferRing.view", "provided-buffer ring");
    this.queued[bid] = 0;
    return new Uint8Array(
      this.bufferMemory.buffer,
      this.bufferMemory.bytes.byteOffset + bid * this.bufferSize + offset,
      len,
    );
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** io_uring_free_buf_ring: unregister the group (IORING_UNREGISTER_PBUF_RING) and drop the
   * memory. Receives still selecting from the group fail with ENOBUFS afterwards. Idempotent;
   * after the ring itself closed, only the references are dropped. In a Worker the memory is
   * given back (freeKernelMemory): views of it read as empty from then on. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const reg = registryOf(this.ring);
    if (reg.pbufRings.get(this.bgid) === this) reg.pbufRings.delete(this.bgid);
    if (!this.ring.isClosed) {
      const breg = new Uint8Array(R.BUF_REG.size);
      new DataView(breg.buffer).setUint16(R.BUF_REG.bgid, this.bgid, true);
      // A refusal keeps the memory: the kernel may still hold the group.
      this.ring.register(R.IORING_UNREGISTER_PBUF_RING, breg, 1);
    }
    freeKernelMemory(this.ringMemory);
    freeKernelMemory(this.bufferMemory);
    droppedBufferRings.unregister(this);
  }
}

// ---------------------------------------------------------------------------------------------
// eventfd (5.2; async-only 5.6)

/** io_uring_register_eventfd(_async): the kernel signals `fd` when CQEs are posted (with
 * `async`, only for completions that ran asynchronously). */
export function registerEventfd(ring: Ring, fd: number, o: { async?: boolean } = {}): void {
  const where = "registerEventfd";
  requireOpen(ring, where);
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff)
    throw invalidArgument(where, `fd must be a file descriptor, got ${shown(fd)}`);
  if (o.async) requireKernel(ring, where, "IORING_REGISTER_EVENTFD_ASYNC", "5.6");
  const arg = new Int32Array([fd]);
  ring.register(o.async ? R.IORING_REGISTER_EVENTFD_ASYNC : R.IORING_REGISTER_EVENTFD, arg, 1);
  registryOf(ring).eventfd = fd;
}

/** io_uring_unregister_eventfd. The fd stays open: it is the caller's. */
export function unregisterEventfd(ring: Ring): void {
  ring.register(R.IORING_UNREGISTER_EVENTFD, null, 0);
  registryOf(ring).eventfd = -1;
}

// ---------------------------------------------------------------------------------------------
// NAPI busy polling (6.9; tracking modes 6.13)

export type NapiTracking = "dynamic" | "static";

export interface NapiSettings {
  /** Busy-poll time per wait, in microseconds. */
  busyPollUs: number;
  preferBusyPoll: boolean;
  /** How NAPI ids are tracked: from the sockets the ring uses ("dynamic") or added explicitly
   * ("static", 6.13). */
  tracking: NapiTracking | "inactive";
}

function napiStruct(busyPollUs: number, prefer: boolean, opcode: number, opParam: number): Uint8Array {
  const s = new Uint8Array(R.NAPI.size);
  const dv = new DataView(s.buffer);
  dv.setUint32(R.NAPI.busy_poll_to, busyPollUs, true);
  dv.setUint8(R.NAPI.prefer_busy_poll, prefer ? 1 : 0);
  dv.setUint8(R.NAPI.opcode, opcode);
  dv.setUint32(R.NAPI.op_param, opParam, true);
  return s;
}

function napiSettingsOf(s: Uint8Array): NapiSettings {
  const dv = new DataView(s.buffer);
  const mode = dv.getUint32(R.NAPI.op_param, true);
  return {
    busyPollUs: dv.getUint32(R.NAPI.busy_poll_to, true),
    preferBusyPoll: dv.getUint8(R.NAPI.prefer_busy_poll) !== 0,
    tracking:
      mode === R.IO_URING_NAPI_TRACKING_STATIC
        ? "static"
        : mode === R.IO_URING_NAPI_TRACKING_INACTIVE
          ? "inactive"
          : "dynamic",
  };
}

/** io_uring_register_napi: busy-poll the NAPI contexts of the ring's sockets for `busyPollUs`
 * while waiting for completions. Returns the settings that were in force before. */
export function registerNapi(
  ring: Ring,
  o: { busyPollUs: number; preferBusyPoll?: boolean; tracking?: NapiTracking },
): NapiSettings {
  const where = "registerNapi";
  requireOpen(ring, where);
  requireKernel(ring, where, "IORING_REGISTER_NAPI", "6.9");
  if (o === null || typeof o !== "object")
    throw invalidArgument(where, "options {busyPollUs, preferBusyPoll?, tracking?} are required");
  if (!Number.isInteger(o.busyPollUs) || o.busyPollUs < 0 || o.busyPollUs > 0xffffffff)
    throw invalidArgument(where, `busyPollUs must be an integer 0..2^32-1, got ${shown(o.busyPollUs)}`);
  const tracking = o.tracking ?? "dynamic";
  if (tracking !== "dynamic" && tracking !== "static")
    throw invalidArgument(where, `tracking must be "dynamic" or "static", got ${shown(tracking)}`);
  // The tracking mode lives in op_param, which the kernel reads since 6.13; an older kernel saw
  // only padding there and would silently track dynamically.
  if (tracking === "static") requireKernel(ring, where, "static NAPI tracking (IO_URING_NAPI_TRACKING_STATIC)", "6.13");
  const mode = tracking === "static" ? R.IO_URING_NAPI_TRACKING_STATIC : R.IO_URING_NAPI_TRACKING_DYNAMIC;
  const s = napiStruct(o.busyPollUs, o.preferBusyPoll === true, R.IO_URING_NAPI_REGISTER_OP, mode);
  ring.register(R.IORING_REGISTER_NAPI, s, 1);
  return napiSettingsOf(s);
}

/** io_uring_unregister_napi: stop busy polling. Returns the busy-poll settings that were in
 * force (io_unregister_napi reports no tracking mode). */
export function unregisterNapi(ring: Ring): Omit<NapiSettings, "tracking"> {
  requireOpen(ring, "unregisterNapi");
  requireKernel(ring, "unregisterNapi", "IORING_UNREGISTER_NAPI", "6.9");
  const s = napiStruct(0, false, 0, 0);
  ring.register(R.IORING_UNREGISTER_NAPI, s, 1);
  const { busyPollUs, preferBusyPoll } = napiSettingsOf(s);
  return { busyPollUs, preferBusyPoll };
}
