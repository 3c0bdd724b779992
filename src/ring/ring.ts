// The ring: setup, memory, the SQ and CQ protocol, enter/wait, close. All memory ordering of
// bun-uring lives in four places here (each says why): the acquire load of the kernel's SQ head in
// getSqe, the SQ tail store in flush, the acquire load of the CQ tail and the release store of the
// CQ head in copyCqes. Atomics.load / Atomics.store are sequentially consistent, at least as strong
// as the kernel's smp_load_acquire / smp_store_release pairs. The SQ tail is a plain store: without
// SQPOLL the kernel reads it only inside this thread's own io_uring_enter, and the syscall orders
// it after the SQE writes (liburing's __io_uring_flush_sq does the same).
import { addressOf, c, sys, hasEnter2 } from "../../ffi/index.ts";
import * as S from "../abi/setup.ts";
import * as Q from "../abi/sqe.ts";
import * as R from "../abi/register.ts";
import { EAGAIN, EBUSY, EINTR, ETIME, EINVAL, EFAULT, ECANCELED, ENOMEM, ERRNO } from "../abi/errno.ts";
import { UringError, check, closedError, invalidArgument, unsupported } from "../error.ts";
import {
  type SqeMemory,
  sqeMemory,
  writeUserData,
  orSqeFlags,
  idleSlot,
  retireSlot,
  checkPrepared,
  shown,
  SLOT_FREE,
  SLOT_TAKEN,
  SLOT_PREPARED,
  SLOT_OWNED,
  SLOT_BOUND,
} from "../ops/sqe.ts";
import { prepCancel64 } from "../ops/prep.ts";
import { OpTable, OP_MAX_CAPACITY, type CompletionHandler } from "./optable.ts";
import {
  type Region,
  allocShared,
  mapFd,
  unmapRegion,
  pageAlign,
  retireShared,
  retiredSharedBytes,
  SHARED_RETIRE_BUDGET_BYTES,
  type MappedRegion,
} from "./memory.ts";
import { kernelAtLeast, kernelRelease, probeOpcodes, supportedSetupFlags, queryOpcodes } from "./kernel.ts";
import { confirmFd, disownFd, fdLedger, ownRingCq, pendingFd, reclaimDeadThreads } from "./reclaim.ts";
import { isMainThread } from "node:worker_threads";

/** A flag the caller may require (true), refuse (false) or leave to the library ("auto": used
 * when the kernel has it). */
export type FlagChoice = boolean | "auto";

export interface RingOptions {
  /** SQ entries, rounded up to a power of two by the kernel. Default 256. */
  entries?: number;
  /** CQ entries (IORING_SETUP_CQSIZE); default twice the SQ. */
  cqEntries?: number;
  /** IORING_SETUP_SINGLE_ISSUER (6.0): only this thread submits. Default "auto". */
  singleIssuer?: FlagChoice;
  /** IORING_SETUP_DEFER_TASKRUN (6.1): completions run only when this thread enters with
   * GETEVENTS (the ring does that before it peeks). Needed for ZCRX. Default false. */
  deferTaskrun?: boolean;
  /** IORING_SETUP_COOP_TASKRUN (5.19); ignored with deferTaskrun. Default "auto". */
  coopTaskrun?: FlagChoice;
  /** IORING_SETUP_TASKRUN_FLAG (5.19): the kernel flags pending task work in the SQ flags. */
  taskrunFlag?: boolean;
  /** IORING_SETUP_CQE32 (5.19): 32-byte CQEs. */
  cqe32?: boolean;
  /** IORING_SETUP_CQE_MIXED (6.18): 16- and 32-byte CQEs in one ring. */
  cqeMixed?: boolean;
  /** IORING_SETUP_SUBMIT_ALL (5.18): keep submitting past an SQE that fails. Default "auto". */
  submitAll?: FlagChoice;
  /** IORING_SETUP_NO_SQARRAY (6.6): no SQ index array. Default "auto". */
  noSqArray?: FlagChoice;
  /** IORING_SETUP_CLAMP: clamp too-large sizes instead of failing. */
  clamp?: boolean;
  /** IORING_SETUP_R_DISABLED: start disabled; call ring.enable(). */
  disabled?: boolean;
  /** Where the rings live. "shared": SharedArrayBuffers the library allocates
   * (IORING_SETUP_NO_MMAP, 6.5+); "mmap": kernel memory mapped from the ring fd; "auto" (default):
   * shared where the kernel takes it, else mmap; in a Worker always mmap (a terminated Worker's
   * heap is freed while the kernel may still write the CQ: see src/ring/reclaim.ts). */
  memory?: "auto" | "shared" | "mmap";
  /** Register the ring fd (IORING_REGISTER_RING_FDS, 5.18) and enter through the index. Default
   * true where the kernel has it. */
  registerRingFd?: boolean;
  /** Operation table size: the most operations in flight at once. Default 4096. */
  maxInflight?: number;
  /** CQEs copied per drain pass. Default: the CQ size. */
  batchSize?: number;
}

/** What this ring and kernel can do; see describeCapabilities for a printable form. */
export interface Capabilities {
  readonly kernel: string;
  /** IORING_SETUP_* flags this kernel accepts. */
  readonly setupFlags: number;
  /** IORING_SETUP_* flags this ring was created with. */
  readonly ringFlags: number;
  /** IORING_FEAT_* reported at setup. */
  readonly features: number;
  /** 1 per supported opcode (IORING_REGISTER_PROBE). */
  readonly opcodes: Uint8Array;
  /** Whether IORING_REGISTER_QUERY answered (6.18+). */
  readonly query: boolean;
  /** Where the rings live and why. */
  readonly memory: "shared" | "mmap";
  readonly memoryReason: string;
  readonly registeredRing: boolean;
  readonly sqEntries: number;
  readonly cqEntries: number;
}

/** CQEs copied out of the CQ by one drain pass: plain typed arrays, allocated once. user_data is
 * kept as its two u32 words (`udLo`, `udHi`); `userDataAt(i)` joins them into a number, exact
 * below 2^53 (bun-uring's own user_data always is). `big` holds the second 16 bytes of a 32-byte
 * CQE as four u32 words per entry (zero for 16-byte entries). */
export class CqeBatch {
  readonly udLo: Uint32Array;
  readonly udHi: Uint32Array;
  readonly res: Int32Array;
  readonly flags: Uint32Array;
  readonly big: Uint32Array;
  count = 0;
  constructor(readonly capacity: number) {
    this.udLo = new Uint32Array(capacity);
    this.udHi = new Uint32Array(capacity);
    this.res = new Int32Array(capacity);
    this.flags = new Uint32Array(capacity);
    this.big = new Uint32Array(capacity * 4);
  }

  /** The user_data of entry `i` as a number. */
  userDataAt(i: number): number {
    return this.udHi[i]! * U32_SPAN + this.udLo[i]!;
  }
}

const U32_SPAN = 4294967296;
/** IOSQE bits a tracked operation may carry: all but CQE_SKIP_SUCCESS (see refuseTrack). */
const TRACKABLE_FLAGS = 0x7f & ~Q.IOSQE_CQE_SKIP_SUCCESS;
/** The state of a slot that carries its user_data. */
const SLOT_TRACKED = SLOT_PREPARED | SLOT_OWNED;

/** Rings that may have work in the kernel, by pin index (see Ring.pin): a strong reference, so
 * such a ring is never collected while the kernel can still write into memory it holds. */
const pinnedRings: (Ring | undefined)[] = [];
const freePinIndices: number[] = [];

function takePinIndex(): number {
  return freePinIndices.length > 0 ? freePinIndices.pop()! : pinnedRings.push(undefined) - 1;
}

/** What closing a ring needs, kept apart from the Ring object so a FinalizationRegistry can hold
 * it without keeping the ring alive. */
interface RingRemains {
  fd: number;
  registeredIndex: number;
  regions: Region[];
  pinIndex: number;
}

/** Unregister the ring fd, close it, unmap or retire the memory, free the pin slot: once. */
function releaseRemains(r: RingRemains, stuck: boolean): void {
  if (r.fd < 0) return;
  if (r.registeredIndex >= 0) {
    // A registered ring fd is a reference of its own (the task's ring table): without this the
    // ring would outlive close(2).
    const upd = new Uint8Array(R.RSRC_UPDATE.size);
    new DataView(upd.buffer).setUint32(R.RSRC_UPDATE.offset, r.registeredIndex, true);
    sys.io_uring_register(r.fd, R.IORING_UNREGISTER_RING_FDS, upd, 1);
  }
  const fd = r.fd;
  c.close(fd);
  r.fd = -1;
  for (const region of r.regions) {
    if (region.kind === "mmap") unmapRegion(region as MappedRegion);
    else retireShared(region, stuck);
  }
  // Out of the fd ledger (src/ring/reclaim.ts) only now: a Worker terminated half way through
  // leaves entries a sweep still acts on correctly (the mappings are unmapped if they are still
  // there; a number already closed, or reused, no longer names this ring and is left alone).
  disownFd(fd);
  if (r.pinIndex >= 0) {
    pinnedRings[r.pinIndex] = undefined;
    freePinIndices.push(r.pinIndex);
    r.pinIndex = -1;
  }
}

/** A ring dropped without close() is closed when it is collected. A ring with operations in
 * flight is pinned (never collected) until completions() sees none left, so this runs only for a
 * ring the kernel holds no work of. */
const dropped = new FinalizationRegistry<RingRemains>((r) => {
  try {
    releaseRemains(r, false);
  } catch {
    // Nothing to report to: the ring's owner is gone.
  }
});

function roundUpPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

function resolveFlag(
  choice: FlagChoice | undefined,
  dflt: FlagChoice,
  flag: number,
  supported: number,
  name: string,
  since: string,
): number {
  const want = choice ?? dflt;
  if (want === false) return 0;
  if (want === "auto") return supported & flag;
  if (!(supported & flag)) throw unsupported("io_uring_setup", `IORING_SETUP_${name}`, since, kernelRelease());
  return flag;
}

/** The refusal for a slot that already carries its user_data (track or setUserData). */
function alreadyOwned(where: string, slot: number): UringError {
  return invalidArgument(
    where,
    `slot ${slot} already has its user_data (tracked or setUserData): one slot carries one operation`,
  );
}

function sinceOf(flag: number): { name: string; since: string } {
  const f = S.SETUP_FLAGS.find((x) => x.value === flag);
  return f ? { name: f.name, since: f.since } : { name: `0x${flag.toString(16)}`, since: "?" };
}

/** Where a ring's counters live, for a Worker given its SharedArrayBuffers (Ring.layout): byte
 * offsets, kernel-reported, relative to the rings region, and that region's offset in its buffer. */
export interface RingLayout {
  ringsByteOffset: number;
  sqHead: number;
  sqTail: number;
  cqHead: number;
  cqTail: number;
  cqOverflow: number;
}

export class Ring {
  readonly fd: number;
  readonly flags: number;
  readonly features: number;
  readonly sqEntries: number;
  readonly cqEntries: number;
  /** 16, or 32 with CQE32 (CQE_MIXED rings use 16-byte slots). */
  readonly cqeSize: number;
  readonly capabilities: Capabilities;
  /** SQE views for the prep functions in ops/. */
  readonly sq: SqeMemory;
  /** The operation table: user_data → handler. */
  readonly ops: OpTable;
  /** The last drain pass's CQEs (valid inside handlers). */
  readonly batch: CqeBatch;
  /** Shared ring memory kept for the life of the process because close() gave up waiting for
   * operations (the kernel may still write it); 0 after a clean close. */
  retainedBytes = 0;
  /** Operations still in flight when close() gave up waiting; their handlers got -ECANCELED. */
  abandoned = 0;
  /** CQEs whose user_data named no live operation (user_data 0 included). */
  unknownCqes = 0;
  /** Slots getSqe handed out that were submitted without a prep: each went out as a NOP. */
  unpreparedSqes = 0;
  /** Called for a CQE whose user_data is not in the op table (raw SQEs, whose user_data should
   * stay below 2^32: see setUserData). */
  onUnknownCqe: ((userData: number, res: number, flags: number, index: number) => void) | undefined;

  private enterFd: number;
  private enterFlags: number;
  private registeredIndex = -1;
  private closed = false;
  private dispatching = false;
  /** close() has started (its cancel round may run handlers, which may call close() again). */
  private closing = false;
  /** Created with IORING_SETUP_R_DISABLED and not enabled yet: the kernel has taken no SQE. */
  private notEnabled = false;
  /** IORING_ASYNC_CANCEL_ANY | _ALL (5.19): close() cancels everything with one SQE; before,
   * it cancels each live operation by its user_data. A field so tests can take the older path on
   * a newer kernel. */
  private cancelAnySupported = false;
  private readonly regions: Region[];
  private readonly sqRing: Uint32Array;
  private readonly cqRing: Uint32Array;
  private readonly cqes: Uint32Array;
  private readonly sqHead: number;
  private readonly sqTail: number;
  private readonly sqFlagsIdx: number;
  private readonly sqMask: number;
  private readonly cqHead: number;
  private readonly cqTail: number;
  private readonly cqMask: number;
  private readonly cqOverflowIdx: number;
  /** Word index of the CQ flags (cq_off.flags, 5.8+); -1 when the kernel reports none. */
  private readonly cqFlagsIdx: number;
  private readonly cqeWords: number;
  private readonly mixed: boolean;
  private readonly mustGetEvents: boolean;
  /** SQEs handed out (local tail) and the tail last published to the kernel. */
  private sqeTail = 0;
  private sqeFlushed = 0;
  /** The batch entry whose handler dispatchRun is running. */
  private dispatchAt = 0;
  /** The kernel's SQ head as last read (see getSqe). */
  private sqHeadSeen = 0;
  private cqHeadLocal = 0;
  private readonly waitArg: Uint8Array;
  private readonly waitView: DataView;
  private readonly waitArgAddress: number;
  /** sq.state, read on every getSqe and track. */
  private readonly sqState: Uint8Array;
  /** For a slot Ring.begin handed out (SLOT_BOUND): its op-table index and the IOSQE flags the
   * ring adds when it publishes the slot. */
  private readonly boundEntry: Uint32Array;
  private readonly boundFlags: Uint8Array;
  /** Held in `pinnedRings` (see pin) while operations may be in the kernel. */
  private pinned = false;
  private readonly pinIndex: number;
  /** What a ring dropped without close() leaves to the FinalizationRegistry (no path to `this`). */
  private readonly remains: RingRemains;
  /** The object the FinalizationRegistry watches: referenced by this ring alone, so it dies with
   * it. Registering the ring itself measured ~6 ns slower per NOP round trip (the JIT handles a
   * registered object's accesses less well); this object is never touched on a hot path. */
  private readonly lifeToken = {};

  /** Set up a ring. Throws UringError naming what the kernel refused and why. */
  static create(options: RingOptions = {}): Ring {
    return new Ring(options);
  }

