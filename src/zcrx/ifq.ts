// Registering a zcrx interface queue (IORING_REGISTER_ZCRX_IFQ, 6.15) on a Ring: the area, the
// refill ring region and io_uring_zcrx_ifq_reg are written here in TypeScript, the kernel's
// answers (rounded rq_entries, refill offsets, zcrx_id, rq_area_token, mmap_offset) read back,
// and the refill ring mapped where the kernel said. Mirrors liburing's io_uring_register_ifq
// plus the setup in examples/zcrx.c.
import { addressOf, c, sys } from "../../ffi/index.ts";
import * as S from "../abi/setup.ts";
import * as Q from "../abi/sqe.ts";
import * as R from "../abi/register.ts";
import * as Z from "../abi/zcrx.ts";
import { EINVAL, ENODEV } from "../abi/errno.ts";
import { IFNAMSIZ } from "../abi/net.ts";
import { UringError, closedError, invalidArgument, unsupported, shown } from "../error.ts";
import type { Ring } from "../ring/ring.ts";
import {
  allocShared,
  mapFd,
  retireShared,
  unmapRegion,
  PAGE_SIZE,
  type Region,
  type MappedRegion,
  type SharedRegion,
} from "../ring/memory.ts";
import { heapFreeMemory } from "../ring/worker-memory.ts";
import { kernelRelease } from "../ring/kernel.ts";
import { prepRecvZc } from "../ops/prep.ts";
import { type AreaMemory, type ZcrxArea, createArea } from "./area.ts";
import {
  DEFAULT_AREA_BYTES,
  DEFAULT_REFILL_HEADER,
  areaChunks,
  refillRingBytes,
  refillRingBytesWithStats,
  refillStatsOffset,
  roundUpPowerOfTwo,
  zcrxCqEntries,
} from "./sizes.ts";
import { type ZcrxQuery, queryZcrx } from "./query.ts";
import { explainRegisterError } from "./errors.ts";
import { type RefillLayout, type ReceiverOptions, type ZcrxSource, ZcrxReceiver } from "./receiver.ts";

const WHERE = "IORING_REGISTER_ZCRX_IFQ";

export interface ZcrxIfqOptions {
  /** The NIC by name (resolved with if_nametoindex) or, instead, by `ifindex`. */
  ifname?: string;
  /** The NIC by interface index. */
  ifindex?: number;
  /** Hardware receive queue to take over. Default 0. */
  rxq?: number;
  /** ZCRX_REG_NODEV (Linux 7.1): no device; the kernel copies any TCP socket's data into the
   * area. Every RECV_ZC path runs without a zero-copy NIC. */
  nodev?: boolean;
  /** ZCRX events and copy counters (ZCRX_FEATURE_EVENT, Linux 7.2): the kernel posts a CQE when
   * it had to copy data into the area instead of receiving it in place (ZCRX_EVENT_COPY: the
   * flow came in on another queue, RSS, a bond) or found no free buffer
   * (ZCRX_EVENT_ALLOC_FAIL), and counts copied CQEs and bytes (copyStats()). Default: on where
   * the kernel reports the feature; true on an older kernel is refused with the version. */
  events?: boolean;
  /** Area size in bytes (rounded up to pages). Default 16 MiB. */
  areaBytes?: number;
  /** Area memory; see AreaMemory. Default "shared" in the main thread, "mmap" in a Worker. */
  areaMemory?: AreaMemory;
  /** Refill ring entries (the kernel rounds up to a power of two; at most 32768). Default: one
   * per area buffer, between 64 and 32768. */
  rqEntries?: number;
  /** "kernel" (default): the kernel allocates the refill ring and we map it at the mmap_offset it
   * returns. "user": a page-aligned SharedArrayBuffer we own (IORING_MEM_REGION_TYPE_USER). */
  refillMemory?: "kernel" | "user";
  /** Receive buffer size (a power of two >= the page size; needs ZCRX_FEATURE_RX_PAGE_SIZE).
   * Default 0: one page. */
  rxBufLen?: number;
  /** Check the ring's flags before the syscall (default true). false lets the kernel judge. */
  checkRing?: boolean;
}

/** Whether `ring` was set up the way zcrx requires; null when it was, else what is missing. */
export function zcrxRingProblem(ring: Ring): string | null {
  const f = ring.flags;
  const missing: string[] = [];
  if (!(f & S.IORING_SETUP_DEFER_TASKRUN)) missing.push("IORING_SETUP_DEFER_TASKRUN");
  if (!(f & S.IORING_SETUP_SINGLE_ISSUER)) missing.push("IORING_SETUP_SINGLE_ISSUER");
  if (!(f & (S.IORING_SETUP_CQE32 | S.IORING_SETUP_CQE_MIXED)))
    missing.push("IORING_SETUP_CQE32 or IORING_SETUP_CQE_MIXED");
  return missing.length ? `the ring lacks ${missing.join(", ")}` : null;
}

