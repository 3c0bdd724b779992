// Encoding one send operation into an SQE, with no state and no I/O: the shapes a ZcSender
// writes (SEND, SEND_ZC, SENDMSG, SENDMSG_ZC; from the caller's memory or a registered buffer;
// one buffer, gathered iovecs, or a header and a body; with or without a destination) each map
// to the liburing-style prep helper of src/ops and, where the SQE points at a struct, to the
// msghdr / iovec / sockaddr bytes in the operation's scratch block. Checked byte for byte in
// test/zc-encode.test.ts.
import { MSGHDR } from "../abi/net.ts";
import { IOVEC } from "../abi/register.ts";
import {
  prepSend,
  prepSendSetAddr,
  prepSendVectorized,
  prepSendZc,
  prepSendZcFixed,
  prepSendZcSetNotifUserData,
  prepSendZcVectorized,
  prepSendmsg,
  prepSendmsgZc,
  prepSendmsgZcFixed,
} from "../ops/prep.ts";
import type { SqeMemory } from "../ops/sqe.ts";
import type { Sockaddr } from "../net/sockaddr.ts";
import { KIND_COPY, KIND_FIXED, KIND_MSG, KIND_VEC, KIND_ZC } from "./records.ts";

// Layout of an operation's scratch block (OP_SCRATCH_BYTES, 128) for the send structs.
/** struct msghdr, 56 bytes. */
export const SCRATCH_MSGHDR = 0;
/** Two struct iovec (header, body), 32 bytes. */
export const SCRATCH_IOV = MSGHDR.size;
/** The destination: sockaddr_in6 at most, 28 bytes. */
export const SCRATCH_DEST = SCRATCH_IOV + 2 * IOVEC.size;

const U32_SPAN = 4294967296;

/** Store a u64 (a number below 2^53) little-endian at byte `at` of `dv`. */
export function putU64(dv: DataView, at: number, value: number): void {
  dv.setUint32(at, value >>> 0, true);
  dv.setUint32(at + 4, Math.floor(value / U32_SPAN) >>> 0, true);
}

/** Write struct iovec {base, len} at byte `at` of `dv`. */
export function putIovec(dv: DataView, at: number, base: number, len: number): void {
  putU64(dv, at + IOVEC.iov_base, base);
  putU64(dv, at + IOVEC.iov_len, len);
}

/** One operation to encode. A sender keeps one and refills it for each operation (no allocation
 * per send). */
export class SendOp {
  /** KIND_COPY, KIND_ZC, KIND_FIXED, KIND_MSG (SENDMSG_ZC, header and body) or KIND_VEC (SEND_ZC
   * with IORING_SEND_VECTORIZED, header and body). */
  kind = KIND_COPY;
  fd = -1;
  /** Sends in the operation: 1, or the number of iovecs at `iovecs` (gathered). */
  count = 1;
  /** One send: its bytes. Header and body (KIND_MSG, KIND_VEC): the header's address, and the
   * length of both together. */
  address = 0;
  length = 0;
  /** The body of a header-and-body send. */
  address2 = 0;
  length2 = 0;
  /** Registered buffer index (KIND_FIXED). */
  bufIndex = 0;
  /** Gathered (count > 1): the address of `count` struct iovec, alive until the kernel took the
   * SQE (IORING_FEAT_SUBMIT_STABLE). */
  iovecs = 0;
  /** send(2) flags (MSG_WAITALL, MSG_NOSIGNAL) and the SEND_ZC ioprio flags (REPORT_USAGE). */
  msgFlags = 0;
  zcFlags = 0;
  /** Gathered sends as SEND / SEND_ZC with IORING_SEND_VECTORIZED (6.17) instead of SENDMSG /
   * SENDMSG_ZC. Fixed-buffer groups always go out as SENDMSG_ZC. */
  vectorized = false;
  /** Destination of a datagram (sqe.addr2 / addr_len, or msg_name for SENDMSG_ZC). */
  dest: Sockaddr | null = null;
  /** The notification's own user_data (sqe->addr3, 7.1; see prepSendZcSetNotifUserData), or 0:
   * the notification carries the operation's user_data. Ignored for the copying kind. */
  notifUserData = 0;
}

