// The receive area: page-aligned memory the library owns and the kernel writes received bytes
// into. A SharedArrayBuffer by default, so chunk views can be posted to Workers; an anonymous
// mapping (optionally backed by huge pages) on request, for fewer TLB misses and fewer pinned
// page structs on big areas.
import { c, errno } from "../../ffi/index.ts";
import { MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_HUGETLB, MAP_POPULATE, MAP_PRIVATE } from "../abi/net.ts";
import { type Region, type MappedRegion, allocShared, mapAnonymous, unmapRegion, PAGE_SIZE } from "../ring/memory.ts";
import { UringError, invalidArgument, shown } from "../error.ts";
import { allocKernelMemory, freeKernelMemory, heapFreeMemory } from "../ring/worker-memory.ts";

/** "shared": SharedArrayBuffer (the default in the main thread). "mmap": anonymous private mapping
 * (the default in a Worker, whose heap terminate() frees while the NIC may still write: there it
 * comes from src/ring/worker-memory.ts, recorded in the fd ledger and kept for reuse). "thp": mapping plus
 * madvise(MADV_HUGEPAGE), transparent huge pages where the kernel grants them. "hugetlb":
 * MAP_HUGETLB, explicit 2 MiB pages from the hugetlbfs pool (vm.nr_hugepages must be > 0). */
export type AreaMemory = "shared" | "mmap" | "thp" | "hugetlb";

/** Size of an explicit huge page on x86_64; hugetlb areas are rounded up to it. */
export const HUGE_PAGE_BYTES = 2 * 1024 * 1024;

export interface ZcrxArea {
  readonly memory: AreaMemory;
  /** The whole area; a chunk is bytes[offset, offset + length). */
  readonly bytes: Uint8Array;
  readonly address: number;
  readonly byteLength: number;
  /** The SharedArrayBuffer behind `bytes` ("shared" areas only). */
  readonly sharedBuffer: SharedArrayBuffer | undefined;
  /** Unmap (mmap areas); a SharedArrayBuffer area is left to the GC. Idempotent. */
  free(): void;
}

/** Allocate an area of at least `byteLength` bytes, page aligned, zeroed. */
export function createArea(byteLength: number, memory: AreaMemory = "shared"): ZcrxArea {
  if (!Number.isSafeInteger(byteLength) || byteLength < PAGE_SIZE) {
    throw invalidArgument(
      "createArea",
      `area size must be an integer of at least one page (${PAGE_SIZE}), got ${shown(byteLength)}`,
    );
  }
  let region: Region;
  // In a Worker a plain mapping comes from the pool for memory the kernel writes.
  const pooled = memory === "mmap" && heapFreeMemory;
  switch (memory) {
    case "shared":
      region = allocShared(byteLength);
      break;
    case "mmap":
    case "thp": {
      const len = Math.ceil(byteLength / PAGE_SIZE) * PAGE_SIZE;
      if (pooled) {
        region = allocKernelMemory(len, "zcrx area");
        break;
      }
      region = mapAnonymous(len, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, "zcrx area");
      if (memory === "thp" && c.madvise(region.address, len, MADV_HUGEPAGE) !== 0) {
        const e = errno();
        unmapRegion(region);
        throw new UringError(
          "madvise",
          e,
          "MADV_HUGEPAGE on the zcrx area",
          "transparent huge pages are disabled: check /sys/kernel/mm/transparent_hugepage/enabled",
        );
      }
      break;
    }
    case "hugetlb": {
      const len = Math.ceil(byteLength / HUGE_PAGE_BYTES) * HUGE_PAGE_BYTES;
      try {
        region = mapAnonymous(len, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, "zcrx area (MAP_HUGETLB)");
      } catch (e) {
        const err = e as UringError;
        throw new UringError(
          "mmap",
          err.errno,
          `MAP_HUGETLB area of ${len} bytes`,
          `the huge page pool is too small: reserve pages with \`sysctl -w vm.nr_hugepages=${Math.ceil(len / HUGE_PAGE_BYTES)}\``,
        );
      }
      break;
    }
    default:
      throw invalidArgument("createArea", `memory must be "shared", "mmap", "thp" or "hugetlb", got ${shown(memory)}`);
  }
  let freed = false;
  return {
    memory,
    bytes: region.bytes,
    address: region.address,
    byteLength: region.byteLength,
    sharedBuffer: region.kind === "shared" ? region.buffer : undefined,
    free() {
      if (freed) return;
      freed = true;
      if (pooled) freeKernelMemory(region);
      else if (region.kind === "mmap") unmapRegion(region as MappedRegion);
    },
  };
}
