// ZcSender's options: each one checked, and what the kernel can do probed, before a sender is
// built. senderSettings() turns ZcSenderOptions into the settings the sender runs with, with the
// reason for each choice made for this kernel (REPORT_USAGE, IORING_SEND_VECTORIZED, the
// notification user_data); a bad option is a UringError naming it, and nothing is left behind.
import * as Q from "../abi/sqe.ts";
import { SOCK_STREAM, SOL_SOCKET, SO_DOMAIN, SO_TYPE } from "../abi/net.ts";
import { EOPNOTSUPP, errnoName } from "../abi/errno.ts";
import { kernelAtLeast, probeNotifUserData, probeNotifUserDataAnswer, probeReportUsage } from "../ring/kernel.ts";
import { Ring } from "../ring/ring.ts";
import { UringError, closedError, invalidArgument, unsupported, shown } from "../error.ts";
import { type Sockaddr, sockaddr, formatAddress } from "../net/sockaddr.ts";
import { getOptionNow } from "../net/setup.ts";
import type { FixedBufferPool } from "./pool.ts";
import type { ZcMode, ZcSenderOptions } from "./sender.ts";

export const ZC_MODES: readonly ZcMode[] = ["copy", "zc", "zc-fixed", "mixed", "adaptive"];

/** What a sender runs with, once its options passed. */
export interface SenderSettings {
  mode: ZcMode;
  capacity: number;
  threshold: number;
  grow: boolean;
  stream: boolean;
  /** SO_DOMAIN, -1 when unknown. */
  family: number;
  dest: Sockaddr | null;
  pool: FixedBufferPool | null;
  sqeFlags: number;
  maxChain: number;
  reportUsage: boolean;
  vectorized: boolean;
  vectorizedReason: string;
  separateNotif: boolean;
  notifUserDataReason: string;
}

/** Check `o` for a sender on `fd` of `ring` and resolve it (`where` names the caller in errors). */
export function senderSettings(ring: Ring, fd: number, o: ZcSenderOptions, where: string): SenderSettings {
  if (!(ring instanceof Ring)) throw invalidArgument(where, "ring must be a Ring");
  if (ring.isClosed) throw closedError(where);
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff)
    throw invalidArgument(where, `fd must be a non-negative integer, got ${shown(fd)}`);
  const mode = o.mode ?? "adaptive";
  if (!ZC_MODES.includes(mode))
    throw invalidArgument(where, `mode must be one of ${ZC_MODES.join(", ")}, got ${shown(mode)}`);
  const sqeFlags = o.sqeFlags ?? 0;
  checkZcSqeFlags(where, sqeFlags);
  const capacity = o.capacity ?? 1024;
  if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 20)
    throw invalidArgument(where, `capacity must be 1..2^20, got ${shown(capacity)}`);
  const threshold = o.threshold ?? (mode === "adaptive" ? 2048 : 16384);
  if (!Number.isInteger(threshold) || threshold < 0)
    throw invalidArgument(where, `threshold must be a non-negative integer, got ${shown(threshold)}`);
  if (mode !== "copy") ring.requireOp(Q.IORING_OP_SEND_ZC, where);
  if (mode === "zc-fixed" && !o.pool)
    throw invalidArgument(where, "mode zc-fixed needs a FixedBufferPool (options.pool)");
  if (o.pool && o.pool.ring !== ring) throw invalidArgument(where, "the pool is registered with another ring");
  if (o.grow !== undefined && typeof o.grow !== "boolean")
    throw invalidArgument(where, `grow must be a boolean, got ${shown(o.grow)}`);
  const type = o.stream === undefined ? getOptionNow(fd, SOL_SOCKET, SO_TYPE) : o.stream ? SOCK_STREAM : 0;
  if (type < 0) throw new UringError("getsockopt", -type, `SO_TYPE of fd ${fd}`, "the fd is not an open socket");
  const stream = type === SOCK_STREAM;
  const family = getOptionNow(fd, SOL_SOCKET, SO_DOMAIN);
  const dest = o.destination ? sockaddr(o.destination) : null;
  if (dest && stream)
    throw invalidArgument(
      where,
      `a destination (${formatAddress(dest)}) applies to datagram sockets; this one is a stream`,
    );
  const maxChain = o.maxChain ?? 64;
  if (!Number.isInteger(maxChain) || maxChain < 1)
    throw invalidArgument(where, `maxChain must be a positive integer, got ${shown(o.maxChain)}`);
  // Default: on where the kernel takes it (probed, since distributions backport it).
  const reportUsage = o.reportUsage ?? (mode === "copy" ? false : probeReportUsage());
  const kernel = ring.capabilities.kernel;
  if (reportUsage && mode !== "copy" && !probeReportUsage())
    throw unsupported(where, "IORING_SEND_ZC_REPORT_USAGE", "6.2", kernel);
  const notif = notificationUserData(where, mode, o.notifUserData ?? "auto", kernel);
  const vec = o.vectorized ?? "auto";
  const haveVec = kernelAtLeast("6.17", kernel);
  if (vec === true && !haveVec) throw unsupported(where, "IORING_SEND_VECTORIZED", "6.17", kernel);
  const vectorized = vec !== false && haveVec;
  const vectorizedReason = vectorized
    ? "gathered sends and sendmsg() use SEND / SEND_ZC with IORING_SEND_VECTORIZED"
    : vec === false
      ? "gathered sends and sendmsg() use SENDMSG / SENDMSG_ZC (vectorized turned off)"
      : `gathered sends and sendmsg() use SENDMSG / SENDMSG_ZC: IORING_SEND_VECTORIZED needs Linux 6.17, this kernel is ${kernel}`;
  return {
    mode,
    capacity,
    threshold,
    grow: o.grow === true,
    stream,
    family,
    dest,
    pool: o.pool ?? null,
    sqeFlags,
    maxChain,
    reportUsage,
    vectorized,
    vectorizedReason,
    separateNotif: notif.separate,
    notifUserDataReason: notif.reason,
  };
}