/** The operation's scratch block: `bytes`/`view` over the op table's scratch memory, the block's
 * byte offset in it and its address. */
export class ScratchBlock {
  bytes: Uint8Array = new Uint8Array(0);
  view: DataView = new DataView(new ArrayBuffer(0));
  offset = 0;
  address = 0;
}

/** Prep `slot` for `op` (user_data and SQE flags are the caller's) and write the structs it
 * points at into `scratch`. Returns the opcode it wrote. */
export function encodeSendOp(sq: SqeMemory, slot: number, op: SendOp, scratch: ScratchBlock): number {
  encodeShape(sq, slot, op, scratch);
  if (op.notifUserData !== 0 && op.kind !== KIND_COPY) prepSendZcSetNotifUserData(sq, slot, op.notifUserData);
  return sq.u32[slot << 4]! & 0xff;
}

function encodeShape(sq: SqeMemory, slot: number, op: SendOp, scratch: ScratchBlock): void {
  const kind = op.kind,
    fd = op.fd,
    flags = op.msgFlags,
    zcFlags = op.zcFlags;
  const dv = scratch.view;
  if (op.count > 1) {
    if (op.vectorized && kind !== KIND_FIXED) {
      if (kind === KIND_COPY) prepSendVectorized(sq, slot, fd, op.iovecs, op.count, flags);
      else prepSendZcVectorized(sq, slot, fd, op.iovecs, op.count, flags, zcFlags);
    } else {
      const m = scratch.offset + SCRATCH_MSGHDR;
      const msg = scratch.address + SCRATCH_MSGHDR;
      scratch.bytes.fill(0, m, m + MSGHDR.size);
      putU64(dv, m + MSGHDR.msg_iov, op.iovecs);
      putU64(dv, m + MSGHDR.msg_iovlen, op.count);
      if (kind === KIND_COPY) prepSendmsg(sq, slot, fd, msg, flags);
      else if (kind === KIND_ZC) prepSendmsgZc(sq, slot, fd, msg, flags, zcFlags);
      else prepSendmsgZcFixed(sq, slot, fd, msg, flags, zcFlags, op.bufIndex);
    }
    return;
  }
  switch (kind) {
    case KIND_COPY:
      prepSend(sq, slot, fd, op.address, op.length, flags);
      break;
    case KIND_ZC:
      prepSendZc(sq, slot, fd, op.address, op.length, flags, zcFlags);
      break;
    case KIND_FIXED:
      prepSendZcFixed(sq, slot, fd, op.address, op.length, flags, zcFlags, op.bufIndex);
      break;
    default: {
      // Header and body: two iovecs in the scratch block (behind a msghdr for SENDMSG_ZC).
      const iov = scratch.offset + SCRATCH_IOV;
      putIovec(dv, iov, op.address, op.length - op.length2);
      putIovec(dv, iov + IOVEC.size, op.address2, op.length2);
      if (kind === KIND_VEC) {
        prepSendZcVectorized(sq, slot, fd, scratch.address + SCRATCH_IOV, 2, flags, zcFlags);
      } else {
        const m = scratch.offset + SCRATCH_MSGHDR;
        scratch.bytes.fill(0, m, m + MSGHDR.size);
        if (op.dest) {
          scratch.bytes.set(op.dest.bytes, scratch.offset + SCRATCH_DEST);
          putU64(dv, m + MSGHDR.msg_name, scratch.address + SCRATCH_DEST);
          dv.setUint32(m + MSGHDR.msg_namelen, op.dest.length, true);
        }
        putU64(dv, m + MSGHDR.msg_iov, scratch.address + SCRATCH_IOV);
        putU64(dv, m + MSGHDR.msg_iovlen, 2);
        prepSendmsgZc(sq, slot, fd, scratch.address + SCRATCH_MSGHDR, flags, zcFlags);
      }
    }
  }
  if (op.dest && kind !== KIND_MSG) {
    scratch.bytes.set(op.dest.bytes, scratch.offset + SCRATCH_DEST);
    prepSendSetAddr(sq, slot, scratch.address + SCRATCH_DEST, op.dest.length);
  }
}
