// Sizes of the memory a zcrx instance needs, computed by named helpers so no call site does the
// arithmetic inline (the tokio-rs/io-uring zcrx test mapped the wrong refill size doing so).
import { ZCRX_RQE, ZCRX_RQ_MAX_ENTRIES, ZCRX_STATS } from "../abi/zcrx.ts";
import { PAGE_SIZE } from "../ring/memory.ts";
import { invalidArgument, shown } from "../error.ts";

/** Where the refill ring's header ends: what IO_URING_QUERY_ZCRX reports (rq_hdr_size,
 * rq_hdr_alignment). Kernels without the query get one whole page, liburing's examples/zcrx.c
 * rule, which covers every header layout seen so far (8 bytes on 6.15, 64 on 6.18). */
export interface RefillHeader {
  readonly size: number;
  readonly alignment: number;
}

/** The area a registration makes when it names no size (ZcrxIfqOptions.areaBytes). */
export const DEFAULT_AREA_BYTES = 16 * 1024 * 1024;
/** Largest CQ Ring.create makes (IORING_MAX_CQ_ENTRIES is 2 * 32768). */
const CQ_ENTRIES_MAX = 65536;

/** The header assumed when the kernel cannot be asked: one page, page aligned. */
export const DEFAULT_REFILL_HEADER: RefillHeader = { size: PAGE_SIZE, alignment: PAGE_SIZE };

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** Whether `n` is a power of two (the refill ring and CQ sizes must be). */
export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** The smallest power of two >= n (the kernel rounds rq_entries the same way). */
export function roundUpPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** Bytes of the refill ring region for `entries` RQEs: the header rounded up to its alignment,
 * then 16 bytes per io_uring_zcrx_rqe, rounded up to whole pages (the kernel's region rule,
 * io_create_region, wants a page-aligned size). Mirrors liburing test/zcrx.c get_rq_size. */
export function refillRingBytes(entries: number, hdr: RefillHeader = DEFAULT_REFILL_HEADER): number {
  if (!Number.isInteger(entries) || entries < 1 || entries > ZCRX_RQ_MAX_ENTRIES) {
    throw invalidArgument("refillRingBytes", `entries must be 1..${ZCRX_RQ_MAX_ENTRIES}, got ${shown(entries)}`);
  }
  if (!(hdr.size >= 0) || !isPowerOfTwo(hdr.alignment)) {
    throw invalidArgument(
      "refillRingBytes",
      `header size must be >= 0 and alignment a power of two, got ${hdr.size}/${hdr.alignment}`,
    );
  }
  return alignUp(alignUp(hdr.size, hdr.alignment) + roundUpPowerOfTwo(entries) * ZCRX_RQE.size, PAGE_SIZE);
}

/** Where struct zcrx_stats (7.2's copy counters) goes in a refill region for `entries` RQEs:
 * after the last entry, on a cache line of its own. The kernel writes it; we read it. */
export function refillStatsOffset(entries: number, hdr: RefillHeader = DEFAULT_REFILL_HEADER): number {
  return alignUp(alignUp(hdr.size, hdr.alignment) + roundUpPowerOfTwo(entries) * ZCRX_RQE.size, 64);
}

/** Bytes of a refill region that also holds struct zcrx_stats at refillStatsOffset, in whole
 * pages. */
export function refillRingBytesWithStats(entries: number, hdr: RefillHeader = DEFAULT_REFILL_HEADER): number {
  return Math.max(refillRingBytes(entries, hdr), alignUp(refillStatsOffset(entries, hdr) + ZCRX_STATS.size, PAGE_SIZE));
}

/** Chunks (PAGE_SIZE buffers, "niovs") an area of `bytes` holds: the most chunks the kernel can
 * have handed out and not yet got back. */
export function areaChunks(bytes: number, chunkBytes = PAGE_SIZE): number {
  return Math.floor(bytes / chunkBytes);
}

/** CQ entries for a ring receiving into an area of `areaBytes` with `bufferBytes` per buffer:
 * one CQE per buffer the kernel can have handed out, so a drain of a whole area never ends its
 * RECV_ZC with -ENOSPC, and never fewer than `minimum` (the kernel's default, twice the SQ). A
 * power of two, at most 65536. */
export function zcrxCqEntries(areaBytes: number, bufferBytes: number, minimum: number): number {
  const buffers = areaChunks(Math.ceil(areaBytes / PAGE_SIZE) * PAGE_SIZE, bufferBytes);
  return Math.min(CQ_ENTRIES_MAX, roundUpPowerOfTwo(Math.max(minimum, buffers)));
}
