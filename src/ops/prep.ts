// One pure function per opcode. Each zeroes and fills a whole 64-byte slot (through prepRw), the
// way the liburing helper of the same name fills its SQE; none touches user_data, which the ring
// sets after prep. Every argument is checked before the first store (integer, range, u16/u32/u64,
// the slot one getSqe handed out and not yet prepared), and a refusal names the opcode and the
// field. Grouped by the kernel version that added each opcode.
//
// Memory arguments: where a function takes a data buffer (`buf`), it may be a typed array or
// DataView, checked here (not detached, at least `len` bytes) and resolved to its address; the
// caller keeps it alive until the operation's last CQE (Ring.track's `hold`). A number is a raw
// address: the caller vouches that addr..addr+len is memory the kernel may use for that long, and
// only its form is checked. Struct arguments (msghdr, iovec, timespec, sockaddr) are always raw
// addresses.
import * as A from "../abi/sqe.ts";
import { addressOf } from "../../ffi/index.ts";
import {
  type SqeMemory,
  prepRwFlags,
  putU64,
  writeOpFlags,
  writeIoprio,
  writeBufIndex,
  orSqeFlags,
  checkU16,
  checkU32,
  checkU64,
  checkI32,
  checkPrepared,
  refuseField,
  shown,
} from "./sqe.ts";
import { invalidArgument } from "../error.ts";

/** A data buffer argument: a view (checked, then resolved to its address) or a raw address. */
export type BufferArg = number | NodeJS.TypedArray | DataView;

/** The address of `buf` for an SQE of `op` that moves `len` bytes: a number passes through (prepRw
 * checks its form), a view must be attached and hold `len` bytes. */
function bufferAddress(op: number, buf: BufferArg, len: number): number {
  return typeof buf === "number" ? buf : viewAddress(op, buf, len);
}

/** bufferAddress for a view (kept out of it, so the number path stays small enough to inline). */
function viewAddress(op: number, buf: NodeJS.TypedArray | DataView, len: number): number {
  if (!ArrayBuffer.isView(buf)) refuseField(op, "buf", "a typed array, a DataView or an address", buf);
  checkU32(op, "len", len);
  // A detached buffer reads as length 0; a resizable one may have shrunk since it was filled.
  if (buf.byteLength === 0)
    throw invalidArgument(
      `IORING_OP_${A.opcodeName(op)}`,
      "buf is detached (its ArrayBuffer was transferred) or empty",
    );
  if (len > buf.byteLength)
    throw invalidArgument(`IORING_OP_${A.opcodeName(op)}`, `len ${len} exceeds the buffer's ${buf.byteLength} bytes`);
  return addressOf(buf);
}

const W_ADDR2 = A.SQE.addr2 >> 2;
const W_FILE_INDEX = A.SQE.file_index >> 2;
const W_ADDR3 = A.SQE.addr3 >> 2;
const H_ADDR_LEN = A.SQE.addr_len >> 1;

// === 5.1 ===

/** io_uring_prep_nop. */
export function prepNop(m: SqeMemory, slot: number): void {
  prepRwFlags(m, slot, A.IORING_OP_NOP, -1, 0, 0, 0, 0, 0);
}

/** io_uring_prep_read_fixed: read into registered buffer `bufIndex` (addr inside it). */
export function prepReadFixed(
  m: SqeMemory,
  slot: number,
  fd: number,
  buf: BufferArg,
  len: number,
  offset: number,
  bufIndex: number,
): void {
  checkU16(A.IORING_OP_READ_FIXED, "bufIndex", bufIndex);
  prepRwFlags(m, slot, A.IORING_OP_READ_FIXED, fd, bufferAddress(A.IORING_OP_READ_FIXED, buf, len), len, offset, 0, 0);
  writeBufIndex(m, slot, bufIndex);
}