  private constructor(o: RingOptions) {
    if (o === null || typeof o !== "object")
      throw invalidArgument("Ring.create", `options must be an object, got ${o === null ? "null" : typeof o}`);
    const entries = o.entries ?? 256;
    if (!Number.isInteger(entries) || entries < 1 || entries > 32768)
      throw invalidArgument("Ring.create", `entries must be 1..32768, got ${shown(o.entries)}`);
    if (o.cqEntries !== undefined && (!Number.isInteger(o.cqEntries) || o.cqEntries < entries || o.cqEntries > 65536)) {
      throw invalidArgument(
        "Ring.create",
        `cqEntries must be an integer from entries (${entries}) to 65536, got ${shown(o.cqEntries)}`,
      );
    }
    if (o.cqe32 && o.cqeMixed) throw invalidArgument("Ring.create", "cqe32 and cqeMixed exclude each other");
    // Checked before io_uring_setup so a refusal leaves no ring fd or mapping behind.
    if (
      o.maxInflight !== undefined &&
      (!Number.isInteger(o.maxInflight) || o.maxInflight < 1 || o.maxInflight > OP_MAX_CAPACITY)
    ) {
      throw invalidArgument(
        "Ring.create",
        `maxInflight must be an integer 1..${OP_MAX_CAPACITY}, got ${shown(o.maxInflight)}`,
      );
    }
    if (o.batchSize !== undefined && (!Number.isInteger(o.batchSize) || o.batchSize < 1 || o.batchSize > 65536)) {
      throw invalidArgument("Ring.create", `batchSize must be an integer 1..65536, got ${shown(o.batchSize)}`);
    }
    const memoryChoice = o.memory ?? "auto";
    if (memoryChoice !== "auto" && memoryChoice !== "shared" && memoryChoice !== "mmap")
      throw invalidArgument("Ring.create", `memory must be "auto", "shared" or "mmap", got ${shown(memoryChoice)}`);

    const supported = supportedSetupFlags();
    const need = (flag: number) => {
      if (!(supported & flag)) {
        const s = sinceOf(flag);
        throw unsupported("io_uring_setup", `IORING_SETUP_${s.name}`, s.since, kernelRelease());
      }
      return flag;
    };
    let flags = 0;
    if (o.deferTaskrun) flags |= need(S.IORING_SETUP_DEFER_TASKRUN) | need(S.IORING_SETUP_SINGLE_ISSUER);
    else flags |= resolveFlag(o.singleIssuer, "auto", S.IORING_SETUP_SINGLE_ISSUER, supported, "SINGLE_ISSUER", "6.0");
    if (!o.deferTaskrun)
      flags |= resolveFlag(o.coopTaskrun, "auto", S.IORING_SETUP_COOP_TASKRUN, supported, "COOP_TASKRUN", "5.19");
    if (o.taskrunFlag) flags |= need(S.IORING_SETUP_TASKRUN_FLAG);
    if (o.cqe32) flags |= need(S.IORING_SETUP_CQE32);
    if (o.cqeMixed) flags |= need(S.IORING_SETUP_CQE_MIXED);
    if (o.clamp) flags |= need(S.IORING_SETUP_CLAMP);
    if (o.disabled) flags |= need(S.IORING_SETUP_R_DISABLED);
    flags |= resolveFlag(o.submitAll, "auto", S.IORING_SETUP_SUBMIT_ALL, supported, "SUBMIT_ALL", "5.18");
    flags |= resolveFlag(o.noSqArray, "auto", S.IORING_SETUP_NO_SQARRAY, supported, "NO_SQARRAY", "6.6");
    if (o.cqEntries !== undefined) flags |= need(S.IORING_SETUP_CQSIZE);

    const sqEntries = roundUpPow2(entries);
    const cqEntries = o.cqEntries !== undefined ? roundUpPow2(o.cqEntries) : sqEntries * 2;
    const cqeSize = flags & S.IORING_SETUP_CQE32 ? Q.CQE.size32 : Q.CQE.size;

    // Rings in library-owned SharedArrayBuffers when the kernel takes them (NO_MMAP, 6.5+).
    // Kernels 6.5..6.12 accept NO_MMAP only for memory that is one page or one huge page; those
    // refuse with EINVAL or EFAULT, and "auto" then maps the kernel's memory instead.
    let setup: SetupResult | undefined;
    let memoryReason = "";
    const canShare = (supported & S.IORING_SETUP_NO_MMAP) !== 0;
    if (memoryChoice === "shared" && !canShare)
      throw unsupported(
        "io_uring_setup",
        "ring memory in SharedArrayBuffers (IORING_SETUP_NO_MMAP)",
        "6.5",
        kernelRelease(),
      );
    // Closed rings' shared memory is kept a while (retireShared); while that is at its budget,
    // "auto" maps kernel memory, which close() can hand back at once.
    const retiredFull = memoryChoice === "auto" && canShare && retiredSharedBytes() >= SHARED_RETIRE_BUDGET_BYTES;
    // A Worker's heap is freed when it is terminated, while the kernel may still post CQEs into
    // the ring memory (an armed receive that fires later): in a Worker, "auto" takes kernel memory.
    const inWorker = memoryChoice === "auto" && !isMainThread;
    if (memoryChoice !== "mmap" && canShare && !retiredFull && !inWorker) {
      const r = setupShared(entries, flags, sqEntries, cqEntries, cqeSize, o.cqEntries);
      if ("fd" in r) {
        setup = r;
        memoryReason = "IORING_SETUP_NO_MMAP: rings and SQEs live in SharedArrayBuffers owned by the library";
      } else if (memoryChoice === "shared") {
        throw r.error;
      } else {
        memoryReason = `the kernel refused ring memory from the library (${r.error.code}), so the rings are mapped from the ring fd`;
      }
    } else {
      memoryReason =
        memoryChoice === "mmap"
          ? "mmap requested"
          : inWorker
            ? "a Worker's ring: a terminated Worker's heap is freed while the kernel may still write the CQ, so the rings are mapped from the ring fd (memory: \"shared\" asks for SharedArrayBuffers anyway)"
            : retiredFull
              ? `closed rings' shared memory still kept for the kernel's teardown is at its ${SHARED_RETIRE_BUDGET_BYTES >> 20} MiB budget, so the rings are mapped from the ring fd`
              : `IORING_SETUP_NO_MMAP needs Linux 6.5; the rings are mapped from the ring fd`;
    }
    if (!setup) setup = setupMapped(entries, flags, o.cqEntries);

    const { fd, params, regions } = setup;
    // The ring is in the fd ledger since io_uring_setup returned (setupShared, setupMapped), so a
    // Worker terminated from there on has it closed by another thread; a create is also the
    // moment to sweep what dead threads left.
    reclaimDeadThreads();
    this.remains = { fd, registeredIndex: -1, regions, pinIndex: -1 };
    try {
      this.pinIndex = this.remains.pinIndex = takePinIndex();
      this.fd = fd;
      this.regions = regions;
      const dv = new DataView(params.buffer);
      this.flags = dv.getUint32(S.PARAMS.flags, true);
      this.notEnabled = (this.flags & S.IORING_SETUP_R_DISABLED) !== 0;
      this.features = dv.getUint32(S.PARAMS.features, true);
      this.sqEntries = dv.getUint32(S.PARAMS.sq_entries, true);
      this.cqEntries = dv.getUint32(S.PARAMS.cq_entries, true);
      this.cqeSize = this.flags & S.IORING_SETUP_CQE32 ? Q.CQE.size32 : Q.CQE.size;
      this.cqeWords = this.cqeSize >> 2;
      this.mixed = (this.flags & S.IORING_SETUP_CQE_MIXED) !== 0;

      const sqo = S.PARAMS.sq_off,
        cqo = S.PARAMS.cq_off;
      const off = (base: number, f: number) => dv.getUint32(base + f, true) >> 2;
      const ringRegion = regions[0]!;
      const cqRegion = regions[2] ?? ringRegion;
      this.sqRing = new Uint32Array(ringRegion.bytes.buffer, ringRegion.bytes.byteOffset, ringRegion.byteLength >> 2);
      this.cqRing = new Uint32Array(cqRegion.bytes.buffer, cqRegion.bytes.byteOffset, cqRegion.byteLength >> 2);
      this.sqHead = off(sqo, S.SQRING_OFFSETS.head);
      this.sqTail = off(sqo, S.SQRING_OFFSETS.tail);
      this.sqFlagsIdx = off(sqo, S.SQRING_OFFSETS.flags);
      this.sqMask = this.sqRing[off(sqo, S.SQRING_OFFSETS.ring_mask)]!;
      this.cqHead = off(cqo, S.CQRING_OFFSETS.head);
      this.cqTail = off(cqo, S.CQRING_OFFSETS.tail);
      this.cqOverflowIdx = off(cqo, S.CQRING_OFFSETS.overflow);
      // The kernel writes the offsets it uses; a kernel before 5.8 leaves cq_off.flags at 0.
      this.cqFlagsIdx = dv.getUint32(cqo + S.CQRING_OFFSETS.flags, true) === 0 ? -1 : off(cqo, S.CQRING_OFFSETS.flags);
      this.cqMask = this.cqRing[off(cqo, S.CQRING_OFFSETS.ring_mask)]!;
      const cqesOff = dv.getUint32(cqo + S.CQRING_OFFSETS.cqes, true);
      this.cqes = new Uint32Array(
        cqRegion.bytes.buffer,
        cqRegion.bytes.byteOffset + cqesOff,
        (this.cqEntries * this.cqeSize) >> 2,
      );
      // A fresh ring starts with all indices at zero (the Zig std assertion).
      this.sqeTail = this.sqeFlushed = Atomics.load(this.sqRing, this.sqTail);
      this.sqHeadSeen = Atomics.load(this.sqRing, this.sqHead);
      this.cqHeadLocal = Atomics.load(this.cqRing, this.cqHead);
      if (!(this.flags & S.IORING_SETUP_NO_SQARRAY)) {
        // Identity-map the SQ index array once: slot i is always SQE i (liburing does the same).
        const arr = off(sqo, S.SQRING_OFFSETS.array);
        for (let i = 0; i < this.sqEntries; i++) this.sqRing[arr + i] = i;
      }
      const sqeRegion = regions[1]!;
      this.sq = sqeMemory(sqeRegion.bytes.buffer, sqeRegion.bytes.byteOffset, this.sqEntries, true);
      this.sqState = this.sq.state;
      this.boundEntry = new Uint32Array(this.sqEntries);
      this.boundFlags = new Uint8Array(this.sqEntries);
      // A slot handed out and never prepared is a NOP that posts no CQE where the kernel can skip
      // one (IORING_FEAT_CQE_SKIP, 5.17); before that its CQE carries user_data 0 (unknownCqes).
      if (this.features & S.IORING_FEAT_CQE_SKIP) this.sq.idleWord0 = Q.IORING_OP_NOP | (Q.IOSQE_CQE_SKIP_SUCCESS << 8);
      this.mustGetEvents = (this.flags & S.IORING_SETUP_DEFER_TASKRUN) !== 0;

      this.waitArg = new Uint8Array(S.GETEVENTS_ARG.size + S.KERNEL_TIMESPEC.size);
      this.waitView = new DataView(this.waitArg.buffer);
      this.waitArgAddress = addressOf(this.waitArg);
      this.waitView.setUint32(S.GETEVENTS_ARG.sigmask_sz, S.KERNEL_SIGSET_BYTES, true);
      this.waitView.setBigUint64(S.GETEVENTS_ARG.ts, BigInt(this.waitArgAddress + S.GETEVENTS_ARG.size), true);

      this.ops = new OpTable(o.maxInflight ?? 4096);
      this.batch = new CqeBatch(o.batchSize ?? this.cqEntries);

      this.enterFd = fd;
      this.enterFlags = 0;
      if (o.registerRingFd !== false) this.registerRingFd();

      const opcodes = probeOpcodes(fd);
      this.capabilities = {
        kernel: kernelRelease(),
        setupFlags: supported,
        ringFlags: this.flags,
        features: this.features,
        opcodes,
        query: queryOpcodes() !== null,
        memory: ringRegion.kind === "shared" ? "shared" : "mmap",
        memoryReason,
        registeredRing: this.registeredIndex >= 0,
        sqEntries: this.sqEntries,
        cqEntries: this.cqEntries,
      };
      this.cancelAnySupported = kernelAtLeast("5.19", this.capabilities.kernel);
    } catch (e) {
      // Nothing of a ring that failed half way stays behind: its fd, memory and pin slot go.
      releaseRemains(this.remains, false);
      if (e instanceof UringError) throw e;
      throw new UringError(
        "Ring.create",
        ENOMEM,
        `setting up the ring after io_uring_setup failed (${(e as Error)?.message ?? String(e)}); the ring fd was closed`,
        "lower maxInflight or batchSize (the op table takes 128 bytes of scratch memory and three array slots per entry)",
        { cause: e },
      );
    }
    dropped.register(this.lifeToken, this.remains, this.remains);
  }

  private registerRingFd(): void {
    const upd = new Uint8Array(R.RSRC_UPDATE.size);
    const dv = new DataView(upd.buffer);
    dv.setUint32(R.RSRC_UPDATE.offset, 0xffffffff, true); // -1: the kernel picks a slot
    dv.setBigUint64(R.RSRC_UPDATE.data, BigInt(this.fd), true);
    const ret = sys.io_uring_register(this.fd, R.IORING_REGISTER_RING_FDS, upd, 1);
    if (ret === 1) {
      this.registeredIndex = this.remains.registeredIndex = dv.getUint32(R.RSRC_UPDATE.offset, true);
      this.enterFd = this.registeredIndex;
      this.enterFlags = S.IORING_ENTER_REGISTERED_RING;
    }
    // Older kernels (< 5.18) refuse; entering through the plain fd works the same.
  }