function cString(s: string): Uint8Array {
  const b = new TextEncoder().encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/** ifindex of `ifname` in this network namespace (if_nametoindex(3)); throws ENODEV. */
export function ifIndexOf(ifname: string): number {
  if (typeof ifname !== "string" || ifname.length === 0 || ifname.length > IFNAMSIZ - 1)
    throw invalidArgument(
      "if_nametoindex",
      `interface names are 1..${IFNAMSIZ - 1} bytes, got ${JSON.stringify(ifname)}`,
    );
  const idx = c.if_nametoindex(cString(ifname));
  if (idx === 0)
    throw new UringError(
      "if_nametoindex",
      ENODEV,
      ifname,
      "no such network interface in this namespace: list them with `ip -br link`",
    );
  return idx;
}

export class ZcrxIfq {
  /** zcrx_id: what RECV_ZC puts in sqe.zcrx_ifq_idx. */
  readonly id: number;
  readonly ifindex: number;
  readonly ifname: string | undefined;
  readonly rxq: number;
  readonly nodev: boolean;
  /** rq_entries as the kernel rounded it. */
  readonly rqEntries: number;
  /** rq_area_token (area id << 48), OR'd into every refill entry's offset. */
  readonly areaToken: bigint;
  readonly area: ZcrxArea;
  readonly refill: RefillLayout;
  /** "kernel": mapped at `refillMmapOffset`; "user": our SharedArrayBuffer. */
  readonly refillMemory: "kernel" | "user";
  readonly refillMmapOffset: number;
  readonly refillBytes: number;
  /** The kernel's IO_URING_QUERY_ZCRX answer (null before 6.19). */
  readonly query: ZcrxQuery | null;
  /** Whether the kernel posts ZCRX events for this ifq and keeps its copy counters (7.2). */
  readonly events: boolean;
  /** The user_data of this ifq's event CQEs: below 2^32, so the op table never issues it and the
   * CQE reaches Ring.onUnknownCqe, where the receiver's source picks it up. */
  readonly eventUserData: number;
  /** u32 index of struct zcrx_stats in the refill region's words (-1 without events). */
  private readonly statsIndex: number;
  private readonly armCtrl: Uint8Array;
  private readonly ring: Ring;
  private readonly refillRegion: Region;
  private readonly ctrl: Uint8Array;
  private closed = false;

  /** Register an ifq on `ring` (see ZcrxIfqOptions). Throws UringError with the fix on failure. */
  static register(ring: Ring, options: ZcrxIfqOptions = {}): ZcrxIfq {
    return new ZcrxIfq(ring, options);
  }

  private constructor(ring: Ring, o: ZcrxIfqOptions) {
    if (ring.isClosed) throw closedError(WHERE);
    const release = kernelRelease();
    if (o.checkRing !== false) {
      const problem = zcrxRingProblem(ring);
      if (problem) {
        throw new UringError(
          WHERE,
          EINVAL,
          problem,
          "zero-copy receive needs a ring created with Ring.create({ deferTaskrun: true, cqe32: true }) (or cqeMixed: true on 6.18+)",
        );
      }
    }
    ring.requireOp(Q.IORING_OP_RECV_ZC, WHERE);
    const q = queryZcrx();
    const nodev = o.nodev === true;
    if (nodev && (o.ifname !== undefined || o.ifindex !== undefined))
      throw invalidArgument(WHERE, "nodev excludes ifname and ifindex");
    if (nodev && !q?.nodev) {
      // 6.18 refuses the flag with a bare EINVAL; say what is missing before the syscall.
      throw unsupported(WHERE, "ZCRX_REG_NODEV", Z.ZCRX_SINCE.nodev, release);
    }
    let ifindex = 0;
    if (!nodev) {
      if (o.ifname !== undefined) ifindex = ifIndexOf(o.ifname);
      else if (o.ifindex !== undefined) {
        if (!Number.isInteger(o.ifindex) || o.ifindex <= 0 || o.ifindex > 0x7fffffff)
          throw invalidArgument(WHERE, `ifindex must be a positive integer, got ${shown(o.ifindex)}`);
        ifindex = o.ifindex;
      } else throw invalidArgument(WHERE, "give ifname or ifindex (the NIC) and rxq, or nodev: true");
    }
    const rxq = o.rxq ?? 0;
    if (!Number.isInteger(rxq) || rxq < 0 || rxq >= 0xffffffff)
      throw invalidArgument(WHERE, `rxq must be a non-negative integer, got ${shown(o.rxq)}`);
    const rxBufLen = o.rxBufLen ?? 0;
    if (rxBufLen !== 0) {
      if (!Number.isInteger(rxBufLen) || rxBufLen < PAGE_SIZE || (rxBufLen & (rxBufLen - 1)) !== 0)
        throw invalidArgument(WHERE, `rxBufLen must be a power of two >= ${PAGE_SIZE}, got ${shown(rxBufLen)}`);
      if (!q?.rxBufLen)
        throw unsupported(WHERE, "rx_buf_len (ZCRX_FEATURE_RX_PAGE_SIZE)", Z.ZCRX_SINCE.rxBufLen, release);
      if (nodev && rxBufLen !== PAGE_SIZE)
        throw invalidArgument(
          WHERE,
          "device-less zcrx copies into page-sized buffers: rxBufLen must be 0 or the page size",
        );
    }
    const areaBytes = o.areaBytes ?? DEFAULT_AREA_BYTES;
    const pages = areaChunks(Math.ceil(areaBytes / PAGE_SIZE) * PAGE_SIZE);
    const rqWanted = o.rqEntries ?? Math.min(Z.ZCRX_RQ_MAX_ENTRIES, Math.max(64, roundUpPowerOfTwo(pages)));
    if (!Number.isInteger(rqWanted) || rqWanted < 1 || rqWanted > Z.ZCRX_RQ_MAX_ENTRIES)
      throw invalidArgument(WHERE, `rqEntries must be 1..${Z.ZCRX_RQ_MAX_ENTRIES}, got ${shown(o.rqEntries)}`);
    const refillMemory = o.refillMemory ?? "kernel";
    if (refillMemory !== "kernel" && refillMemory !== "user")
      throw invalidArgument(WHERE, `refillMemory must be "kernel" or "user", got ${shown(refillMemory)}`);

    const area = createArea(areaBytes, o.areaMemory ?? (heapFreeMemory ? "mmap" : "shared"));
    const canEvents = ((q?.features ?? 0) & Z.ZCRX_FEATURE_EVENT) !== 0;
    if (o.events !== undefined && typeof o.events !== "boolean")
      throw invalidArgument(WHERE, `events must be a boolean, got ${shown(o.events)}`);
    if (o.events === true && !canEvents)
      throw unsupported(WHERE, "ZCRX events (ZCRX_FEATURE_EVENT)", Z.ZCRX_SINCE.events, release);
    const events = o.events ?? canEvents;
    const hdr = q?.rqHeader ?? DEFAULT_REFILL_HEADER;
    const statsOffset = events ? refillStatsOffset(rqWanted, hdr) : -1;
    const refillBytes = events ? refillRingBytesWithStats(rqWanted, hdr) : refillRingBytes(rqWanted, hdr);
    const eventUserData = events ? EVENT_USER_DATA_BASE + (nextEventTag++ & 0xffff) : 0;
    const userRegion = refillMemory === "user" ? allocShared(refillBytes) : undefined;

    // One buffer for the three structs the kernel reads and writes back.
    const mem = new Uint8Array(
      Z.ZCRX_AREA_REG.size + R.REGION_DESC.size + Z.ZCRX_IFQ_REG.size + Z.ZCRX_EVENT_DESC.size,
    );
    const dv = new DataView(mem.buffer);
    const base = addressOf(mem);
    const A = 0,
      D = Z.ZCRX_AREA_REG.size,
      G = D + R.REGION_DESC.size,
      E = G + Z.ZCRX_IFQ_REG.size;
    dv.setBigUint64(A + Z.ZCRX_AREA_REG.addr, BigInt(area.address), true);
    dv.setBigUint64(A + Z.ZCRX_AREA_REG.len, BigInt(area.byteLength), true);
    dv.setBigUint64(D + R.REGION_DESC.size_, BigInt(refillBytes), true);
    if (userRegion) {
      dv.setBigUint64(D + R.REGION_DESC.user_addr, BigInt(userRegion.address), true);
      dv.setUint32(D + R.REGION_DESC.flags, R.IORING_MEM_REGION_TYPE_USER, true);
    }
    dv.setUint32(G + Z.ZCRX_IFQ_REG.if_idx, ifindex, true);
    dv.setUint32(G + Z.ZCRX_IFQ_REG.if_rxq, rxq, true);
    dv.setUint32(G + Z.ZCRX_IFQ_REG.rq_entries, rqWanted, true);
    dv.setUint32(G + Z.ZCRX_IFQ_REG.flags, nodev ? Z.ZCRX_REG_NODEV : 0, true);
    dv.setBigUint64(G + Z.ZCRX_IFQ_REG.area_ptr, BigInt(base + A), true);
    dv.setBigUint64(G + Z.ZCRX_IFQ_REG.region_ptr, BigInt(base + D), true);
    dv.setUint32(G + Z.ZCRX_IFQ_REG.rx_buf_len, rxBufLen, true);
    if (events) {
      dv.setBigUint64(E + Z.ZCRX_EVENT_DESC.user_data, BigInt(eventUserData), true);
      dv.setUint32(E + Z.ZCRX_EVENT_DESC.type_mask, (1 << Z.ZCRX_EVENT_ALLOC_FAIL) | (1 << Z.ZCRX_EVENT_COPY), true);
      dv.setUint32(E + Z.ZCRX_EVENT_DESC.flags, Z.ZCRX_EVENT_DESC_FLAG_STATS, true);
      dv.setBigUint64(E + Z.ZCRX_EVENT_DESC.stats_offset, BigInt(statsOffset), true);
      dv.setBigUint64(G + Z.ZCRX_IFQ_REG.event_desc, BigInt(base + E), true);
    }

    const ret = sys.io_uring_register(ring.fd, R.IORING_REGISTER_ZCRX_IFQ, mem.subarray(G), 1);
    if (ret < 0) {
      area.free();
      const ctx = { ifname: o.ifname, ifindex, rxq, nodev, ringProblem: zcrxRingProblem(ring) };
      const what = nodev ? "device-less (ZCRX_REG_NODEV)" : `${o.ifname ?? `ifindex ${ifindex}`} rxq ${rxq}`;
      throw new UringError(
        WHERE,
        -ret,
        `${what}, area ${area.byteLength} bytes, ${rqWanted} refill entries`,
        explainRegisterError(-ret, ctx) || undefined,
      );
    }
    this.ring = ring;
    this.id = dv.getUint32(G + Z.ZCRX_IFQ_REG.zcrx_id, true);
    this.ifindex = ifindex;
    this.ifname = o.ifname;
    this.rxq = rxq;
    this.nodev = nodev;
    this.rqEntries = dv.getUint32(G + Z.ZCRX_IFQ_REG.rq_entries, true);
    this.areaToken = dv.getBigUint64(A + Z.ZCRX_AREA_REG.rq_area_token, true);
    this.area = area;
    this.query = q;
    this.events = events;
    this.eventUserData = eventUserData;
    this.statsIndex = statsOffset >> 2;
    this.refillMemory = refillMemory;
    this.refillBytes = refillBytes;
    this.refillMmapOffset = Number(dv.getBigUint64(D + R.REGION_DESC.mmap_offset, true));
    const off = G + Z.ZCRX_IFQ_REG.offsets;
    const head = dv.getUint32(off + Z.ZCRX_OFFSETS.head, true);
    const tail = dv.getUint32(off + Z.ZCRX_OFFSETS.tail, true);
    const rqes = dv.getUint32(off + Z.ZCRX_OFFSETS.rqes, true);
    // From here on the kernel holds the ifq: the area's pages are pinned for DMA (a NIC may write
    // into them) and a user refill region is pinned too, until the ring closes. A failure now
    // cannot undo the registration (there is no unregister), so the memory must outlive it.
    let r: Region;
    try {
      // The kernel-allocated ring is mapped from the ring fd at the offset it wrote back. A
      // mapping of the ring fd holds the ring (and the NIC queue) open by itself: a terminated
      // Worker's sweep unmaps every mapping of the ring's inode (src/ring/reclaim.ts).
      r = userRegion ?? mapFd(ring.fd, refillBytes, this.refillMmapOffset, "zcrx refill ring");
      if (rqes + this.rqEntries * Z.ZCRX_RQE.size > (events ? statsOffset : r.byteLength)) {
        // Our mapping of a kernel region only adds a reference to its pages: dropping it is safe.
        if (r.kind === "mmap") unmapRegion(r);
        throw new UringError(
          WHERE,
          EINVAL,
          `kernel refill layout (rqes at ${rqes}, ${this.rqEntries} entries) exceeds the ${r.byteLength}-byte region`,
        );
      }
    } catch (e) {
      keepPinned(area, userRegion);
      const errno = e instanceof UringError ? e.errno : EINVAL;
      const what = e instanceof Error ? e.message : String(e);
      throw new UringError(
        WHERE,
        errno,
        `zcrx_id ${this.id} was registered, then: ${what}`,
        "the ifq stays registered, its area pinned, until the ring closes: close the ring to drop the registration (the area is kept alive until the process exits)",
        { cause: e },
      );
    }
    this.refillRegion = r;
    this.refill = {
      words: new Uint32Array(r.bytes.buffer, r.bytes.byteOffset, r.byteLength >> 2),
      head,
      tail,
      rqes,
      entries: this.rqEntries,
    };
    this.ctrl = new Uint8Array(Z.ZCRX_CTRL.size);
    new DataView(this.ctrl.buffer).setUint32(Z.ZCRX_CTRL.zcrx_id, this.id, true);
    new DataView(this.ctrl.buffer).setUint32(Z.ZCRX_CTRL.op, Z.ZCRX_CTRL_FLUSH_RQ, true);
    this.armCtrl = new Uint8Array(Z.ZCRX_CTRL.size);
    new DataView(this.armCtrl.buffer).setUint32(Z.ZCRX_CTRL.zcrx_id, this.id, true);
    new DataView(this.armCtrl.buffer).setUint32(Z.ZCRX_CTRL.op, Z.ZCRX_CTRL_ARM_EVENT, true);
  }

  /** struct zcrx_stats (7.2): copy operations the kernel made (copy fallback) and the bytes it
   * copied, since registration. The uapi comment calls copy_count "copy-fallback CQEs"; 7.2.13
   * counts one per received fragment copied, and a fragment can fill several chunks (384 copies
   * for 2,176 chunks of an 8 MiB loopback transfer). A device-less ifq copies everything; on a NIC queue anything but
   * 0 means traffic arriving on another queue (RSS, flow steering, a bond) and costing a copy.
   * Kernels before 7.2 keep no such counters: this throws EOPNOTSUPP with the version, never 0s. */
  copyStats(): { copyCount: number; copyBytes: number } {
    if (!this.events)
      throw unsupported(
        "ZcrxIfq.copyStats",
        "the zcrx copy counters (struct zcrx_stats)",
        Z.ZCRX_SINCE.events,
        kernelRelease(),
      );
    if (this.closed) throw closedError("ZcrxIfq.copyStats", "zcrx ifq");
    const w = this.refill.words,
      i = this.statsIndex;
    // Two u64s, little-endian, written by the kernel with plain stores (WRITE_ONCE per field).
    return { copyCount: w[i + 1]! * U32_SPAN + w[i]!, copyBytes: w[i + 3]! * U32_SPAN + w[i + 2]! };
  }

  /** Where `bytes` received through this ifq landed, from copyStats(): "in place" (no copy),
   * "copied" (all of it: device-less, or a flow on another queue), "partly copied", or, before
   * 7.2 (no counters), "unknown" with the reason. What tx reports for SEND_ZC, for receive. */
  placement(bytes: number): ZcrxPlacement {
    if (!this.events)
      return {
        placement: "unknown",
        copy_count: null,
        copy_bytes: null,
        why: `the copy counters need Linux ${Z.ZCRX_SINCE.events} (this kernel is ${kernelRelease()})`,
      };
    const c = this.copyStats();
    const placement = c.copyBytes === 0 ? "in place" : c.copyBytes >= bytes ? "copied" : "partly copied";
    return { placement, copy_count: c.copyCount, copy_bytes: c.copyBytes };
  }

  /** ZCRX_CTRL_ARM_EVENT: events are one-shot; after one of type `type` (ZCRX_EVENT_*) the
   * kernel posts no other of that type until this is called. The receiver re-arms at its next
   * publish. */
  armEvent(type: number): void {
    if (!this.events)
      throw unsupported(
        "ZCRX_CTRL_ARM_EVENT",
        "ZCRX events (ZCRX_FEATURE_EVENT)",
        Z.ZCRX_SINCE.events,
        kernelRelease(),
      );
    if (this.closed || this.ring.isClosed) throw closedError("ZCRX_CTRL_ARM_EVENT", "zcrx ifq");
    if (type !== Z.ZCRX_EVENT_ALLOC_FAIL && type !== Z.ZCRX_EVENT_COPY)
      throw invalidArgument(
        "ZCRX_CTRL_ARM_EVENT",
        `type must be ZCRX_EVENT_ALLOC_FAIL (0) or ZCRX_EVENT_COPY (1), got ${shown(type)}`,
      );
    new DataView(this.armCtrl.buffer).setUint32(Z.ZCRX_CTRL.payload, type, true);
    const ret = sys.io_uring_register(this.ring.fd, R.IORING_REGISTER_ZCRX_CTRL, this.armCtrl, 0);
    if (ret < 0)
      throw new UringError("IORING_REGISTER_ZCRX_CTRL", -ret, `ZCRX_CTRL_ARM_EVENT type ${type} zcrx_id ${this.id}`);
  }

  /** The area and refill ring an importing ring receives through (importZcrx). */
  get shared(): ZcrxSharedQueue {
    return { area: this.area.bytes, areaToken: this.areaToken, refill: this.refill, nodev: this.nodev };
  }

  /** `shared` as postMessage can carry it to a Worker (sharedQueueFrom() there). The area and
   * the refill ring must be SharedArrayBuffers: areaMemory "shared" (the default) and
   * refillMemory "user". */
  postable(): PostableZcrxQueue {
    const a = this.area.bytes,
      w = this.refill.words;
    if (!(a.buffer instanceof SharedArrayBuffer) || !(w.buffer instanceof SharedArrayBuffer)) {
      throw invalidArgument(
        "ZcrxIfq.postable",
        'the area and the refill ring must be SharedArrayBuffers to reach a Worker: register with areaMemory "shared" and refillMemory "user"',
      );
    }
    const r = this.refill;
    return {
      area: { buffer: a.buffer, byteOffset: a.byteOffset, byteLength: a.byteLength },
      refill: {
        buffer: w.buffer,
        byteOffset: w.byteOffset,
        byteLength: w.byteLength,
        head: r.head,
        tail: r.tail,
        rqes: r.rqes,
        entries: r.entries,
      },
      areaToken: String(this.areaToken),
      nodev: this.nodev,
    };
  }

  /** ZCRX_CTRL_EXPORT (6.19): a new file descriptor (close-on-exec) that stands for this ifq;
   * importZcrx() registers it on another ring, which then receives into the same area and gives
   * buffers back through the same refill ring. The caller closes the fd once imported. */
  export(): number {
    if (this.closed || this.ring.isClosed) throw closedError("ZCRX_CTRL_EXPORT", "zcrx ifq");
    if ((this.query?.nrCtrlOpcodes ?? 0) <= Z.ZCRX_CTRL_EXPORT)
      throw unsupported(
        "ZCRX_CTRL_EXPORT",
        "exporting a zcrx ifq (ZCRX_CTRL_EXPORT)",
        Z.ZCRX_SINCE.importExport,
        kernelRelease(),
      );
    const ctrl = new Uint8Array(Z.ZCRX_CTRL.size);
    const dv = new DataView(ctrl.buffer);
    dv.setUint32(Z.ZCRX_CTRL.zcrx_id, this.id, true);
    dv.setUint32(Z.ZCRX_CTRL.op, Z.ZCRX_CTRL_EXPORT, true);
    const ret = sys.io_uring_register(this.ring.fd, R.IORING_REGISTER_ZCRX_CTRL, ctrl, 0);
    if (ret < 0)
      throw new UringError(
        "IORING_REGISTER_ZCRX_CTRL",
        -ret,
        `ZCRX_CTRL_EXPORT zcrx_id ${this.id}${this.nodev ? " (device-less)" : ""}`,
      );
    // struct zcrx_ctrl_export.zcrx_fd is where the kernel puts the new fd (it also returns it).
    const fd = dv.getUint32(Z.ZCRX_CTRL.payload, true);
    return fd > 0 ? fd : ret;
  }

  /** Whether ZCRX_CTRL_FLUSH_RQ is available (the kernel reports ZCRX_CTRL opcodes). */
  get canFlush(): boolean {
    return this.query?.flushRq === true;
  }

  /** ZCRX_CTRL_FLUSH_RQ: make the kernel take every published refill entry now. A device-less
   * zcrx needs it (no page pool pulls refills); for a NIC queue it is optional. */
  flush(): void {
    if (this.closed || this.ring.isClosed) throw closedError("ZCRX_CTRL_FLUSH_RQ", "zcrx ifq");
    if (!this.canFlush)
      throw unsupported("ZCRX_CTRL_FLUSH_RQ", "IORING_REGISTER_ZCRX_CTRL", Z.ZCRX_SINCE.ctrl, kernelRelease());
    const ret = sys.io_uring_register(this.ring.fd, R.IORING_REGISTER_ZCRX_CTRL, this.ctrl, 0);
    if (ret < 0) throw new UringError("IORING_REGISTER_ZCRX_CTRL", -ret, `ZCRX_CTRL_FLUSH_RQ zcrx_id ${this.id}`);
  }

  /** The receiver over this ifq: RECV_ZC on `ring`, chunks in this area, refills batched. An ifq
   * has one refill ring, and so one receiver: a second call throws EBUSY while the first is
   * open (reuse it). Once the first is closed, a new one takes over the refill ring. */
  receiver(options: ReceiverOptions = {}): ZcrxReceiver {
    if (this.closed) throw closedError("ZcrxIfq.receiver", "zcrx ifq");
    return new ZcrxReceiver(new RingSource(this.ring, this), options);
  }

  /** Unmap the refill ring and the area (an mmap area; a SharedArrayBuffer is left to the GC).
   * Call after ring.close(): the kernel keeps the ifq until its ring goes. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.refillRegion.kind === "mmap") unmapRegion(this.refillRegion as MappedRegion);
    this.area.free();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

/** After a failure that left the ifq registered: keep the area and a user refill region from ever
 * being freed, since the kernel holds them until the ring closes and this ifq object, which
 * would have been closed after the ring, is never handed out. A SharedArrayBuffer is retired for
 * the life of the process (retireShared, as Ring.close does with memory the kernel may still
 * write); a mapping is simply never unmapped. */
function keepPinned(area: ZcrxArea, userRegion: SharedRegion | undefined): void {
  if (area.sharedBuffer !== undefined) {
    retireShared(
      {
        kind: "shared",
        buffer: area.sharedBuffer,
        bytes: area.bytes,
        address: area.address,
        byteLength: area.byteLength,
      },
      true,
    );
  }
  if (userRegion !== undefined) retireShared(userRegion, true);
}

/** user_data of ZCRX event CQEs: "zc" in the high half of the low word, a per-process tag below. */
const EVENT_USER_DATA_BASE = 0x7a630000;
let nextEventTag = 0;
const U32_SPAN = 4294967296;

/** Completions from a real Ring: RECV_ZC SQEs tracked in its op table, their CQE32 tails read
 * from ring.batch.big. */
class RingSource implements ZcrxSource {
  readonly kind = "ring" as const;
  readonly area: Uint8Array;
  readonly areaTokenHigh: number;
  readonly refill: RefillLayout;
  private receiver!: ZcrxReceiver;
  private readonly onCqe: (conn: number, res: number, flags: number, index: number) => void;
  private readonly flushes: boolean;

  /** `ifq`: one registered here, or one imported from another ring. */
  constructor(
    private readonly ring: Ring,
    private readonly ifq: ZcrxIfq | ImportedZcrx,
  ) {
    this.area = ifq.area.bytes;
    this.areaTokenHigh = Number(ifq.areaToken >> 32n);
    this.refill = ifq.refill;
    this.flushes = ifq.nodev && ifq.canFlush;
    const big = () => ring.batch.big;
    // One handler for every RECV_ZC of this receiver: the op table passes the connection id.
    this.onCqe = (conn, res, flags, index) => {
      const b = big();
      this.receiver.deliver(conn, res, flags, b[index << 2]!, b[(index << 2) + 1]!);
    };
  }

  bind(receiver: ZcrxReceiver): void {
    this.receiver = receiver;
    if (!this.ifq.events) return;
    // Event CQEs carry a user_data outside the op table: take ours, pass the rest on.
    const ud = this.ifq.eventUserData;
    const prev = this.ring.onUnknownCqe;
    this.ring.onUnknownCqe = (userData, res, flags, index) => {
      if (userData === ud) receiver.event(res);
      else prev?.(userData, res, flags, index);
    };
  }

  armEvents(types: number): void {
    if (types & (1 << Z.ZCRX_EVENT_ALLOC_FAIL)) this.ifq.armEvent(Z.ZCRX_EVENT_ALLOC_FAIL);
    if (types & (1 << Z.ZCRX_EVENT_COPY)) this.ifq.armEvent(Z.ZCRX_EVENT_COPY);
  }

  arm(conn: number, fd: number, maxBytes: number): void {
    const slot = this.ring.begin(this.onCqe, conn);
    prepRecvZc(this.ring.sq, slot, fd, maxBytes, this.ifq.id, 0);
  }

  reap(waitNr: number, timeoutMs: number | undefined): number {
    if (waitNr === 0) {
      this.ring.submit();
      return this.ring.completions();
    }
    return this.ring.run(waitNr, timeoutMs);
  }

  afterPublish(): boolean {
    if (!this.flushes) return false;
    this.ifq.flush();
    return true;
  }
}

/** What a ring that will register `zcrx` needs where its own options say nothing: 32-byte CQEs
 * (unless CQE_MIXED was asked for), and a CQ with one entry per area buffer (zcrxCqEntries), at
 * least the kernel's default of twice the SQ. */
export function zcrxRingDefaults(
  o: { entries?: number; cqEntries?: number; cqe32?: boolean; cqeMixed?: boolean },
  zcrx: ZcrxIfqOptions,
): { cqe32?: boolean; cqEntries: number } {
  const sq = roundUpPowerOfTwo(o.entries ?? 256);
  const bufferBytes = zcrx.rxBufLen !== undefined && zcrx.rxBufLen > 0 ? zcrx.rxBufLen : PAGE_SIZE;
  const cqEntries = o.cqEntries ?? zcrxCqEntries(zcrx.areaBytes ?? DEFAULT_AREA_BYTES, bufferBytes, 2 * sq);
  return o.cqe32 === undefined && o.cqeMixed !== true ? { cqe32: true, cqEntries } : { cqEntries };
}

/** What a ring importing an exported ifq needs to receive through it: the exporter's area and
 * refill ring (the same memory: SharedArrayBuffers can go to a Worker with postMessage) and its
 * layout. */
export interface ZcrxSharedQueue {
  readonly area: Uint8Array;
  readonly areaToken: bigint;
  readonly refill: RefillLayout;
  readonly nodev: boolean;
}

/** ZcrxIfq.placement(): in place or copied, with the kernel's counters (null before 7.2). */
export interface ZcrxPlacement {
  placement: "in place" | "copied" | "partly copied" | "unknown";
  copy_count: number | null;
  copy_bytes: number | null;
  why?: string;
}

/** ZcrxSharedQueue as plain data with SharedArrayBuffers (ZcrxIfq.postable()). */
export interface PostableZcrxQueue {
  readonly area: { readonly buffer: SharedArrayBuffer; readonly byteOffset: number; readonly byteLength: number };
  readonly refill: {
    readonly buffer: SharedArrayBuffer;
    readonly byteOffset: number;
    readonly byteLength: number;
    readonly head: number;
    readonly tail: number;
    readonly rqes: number;
    readonly entries: number;
  };
  /** rq_area_token as a decimal string (a bigint does not survive every transport). */
  readonly areaToken: string;
  readonly nodev: boolean;
}

/** The ZcrxSharedQueue a PostableZcrxQueue describes, for importZcrx in the receiving Worker. */
export function sharedQueueFrom(p: PostableZcrxQueue): ZcrxSharedQueue {
  const r = p.refill;
  return {
    area: new Uint8Array(p.area.buffer, p.area.byteOffset, p.area.byteLength),
    areaToken: BigInt(p.areaToken),
    refill: {
      words: new Uint32Array(r.buffer, r.byteOffset, r.byteLength >> 2),
      head: r.head,
      tail: r.tail,
      rqes: r.rqes,
      entries: r.entries,
    },
    nodev: p.nodev,
  };
}

/** An ifq registered on this ring with ZCRX_REG_IMPORT (6.19): RECV_ZC on this ring with its
 * own zcrx_id, into the exporter's area, refills into the exporter's refill ring. */
export class ImportedZcrx {
  readonly id: number;
  readonly area: { readonly bytes: Uint8Array };
  readonly areaToken: bigint;
  readonly refill: RefillLayout;
  readonly nodev: boolean;
  readonly canFlush: boolean;
  readonly events = false;
  readonly eventUserData = 0;
  private readonly ctrl: Uint8Array;

  /** @internal */
  constructor(
    private readonly ring: Ring,
    id: number,
    shared: ZcrxSharedQueue,
  ) {
    this.id = id;
    this.area = { bytes: shared.area };
    this.areaToken = shared.areaToken;
    this.refill = shared.refill;
    this.nodev = shared.nodev;
    this.canFlush = queryZcrx()?.flushRq === true;
    this.ctrl = new Uint8Array(Z.ZCRX_CTRL.size);
    new DataView(this.ctrl.buffer).setUint32(Z.ZCRX_CTRL.zcrx_id, id, true);
    new DataView(this.ctrl.buffer).setUint32(Z.ZCRX_CTRL.op, Z.ZCRX_CTRL_FLUSH_RQ, true);
  }

  /** The receiver on this ring. The refill ring has one producer: while another receiver over it
   * (the exporter's, or another importer's) is open, this one is refused with EBUSY. */
  receiver(options: ReceiverOptions = {}): ZcrxReceiver {
    if (this.ring.isClosed) throw closedError("ImportedZcrx.receiver");
    return new ZcrxReceiver(new RingSource(this.ring, this), options);
  }

  /** ZCRX_CTRL_FLUSH_RQ through this ring's zcrx_id. */
  flush(): void {
    if (this.ring.isClosed) throw closedError("ZCRX_CTRL_FLUSH_RQ");
    const ret = sys.io_uring_register(this.ring.fd, R.IORING_REGISTER_ZCRX_CTRL, this.ctrl, 0);
    if (ret < 0)
      throw new UringError("IORING_REGISTER_ZCRX_CTRL", -ret, `ZCRX_CTRL_FLUSH_RQ imported zcrx_id ${this.id}`);
  }

  armEvent(): void {
    throw invalidArgument(
      "ZCRX_CTRL_ARM_EVENT",
      "events belong to the ring that registered the ifq, not to an importer",
    );
  }
}

/** IORING_REGISTER_ZCRX_IFQ with ZCRX_REG_IMPORT (6.19): register the ifq behind `fd` (from
 * ZcrxIfq.export(), here or in another Worker of this process) on `ring`. `shared` is the
 * exporter's area and refill ring. The ring needs DEFER_TASKRUN and CQE32 (or CQE_MIXED). */
export function importZcrx(ring: Ring, fd: number, shared: ZcrxSharedQueue): ImportedZcrx {
  const where = "IORING_REGISTER_ZCRX_IFQ";
  if (ring.isClosed) throw closedError(where);
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff)
    throw invalidArgument(where, `fd must be a descriptor from ZcrxIfq.export(), got ${shown(fd)}`);
  const problem = zcrxRingProblem(ring);
  if (problem)
    throw new UringError(
      where,
      EINVAL,
      problem,
      "an importing ring needs DEFER_TASKRUN and CQE32 (or CQE_MIXED) like the exporter's",
    );
  if (!queryZcrx()?.import) throw unsupported(where, "ZCRX_REG_IMPORT", Z.ZCRX_SINCE.importExport, kernelRelease());
  const mem = new Uint8Array(Z.ZCRX_IFQ_REG.size);
  const dv = new DataView(mem.buffer);
  dv.setUint32(Z.ZCRX_IFQ_REG.if_idx, fd, true);
  dv.setUint32(Z.ZCRX_IFQ_REG.flags, Z.ZCRX_REG_IMPORT, true);
  const ret = sys.io_uring_register(ring.fd, R.IORING_REGISTER_ZCRX_IFQ, mem, 1);
  if (ret < 0)
    throw new UringError(
      where,
      -ret,
      `ZCRX_REG_IMPORT of fd ${fd}`,
      "the fd must come from ZcrxIfq.export() and still be open; the importing ring needs DEFER_TASKRUN and CQE32",
    );
  return new ImportedZcrx(ring, dv.getUint32(Z.ZCRX_IFQ_REG.zcrx_id, true), shared);
}

/** Register an ifq on `ring`; see ZcrxIfq.register. */
export function registerZcrxIfq(ring: Ring, options: ZcrxIfqOptions = {}): ZcrxIfq {
  return ZcrxIfq.register(ring, options);
}