/** Refuse SQE flags the sender cannot honour, before anything reaches the kernel. */
export function checkZcSqeFlags(where: string, flags: number): void {
  if (!Number.isInteger(flags) || flags < 0 || flags > 0x7f)
    throw invalidArgument(where, `sqeFlags must be IOSQE_* bits (0..0x7f), got ${shown(flags)}`);
  if (flags & Q.IOSQE_CQE_SKIP_SUCCESS) {
    throw invalidArgument(
      where,
      "IOSQE_CQE_SKIP_SUCCESS cannot be used with SEND_ZC: the kernel rejects it (io_send_zc_prep returns EINVAL), and the first CQE is how the sender learns whether a notification follows",
    );
  }
  if (flags & (Q.IOSQE_IO_LINK | Q.IOSQE_IO_HARDLINK))
    throw invalidArgument(where, "IOSQE_IO_LINK / IO_HARDLINK are set by the sender itself to keep stream order");
  if (flags & Q.IOSQE_BUFFER_SELECT)
    throw invalidArgument(where, "IOSQE_BUFFER_SELECT does not apply to zero-copy sends");
}

/** Where a separate notification user_data comes from, for errors and reasons. */
const NOTIF_USER_DATA_SINCE =
  'Linux 7.1 (commit cb9487333652, "io_uring/zctx: separate notification user_data"; or a distribution kernel with it backported)';
/** Whether a sender's notifications come under a user_data of their own, and why. Probed, not
 * read from the version (distributions backport): a SEND_ZC on fd -1 whose addr3 names a second
 * op-table entry (probeNotifUserData in src/ring/kernel.ts). `option` true on a kernel without
 * it is EOPNOTSUPP naming the probe's answer and the kernels that have it. */
function notificationUserData(
  where: string,
  mode: ZcMode,
  option: unknown,
  kernel: string,
): { separate: boolean; reason: string } {
  if (option !== true && option !== false && option !== "auto")
    throw invalidArgument(where, `notifUserData must be true, false or "auto", got ${shown(option)}`);
  const shared =
    "each notification carries its send's user_data, and IORING_CQE_F_NOTIF tells it apart (in any order: each operation has its own user_data)";
  if (mode === "copy") return { separate: false, reason: "mode copy: IORING_OP_SEND posts no notification" };
  if (option === false) return { separate: false, reason: `turned off (notifUserData: false): ${shared}` };
  if (probeNotifUserData()) {
    return {
      separate: true,
      reason:
        "each notification comes to an op-table entry of its own, named in sqe->addr3 (this kernel posts a SEND_ZC notification under a non-zero addr3: probeNotifUserData)",
    };
  }
  const refused = `this kernel (${kernel}) refuses a non-zero addr3 on SEND_ZC: a SEND_ZC on fd -1 carrying one got ${answerName(probeNotifUserDataAnswer().res)} (probeNotifUserData), so it cannot post a notification under a user_data of its own`;
  if (option === true) {
    throw new UringError(
      where,
      EOPNOTSUPP,
      `notifUserData: ${refused}; that needs ${NOTIF_USER_DATA_SINCE}`,
      'leave notifUserData at "auto" (or false): each notification then carries its send\'s user_data with IORING_CQE_F_NOTIF',
    );
  }
  return { separate: false, reason: `${shared}; ${refused} (${NOTIF_USER_DATA_SINCE} has it)` };
}

/** An errno's name for a message ("EINVAL"), or what the answer was when it is none. */
function answerName(res: number): string {
  return res < 0 ? errnoName(-res) : res === 0 ? "no answer (the ring lacks SEND_ZC)" : `${res}`;
}
