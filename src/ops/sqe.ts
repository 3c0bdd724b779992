// Views of an SQE array, the few field writers every prep function shares, and the slot states
// that keep a slot from carrying old work. A slot is always zeroed whole before it is filled (Zig
// std's rule), so nothing survives from its previous use; every value is checked before the first
// store, so a refused prep leaves no half-written SQE.
import {
  SQE,
  SQE_SIZE,
  IORING_OP_NOP,
  IOSQE_FIXED_FILE,
  IOSQE_IO_DRAIN,
  IOSQE_IO_LINK,
  IOSQE_IO_HARDLINK,
  IOSQE_ASYNC,
  IOSQE_BUFFER_SELECT,
  IOSQE_CQE_SKIP_SUCCESS,
  opcodeName,
} from "../abi/sqe.ts";
import { invalidArgument, shown } from "../error.ts";

export { shown };

/** What a slot may be used for now (bits of SqeMemory.state). A ring's slot is FREE until getSqe
 * hands it out (TAKEN: it holds a NOP that posts nothing), PREPARED after one prep function,
 * OWNED once its user_data is set (Ring.track / setUserData), and FREE again when the ring
 * publishes it. BOUND marks a slot Ring.begin handed out with an op-table entry: the ring writes
 * the entry's user_data when it publishes the slot (a prep keeps the bit). LOOSE marks memory no
 * ring manages (sqeMemory without a ring): every slot may be prepared any number of times. */
export const SLOT_FREE = 0;
export const SLOT_TAKEN = 1;
export const SLOT_PREPARED = 2;
export const SLOT_OWNED = 4;
export const SLOT_LOOSE = 8;
export const SLOT_BOUND = 16;

/** Typed views of an SQE array: the same bytes as u8, u16 and u32. Slot i starts at byte i*64. */
export interface SqeMemory {
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  /** Number of slots. */
  readonly entries: number;
  /** SLOT_* bits per slot: a prep function takes only a TAKEN (or LOOSE) slot. */
  readonly state: Uint8Array;
  /** Word 0 of the NOP a slot holds while TAKEN: opcode NOP, and IOSQE_CQE_SKIP_SUCCESS where
   * the kernel has it (5.17), so a slot handed out and never prepared completes silently. */
  idleWord0: number;
}

/** Views of `entries` 64-byte SQEs starting at `byteOffset` of `buffer`. Without `managed` (a ring
 * passes true) the slots are LOOSE: any slot may be prepared, as often as wanted. */
export function sqeMemory(buffer: ArrayBufferLike, byteOffset: number, entries: number, managed = false): SqeMemory {
  const bytes = entries * SQE_SIZE;
  return {
    u8: new Uint8Array(buffer, byteOffset, bytes),
    u16: new Uint16Array(buffer, byteOffset, bytes / 2),
    u32: new Uint32Array(buffer, byteOffset, bytes / 4),
    entries,
    state: new Uint8Array(entries).fill(managed ? SLOT_FREE : SLOT_LOOSE),
    idleWord0: IORING_OP_NOP,
  };
}

/** 2^32, for splitting a number below 2^53 into two u32 halves. */
const U32_SPAN = 4294967296;

/** Word index (u32) of a slot's first byte. */
export const wordOf = (slot: number): number => slot << 4;

