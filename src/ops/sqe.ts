// Views of an SQE array and the few field writers every prep function shares. A slot is always
// zeroed whole before it is filled (Zig std's rule), so nothing survives from its previous use.
import { SQE, SQE_SIZE, IOSQE_FIXED_FILE, IOSQE_IO_DRAIN, IOSQE_IO_LINK, IOSQE_IO_HARDLINK, IOSQE_ASYNC, IOSQE_BUFFER_SELECT, IOSQE_CQE_SKIP_SUCCESS } from "../abi/sqe.ts";

/** Typed views of an SQE array: the same bytes as u8, u16 and u32. Slot i starts at byte i*64. */
export interface SqeMemory {
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  /** Number of slots. */
  readonly entries: number;
}

/** Views of `entries` 64-byte SQEs starting at `byteOffset` of `buffer`. */
export function sqeMemory(buffer: ArrayBufferLike, byteOffset: number, entries: number): SqeMemory {
  const bytes = entries * SQE_SIZE;
  return {
    u8: new Uint8Array(buffer, byteOffset, bytes),
    u16: new Uint16Array(buffer, byteOffset, bytes / 2),
    u32: new Uint32Array(buffer, byteOffset, bytes / 4),
    entries,
  };
}

/** 2^32, for splitting a number below 2^53 into two u32 halves. */
const U32_SPAN = 4294967296;

/** Word index (u32) of a slot's first byte. */
export const wordOf = (slot: number): number => slot << 4;

/** Store a u64 (a number below 2^53, or a small negative one such as -1) at u32 word `w`. */
export function putU64(u32: Uint32Array, w: number, value: number): void {
  // Small non-negative values (fds, lengths, most offsets) skip the floating-point split.
  if ((value >>> 0) === value) {
    u32[w] = value;
    u32[w + 1] = 0;
    return;
  }
  u32[w] = value >>> 0;
  u32[w + 1] = Math.floor(value / U32_SPAN) >>> 0;
}

/** Read a u64 stored at u32 word `w` as a number (exact below 2^53). */
export function getU64(u32: Uint32Array, w: number): number {
  return u32[w + 1]! * U32_SPAN + u32[w]!;
}

// Word (u32) indices of the SQE fields prepRw writes, from the byte offsets in abi/sqe.ts.
const W_OPCODE = SQE.opcode >> 2;
const W_FD = SQE.fd >> 2;
const W_OFF = SQE.off >> 2;
const W_ADDR = SQE.addr >> 2;
const W_LEN = SQE.len >> 2;
const W_OP_FLAGS = SQE.op_flags >> 2;
const W_USER_DATA = SQE.user_data >> 2;
const W_BUF_INDEX = SQE.buf_index >> 2;
const W_FILE_INDEX = SQE.file_index >> 2;
const W_ADDR3 = SQE.addr3 >> 2;
const W_PAD2 = SQE.pad2 >> 2;

/** Zero a slot and fill the fields shared by the read/write-shaped opcodes (liburing's
 * io_uring_prep_rw): opcode, fd, addr, len, off. All 16 words are written once, in order, with
 * plain stores: TypedArray.prototype.fill is a call into the runtime that costs more than the
 * stores themselves on this path. Word 0 holds opcode (byte 0), flags, ioprio: little endian, so
 * the opcode alone is the word's value. */
export function prepRw(m: SqeMemory, slot: number, op: number, fd: number, addr: number, len: number, off: number): void {
  const u32 = m.u32;
  const w = slot << 4;
  u32[w + W_OPCODE] = op & 0xff; // opcode; flags and ioprio share the word and stay 0
  u32[w + W_FD] = fd;
  putU64(u32, w + W_OFF, off);
  putU64(u32, w + W_ADDR, addr);
  u32[w + W_LEN] = len;
  u32[w + W_OP_FLAGS] = 0;
  u32[w + W_USER_DATA] = 0;
  u32[w + W_USER_DATA + 1] = 0;
  u32[w + W_BUF_INDEX] = 0; // buf_index and personality
  u32[w + W_FILE_INDEX] = 0; // splice_fd_in / file_index / addr_len + __pad3
  u32[w + W_ADDR3] = 0;
  u32[w + W_ADDR3 + 1] = 0;
  u32[w + W_PAD2] = 0;
  u32[w + W_PAD2 + 1] = 0;
}

/** The 32-bit per-opcode flags word at byte 28 (msg_flags, timeout_flags, accept_flags...). */
export function setOpFlags(m: SqeMemory, slot: number, flags: number): void {
  m.u32[(slot << 4) + (SQE.op_flags >> 2)] = flags;
}

/** sqe.ioprio (u16): IORING_RECVSEND_* / SEND_ZC / ACCEPT flags for networking opcodes. */
export function setIoprio(m: SqeMemory, slot: number, ioprio: number): void {
  m.u16[(slot << 5) + (SQE.ioprio >> 1)] = ioprio;
}

/** sqe.buf_index / buf_group (u16 at byte 40). */
export function setBufIndex(m: SqeMemory, slot: number, index: number): void {
  m.u16[(slot << 5) + (SQE.buf_index >> 1)] = index;
}

/** sqe.flags (IOSQE_*), OR'd into what the prep function set. */
export function addSqeFlags(m: SqeMemory, slot: number, flags: number): void {
  const i = (slot << 6) + SQE.flags;
  m.u8[i] = m.u8[i]! | flags;
}

/** sqe.user_data as two u32 halves (bun-uring keeps user_data below 2^53). */
export function setUserData(m: SqeMemory, slot: number, lo: number, hi: number): void {
  const w = (slot << 4) + (SQE.user_data >> 2);
  m.u32[w] = lo;
  m.u32[w + 1] = hi;
}

/** SQE flags as named options; `sqeFlags({ link: true })` is IOSQE_IO_LINK. */
export interface SqeFlagOptions {
  /** IOSQE_IO_LINK: the next SQE starts only after this one succeeds. */
  link?: boolean;
  /** IOSQE_IO_HARDLINK: the next SQE starts after this one, whatever its result. */
  hardlink?: boolean;
  /** IOSQE_IO_DRAIN: start only after everything submitted before has completed. */
  drain?: boolean;
  /** IOSQE_ASYNC: go straight to io-wq, no inline attempt. */
  async?: boolean;
  /** IOSQE_FIXED_FILE: fd is an index into the registered file table. */
  fixedFile?: boolean;
  /** IOSQE_BUFFER_SELECT: take a buffer from the provided-buffer group in buf_group. */
  bufferSelect?: boolean;
  /** IOSQE_CQE_SKIP_SUCCESS: post no CQE on success (refused for SEND_ZC). */
  skipSuccess?: boolean;
}

export function sqeFlags(o: SqeFlagOptions): number {
  return (
    (o.fixedFile ? IOSQE_FIXED_FILE : 0) |
    (o.drain ? IOSQE_IO_DRAIN : 0) |
    (o.link ? IOSQE_IO_LINK : 0) |
    (o.hardlink ? IOSQE_IO_HARDLINK : 0) |
    (o.async ? IOSQE_ASYNC : 0) |
    (o.bufferSelect ? IOSQE_BUFFER_SELECT : 0) |
    (o.skipSuccess ? IOSQE_CQE_SKIP_SUCCESS : 0)
  );
}