/** io_uring_prep_write_fixed. */
export function prepWriteFixed(
  m: SqeMemory,
  slot: number,
  fd: number,
  buf: BufferArg,
  len: number,
  offset: number,
  bufIndex: number,
): void {
  checkU16(A.IORING_OP_WRITE_FIXED, "bufIndex", bufIndex);
  prepRwFlags(
    m,
    slot,
    A.IORING_OP_WRITE_FIXED,
    fd,
    bufferAddress(A.IORING_OP_WRITE_FIXED, buf, len),
    len,
    offset,
    0,
    0,
  );
  writeBufIndex(m, slot, bufIndex);
}

/** io_uring_prep_poll_add: `pollMask` is POLLIN/POLLOUT... (32-bit events). */
export function prepPollAdd(m: SqeMemory, slot: number, fd: number, pollMask: number): void {
  checkU32(A.IORING_OP_POLL_ADD, "pollMask", pollMask);
  prepRwFlags(m, slot, A.IORING_OP_POLL_ADD, fd, 0, 0, 0, pollMask, 0);
}

// === 5.3 ===

/** io_uring_prep_sendmsg: `msg` is the address of a struct msghdr. */
export function prepSendmsg(m: SqeMemory, slot: number, fd: number, msg: number, flags: number): void {
  prepRwFlags(m, slot, A.IORING_OP_SENDMSG, fd, msg, 1, 0, flags, 0);
}

/** io_uring_prep_recvmsg. */
export function prepRecvmsg(m: SqeMemory, slot: number, fd: number, msg: number, flags: number): void {
  prepRwFlags(m, slot, A.IORING_OP_RECVMSG, fd, msg, 1, 0, flags, 0);
}

// === 5.4 / 5.5 ===

/** io_uring_prep_timeout: `ts` is the address of a struct __kernel_timespec (copied by the kernel
 * at submission); completes after the time or after `count` other completions. */
export function prepTimeout(m: SqeMemory, slot: number, ts: number, count: number, flags: number): void {
  checkU32(A.IORING_OP_TIMEOUT, "count", count);
  prepRwFlags(m, slot, A.IORING_OP_TIMEOUT, -1, ts, 1, count, flags, 0);
}

/** io_uring_prep_timeout_remove: `userData` of the timeout to remove. */
export function prepTimeoutRemove(m: SqeMemory, slot: number, userData: number, flags: number): void {
  prepRwFlags(m, slot, A.IORING_OP_TIMEOUT_REMOVE, -1, userData, 0, 0, flags, 0);
}

/** io_uring_prep_link_timeout: bounds the SQE before it (which must carry IOSQE_IO_LINK). */
export function prepLinkTimeout(m: SqeMemory, slot: number, ts: number, flags: number): void {
  prepRwFlags(m, slot, A.IORING_OP_LINK_TIMEOUT, -1, ts, 1, 0, flags, 0);
}

/** io_uring_prep_cancel64: cancel the request whose user_data is `userData`. */
export function prepCancel64(m: SqeMemory, slot: number, userData: number, flags: number): void {
  prepRwFlags(m, slot, A.IORING_OP_ASYNC_CANCEL, -1, userData, 0, 0, flags, 0);
}

/** io_uring_prep_cancel_fd: cancel requests on `fd` (IORING_ASYNC_CANCEL_FD is added). */
export function prepCancelFd(m: SqeMemory, slot: number, fd: number, flags: number): void {
  checkU32(A.IORING_OP_ASYNC_CANCEL, "flags", flags);
  prepRwFlags(m, slot, A.IORING_OP_ASYNC_CANCEL, fd, 0, 0, 0, 0, 0);
  writeOpFlags(m, slot, flags | A.IORING_ASYNC_CANCEL_FD);
}

/** ASYNC_CANCEL of the requests on `fd` whose opcode is `opcode` (IORING_ASYNC_CANCEL_FD |
 * IORING_ASYNC_CANCEL_OP, 6.6+: the kernel reads the opcode from sqe->len); add
 * IORING_ASYNC_CANCEL_ALL in `flags` for all of them. */