/** Store a u64 (a number below 2^53, or a small negative one such as -1) at u32 word `w`. */
export function putU64(u32: Uint32Array, w: number, value: number): void {
  // Small non-negative values (fds, lengths, most offsets) skip the floating-point split.
  if (value >>> 0 === value) {
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

// ---- argument checks: a few compares inline, the message built off the hot path ----

/** The largest u64 a JS number holds exactly (addresses, offsets, user_data). */
const MAX_EXACT = Number.MAX_SAFE_INTEGER;
const PREPPABLE = SLOT_TAKEN | SLOT_LOOSE;
/** State bits a prep leaves as they were. */
const KEPT_BY_PREP = SLOT_LOOSE | SLOT_BOUND;

/** An integer 0..2^53-1 (a u64 field given as a number: an address or a user_data). */
export function isU64(v: number): boolean {
  return Math.floor(v) === v && v >= 0 && v <= MAX_EXACT;
}

/** Throw the refusal for one field of an opcode's SQE. */
export function refuseField(op: number, field: string, want: string, got: unknown): never {
  throw invalidArgument(`IORING_OP_${opcodeName(op)}`, `${field} must be ${want}, got ${shown(got)}`);
}

/** Check a u32 argument of a prep function (flags, masks, indices). */
export function checkU32(op: number, field: string, v: number): void {
  if (v >>> 0 !== v) refuseField(op, field, "an integer 0..4294967295 (u32)", v);
}

/** Check a u16 argument (ioprio flags, buffer index or group). */
export function checkU16(op: number, field: string, v: number): void {
  if ((v & 0xffff) !== v) refuseField(op, field, "an integer 0..65535 (u16)", v);
}

/** Check a u64 argument given as a number (an address, a user_data). */
export function checkU64(op: number, field: string, v: number): void {
  if (!isU64(v)) refuseField(op, field, "an integer 0..2^53-1", v);
}

/** Check an i32 argument that the kernel reads as a bit pattern (setsockopt level, optname). */
export function checkI32(op: number, field: string, v: number): void {
  if ((v | 0) !== v && v >>> 0 !== v) refuseField(op, field, "a 32-bit integer", v);
}

/** Why `slot` cannot be prepared (or given fields) now: the message names what the slot is. */
function slotProblem(m: SqeMemory, slot: number, need: number): string | null {
  if (slot >>> 0 !== slot || slot >= m.entries)
    return `slot must be an integer 0..${m.entries - 1} from getSqe(), got ${shown(slot)}`;
  const s = m.state[slot]!;
  if (s & need) return null;
  if (s === SLOT_FREE)
    return `slot ${slot} was not handed out by getSqe(), or the ring already submitted it (an unprepared slot goes out as a NOP): take a new one with getSqe()`;
  if (need === PREPPABLE) return `slot ${slot} is already prepared; take a new one with getSqe() for another operation`;
  return `slot ${slot} is not prepared yet: call a prep function on it first`;
}

/** Throw unless `slot` may take a prep (TAKEN or LOOSE). */
function checkPreppable(m: SqeMemory, slot: number, where: string): void {
  const why = slotProblem(m, slot, PREPPABLE);
  if (why !== null) throw invalidArgument(where, why);
}

/** Throw unless `slot` holds a prepared SQE (for the field writers that follow a prep). */
export function checkPrepared(m: SqeMemory, slot: number, where: string): void {
  if (slot >>> 0 !== slot || (m.state[slot]! & SLOT_PREPARED) === 0) {
    throw invalidArgument(where, slotProblem(m, slot, SLOT_PREPARED) ?? `slot ${slot} is not prepared`);
  }
}

/** Off the hot path: the precise reason prepRw refused. Nothing was written to the slot. */
function refuseRw(
  m: SqeMemory,
  slot: number,
  op: number,
  fd: number,
  addr: number,
  len: number,
  off: number,
  opFlags: number,
  ioprio: number,
): never {
  checkPreppable(m, slot, `IORING_OP_${opcodeName(op)}`);
  if ((fd | 0) !== fd || fd < -1)
    refuseField(
      op,
      "fd",
      "an integer -1..2147483647 (a file descriptor, or an index into the registered files with IOSQE_FIXED_FILE)",
      fd,
    );
  checkU64(op, "addr", addr);
  checkU32(op, "len", len);
  checkU32(op, "flags", opFlags);
  checkU16(op, "ioprio flags", ioprio);
  refuseField(op, "off", "an integer -1..2^53-1 (-1: the file position)", off);
}

// ---- hand-out and prep ----

/** Turn a slot into the idle NOP and mark it TAKEN. The ring does this to a slot handed out and
 * still unprepared when it is published, so a slot whose prep never happened (an exception in
 * between, or no prep at all) submits as a NOP that posts nothing, never as the SQE of its
 * previous lap. Five stores: a NOP reads only word 0 (opcode, flags, ioprio), nop_flags (the
 * op_flags word: 0 reads nothing else, see the kernel's io_nop_prep), user_data and personality
 * (io_init_req). */
export function idleSlot(m: SqeMemory, slot: number): void {
  const u32 = m.u32;
  const w = slot << 4;
  u32[w + W_OPCODE] = m.idleWord0;
  u32[w + W_OP_FLAGS] = 0;
  u32[w + W_USER_DATA] = 0;
  u32[w + W_USER_DATA + 1] = 0;
  u32[w + W_BUF_INDEX] = 0;
  m.state[slot] = (m.state[slot]! & SLOT_LOOSE) | SLOT_TAKEN;
}

/** Turn a slot whose operation was refused after its prep into a NOP nobody may prepare again
 * (PREPARED | OWNED): it goes out as a NOP that posts nothing, and a full SQ may submit it. */
export function retireSlot(m: SqeMemory, slot: number): void {
  idleSlot(m, slot);
  m.state[slot] = SLOT_PREPARED | SLOT_OWNED;
}

/** Zero a slot and fill the fields shared by the read/write-shaped opcodes (liburing's
 * io_uring_prep_rw): opcode, fd, addr, len, off (prepRwFlags adds the two flag fields most
 * opcodes take, the per-opcode flags word, msg_flags, accept_flags..., and ioprio). Every value is checked first (a
 * handful of compares; the message is built by refuseRw, off this path): fd an integer >= -1,
 * addr a u64, len and opFlags u32, ioprio u16, off a u64 or -1, and the slot one that getSqe
 * handed out and nothing prepared yet. The check, the stores and the state are three small
 * pieces: written as one body, the JIT stopped inlining the stores' helpers into it, and a prep
 * measured three times slower. */
export function prepRw(
  m: SqeMemory,
  slot: number,
  op: number,
  fd: number,
  addr: number,
  len: number,
  off: number,
): void {
  prepRwFlags(m, slot, op, fd, addr, len, off, 0, 0);
}

/** prepRw with the per-opcode flags word and ioprio filled too (both checked: u32, u16). No
 * defaults: an `undefined` flag is refused, not taken for 0. */
export function prepRwFlags(
  m: SqeMemory,
  slot: number,
  op: number,
  fd: number,
  addr: number,
  len: number,
  off: number,
  opFlags: number,
  ioprio: number,
): void {
  const state = m.state;
  if (slot >>> 0 !== slot || (state[slot]! & PREPPABLE) === 0 || !rwArgsOk(fd, addr, len, off, opFlags, ioprio))
    refuseRw(m, slot, op, fd, addr, len, off, opFlags, ioprio);
  fillRw(m.u32, slot << 4, op, fd, addr, len, off, opFlags, ioprio);
  state[slot] = (state[slot]! & KEPT_BY_PREP) | SLOT_PREPARED;
}

/** Whether prepRw's fields are in range. Small values (most fds, lengths, offsets, a NOP's zero
 * address) pass the int tests alone. */
function rwArgsOk(fd: number, addr: number, len: number, off: number, opFlags: number, ioprio: number): boolean {
  // The range tests come before Math.floor, and no `>>> 0` touches a u64: truncating a double past
  // 2^32 to int32 takes the JIT's slow path (an address is always past 2^32).
  return (
    (fd | 0) === fd &&
    fd >= -1 &&
    len >>> 0 === len &&
    opFlags >>> 0 === opFlags &&
    (ioprio & 0xffff) === ioprio &&
    addr >= 0 &&
    addr <= MAX_EXACT &&
    Math.floor(addr) === addr &&
    off >= -1 &&
    off <= MAX_EXACT &&
    Math.floor(off) === off
  );
}

/** prepRw's stores: all 16 words once, in order, with plain stores (TypedArray.prototype.fill is a
 * call into the runtime that costs more than the stores themselves on this path). Word 0 holds
 * opcode (byte 0), flags (byte 1, left 0) and ioprio (bytes 2-3), little endian. */
function fillRw(
  u32: Uint32Array,
  w: number,
  op: number,
  fd: number,
  addr: number,
  len: number,
  off: number,
  opFlags: number,
  ioprio: number,
): void {
  u32[w + W_OPCODE] = (op & 0xff) | (ioprio << 16);
  u32[w + W_FD] = fd;
  putU64(u32, w + W_OFF, off);
  putU64(u32, w + W_ADDR, addr);
  u32[w + W_LEN] = len;
  u32[w + W_OP_FLAGS] = opFlags;
  u32[w + W_USER_DATA] = 0;
  u32[w + W_USER_DATA + 1] = 0;
  u32[w + W_BUF_INDEX] = 0; // buf_index and personality
  u32[w + W_FILE_INDEX] = 0; // splice_fd_in / file_index / addr_len + __pad3
  u32[w + W_ADDR3] = 0;
  u32[w + W_ADDR3 + 1] = 0;
  u32[w + W_PAD2] = 0;
  u32[w + W_PAD2 + 1] = 0;
}

// ---- field writers: the prep functions call the raw ones (their values are checked before
// prepRw); the exported ones check the value and that the slot holds a prepared SQE ----

/** Raw: the 32-bit per-opcode flags word at byte 28. */
export function writeOpFlags(m: SqeMemory, slot: number, flags: number): void {
  m.u32[(slot << 4) + W_OP_FLAGS] = flags;
}

/** Raw: sqe.ioprio (u16). */
export function writeIoprio(m: SqeMemory, slot: number, ioprio: number): void {
  m.u16[(slot << 5) + (SQE.ioprio >> 1)] = ioprio;
}

/** Raw: sqe.buf_index / buf_group (u16 at byte 40). */
export function writeBufIndex(m: SqeMemory, slot: number, index: number): void {
  m.u16[(slot << 5) + (SQE.buf_index >> 1)] = index;
}

/** Raw: OR IOSQE_* bits into sqe.flags. */
export function orSqeFlags(m: SqeMemory, slot: number, flags: number): void {
  const i = (slot << 6) + SQE.flags;
  m.u8[i] = m.u8[i]! | flags;
}

/** Raw: sqe.user_data as two u32 halves. */
export function writeUserData(m: SqeMemory, slot: number, lo: number, hi: number): void {
  const w = (slot << 4) + W_USER_DATA;
  m.u32[w] = lo;
  m.u32[w + 1] = hi;
}

/** The 32-bit per-opcode flags word at byte 28 (msg_flags, timeout_flags, accept_flags...). */
export function setOpFlags(m: SqeMemory, slot: number, flags: number): void {
  checkPrepared(m, slot, "setOpFlags");
  if (flags >>> 0 !== flags)
    throw invalidArgument("setOpFlags", `flags must be an integer 0..4294967295 (u32), got ${shown(flags)}`);
  writeOpFlags(m, slot, flags);
}

/** sqe.ioprio (u16): IORING_RECVSEND_* / SEND_ZC / ACCEPT flags for networking opcodes. */
export function setIoprio(m: SqeMemory, slot: number, ioprio: number): void {
  checkPrepared(m, slot, "setIoprio");
  if ((ioprio & 0xffff) !== ioprio)
    throw invalidArgument("setIoprio", `ioprio must be an integer 0..65535 (u16), got ${shown(ioprio)}`);
  writeIoprio(m, slot, ioprio);
}

/** sqe.buf_index / buf_group (u16 at byte 40). */
export function setBufIndex(m: SqeMemory, slot: number, index: number): void {
  checkPrepared(m, slot, "setBufIndex");
  if ((index & 0xffff) !== index)
    throw invalidArgument("setBufIndex", `index must be an integer 0..65535 (u16), got ${shown(index)}`);
  writeBufIndex(m, slot, index);
}

/** sqe.flags (IOSQE_*), OR'd into what the prep function set. */
export function addSqeFlags(m: SqeMemory, slot: number, flags: number): void {
  checkPrepared(m, slot, "addSqeFlags");
  if ((flags & 0x7f) !== flags)
    throw invalidArgument("addSqeFlags", `flags must be IOSQE_* bits (0..0x7f), got ${shown(flags)}`);
  orSqeFlags(m, slot, flags);
}

/** sqe.user_data as two u32 halves (bun-uring keeps user_data below 2^53). */
export function setUserData(m: SqeMemory, slot: number, lo: number, hi: number): void {
  checkPrepared(m, slot, "setUserData");
  if (lo >>> 0 !== lo || hi >>> 0 !== hi)
    throw invalidArgument(
      "setUserData",
      `lo and hi must be integers 0..4294967295 (u32), got ${shown(lo)} and ${shown(hi)}`,
    );
  writeUserData(m, slot, lo, hi);
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