  /** Which memory the rings use. */
  get memory(): "shared" | "mmap" {
    return this.capabilities.memory;
  }

  /** The SharedArrayBuffers behind the rings (shared memory only): [rings, sqes]. Post them to a
   * Worker to read the ring counters there. */
  get sharedBuffers(): SharedArrayBuffer[] {
    return this.regions.filter((r) => r.kind === "shared").map((r) => (r as { buffer: SharedArrayBuffer }).buffer);
  }

  /** Byte offsets (kernel-reported) of the ring words, relative to the rings region, with the
   * region's byte offset in its SharedArrayBuffer: what a Worker needs to read the counters. */
  get layout(): RingLayout {
    const r = this.regions[0]!;
    return {
      ringsByteOffset: r.bytes.byteOffset,
      sqHead: this.sqHead * 4,
      sqTail: this.sqTail * 4,
      cqHead: this.cqHead * 4,
      cqTail: this.cqTail * 4,
      cqOverflow: this.cqOverflowIdx * 4,
    };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Whether the kernel supports opcode `op` (IORING_REGISTER_PROBE). */
  supports(op: number): boolean {
    return this.capabilities.opcodes[op] === 1;
  }

  /** Throw the "needs Linux X" error when `op` is missing. */
  requireOp(op: number, where: string): void {
    if (this.capabilities.opcodes[op] !== 1)
      throw unsupported(where, `IORING_OP_${Q.opcodeName(op)}`, Q.opcodeSince(op), this.capabilities.kernel);
  }

  private ensureOpen(where: string): void {
    if (this.closed) throw closedError(where);
  }

  // ---- submission queue ----

  /** SQEs written and not yet published to the kernel. */
  get pending(): number {
    return (this.sqeTail - this.sqeFlushed) >>> 0;
  }

  /** Free SQ slots right now. */
  get sqSpace(): number {
    if (this.closed) throw closedError("Ring.sqSpace");
    // Acquire: the kernel's head store must be seen before the slots it released are reused.
    return this.sqEntries - ((this.sqeTail - Atomics.load(this.sqRing, this.sqHead)) >>> 0);
  }

  /** The next SQ slot. A slot whose prep never comes (an exception in between, or no prep at all)
   * goes out as a NOP that posts nothing, never as the SQE it held a lap earlier (see publish).
   * Prepare it at once, then call `track` or
   * `setUserData`. When the SQ is full, the prepared slots queued before the first unprepared one
   * are submitted to make room; an unprepared slot is never submitted by this call (its prep
   * would come too late), and if nothing can be submitted the call throws EBUSY. */
  getSqe(): number {
    // The kernel's SQ head only moves forward, so a stale copy can only under-count free slots:
    // it is reloaded (acquire, so slots the kernel consumed may be rewritten) only when the SQ
    // looks full, not once per SQE. A closed ring always looks full (close sets sqHeadSeen so),
    // and reloadSqHead refuses it first: one compare covers both.
    if ((this.sqeTail - this.sqHeadSeen) >>> 0 >= this.sqEntries) this.reloadSqHead();
    const slot = this.sqeTail & this.sqMask;
    this.sqeTail = (this.sqeTail + 1) >>> 0;
    // Only the state is written here; a slot still unprepared when it is published gets the idle
    // NOP then (publish), so the common path pays one store, not five.
    this.sqState[slot] = SLOT_TAKEN;
    return slot;
  }

  /** getSqe when the SQ looks full: reload the kernel's head, and make room if it is full. This
   * runs every lap of the SQ in a loop that keeps it busy, so it stays small enough for the JIT
   * to inline with getSqe: a call left in a loop's compiled code, even one made once per 128
   * SQEs, keeps the JIT from hoisting the loop's loads out of it (in the NOP loop at batch 64,
   * handing out, prepping and tracking an SQE took about 15 instead of 9 ns of JavaScript).
   * makeRoom, the rare part, is a call that a loop with room never makes. */
  private reloadSqHead(): void {
    if (this.closed) throw closedError("Ring.getSqe");
    this.sqHeadSeen = Atomics.load(this.sqRing, this.sqHead);
    if ((this.sqeTail - this.sqHeadSeen) >>> 0 >= this.sqEntries) this.makeRoom();
  }

  /** getSqe on a full SQ (cold): submit the prepared prefix, reload the head, refuse if still full. */
  private makeRoom(): void {
    this.publish(this.preparedPrefix());
    const toSubmit = (this.sqeFlushed - this.sqHeadSeen) >>> 0;
    if (toSubmit > 0) this.enter(toSubmit, 0, this.needsGetEvents() ? S.IORING_ENTER_GETEVENTS : 0, "submit");
    this.sqHeadSeen = Atomics.load(this.sqRing, this.sqHead);
    if ((this.sqeTail - this.sqHeadSeen) >>> 0 >= this.sqEntries) {
      const first = this.sqeFlushed & this.sqMask;
      const why =
        toSubmit === 0
          ? `slot ${first} was handed out (by getSqe() or begin()) and not prepared yet, and nothing before it can go: prepare it (or submit() to send it as a NOP) first`
          : "the kernel took no entries";
      throw new UringError("Ring.getSqe", EBUSY, `the submission queue is full: ${why}`);
    }
  }

  /** How many unpublished slots, from the first, hold a prepared SQE. */
  private preparedPrefix(): number {
    const state = this.sq.state;
    let n = 0;
    for (let t = this.sqeFlushed; t !== this.sqeTail; t = (t + 1) >>> 0) {
      if ((state[t & this.sqMask]! & SLOT_PREPARED) === 0) break;
      n++;
    }
    return n;
  }

  /** Keep this ring reachable while the kernel may hold work of it: a ring dropped without
   * close() with operations in flight must not have their buffers collected under the kernel.
   * One array store when SQEs are published; completions() lets go once nothing is in flight. */
  private pin(): void {
    pinnedRings[this.pinIndex] = this;
    this.pinned = true;
  }

  private unpin(): void {
    pinnedRings[this.pinIndex] = undefined;
    this.pinned = false;
  }

  /** Start an operation: the one submission idiom of bun-uring's own layers. Reserves an op-table
   * entry for `handler` (called with `data` for every CQE; `hold` stays referenced until the last
   * one), takes an SQ slot for it and returns the slot. Prep the slot with one prep function; when
   * the ring publishes it, it writes the entry's user_data (and `sqeFlags`, IOSQE_* bits) into the
   * SQE. Nothing is lost on failure: a full op table, a full SQ or a closed ring throws before
   * anything is reserved; a slot whose prep throws, or never comes, goes out as a NOP that posts
   * nothing and its entry is given back (the handler is not called). `userDataOf(slot)` names the
   * operation before then (its scratch memory, a cancel). `abandon(slot)` gives a begun slot back
   * at once (the caller failed after the prep). */
  begin<T>(handler: CompletionHandler<T>, data: T, hold?: unknown, sqeFlags?: number): number {
    // As in track: flags and refusals go the second way (beginChecked), so that this body stays
    // small enough for the JIT to inline into its caller's loop.
    if (this.closed || typeof handler !== "function" || sqeFlags !== undefined || this.ops.available === 0)
      return this.beginChecked(handler, data, hold, sqeFlags);
    // The slot first: getSqe may throw (full SQ, nothing prepared to submit) with nothing reserved.
    return this.bind(this.getSqe(), this.ops.take(handler, data, hold), 0);
  }

  /** begin() with IOSQE flags, or one that refuses (refuseBegin builds the precise error). */
  private beginChecked<T>(handler: CompletionHandler<T>, data: T, hold: unknown, sqeFlags: number | undefined): number {
    const f = sqeFlags === undefined ? 0 : sqeFlags;
    if (this.closed || typeof handler !== "function" || (f & TRACKABLE_FLAGS) !== f || this.ops.available === 0)
      this.refuseBegin(handler, f);
    return this.bind(this.getSqe(), this.ops.take(handler, data, hold), f);
  }

  /** The slot keeps its op-table entry and IOSQE flags until publish writes them into the SQE. */
  private bind(slot: number, entry: number, sqeFlags: number): number {
    this.boundEntry[slot] = entry;
    this.boundFlags[slot] = sqeFlags;
    this.sqState[slot] = SLOT_TAKEN | SLOT_BOUND;
    return slot;
  }

  /** Why begin refuses (cold). */
  private refuseBegin(handler: unknown, sqeFlags: number): never {
    if (this.closed) throw closedError("Ring.begin");
    if (typeof handler !== "function")
      throw invalidArgument("Ring.begin", `handler must be a function, got ${typeof handler}`);
    if (sqeFlags >>> 0 !== sqeFlags || sqeFlags > 0x7f)
      throw invalidArgument("Ring.begin", `sqeFlags must be IOSQE_* bits (0..0x7f), got ${shown(sqeFlags)}`);
    if (sqeFlags & Q.IOSQE_CQE_SKIP_SUCCESS)
      throw invalidArgument(
        "Ring.begin",
        "IOSQE_CQE_SKIP_SUCCESS on a tracked operation would leave its entry in flight (no CQE on success)",
      );
    throw this.ops.fullError();
  }

  /** The user_data of the operation `begin` bound to `slot`, until the ring publishes the slot. */
  userDataOf(slot: number): number {
    if (slot >>> 0 !== slot || (this.sqState[slot]! & SLOT_BOUND) === 0) {
      throw invalidArgument(
        "Ring.userDataOf",
        `slot ${shown(slot)} is not a slot from begin() that the ring has not submitted yet`,
      );
    }
    const i = this.boundEntry[slot]!;
    return this.ops.genOf(i) * U32_SPAN + i;
  }

  /** Give a slot from `begin` back now, prepared or not: it goes out as a NOP that posts nothing,
   * and its entry is freed without a handler call. For a caller that failed after the prep. */
  abandon(slot: number): void {
    if (slot >>> 0 !== slot || (this.sqState[slot]! & SLOT_BOUND) === 0) {
      throw invalidArgument(
        "Ring.abandon",
        `slot ${shown(slot)} is not a slot from begin() that the ring has not submitted yet`,
      );
    }
    this.ops.freeUnsubmitted(this.boundEntry[slot]!);
    retireSlot(this.sq, slot);
  }

  /** Attach an operation to a prepped slot: the handler gets every CQE of it; `hold` stays
   * referenced until the last one. Returns the user_data. `sqeFlags` are OR'd in (IOSQE_*). */
  track<T>(slot: number, handler: CompletionHandler<T>, data: T, hold?: unknown, sqeFlags?: number): number {
    // A bad slot would land the user_data in another SQE, a slot tracked twice would orphan the
    // first entry, a non-function handler would throw inside dispatch, and a full op table must
    // not leave a prepped SQE behind. close() marks every slot FREE, so the state compare refuses
    // a closed ring's slots too. Flags, refusals and the SQE writes live in trackChecked and
    // attach so that this body stays under JSC's inlining limit: the top tier inlines a callee
    // into its caller's loop only if its bytecode cost is at most 170
    // (maximumFunctionForCallInlineCandidateBytecodeCostForFTL; this body is about 160), or, once
    // the callee has top-tier code of its own, if that graph is small enough. A call instead of
    // the inlined body made a NOP's JavaScript half again as slow (bench/results/nop-ab-2026-12-05.md).
    if (
      slot >>> 0 !== slot ||
      this.sqState[slot] !== SLOT_PREPARED ||
      typeof handler !== "function" ||
      sqeFlags !== undefined ||
      this.ops.available === 0
    )
      return this.trackChecked(slot, handler, data, hold, sqeFlags);
    return this.attach(slot, this.ops.take(handler, data, hold));
  }

  /** track() with IOSQE flags, or one that refuses (refuseTrack builds the precise error).
   * TRACKABLE_FLAGS is every IOSQE bit but CQE_SKIP_SUCCESS: one test refuses a non-integer, a
   * negative value, unknown bits and the skip flag; unknown bits would be cut to 8 bits silently. */
  private trackChecked<T>(
    slot: number,
    handler: CompletionHandler<T>,
    data: T,
    hold: unknown,
    sqeFlags: number | undefined,
  ): number {
    const f = sqeFlags === undefined ? 0 : sqeFlags;
    if (
      slot >>> 0 !== slot ||
      this.sqState[slot] !== SLOT_PREPARED ||
      typeof handler !== "function" ||
      (f & TRACKABLE_FLAGS) !== f ||
      this.ops.available === 0
    )
      this.refuseTrack(slot, handler, f);
    const userData = this.attach(slot, this.ops.take(handler, data, hold));
    if (f !== 0) orSqeFlags(this.sq, slot, f);
    return userData;
  }

  /** The entry's index and generation go into the SQE as the two words of its user_data. */
  private attach(slot: number, i: number): number {
    const gen = this.ops.genOf(i);
    writeUserData(this.sq, slot, i, gen);
    this.sqState[slot] = SLOT_TRACKED;
    return gen * U32_SPAN + i;
  }

  /** Why `track` refuses (cold path): throws the precise error, turning a prepared slot that no
   * operation owns into the idle NOP first so the prepped operation never runs. */
  private refuseTrack(slot: number, handler: unknown, sqeFlags: number): never {
    if (this.closed) throw closedError("Ring.track");
    // Not a slot of this lap, or already owned: it is not this call's to touch.
    if (slot >>> 0 !== slot || slot >= this.sqEntries)
      throw invalidArgument(
        "Ring.track",
        `slot must be an integer 0..${this.sqEntries - 1} from getSqe(), got ${shown(slot)}`,
      );
    if (this.sq.state[slot]! & SLOT_OWNED) throw alreadyOwned("Ring.track", slot);
    if (this.sq.state[slot]! & SLOT_BOUND)
      throw invalidArgument(
        "Ring.track",
        `slot ${slot} came from begin(), which already gave it an operation: one slot carries one operation`,
      );
    checkPrepared(this.sq, slot, "Ring.track");
    if (typeof handler !== "function")
      this.refuseSlot(slot, invalidArgument("Ring.track", `handler must be a function, got ${typeof handler}`));
    if (sqeFlags >>> 0 !== sqeFlags || sqeFlags > 0x7f)
      this.refuseSlot(
        slot,
        invalidArgument("Ring.track", `sqeFlags must be IOSQE_* bits (0..0x7f), got ${shown(sqeFlags)}`),
      );
    // The op table frees an entry (and drops its hold) at the operation's last CQE; a success
    // with CQE_SKIP_SUCCESS posts none, so the entry would stay in flight forever.
    if (sqeFlags & Q.IOSQE_CQE_SKIP_SUCCESS)
      this.refuseSlot(
        slot,
        invalidArgument(
          "Ring.track",
          "IOSQE_CQE_SKIP_SUCCESS on a tracked operation would leave its entry in flight (no CQE on success); use setUserData for untracked SQEs",
        ),
      );
    if (this.ops.available === 0) this.refuseSlot(slot, this.ops.fullError());
    throw new UringError("Ring.track", EBUSY, "refused");
  }

  /** A slot handed out by getSqe cannot be taken back (the local tail has moved past it), so a
   * refused track turns it back into the idle NOP before throwing: the prepped operation (a send
   * from a buffer nobody holds now) never reaches the kernel. The NOP counts as prepared and
   * owned: nobody preps it again, and a full SQ may submit it. */
  private refuseSlot(slot: number, error: unknown): never {
    retireSlot(this.sq, slot);
    throw error;
  }

  /** Raw user_data for a prepped slot. For an operation outside the op table, keep it below 2^32:
   * tracked operations always have a generation (1 or more) in the high word, so such a value
   * never matches one, and its CQE goes to `onUnknownCqe`. (The op table's own user_data values,
   * from `ops.add`, go here too.) At most 2^53 - 1. */
  setUserData(slot: number, userData: number): void {
    if (this.closed) throw closedError("Ring.setUserData");
    checkPrepared(this.sq, slot, "Ring.setUserData");
    if (this.sq.state[slot]! & SLOT_BOUND)
      throw invalidArgument(
        "Ring.setUserData",
        `slot ${slot} came from begin(): the ring writes its operation's user_data when it submits it`,
      );
    // A second user_data would orphan the tracked operation's op-table entry (no CQE names it).
    if (this.sq.state[slot]! & SLOT_OWNED) throw alreadyOwned("Ring.setUserData", slot);
    if (!Number.isSafeInteger(userData) || userData < 0)
      throw invalidArgument("Ring.setUserData", `userData must be an integer 0..2^53-1, got ${shown(userData)}`);
    writeUserData(this.sq, slot, userData % U32_SPAN, Math.floor(userData / U32_SPAN));
    this.sq.state[slot] = SLOT_PREPARED | SLOT_OWNED;
  }

  /** Publish the written SQEs: one store of the SQ tail per batch. A slot still unprepared goes
   * out as the NOP getSqe left in it (counted in `unpreparedSqes`); every published slot is
   * FREE again, so a late prep of it is refused instead of lost. */
  flush(): number {
    if (this.closed) throw closedError("Ring.flush");
    const n = (this.sqeTail - this.sqeFlushed) >>> 0;
    if (n) this.publish(n);
    return n;
  }

  /** Publish the next `n` unpublished slots. */
  private publish(n: number): void {
    if (n === 0) return;
    // From here the kernel may hold work of this ring (see pin).
    if (!this.pinned) this.pin();
    const state = this.sqState,
      mask = this.sqMask;
    const end = (this.sqeFlushed + n) >>> 0;
    // Slot indices stay int32 (a u32 counter past 2^31 would make the loop work on doubles).
    let i = this.sqeFlushed & mask;
    for (let k = 0; k < n; k++) {
      // One compare for a slot that carries its user_data (track, setUserData); the rest is cold.
      const s = state[i]!;
      if (s !== SLOT_TRACKED) this.publishSlot(i, s);
      state[i] = SLOT_FREE;
      i = (i + 1) & mask;
    }
    // No SQPOLL thread reads the tail concurrently: the kernel reads it in io_submit_sqes,
    // inside this thread's next io_uring_enter, which is a full barrier after the SQE stores
    // (and the JIT does not move stores across the FFI call). So a plain store, no fence.
    this.sqRing[this.sqTail] = end;
    this.sqeFlushed = end;
  }

  /** publish() for a slot that does not carry its user_data yet: a slot from begin gets its
   * entry's user_data and flags if it was prepared, and gives the entry back if not; a slot
   * handed out and never prepared still holds its previous lap's SQE and goes out as a NOP. */
  private publishSlot(i: number, s: number): void {
    if (s & SLOT_BOUND) {
      const entry = this.boundEntry[i]!;
      if (s & SLOT_PREPARED) {
        writeUserData(this.sq, i, entry, this.ops.genOf(entry));
        const f = this.boundFlags[i]!;
        if (f !== 0) orSqeFlags(this.sq, i, f);
        return;
      }
      this.ops.freeUnsubmitted(entry);
    } else if (s !== SLOT_TAKEN) return;
    idleSlot(this.sq, i);
    this.unpreparedSqes++;
  }

  /** SQ flag word bits that need an enter with GETEVENTS: pending task work or a CQ overflow. */
  private needsGetEvents(): boolean {
    return (
      this.mustGetEvents ||
      (Atomics.load(this.sqRing, this.sqFlagsIdx) & (S.IORING_SQ_CQ_OVERFLOW | S.IORING_SQ_TASKRUN)) !== 0
    );
  }

  /** Submit everything queued. Returns the number of SQEs the kernel took. */
  submit(): number {
    this.ensureOpen("Ring.submit");
    this.flush();
    const toSubmit = (this.sqeTail - Atomics.load(this.sqRing, this.sqHead)) >>> 0;
    const flags = this.needsGetEvents() ? S.IORING_ENTER_GETEVENTS : 0;
    if (toSubmit === 0 && flags === 0) return 0;
    return this.enter(toSubmit, 0, flags, "submit");
  }

  /** Submit, then wait until at least `waitNr` CQEs are ready or `timeoutMs` passes (no
   * timeout: wait indefinitely). Returns the number of SQEs submitted; a timeout is not an error. */
  submitAndWait(waitNr = 1, timeoutMs?: number): number {
    this.ensureOpen("Ring.submitAndWait");
    if (waitNr >>> 0 !== waitNr)
      throw invalidArgument("Ring.submitAndWait", `waitNr must be an integer >= 0, got ${shown(waitNr)}`);
    this.flush();
    const toSubmit = (this.sqeTail - Atomics.load(this.sqRing, this.sqHead)) >>> 0;
    if (timeoutMs === undefined) return this.enter(toSubmit, waitNr, S.IORING_ENTER_GETEVENTS, "submitAndWait");
    if (!(timeoutMs >= 0) || !Number.isFinite(timeoutMs))
      throw invalidArgument("Ring.submitAndWait", `timeoutMs must be a finite number >= 0, got ${shown(timeoutMs)}`);
    if (!hasEnter2 || !(this.features & S.IORING_FEAT_EXT_ARG)) {
      throw unsupported(
        "Ring.submitAndWait",
        "a wait with a timeout (IORING_FEAT_EXT_ARG and liburing's io_uring_enter2)",
        "5.11",
        this.capabilities.kernel,
      );
    }
    const ns = Math.round(timeoutMs * 1e6);
    const ts = S.GETEVENTS_ARG.size;
    // Two u32 halves per field, not setBigInt64: a BigInt is a heap object, one per wait.
    const sec = Math.floor(ns / 1e9);
    const wv = this.waitView;
    wv.setUint32(ts + S.KERNEL_TIMESPEC.tv_sec, sec >>> 0, true);
    wv.setUint32(ts + S.KERNEL_TIMESPEC.tv_sec + 4, Math.floor(sec / U32_SPAN) >>> 0, true);
    wv.setUint32(ts + S.KERNEL_TIMESPEC.tv_nsec, ns % 1e9, true);
    wv.setUint32(ts + S.KERNEL_TIMESPEC.tv_nsec + 4, 0, true);
    return this.enter(
      toSubmit,
      waitNr,
      S.IORING_ENTER_GETEVENTS | S.IORING_ENTER_EXT_ARG,
      "submitAndWait",
      this.waitArgAddress,
      S.GETEVENTS_ARG.size,
    );
  }

  /** Run pending task work and flush overflowed CQEs into the CQ (io_uring_get_events). */
  getEvents(): void {
    this.ensureOpen("Ring.getEvents");
    this.enter(0, 0, S.IORING_ENTER_GETEVENTS, "getEvents");
  }

  private enter(
    toSubmit: number,
    minComplete: number,
    flags: number,
    what: string,
    arg: number | null = null,
    argSz = 0,
  ): number {
    for (;;) {
      const ret = sys.io_uring_enter2(this.enterFd, toSubmit, minComplete, flags | this.enterFlags, arg, argSz);
      if (ret >= 0) return ret;
      const e = -ret;
      if (e === ETIME) return 0;
      if (e === EINTR) {
        // A signal (JSC suspends threads with them) ended the wait; go on with what is left.
        toSubmit = (this.sqeTail - Atomics.load(this.sqRing, this.sqHead)) >>> 0;
        continue;
      }
      if ((e === EBUSY || e === EAGAIN) && toSubmit > 0) {
        // EBUSY: the CQ is full and its overflow could not be flushed (kernels that cannot queue
        // overflow). EAGAIN: nothing was submitted because the kernel could not allocate a
        // request (io_submit_sqes, memory pressure). Reaping frees CQ room and requests alike:
        // do that, then retry once more.
        this.completions();
        toSubmit = (this.sqeTail - Atomics.load(this.sqRing, this.sqHead)) >>> 0;
        const again = sys.io_uring_enter2(
          this.enterFd,
          toSubmit,
          0,
          (flags & ~S.IORING_ENTER_EXT_ARG) | this.enterFlags,
          null,
          0,
        );
        if (again >= 0) return again;
        const why =
          -again === EBUSY
            ? "the completion queue is full and its overflow could not be flushed"
            : -again === EAGAIN
              ? "the kernel could not allocate a request (memory pressure)"
              : "the retry after reaping failed";
        throw new UringError("io_uring_enter", -again, `${what}: ${why}`);
      }
      throw new UringError("io_uring_enter", e, what);
    }
  }

  // ---- completion queue ----

  /** CQEs ready in the CQ right now (without entering the kernel). */
  get cqReady(): number {
    if (this.closed) throw closedError("Ring.cqReady");
    return (Atomics.load(this.cqRing, this.cqTail) - this.cqHeadLocal) >>> 0;
  }

  /** CQEs the kernel dropped (only without IORING_FEAT_NODROP). */
  get cqOverflow(): number {
    if (this.closed) throw closedError("Ring.cqOverflow");
    return Atomics.load(this.cqRing, this.cqOverflowIdx);
  }

  /** Whether the kernel signals a registered eventfd for new CQEs (liburing's
   * io_uring_cq_eventfd_toggle: the IORING_CQ_EVENTFD_DISABLED bit of the CQ flags, 5.8+). A
   * thread that is about to look at the CQ anyway turns signalling off to spare the kernel the
   * eventfd write and the poll wake-up for every CQE; it must look at the CQ again after turning
   * it back on, since CQEs posted in between signalled nothing. */
  setEventfdEnabled(enabled: boolean): void {
    if (this.closed) throw closedError("Ring.setEventfdEnabled");
    const i = this.cqFlagsIdx;
    if (i < 0)
      throw unsupported(
        "Ring.setEventfdEnabled",
        "the CQ flags word (IORING_CQ_EVENTFD_DISABLED)",
        "5.8",
        this.capabilities.kernel,
      );
    // Only this thread writes the CQ flags (the kernel reads them), so a plain read-modify-write
    // is enough; the store is sequentially consistent, so a CQE posted after it sees the new bit.
    const old = this.cqRing[i]!;
    const next = enabled ? old & ~S.IORING_CQ_EVENTFD_DISABLED : old | S.IORING_CQ_EVENTFD_DISABLED;
    if (next !== old) Atomics.store(this.cqRing, i, next);
  }

  /** Whether setEventfdEnabled can work here (the kernel has the CQ flags word, 5.8+). */
  get canToggleEventfd(): boolean {
    return this.cqFlagsIdx >= 0;
  }

  /** Whether a registered eventfd is signalled for new CQEs (see setEventfdEnabled). */
  get eventfdEnabled(): boolean {
    if (this.closed) throw closedError("Ring.eventfdEnabled");
    return this.cqFlagsIdx < 0 || (this.cqRing[this.cqFlagsIdx]! & S.IORING_CQ_EVENTFD_DISABLED) === 0;
  }

  /** Copy up to batch.capacity CQEs into `batch` and advance the CQ head once. Returns the count.
   * CQE_MIXED filler entries are skipped; 32-byte entries fill `batch.big`. */
  copyCqes(): number {
    if (this.closed) throw closedError("Ring.copyCqes");
    const batch = this.batch;
    const cqes = this.cqes;
    const mask = this.cqMask;
    const words = this.cqeWords;
    const big = this.cqeWords === 8 || this.mixed;
    let head = this.cqHeadLocal;
    // Acquire: CQE contents written before the kernel's tail store are visible after this load.
    const tail = Atomics.load(this.cqRing, this.cqTail);
    // The kernel never runs more than the CQ's size ahead of the head. A tail further out was not
    // written by it (the ring words are in memory a Worker may hold through sharedBuffers): copying
    // up to it would dispatch garbage CQEs, so nothing is copied.
    if ((tail - head) >>> 0 > this.cqEntries) this.refuseCqTail(head, tail);
    let n = 0;
    while (head !== tail && n < batch.capacity) {
      const w = (head & mask) * words;
      const flags = cqes[w + 3]!;
      if (this.mixed && flags & Q.IORING_CQE_F_SKIP) {
        head = (head + 1) >>> 0;
        continue;
      }
      batch.udLo[n] = cqes[w]!;
      batch.udHi[n] = cqes[w + 1]!;
      batch.res[n] = cqes[w + 2]! | 0;
      batch.flags[n] = flags;
      if (big) {
        const b = n << 2;
        if (words === 8 || flags & Q.IORING_CQE_F_32) {
          batch.big[b] = cqes[w + 4]!;
          batch.big[b + 1] = cqes[w + 5]!;
          batch.big[b + 2] = cqes[w + 6]!;
          batch.big[b + 3] = cqes[w + 7]!;
        } else {
          batch.big[b] = batch.big[b + 1] = batch.big[b + 2] = batch.big[b + 3] = 0;
        }
      }
      head = (head + (this.mixed && flags & Q.IORING_CQE_F_32 ? 2 : 1)) >>> 0;
      n++;
    }
    if (head !== this.cqHeadLocal) {
      this.cqHeadLocal = head;
      // Release: our reads of these CQEs are done before the kernel may overwrite them.
      Atomics.store(this.cqRing, this.cqHead, head);
    }
    batch.count = n;
    return n;
  }

  /** Off the hot path: the error for a CQ tail the kernel cannot have written. */
  private refuseCqTail(head: number, tail: number): never {
    throw new UringError(
      "Ring.completions",
      ERRNO.EIO!,
      `the CQ tail (${tail}) is ${(tail - head) >>> 0} entries past the head (${head}), but the CQ holds ${this.cqEntries}: the ring's shared memory was overwritten (by a Worker holding ring.sharedBuffers?); no CQE was dispatched`,
      "the ring memory is no longer trustworthy: close the ring and open a new one; give Workers the counters read-only",
    );
  }

  /** Reap and dispatch every completion available now: enter with GETEVENTS first when the
   * kernel holds some back (DEFER_TASKRUN, task work, CQ overflow), copy a batch, advance the
   * head, then run the handlers; repeat until the CQ and the overflow list are empty. Returns
   * the number of CQEs handled. Re-entrant calls from a handler return 0. */
  completions(): number {
    if (this.closed) throw closedError("Ring.completions");
    if (this.dispatching) return 0;
    let total = 0;
    if (this.cqReady === 0 && this.needsGetEvents()) this.getEvents();
    for (;;) {
      const n = this.copyCqes();
      if (n > 0) this.dispatch(n);
      total += n;
      // A handler closed the ring: the rest of the batch was abandoned with it.
      if (this.closed) return total;
      const overflow = (Atomics.load(this.sqRing, this.sqFlagsIdx) & S.IORING_SQ_CQ_OVERFLOW) !== 0;
      if (overflow) {
        // The kernel queued CQEs that did not fit (IORING_FEAT_NODROP); GETEVENTS moves them in.
        this.getEvents();
        continue;
      }
      if (n < this.batch.capacity && this.cqReady === 0) break;
    }
    // Nothing of this ring is in the kernel any more: it may be collected if dropped.
    if (this.pinned && this.ops.inflight === 0) this.unpin();
    return total;
  }

  /** Run the handlers of a copied batch. A handler that throws does not cost the CQEs after it
   * (they are already consumed from the CQ): every handler runs, then the first error is thrown.
   * The try sits outside the per-CQE loop (dispatchRun), which resumes after a throwing handler. */
  private dispatch(n: number): void {
    let failure: unknown = undefined;
    let failed = false;
    let i = 0;
    this.dispatching = true;
    while (i < n) {
      try {
        i = this.dispatchRun(i, n);
      } catch (e) {
        if (!failed) {
          failed = true;
          failure = e;
        }
        i = this.dispatchAt + 1;
      }
    }
    this.dispatching = false;
    if (failed) throw failure;
  }

  /** CQEs from..n-1 of the batch; `dispatchAt` names the one whose handler is running. */
  private dispatchRun(from: number, n: number): number {
    const b = this.batch;
    const ops = this.ops;
    for (let i = from; i < n; i++) {
      this.dispatchAt = i;
      const flags = b.flags[i]!;
      if (!ops.complete(b.udLo[i]!, b.udHi[i]!, b.res[i]!, flags, (flags & Q.IORING_CQE_F_MORE) !== 0, i)) {
        // A handler closed the ring: close() gave every live operation its last call, so the
        // rest of the batch names none (checked here, off the path of a matching CQE).
        if (this.closed) return n;
        this.unknownCqes++;
        this.onUnknownCqe?.(b.userDataAt(i), b.res[i]!, flags, i);
      }
    }
    return n;
  }

  /** Submit, wait for at least `waitNr` completions (bounded by `timeoutMs` when given), and
   * dispatch everything ready. Returns the number of CQEs handled. */
  run(waitNr = 1, timeoutMs?: number): number {
    if (this.dispatching && waitNr > 0) this.refuseWait("Ring.run");
    if (this.cqReady < waitNr) this.submitAndWait(waitNr, timeoutMs);
    else this.submit();
    return this.completions();
  }

  /** Dispatch until `done()` is true, waiting as needed; throws ETIME after `timeoutMs`. */
  runUntil(done: () => boolean, timeoutMs = 30_000): void {
    if (this.dispatching) this.refuseWait("Ring.runUntil");
    const deadline = performance.now() + timeoutMs;
    while (!done()) {
      const left = deadline - performance.now();
      if (left <= 0)
        throw new UringError(
          "Ring.runUntil",
          ETIME,
          `condition not met within ${timeoutMs} ms (${this.ops.inflight} operations in flight)`,
        );
      this.run(1, Math.min(left, 1000));
    }
  }

  /** Whether a completion handler of this ring is running now (a wait from here cannot work). */
  get inHandler(): boolean {
    return this.dispatching;
  }

  /** Throw EDEADLK when called from inside a completion handler of this ring, where no wait can
   * see its result (synchronous helpers check this before they start anything). */
  assertCanWait(where: string): void {
    if (this.dispatching) this.refuseWait(where);
  }

  /** A wait from inside a completion handler: the ring dispatches nothing until the handler
   * returns, so the wait could only spin until its timeout. */
  private refuseWait(where: string): never {
    if (this.closed) throw closedError(where);
    throw new UringError(
      where,
      ERRNO.EDEADLK!,
      "called from inside a completion handler of this ring: nothing is dispatched until the handler returns, so the wait could never see its result",
      "start the operation with a callback (submit* / track) instead of a synchronous helper, or call it after the handler returns",
    );
  }

  // ---- registration ----

  /** io_uring_register(2) on this ring: returns the result, throws UringError on -errno. */
  register(opcode: number, arg: NodeJS.TypedArray | DataView | null, nrArgs: number): number {
    const name = R.REGISTER_NAMES[opcode] ?? `io_uring_register(${opcode})`;
    this.ensureOpen(name);
    // the FFI layer would pass a bare ArrayBuffer as a wrong pointer (oven-sh/bun#22225), and a
    // detached or empty view has no memory at all: refuse both before the kernel reads `arg`.
    if (opcode >>> 0 !== opcode || opcode > 255)
      throw invalidArgument("Ring.register", `opcode must be an integer 0..255, got ${shown(opcode)}`);
    if (arg !== null && (!ArrayBuffer.isView(arg) || arg.byteLength === 0)) {
      throw invalidArgument(
        name,
        arg !== null && ArrayBuffer.isView(arg)
          ? "arg is a detached or empty view"
          : "arg must be a typed array, a DataView or null",
      );
    }
    if (nrArgs >>> 0 !== nrArgs) throw invalidArgument(name, `nrArgs must be an integer >= 0, got ${shown(nrArgs)}`);
    const ret = sys.io_uring_register(this.fd, opcode, arg, nrArgs);
    if (ret < 0) throw new UringError(name, -ret);
    return ret;
  }

  /** Enable a ring created with `disabled: true` (IORING_REGISTER_ENABLE_RINGS). */
  enable(): void {
    this.register(R.IORING_REGISTER_ENABLE_RINGS, null, 0);
    this.notEnabled = false;
  }

  // ---- teardown ----

  /** Cancel what is in flight, wait (bounded) for every operation's last CQE so each buffer is
   * released through its handler, unregister, and free the ring. Operations that still have not
   * finished get one last handler call with -ECANCELED (flags 0, index -1). Idempotent. Later calls on the
   * ring throw EBADF "the ring is closed". */
  close(timeoutMs = 2000): void {
    // `closing` as well: a handler that the cancel round runs may call close() again, and the
    // teardown below (which closes the fd) must run once.
    if (this.closed || this.closing) return;
    this.closing = true;
    try {
      // A ring never enabled has taken no SQE: nothing to cancel or wait for. Called from a
      // handler (dispatching), the ring cannot wait for its own CQEs: everything is abandoned.
      if (this.ops.inflight > 0 && !this.notEnabled && !this.dispatching) this.cancelAll(timeoutMs);
    } catch {
      // Best effort: whatever the cancel round did not finish is abandoned below.
    } finally {
      this.closed = true;
      // getSqe's one compare sends a closed ring to reloadSqHead, which refuses it.
      this.sqHeadSeen = (this.sqeTail - this.sqEntries) >>> 0;
      dropped.unregister(this.remains);
      // No slot of a closed ring can be prepared any more, even one handed out before.
      this.sq.state.fill(SLOT_FREE);
      // Requests still in flight keep the kernel's teardown going for as long as they live (a
      // zero-copy notification waits for the peer to acknowledge the data), and the kernel writes
      // the CQ into the ring memory until then: memory it may still write is never handed back.
      const stuck = this.ops.inflight > 0 && !this.notEnabled;
      releaseRemains(this.remains, stuck);
      this.pinned = false;
      if (stuck) this.retainedBytes = this.regions.reduce((a, r) => a + r.byteLength, 0);
      // Whatever the cancel round did not finish ends here, with ECANCELED and index -1.
      this.abandoned = this.ops.abandon(-ECANCELED);
    }
  }

  /** Best effort: cancel every request, then dispatch until nothing is in flight or the time is
   * up. The cancel goes out again each round, so an operation a handler armed meanwhile is
   * cancelled too. On 5.19+ one ASYNC_CANCEL with IORING_ASYNC_CANCEL_ANY | _ALL covers every
   * request, multishot ones included; older kernels refuse those flags (EINVAL), so there each
   * live operation gets its own cancel by user_data. Without timed waits (IORING_FEAT_EXT_ARG,
   * 5.11) the rounds poll the CQ with short sleeps instead of waiting in the kernel. */
  private cancelAll(timeoutMs: number): void {
    const cancelAny = this.cancelAnySupported;
    const timedWait = hasEnter2 && (this.features & S.IORING_FEAT_EXT_ARG) !== 0;
    const deadline = performance.now() + timeoutMs;
    while (this.ops.inflight > 0) {
      const targets = cancelAny ? [0] : this.ops.liveUserData();
      for (const target of targets) {
        if (this.sqSpace < 1) this.submit();
        const slot = this.getSqe();
        prepCancel64(this.sq, slot, target, cancelAny ? Q.IORING_ASYNC_CANCEL_ANY | Q.IORING_ASYNC_CANCEL_ALL : 0);
        this.setUserData(slot, 0);
      }
      const left = deadline - performance.now();
      if (left <= 0) break;
      if (timedWait) {
        this.run(1, Math.min(left, 100));
      } else {
        this.submit();
        const roundEnd = performance.now() + Math.min(left, 100);
        while (this.ops.inflight > 0 && performance.now() < roundEnd) {
          if (this.completions() === 0) Bun.sleepSync(1);
        }
      }
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

interface SetupResult {
  fd: number;
  params: Uint8Array;
  /** [rings (SQ ring, and CQ ring with SINGLE_MMAP), SQEs, separate CQ ring when not single] */
  regions: Region[];
}

function baseParams(flags: number, cqEntries: number | undefined): Uint8Array {
  const params = new Uint8Array(S.PARAMS.size);
  const dv = new DataView(params.buffer);
  dv.setUint32(S.PARAMS.flags, flags, true);
  if (cqEntries !== undefined) dv.setUint32(S.PARAMS.cq_entries, cqEntries, true);
  return params;
}

/** Bytes of the SQ+CQ rings region for the library-allocated layout: a generous header page, the
 * CQEs, and the SQ index array. The kernel computes the same layout smaller (its header is 64
 * bytes on 6.18); the ring checks the offsets it reports against this size. */
export function ringsRegionBytes(sqEntries: number, cqEntries: number, cqeSize: number): number {
  return pageAlign(4096 + cqEntries * cqeSize + sqEntries * 4 + 64);
}

/** Bytes of the SQE array region. */
export function sqeRegionBytes(sqEntries: number): number {
  return pageAlign(sqEntries * Q.SQE_SIZE);
}

function setupShared(
  entries: number,
  flags: number,
  sqEntries: number,
  cqEntries: number,
  cqeSize: number,
  cqOpt: number | undefined,
): SetupResult | { error: UringError } {
  const rings = allocShared(ringsRegionBytes(sqEntries, cqEntries, cqeSize));
  const sqes = allocShared(sqeRegionBytes(sqEntries));
  const params = baseParams(flags | S.IORING_SETUP_NO_MMAP, cqOpt);
  const dv = new DataView(params.buffer);
  dv.setBigUint64(S.PARAMS.sq_off + S.SQRING_OFFSETS.user_addr, BigInt(sqes.address), true);
  dv.setBigUint64(S.PARAMS.cq_off + S.CQRING_OFFSETS.user_addr, BigInt(rings.address), true);
  // Into the fd ledger the moment it exists: no function call between the syscall and the store
  // (src/ring/reclaim.ts fdLedger).
  const at = pendingFd("ring");
  const fd = sys.io_uring_setup(entries, params);
  fdLedger[at] = fd;
  confirmFd(at, fd);
  if (fd < 0) {
    if (-fd === EINVAL || -fd === EFAULT)
      return { error: new UringError("io_uring_setup", -fd, "IORING_SETUP_NO_MMAP with library memory") };
    throw new UringError("io_uring_setup", -fd, `flags 0x${(flags | S.IORING_SETUP_NO_MMAP).toString(16)}`);
  }
  // The kernel's own view of the layout must fit the memory it pinned from us.
  const sqn = dv.getUint32(S.PARAMS.sq_entries, true),
    cqn = dv.getUint32(S.PARAMS.cq_entries, true);
  const cqEnd = dv.getUint32(S.PARAMS.cq_off + S.CQRING_OFFSETS.cqes, true) + cqn * cqeSize;
  const arr = dv.getUint32(S.PARAMS.sq_off + S.SQRING_OFFSETS.array, true);
  const sqEnd = flags & S.IORING_SETUP_NO_SQARRAY ? 0 : arr + sqn * 4;
  if (Math.max(cqEnd, sqEnd) > rings.byteLength || sqn * Q.SQE_SIZE > sqes.byteLength) {
    c.close(fd);
    disownFd(fd);
    throw new UringError(
      "io_uring_setup",
      EINVAL,
      `kernel ring layout (${Math.max(cqEnd, sqEnd)} bytes) exceeds the ${rings.byteLength} bytes bun-uring allocated`,
    );
  }
  return { fd, params, regions: [rings, sqes] };
}

function setupMapped(entries: number, flags: number, cqOpt: number | undefined): SetupResult {
  const params = baseParams(flags, cqOpt);
  const at = pendingFd("ring");
  const fd = sys.io_uring_setup(entries, params);
  fdLedger[at] = fd;
  confirmFd(at, fd);
  if (fd < 0) throw new UringError("io_uring_setup", -fd, `entries ${entries}, flags 0x${flags.toString(16)}`);
  const dv = new DataView(params.buffer);
  const sqn = dv.getUint32(S.PARAMS.sq_entries, true),
    cqn = dv.getUint32(S.PARAMS.cq_entries, true);
  const feats = dv.getUint32(S.PARAMS.features, true);
  const cqeSize = flags & S.IORING_SETUP_CQE32 ? Q.CQE.size32 : Q.CQE.size;
  const sqArr =
    flags & S.IORING_SETUP_NO_SQARRAY ? 0 : dv.getUint32(S.PARAMS.sq_off + S.SQRING_OFFSETS.array, true) + sqn * 4;
  const cqBytes = dv.getUint32(S.PARAMS.cq_off + S.CQRING_OFFSETS.cqes, true) + cqn * cqeSize;
  const regions: Region[] = [];
  // A sweep after a Worker's termination unmaps every mapping of the ring's inode (each holds the
  // ring open by itself): src/ring/reclaim.ts.
  const map = (bytes: number, offset: number, what: string): MappedRegion => {
    const r = mapFd(fd, bytes, offset, what);
    regions.push(r);
    return r;
  };
  let cq: MappedRegion;
  try {
    if (feats & S.IORING_FEAT_SINGLE_MMAP) {
      cq = map(Math.max(sqArr, cqBytes), S.IORING_OFF_SQ_RING, "SQ/CQ rings");
      map(sqn * Q.SQE_SIZE, S.IORING_OFF_SQES, "SQE array");
    } else {
      map(sqArr, S.IORING_OFF_SQ_RING, "SQ ring");
      map(sqn * Q.SQE_SIZE, S.IORING_OFF_SQES, "SQE array");
      cq = map(cqBytes, S.IORING_OFF_CQ_RING, "CQ ring");
    }
  } catch (e) {
    for (const r of regions) unmapRegion(r as MappedRegion);
    c.close(fd);
    disownFd(fd);
    throw e;
  }
  // Where the CQ is, so that a sweep finds the fds in CQEs a terminated Worker never handled
  // (src/ring/reclaim.ts watchCqeFds). Mixed-size CQEs have no fixed slot per CQE.
  if ((flags & S.IORING_SETUP_CQE_MIXED) === 0)
    ownRingCq(fd, cq.address, cq.byteLength, {
      head: dv.getUint32(S.PARAMS.cq_off + S.CQRING_OFFSETS.head, true),
      tail: dv.getUint32(S.PARAMS.cq_off + S.CQRING_OFFSETS.tail, true),
      cqes: dv.getUint32(S.PARAMS.cq_off + S.CQRING_OFFSETS.cqes, true),
      entries: cqn,
      cqeBytes: cqeSize,
    });
  return { fd, params, regions };
}

/** A printable capability report. */
export function describeCapabilities(cap: Capabilities): string {
  const lines: string[] = [];
  lines.push(`kernel            ${cap.kernel}`);
  lines.push(`ring memory       ${cap.memory} — ${cap.memoryReason}`);
  lines.push(`registered ring   ${cap.registeredRing ? "yes" : "no"}`);
  lines.push(
    `ring              ${cap.sqEntries} SQEs, ${cap.cqEntries} CQEs, flags ${
      S.SETUP_FLAGS.filter((f) => cap.ringFlags & f.value)
        .map((f) => f.name)
        .join("|") || "none"
    }`,
  );
  lines.push(
    `setup flags       ${S.SETUP_FLAGS.filter((f) => cap.setupFlags & f.value)
      .map((f) => f.name)
      .join(" ")}`,
  );
  lines.push(
    `features          ${S.FEATURES.filter((f) => cap.features & f.value)
      .map((f) => f.name)
      .join(" ")}`,
  );
  const ops = Q.OPCODES.map((o) => `${o.name}${cap.opcodes[o.op] ? "" : `(no: ${o.since}+)`}`);
  lines.push(`opcodes           ${ops.join(" ")}`);
  lines.push(`register query    ${cap.query ? "yes" : "no (6.18+)"}`);
  return lines.join("\n");
}