export function prepCancelFdOp(m: SqeMemory, slot: number, fd: number, opcode: number, flags: number): void {
  if ((opcode & 0xff) !== opcode)
    refuseField(A.IORING_OP_ASYNC_CANCEL, "opcode", "an IORING_OP_* number 0..255", opcode);
  checkU32(A.IORING_OP_ASYNC_CANCEL, "flags", flags);
  prepRwFlags(m, slot, A.IORING_OP_ASYNC_CANCEL, fd, 0, opcode, 0, 0, 0);
  writeOpFlags(m, slot, flags | A.IORING_ASYNC_CANCEL_FD | A.IORING_ASYNC_CANCEL_OP);
}

/** io_uring_prep_accept: `addr`/`addrLen` are addresses of a sockaddr buffer and its socklen_t
 * (both may be 0). */
export function prepAccept(m: SqeMemory, slot: number, fd: number, addr: number, addrLen: number, flags: number): void {
  checkU64(A.IORING_OP_ACCEPT, "addrLen (the address of a socklen_t)", addrLen);
  prepRwFlags(m, slot, A.IORING_OP_ACCEPT, fd, addr, 0, addrLen, flags, 0);
}

/** io_uring_prep_multishot_accept (5.19): one SQE, a CQE per accepted connection. */
export function prepMultishotAccept(
  m: SqeMemory,
  slot: number,
  fd: number,
  addr: number,
  addrLen: number,
  flags: number,
): void {
  prepAccept(m, slot, fd, addr, addrLen, flags);
  writeIoprio(m, slot, A.IORING_ACCEPT_MULTISHOT);
}

/** io_uring_prep_connect. */
export function prepConnect(m: SqeMemory, slot: number, fd: number, addr: number, addrLen: number): void {
  checkU32(A.IORING_OP_CONNECT, "addrLen", addrLen);
  prepRwFlags(m, slot, A.IORING_OP_CONNECT, fd, addr, 0, addrLen, 0, 0);
}

// === 5.6 ===

/** io_uring_prep_close. */
export function prepClose(m: SqeMemory, slot: number, fd: number): void {
  prepRwFlags(m, slot, A.IORING_OP_CLOSE, fd, 0, 0, 0, 0, 0);
}

/** io_uring_prep_close_direct: close registered file slot `fileIndex`. */
export function prepCloseDirect(m: SqeMemory, slot: number, fileIndex: number): void {
  if (fileIndex >>> 0 !== fileIndex || fileIndex === 0xffffffff)
    refuseField(A.IORING_OP_CLOSE, "fileIndex", "an integer 0..4294967294 (a registered file slot)", fileIndex);
  prepRwFlags(m, slot, A.IORING_OP_CLOSE, 0, 0, 0, 0, 0, 0);
  m.u32[(slot << 4) + W_FILE_INDEX] = fileIndex + 1;
}

/** io_uring_prep_read (offset -1: the file position). */
export function prepRead(m: SqeMemory, slot: number, fd: number, buf: BufferArg, len: number, offset: number): void {
  prepRwFlags(m, slot, A.IORING_OP_READ, fd, bufferAddress(A.IORING_OP_READ, buf, len), len, offset, 0, 0);
}

/** io_uring_prep_write. */
export function prepWrite(m: SqeMemory, slot: number, fd: number, buf: BufferArg, len: number, offset: number): void {
  prepRwFlags(m, slot, A.IORING_OP_WRITE, fd, bufferAddress(A.IORING_OP_WRITE, buf, len), len, offset, 0, 0);
}

/** io_uring_prep_send. */
export function prepSend(m: SqeMemory, slot: number, fd: number, buf: BufferArg, len: number, flags: number): void {
  prepRwFlags(m, slot, A.IORING_OP_SEND, fd, bufferAddress(A.IORING_OP_SEND, buf, len), len, 0, flags, 0);
}

/** io_uring_prep_send_set_addr: destination for SEND / SEND_ZC on an unconnected datagram
 * socket (6.0+). Applied after the prep function, like the liburing helper. */
