// Memory the kernel writes into later (provided-buffer rings and their buffers, RecvLoop's buffer,
// ZCRX areas), kept out of a Worker's JS heap.
//
// `worker.terminate()` frees the Worker's heap while its thread still runs, and the kernel can run
// a pending receive's task work on that thread in between (see docs/reliability.md, "Worker
// termination"): a buffer in the heap would then be written after it was freed. In a Worker such
// memory is therefore an anonymous mapping that nothing but this module ever gives back, recorded
// in the fd ledger (src/ring/reclaim.ts) so that once the thread is gone a sweep can release it.
//
// Nothing here is ever unmapped. An ArrayBuffer over native memory moves with transfer() and
// postMessage(), so a view of a mapping can live in another thread, and a view of unmapped memory
// faults the process. What happens instead:
// - freeKernelMemory (the owner is done with it): its ArrayBuffer is detached, which empties every
//   view of it in this thread (reads give undefined, writes are dropped), its pages are released
//   (MADV_DONTNEED: reads as zeros, no resident memory) and the range becomes a spare in the
//   ledger, which the next allocation of any thread takes again (the smallest spare that fits). An
//   ArrayBuffer found detached already was transferred away by someone: that mapping leaves the
//   ledger and stays as it is for the life of the process (counted in `escaped`).
// - the thread dies: the sweep closes its rings, then releases the pages of its live mappings and
//   makes them spares the same way (reclaimDeadThreads).
// So the address space held is bounded by the most such memory live at once (plus what escaped),
// and the resident memory of what is not in use is zero.
//
// In the main thread, whose heap lives as long as the process, the memory stays what it was: a
// SharedArrayBuffer (allocShared), so views can be posted to Workers.
import { isMainThread } from "node:worker_threads";
import { c, errno, viewNative } from "../../ffi/index.ts";
import { MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../abi/net.ts";
import { UringError } from "../error.ts";
import { allocShared, pageAlign, type Region } from "./memory.ts";
import { adoptSpareMemory, ownMemory, releaseMemory } from "./reclaim.ts";

/** Whether this thread keeps kernel-written memory out of its heap (it is a Worker). */
export const heapFreeMemory: boolean = !isMainThread;

/** This thread's mappings from here: address → the mapping's whole length (a spare taken again
 * may be longer than the region asked for). */
const held = new Map<number, number>();
/** Spares of this thread when the ledger is off (no /proc): not shared, not swept. */
const localSpares: { address: number; byteLength: number }[] = [];

/** What the pool did in this thread, for tests and diagnostics. */
export const kernelMemoryStats = { mapped: 0, reused: 0, released: 0, escaped: 0 };

/** Page-aligned, zeroed memory of at least `byteLength` bytes for the kernel to write into. In a
 * Worker an anonymous mapping (a spare when one fits), else a SharedArrayBuffer. */
export function allocKernelMemory(byteLength: number, what: string): Region {
  if (!heapFreeMemory) return allocShared(byteLength);
  const size = pageAlign(byteLength);
  let spare = adoptSpareMemory(size);
  if (spare === null) {
    let best = -1;
    for (let i = 0; i < localSpares.length; i++)
      if (
        localSpares[i]!.byteLength >= size &&
        (best < 0 || localSpares[i]!.byteLength < localSpares[best]!.byteLength)
      )
        best = i;
    if (best >= 0) spare = localSpares.splice(best, 1)[0]!;
  }
  let address: number;
  if (spare !== null) {
    address = spare.address;
    // Zero again: a late write of a closed ring may have touched the released pages.
    c.madvise(address, spare.byteLength, MADV_DONTNEED);
    held.set(address, spare.byteLength);
    kernelMemoryStats.reused++;
  } else {
    address = c.mmap(null, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (address === -1) throw new UringError("mmap", errno(), `${what}: ${size} bytes of anonymous memory`);
    // Unrecorded (no ledger, or a full one), the mapping is still never unmapped: safe, and the
    // thread's own frees keep it in use.
    ownMemory(address, size);
    held.set(address, size);
    kernelMemoryStats.mapped++;
  }
  const buffer = viewNative(address, size);
  return { kind: "mmap", buffer, bytes: new Uint8Array(buffer), address, byteLength: size };
}

/** Give back memory from allocKernelMemory once the kernel no longer uses it (its ring or buffer
 * group is gone). A SharedArrayBuffer is left to the GC. Idempotent. */
export function freeKernelMemory(region: Region): void {
  if (region.kind === "shared") return;
  const length = held.get(region.address);
  if (length === undefined) return;
  held.delete(region.address);
  if (region.buffer.detached) {
    // Transferred away: a view elsewhere may still read it.
    releaseMemory(region.address, true);
    kernelMemoryStats.escaped++;
    return;
  }
  region.buffer.transfer(0);
  c.madvise(region.address, length, MADV_DONTNEED);
  kernelMemoryStats.released++;
  // A mapping the ledger does not hold (it is off, or was full) stays a spare of this thread.
  if (!releaseMemory(region.address, false)) localSpares.push({ address: region.address, byteLength: length });
}
