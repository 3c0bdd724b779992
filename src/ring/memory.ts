// Page-aligned memory the kernel may touch: SharedArrayBuffers the library owns (so views can be
// posted to Workers), or mmap'd kernel memory viewed without a copy.
import { addressOf, c, errno, viewNative } from "../../ffi/index.ts";
import { _SC_PAGESIZE, MAP_SHARED, MAP_POPULATE, PROT_READ, PROT_WRITE } from "../abi/net.ts";

/** (void *)-1 as the FFI layer (ffi/) returns it through i64_fast. */
const MAP_FAILED = -1;
import { UringError, invalidArgument, shown } from "../error.ts";

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
    throw invalidArgument("allocShared", `byteLength must be a positive integer, got ${shown(byteLength)}`);
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
  if (address === MAP_FAILED)
    throw new UringError("mmap", errno(), `${what}: ${byteLength} bytes at offset 0x${offset.toString(16)}`);
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

/** The most bytes of closed rings' shared memory kept at once. Past it, Ring.create with memory
 * "auto" maps kernel memory instead (unmapped at close, nothing to keep), so create/close churn
 * cannot hold more than this. */
export const SHARED_RETIRE_BUDGET_BYTES = 64 * 1024 * 1024;

const retired: { region: SharedRegion; untilMs: number }[] = [];
let retiredBytes = 0;
let pruneTimer: ReturnType<typeof setTimeout> | undefined;

/** Drop the entries whose time is up; re-arm the timer for the next one. */
function pruneRetired(): void {
  const now = performance.now();
  let keep = 0,
    bytes = 0,
    next = Infinity;
  for (const r of retired) {
    if (r.untilMs <= now) continue;
    retired[keep++] = r;
    if (r.untilMs === Infinity) continue; // kept for good: not churn, not in the budget
    bytes += r.region.byteLength;
    if (r.untilMs < next) next = r.untilMs;
  }
  retired.length = keep;
  retiredBytes = bytes;
  if (pruneTimer !== undefined) clearTimeout(pruneTimer);
  pruneTimer = undefined;
  if (next !== Infinity) {
    // Unref'd: a pending prune never keeps the process alive.
    pruneTimer = setTimeout(pruneRetired, Math.max(1, next - now) + 1);
    (pruneTimer as { unref?: () => void }).unref?.();
  }
}

/** Bytes of closed rings' shared memory kept for a while right now (see retireShared); memory
 * kept for good (`forever`) is not counted. */
export function retiredSharedBytes(): number {
  pruneRetired();
  return retiredBytes;
}

/** Keep a closed ring's SharedArrayBuffer memory referenced for SHARED_RETIRE_MS. close(2) on a
 * ring fd only starts the teardown (io_ring_exit_work runs later, on a workqueue): until it ends,
 * the kernel keeps the IORING_SETUP_NO_MMAP pages pinned and may still write to them (CQEs of
 * cancelled requests, the CQ tail). Were the buffer collected at once, the allocator could hand
 * the same pages to the next ring, which would then start with the old ring's counters (seen on
 * 6.18: a fresh ring with cq.tail 16, whose next wait spun in the kernel). An unref'd timer drops
 * expired entries, so the memory goes when its time is up, not at some later close; Ring.create
 * stops using shared memory while SHARED_RETIRE_BUDGET_BYTES are kept. `forever` keeps the memory
 * for the life of the process: Ring.close passes it when requests were still in flight, because
 * the kernel's teardown then lasts as long as they do. */
export function retireShared(region: SharedRegion, forever = false): void {
  retired.push({ region, untilMs: forever ? Infinity : performance.now() + SHARED_RETIRE_MS });
  pruneRetired();
}
