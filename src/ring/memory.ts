// Page-aligned memory the kernel may touch: SharedArrayBuffers the library owns (so views can be
// posted to Workers), or mmap'd kernel memory viewed without a copy.
import { addressOf, c, errno, viewNative } from "../../ffi/index.ts";
import { _SC_PAGESIZE, MAP_SHARED, MAP_POPULATE, PROT_READ, PROT_WRITE } from "../abi/net.ts";

/** (void *)-1 as the FFI layer (ffi/) returns it through i64_fast. */
const MAP_FAILED = -1;
import { UringError, invalidArgument } from "../error.ts";

/** The system page size, read once. */
export const PAGE_SIZE: number = (() => {
  const v = c.sysconf(_SC_PAGESIZE);
  return v > 0 ? v : 4096;
})();

/** Round `bytes` up to a whole number of pages. */
export function pageAlign(bytes: number): number {
  return Math.ceil(bytes / PAGE_SIZE) * PAGE_SIZE;
}

/** Page-aligned memory inside a SharedArrayBuffer. `bytes` views exactly the aligned part; keep
 * `buffer` (or any view) alive for as long as the kernel may use `address`. */
export interface SharedRegion {
  readonly kind: "shared";
  readonly buffer: SharedArrayBuffer;
  readonly bytes: Uint8Array;
  readonly address: number;
  readonly byteLength: number;
}

/** Allocate `byteLength` bytes (rounded up to pages) of zeroed, page-aligned shared memory. The
 * SharedArrayBuffer gets one spare page so the aligned window always fits, whatever the
 * allocator's alignment. */
export function allocShared(byteLength: number): SharedRegion {
  if (!Number.isSafeInteger(byteLength) || byteLength <= 0) {
    throw invalidArgument("allocShared", `byteLength must be a positive integer, got ${byteLength}`);
  }
  const size = pageAlign(byteLength);
  const buffer = new SharedArrayBuffer(size + PAGE_SIZE);
  const whole = new Uint8Array(buffer);
  const base = addressOf(whole);
  const skip = (PAGE_SIZE - (base % PAGE_SIZE)) % PAGE_SIZE;
  const bytes = new Uint8Array(buffer, skip, size);
  return { kind: "shared", buffer, bytes, address: base + skip, byteLength: size };
}

/** A mapping created with mmap(2); `buffer` views it without a copy and must not be used after
 * `unmapRegion`. */
export interface MappedRegion {
  readonly kind: "mmap";
  readonly buffer: ArrayBuffer;
  readonly bytes: Uint8Array;
  readonly address: number;
  readonly byteLength: number;
}

/** mmap(NULL, len, RW, MAP_SHARED|MAP_POPULATE, fd, offset): the io_uring way to map ring, SQE,
 * provided-buffer and refill memory the kernel allocated. */
export function mapFd(fd: number, byteLength: number, offset: number, what: string): MappedRegion {
  const address = c.mmap(null, byteLength, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, offset);
  if (address === MAP_FAILED) throw new UringError("mmap", errno(), `${what}: ${byteLength} bytes at offset 0x${offset.toString(16)}`);
  const buffer = viewNative(address, byteLength);
  return { kind: "mmap", buffer, bytes: new Uint8Array(buffer), address, byteLength };
}

/** Anonymous private mapping (huge pages on request), for areas that prefer mmap to a SAB. */
export function mapAnonymous(byteLength: number, flags: number, what: string): MappedRegion {
  const address = c.mmap(null, byteLength, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (address === MAP_FAILED) throw new UringError("mmap", errno(), `${what}: ${byteLength} bytes`);
  const buffer = viewNative(address, byteLength);
  return { kind: "mmap", buffer, bytes: new Uint8Array(buffer), address, byteLength };
}

export function unmapRegion(region: MappedRegion): void {
  // Detach first: a view over unmapped memory faults the whole process on its next access, while
  // a view over a detached buffer reads undefined and drops writes. A detached buffer also marks
  // the region as unmapped, so a second call cannot unmap whatever was mapped there since.
  if (region.buffer.detached) return;
  region.buffer.transfer(0);
  c.munmap(region.address, region.byteLength);
}

/** Either kind of region. */
export type Region = SharedRegion | MappedRegion;

/** How long shared memory given to a closed ring stays referenced: see retireShared. */
export const SHARED_RETIRE_MS = 10_000;

const retired: { region: SharedRegion; untilMs: number }[] = [];

/** Keep a closed ring's SharedArrayBuffer memory referenced for SHARED_RETIRE_MS. close(2) on a
 * ring fd only starts the teardown (io_ring_exit_work runs later, on a workqueue): until it ends,
 * the kernel keeps the IORING_SETUP_NO_MMAP pages pinned and may still write to them (CQEs of
 * cancelled requests, the CQ tail). Were the buffer collected at once, the allocator could hand
 * the same pages to the next ring, which would then start with the old ring's counters (seen on
 * 6.18: a fresh ring with cq.tail 16, whose next wait spun in the kernel). Expired entries are
 * dropped on each call, so this needs no timer. `forever` keeps the memory for the life of the
 * process: Ring.close passes it when requests were still in flight, because the kernel's teardown
 * then lasts as long as they do. */
export function retireShared(region: SharedRegion, forever = false): void {
  const now = performance.now();
  let keep = 0;
  for (const r of retired) if (r.untilMs > now) retired[keep++] = r;
  retired.length = keep;
  retired.push({ region, untilMs: forever ? Infinity : now + SHARED_RETIRE_MS });
}