export function prepSendSetAddr(m: SqeMemory, slot: number, addr: number, addrLen: number): void {
  checkPrepared(m, slot, "prepSendSetAddr");
  if (!(Math.floor(addr) === addr && addr >= 0 && addr <= Number.MAX_SAFE_INTEGER) || (addrLen & 0xffff) !== addrLen) {
    throw invalidArgument(
      "prepSendSetAddr",
      `addr must be an integer 0..2^53-1 and addrLen 0..65535, got ${shown(addr)} and ${shown(addrLen)}`,
    );
  }
  putU64(m.u32, (slot << 4) + W_ADDR2, addr);
  m.u16[(slot << 5) + H_ADDR_LEN] = addrLen;
}

/** io_uring_prep_recv. */
export function prepRecv(m: SqeMemory, slot: number, fd: number, buf: BufferArg, len: number, flags: number): void {
  prepRwFlags(m, slot, A.IORING_OP_RECV, fd, bufferAddress(A.IORING_OP_RECV, buf, len), len, 0, flags, 0);
}

/** io_uring_prep_recv_multishot with a provided-buffer group (6.0+): each CQE names the buffer
 * it filled (IORING_CQE_F_BUFFER, id in flags >> 16). */
export function prepRecvMultishot(m: SqeMemory, slot: number, fd: number, bufGroup: number, flags: number): void {
  checkU16(A.IORING_OP_RECV, "bufGroup", bufGroup);
  prepRwFlags(m, slot, A.IORING_OP_RECV, fd, 0, 0, 0, flags, A.IORING_RECV_MULTISHOT);
  writeBufIndex(m, slot, bufGroup);
  orSqeFlags(m, slot, A.IOSQE_BUFFER_SELECT);
}

// === 5.11 ===

/** io_uring_prep_shutdown: `how` is SHUT_RD / SHUT_WR / SHUT_RDWR. */
export function prepShutdown(m: SqeMemory, slot: number, fd: number, how: number): void {
  prepRwFlags(m, slot, A.IORING_OP_SHUTDOWN, fd, 0, how, 0, 0, 0);
}

// === 5.19 ===

/** io_uring_prep_socket: the CQE's res is the new fd. */
export function prepSocket(
  m: SqeMemory,
  slot: number,
  domain: number,
  type: number,
  protocol: number,
  flags: number,
): void {
  checkU32(A.IORING_OP_SOCKET, "domain", domain);
  checkU32(A.IORING_OP_SOCKET, "type", type);
  checkU32(A.IORING_OP_SOCKET, "protocol", protocol);
  prepRwFlags(m, slot, A.IORING_OP_SOCKET, domain, 0, protocol, type, flags, 0);
}

/** io_uring_prep_cmd_sock(SOCKET_URING_OP_SETSOCKOPT) (6.7+): setsockopt through the ring. */
export function prepSetsockopt(
  m: SqeMemory,
  slot: number,
  fd: number,
  level: number,
  optname: number,
  optval: number,
  optlen: number,
): void {
  checkI32(A.IORING_OP_URING_CMD, "level", level);
  checkI32(A.IORING_OP_URING_CMD, "optname", optname);
  checkU64(A.IORING_OP_URING_CMD, "optval", optval);
  checkU32(A.IORING_OP_URING_CMD, "optlen", optlen);
  prepRwFlags(m, slot, A.IORING_OP_URING_CMD, fd, 0, 0, 0, 0, 0);
  const w = slot << 4;
  m.u32[w + (A.SQE.cmd_op >> 2)] = A.SOCKET_URING_OP_SETSOCKOPT;
  m.u32[w + (A.SQE.level >> 2)] = level;
  m.u32[w + (A.SQE.optname >> 2)] = optname;
  m.u32[w + (A.SQE.optlen >> 2)] = optlen;
  putU64(m.u32, w + W_ADDR3, optval);
}

// === 6.0 / 6.1: zero-copy send ===

/** io_uring_prep_send_zc: two CQEs follow (the result, then F_NOTIF when the buffer is free)
 * whenever the first has F_MORE. `zcFlags` go to ioprio (REPORT_USAGE, POLL_FIRST,
 * VECTORIZED). */
export function prepSendZc(
  m: SqeMemory,
  slot: number,
  fd: number,
  buf: BufferArg,
  len: number,
  flags: number,
  zcFlags: number,
): void {
  prepRwFlags(m, slot, A.IORING_OP_SEND_ZC, fd, bufferAddress(A.IORING_OP_SEND_ZC, buf, len), len, 0, flags, zcFlags);
}

/** io_uring_prep_send_zc_fixed: from registered buffer `bufIndex`; buf/len lie inside it. */
export function prepSendZcFixed(
  m: SqeMemory,
  slot: number,
  fd: number,
  buf: BufferArg,
  len: number,
  flags: number,
  zcFlags: number,
  bufIndex: number,
): void {
  checkU16(A.IORING_OP_SEND_ZC, "zcFlags", zcFlags);
  checkU16(A.IORING_OP_SEND_ZC, "bufIndex", bufIndex);
  prepSendZc(m, slot, fd, buf, len, flags, zcFlags | A.IORING_RECVSEND_FIXED_BUF);
  writeBufIndex(m, slot, bufIndex);
}

/** io_uring_prep_sendmsg_zc: `msg` is a struct msghdr address (msg_name for datagrams). */
export function prepSendmsgZc(
  m: SqeMemory,
  slot: number,
  fd: number,
  msg: number,
  flags: number,
  zcFlags: number,
): void {
  prepRwFlags(m, slot, A.IORING_OP_SENDMSG_ZC, fd, msg, 1, 0, flags, zcFlags);
}

/** io_uring_prep_sendmsg_zc_fixed: every iovec lies inside registered buffer `bufIndex`. */
export function prepSendmsgZcFixed(
  m: SqeMemory,
  slot: number,
  fd: number,
  msg: number,
  flags: number,
  zcFlags: number,
  bufIndex: number,
): void {
  checkU16(A.IORING_OP_SENDMSG_ZC, "zcFlags", zcFlags);
  checkU16(A.IORING_OP_SENDMSG_ZC, "bufIndex", bufIndex);
  prepSendmsgZc(m, slot, fd, msg, flags, zcFlags | A.IORING_RECVSEND_FIXED_BUF);
  writeBufIndex(m, slot, bufIndex);
}

/** Vectorized SEND_ZC (IORING_SEND_VECTORIZED, 6.17): `iov` is the address of `iovcnt` struct
 * iovec; like io_uring_prep_send_zc with the vectorized flag. */
export function prepSendZcVectorized(
  m: SqeMemory,
  slot: number,
  fd: number,
  iov: number,
  iovcnt: number,
  flags: number,
  zcFlags: number,
): void {
  checkU16(A.IORING_OP_SEND_ZC, "zcFlags", zcFlags);
  checkU64(A.IORING_OP_SEND_ZC, "iov", iov);
  prepSendZc(m, slot, fd, iov, iovcnt, flags, zcFlags | A.IORING_SEND_VECTORIZED);
}

/** Vectorized SEND (IORING_SEND_VECTORIZED in ioprio, 6.17): `iov` is the address of `iovcnt`
 * struct iovec, gathered into one copying send. */
export function prepSendVectorized(
  m: SqeMemory,
  slot: number,
  fd: number,
  iov: number,
  iovcnt: number,
  flags: number,
): void {
  prepRwFlags(m, slot, A.IORING_OP_SEND, fd, iov, iovcnt, 0, flags, A.IORING_SEND_VECTORIZED);
}

// === 7.1: notification user_data ===

/** The user_data of a prepared SEND_ZC / SENDMSG_ZC's notification CQE, in sqe->addr3: since 7.1
 * (commit cb9487333652, "io_uring/zctx: separate notification user_data"; probed with
 * probeNotifUserData, since distributions backport) io_send_zc_prep posts the notification under
 * a non-zero addr3, and 0 keeps the send's own user_data. Older kernels refuse a non-zero addr3
 * with EINVAL. No liburing helper sets it. */
export function prepSendZcSetNotifUserData(m: SqeMemory, slot: number, userData: number): void {
  checkPrepared(m, slot, "prepSendZcSetNotifUserData");
  checkU64(A.IORING_OP_SEND_ZC, "userData", userData);
  putU64(m.u32, (slot << 4) + W_ADDR3, userData);
}

// === 6.17: a byte limit on a multishot receive ===

/** The byte limit of a prepared receive, in sqe->optlen: a multishot RECV ends (its last CQE
 * without IORING_CQE_F_MORE) once that many bytes arrived, and picks no buffer past it ("io_uring/
 * net: Support multishot receive len cap", from the list archive: July 2025, so Linux 6.17; probed
 * with probeRecvLimit, since distributions backport). Older kernels read the same bytes as
 * file_index and refuse a non-zero value on a RECV (EINVAL); kernels with it refuse it on a
 * receive that is not multishot. 0: no limit. No liburing helper sets it. */
export function prepRecvSetLimit(m: SqeMemory, slot: number, bytes: number): void {
  checkPrepared(m, slot, "prepRecvSetLimit");
  checkU32(A.IORING_OP_RECV, "bytes", bytes);
  m.u32[(slot << 4) + (A.SQE.optlen >> 2)] = bytes;
}

// === 6.11 ===

/** io_uring_prep_bind. */
export function prepBind(m: SqeMemory, slot: number, fd: number, addr: number, addrLen: number): void {
  checkU32(A.IORING_OP_BIND, "addrLen", addrLen);
  prepRwFlags(m, slot, A.IORING_OP_BIND, fd, addr, 0, addrLen, 0, 0);
}

/** io_uring_prep_listen. */
export function prepListen(m: SqeMemory, slot: number, fd: number, backlog: number): void {
  prepRwFlags(m, slot, A.IORING_OP_LISTEN, fd, 0, backlog, 0, 0, 0);
}

// === 6.15: zero-copy receive ===

/** RECV_ZC (liburing has no helper; its example preps it by hand the same way): multishot is
 * mandatory; `len` caps the total bytes (0 = unlimited); `ifqIdx` is the zcrx_id from
 * registration; `extraIoprio` may add IORING_RECVSEND_POLL_FIRST. */
export function prepRecvZc(
  m: SqeMemory,
  slot: number,
  fd: number,
  len: number,
  ifqIdx: number,
  extraIoprio: number,
): void {
  checkU32(A.IORING_OP_RECV_ZC, "ifqIdx", ifqIdx);
  checkU16(A.IORING_OP_RECV_ZC, "extraIoprio", extraIoprio);
  prepRwFlags(m, slot, A.IORING_OP_RECV_ZC, fd, 0, len, 0, 0, A.IORING_RECV_MULTISHOT | extraIoprio);
  m.u32[(slot << 4) + (A.SQE.zcrx_ifq_idx >> 2)] = ifqIdx;
}

// === 6.0: multishot recvmsg ===

/** io_uring_prep_recvmsg_multishot with a provided-buffer group (6.0+): `msg` is the address of a
 * struct msghdr whose msg_namelen / msg_controllen reserve room in every buffer (msg_iovlen 0);
 * each CQE names the buffer it filled, which starts with a struct io_uring_recvmsg_out. */
export function prepRecvmsgMultishot(
  m: SqeMemory,
  slot: number,
  fd: number,
  msg: number,
  bufGroup: number,
  flags: number,
): void {
  checkU16(A.IORING_OP_RECVMSG, "bufGroup", bufGroup);
  prepRecvmsg(m, slot, fd, msg, flags);
  writeIoprio(m, slot, A.IORING_RECV_MULTISHOT);
  writeBufIndex(m, slot, bufGroup);
  orSqeFlags(m, slot, A.IOSQE_BUFFER_SELECT);
}
