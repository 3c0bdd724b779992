// Tier 1 (no kernel): every prep function in src/ops/prep.ts, byte for byte. Each case fills a
// 4-slot SQE array with 0xff, preps slot 2, decodes its 64 bytes field by field with a DataView
// (offsets typed from struct io_uring_sqe in the UAPI header, not taken from src/abi) and compares every field with
// what liburing's inline helper of the same name (liburing.h) writes; fields a case does not name must be 0.
// The other slots must still be all 0xff.
import { describe, expect, test } from "bun:test";
import * as P from "../src/ops/prep.ts";
import {
  sqeMemory,
  type SqeMemory,
  putU64,
  getU64,
  setUserData,
  addSqeFlags,
  sqeFlags,
  setOpFlags,
  setIoprio,
  setBufIndex,
} from "../src/ops/sqe.ts";

const SLOTS = 4;
const SLOT = 2;

/** Every field of struct io_uring_sqe (union members by their byte ranges). */
interface Fields {
  opcode: number;
  flags: number;
  ioprio: number;
  fd: number;
  off: number;
  addr: number;
  len: number;
  op_flags: number;
  user_data: number;
  buf_index: number;
  personality: number;
  word44: number;
  addr3: number;
  pad2: number;
}

const ZERO: Fields = {
  opcode: 0,
  flags: 0,
  ioprio: 0,
  fd: 0,
  off: 0,
  addr: 0,
  len: 0,
  op_flags: 0,
  user_data: 0,
  buf_index: 0,
  personality: 0,
  word44: 0,
  addr3: 0,
  pad2: 0,
};

function u64(dv: DataView, at: number): number {
  return dv.getUint32(at + 4, true) * 2 ** 32 + dv.getUint32(at, true);
}

function decode(u8: Uint8Array, slot: number): Fields {
  const dv = new DataView(u8.buffer, u8.byteOffset + slot * 64, 64);
  return {
    opcode: dv.getUint8(0),
    flags: dv.getUint8(1),
    ioprio: dv.getUint16(2, true),
    fd: dv.getInt32(4, true),
    off: u64(dv, 8),
    addr: u64(dv, 16),
    len: dv.getUint32(24, true),
    op_flags: dv.getUint32(28, true),
    user_data: u64(dv, 32),
    buf_index: dv.getUint16(40, true),
    personality: dv.getUint16(42, true),
    word44: dv.getUint32(44, true),
    addr3: u64(dv, 48),
    pad2: u64(dv, 56),
  };
}

function dirtyMemory(): SqeMemory {
  const m = sqeMemory(new ArrayBuffer(SLOTS * 64), 0, SLOTS);
  m.u8.fill(0xff);
  return m;
}

// Values chosen so every field's bytes differ and addresses need both u32 halves.
const FD = 7;
const BUF = 0x7f12_3456_7000;
const LEN = 4096;
const OFF = 0x1_0000_0010;
const MSG = 0x7f00_0000_1230;
const UD = 2 ** 40 + 5;

type Case = [name: string, prep: (m: SqeMemory, slot: number) => void, expected: Partial<Fields>];

const CASES: Case[] = [
  ["prepNop", (m, s) => P.prepNop(m, s), { opcode: 0, fd: -1 }],
  [
    "prepReadFixed",
    (m, s) => P.prepReadFixed(m, s, FD, BUF, LEN, OFF, 3),
    { opcode: 4, fd: FD, addr: BUF, len: LEN, off: OFF, buf_index: 3 },
  ],
  [
    "prepWriteFixed",
    (m, s) => P.prepWriteFixed(m, s, FD, BUF, LEN, OFF, 9),
    { opcode: 5, fd: FD, addr: BUF, len: LEN, off: OFF, buf_index: 9 },
  ],
  ["prepPollAdd", (m, s) => P.prepPollAdd(m, s, FD, 0x1 | 0x4), { opcode: 6, fd: FD, op_flags: 0x5 }],
  [
    "prepSendmsg",
    (m, s) => P.prepSendmsg(m, s, FD, MSG, 0x4000),
    { opcode: 9, fd: FD, addr: MSG, len: 1, op_flags: 0x4000 },
  ],
  [
    "prepRecvmsg",
    (m, s) => P.prepRecvmsg(m, s, FD, MSG, 0x40),
    { opcode: 10, fd: FD, addr: MSG, len: 1, op_flags: 0x40 },
  ],
  [
    "prepTimeout",
    (m, s) => P.prepTimeout(m, s, BUF, 3, 1),
    { opcode: 11, fd: -1, addr: BUF, len: 1, off: 3, op_flags: 1 },
  ],
  ["prepTimeoutRemove", (m, s) => P.prepTimeoutRemove(m, s, UD, 0), { opcode: 12, fd: -1, addr: UD }],
  [
    "prepLinkTimeout",
    (m, s) => P.prepLinkTimeout(m, s, BUF, 1 << 2),
    { opcode: 15, fd: -1, addr: BUF, len: 1, op_flags: 4 },
  ],
  ["prepCancel64", (m, s) => P.prepCancel64(m, s, UD, 1), { opcode: 14, fd: -1, addr: UD, op_flags: 1 }],
  ["prepCancelFd", (m, s) => P.prepCancelFd(m, s, FD, 1), { opcode: 14, fd: FD, op_flags: 1 | 2 }],
  [
    "prepCancelFdOp",
    (m, s) => P.prepCancelFdOp(m, s, FD, 58, 1),
    { opcode: 14, fd: FD, len: 58, op_flags: 1 | 2 | 32 },
  ],
  [
    "prepAccept",
    (m, s) => P.prepAccept(m, s, FD, BUF, BUF + 128, 0o2000000),
    { opcode: 13, fd: FD, addr: BUF, off: BUF + 128, op_flags: 0o2000000 },
  ],
  ["prepMultishotAccept", (m, s) => P.prepMultishotAccept(m, s, FD, 0, 0, 0), { opcode: 13, fd: FD, ioprio: 1 }],
  ["prepConnect", (m, s) => P.prepConnect(m, s, FD, BUF, 16), { opcode: 16, fd: FD, addr: BUF, off: 16 }],
  ["prepClose", (m, s) => P.prepClose(m, s, FD), { opcode: 19, fd: FD }],
  ["prepCloseDirect", (m, s) => P.prepCloseDirect(m, s, 4), { opcode: 19, fd: 0, word44: 5 }],
  [
    "prepRead",
    (m, s) => P.prepRead(m, s, FD, BUF, LEN, -1),
    { opcode: 22, fd: FD, addr: BUF, len: LEN, off: 2 ** 64 - 1 },
  ],
  ["prepWrite", (m, s) => P.prepWrite(m, s, FD, BUF, LEN, OFF), { opcode: 23, fd: FD, addr: BUF, len: LEN, off: OFF }],
  [
    "prepSend",
    (m, s) => P.prepSend(m, s, FD, BUF, LEN, 0x4000),
    { opcode: 26, fd: FD, addr: BUF, len: LEN, op_flags: 0x4000 },
  ],
  [
    "prepSend + prepSendSetAddr",
    (m, s) => {
      P.prepSend(m, s, FD, BUF, LEN, 0);
      P.prepSendSetAddr(m, s, MSG, 16);
    },
    { opcode: 26, fd: FD, addr: BUF, len: LEN, off: MSG, word44: 16 },
  ],
  [
    "prepRecv",
    (m, s) => P.prepRecv(m, s, FD, BUF, LEN, 0x100),
    { opcode: 27, fd: FD, addr: BUF, len: LEN, op_flags: 0x100 },
  ],
  [
    "prepRecvMultishot",
    (m, s) => P.prepRecvMultishot(m, s, FD, 7, 0),
    { opcode: 27, fd: FD, ioprio: 2, buf_index: 7, flags: 0x20 },
  ],
  [
    "prepRecvmsgMultishot",
    (m, s) => P.prepRecvmsgMultishot(m, s, FD, MSG, 7, 0x20),
    { opcode: 10, fd: FD, addr: MSG, len: 1, op_flags: 0x20, ioprio: 2, buf_index: 7, flags: 0x20 },
  ],
  ["prepShutdown", (m, s) => P.prepShutdown(m, s, FD, 1), { opcode: 34, fd: FD, len: 1 }],
  [
    "prepSocket",
    (m, s) => P.prepSocket(m, s, 2, 1 | 0o2000000, 6, 0),
    { opcode: 45, fd: 2, off: 1 | 0o2000000, len: 6 },
  ],
  [
    "prepSetsockopt",
    (m, s) => P.prepSetsockopt(m, s, FD, 1, 60, BUF, 4),
    { opcode: 46, fd: FD, off: 3, addr: 1 + 60 * 2 ** 32, word44: 4, addr3: BUF },
  ],
  [
    "prepSendZc",
    (m, s) => P.prepSendZc(m, s, FD, BUF, LEN, 0x4000, 8),
    { opcode: 47, fd: FD, addr: BUF, len: LEN, op_flags: 0x4000, ioprio: 8 },
  ],
  [
    "prepSendZcFixed",
    (m, s) => P.prepSendZcFixed(m, s, FD, BUF, LEN, 0, 8, 2),
    { opcode: 47, fd: FD, addr: BUF, len: LEN, ioprio: 8 | 4, buf_index: 2 },
  ],
  [
    "prepSendmsgZc",
    (m, s) => P.prepSendmsgZc(m, s, FD, MSG, 0x100, 1),
    { opcode: 48, fd: FD, addr: MSG, len: 1, op_flags: 0x100, ioprio: 1 },
  ],
  [
    "prepSendmsgZcFixed",
    (m, s) => P.prepSendmsgZcFixed(m, s, FD, MSG, 0, 0, 6),
    { opcode: 48, fd: FD, addr: MSG, len: 1, ioprio: 4, buf_index: 6 },
  ],
  [
    "prepSendVectorized",
    (m, s) => P.prepSendVectorized(m, s, FD, MSG, 2, 0x4000),
    { opcode: 26, fd: FD, addr: MSG, len: 2, op_flags: 0x4000, ioprio: 32 },
  ],
  [
    "prepSendZcVectorized",
    (m, s) => P.prepSendZcVectorized(m, s, FD, MSG, 3, 0, 8),
    { opcode: 47, fd: FD, addr: MSG, len: 3, ioprio: 8 | 32 },
  ],
  // No liburing helper: the notification's user_data is sqe->addr3 (io_send_zc_prep, 7.1).
  [
    "prepSendZc + prepSendZcSetNotifUserData",
    (m, s) => {
      P.prepSendZc(m, s, FD, BUF, LEN, 0, 8);
      P.prepSendZcSetNotifUserData(m, s, UD);
    },
    { opcode: 47, fd: FD, addr: BUF, len: LEN, ioprio: 8, addr3: UD },
  ],
  // No liburing helper: a multishot RECV's byte limit is sqe->optlen (io_recvmsg_prep, 6.17).
  [
    "prepRecvMultishot + prepRecvSetLimit",
    (m, s) => {
      P.prepRecvMultishot(m, s, FD, 7, 0);
      P.prepRecvSetLimit(m, s, 1 << 21);
    },
    { opcode: 27, fd: FD, ioprio: 2, buf_index: 7, flags: 0x20, word44: 1 << 21 },
  ],
  ["prepBind", (m, s) => P.prepBind(m, s, FD, BUF, 28), { opcode: 56, fd: FD, addr: BUF, off: 28 }],
  ["prepListen", (m, s) => P.prepListen(m, s, FD, 128), { opcode: 57, fd: FD, len: 128 }],
  ["prepRecvZc", (m, s) => P.prepRecvZc(m, s, FD, 0, 3, 1), { opcode: 58, fd: FD, ioprio: 2 | 1, word44: 3 }],
];

describe("prep functions write the whole slot and only it", () => {
  for (const [name, prep, expected] of CASES) {
    test(name, () => {
      const m = dirtyMemory();
      prep(m, SLOT);
      expect(decode(m.u8, SLOT)).toEqual({ ...ZERO, ...expected });
      for (let s = 0; s < SLOTS; s++) {
        if (s === SLOT) continue;
        expect(m.u8.subarray(s * 64, s * 64 + 64).every((b) => b === 0xff)).toBe(true);
      }
    });
  }

  test("every exported prep function has a case here", () => {
    const covered = new Set(CASES.flatMap(([name]) => name.split(" + ")));
    const missing = Object.keys(P).filter((k) => k.startsWith("prep") && !covered.has(k));
    expect(missing).toEqual([]);
  });

  test("a prep after a prep leaves nothing of the first (SEND_ZC fixed, then NOP)", () => {
    const m = dirtyMemory();
    P.prepSendZcFixed(m, SLOT, FD, BUF, LEN, 0x4000, 8, 5);
    addSqeFlags(m, SLOT, 0x7f);
    setUserData(m, SLOT, 0xffffffff, 0xffff);
    P.prepNop(m, SLOT);
    expect(decode(m.u8, SLOT)).toEqual({ ...ZERO, fd: -1 });
  });
});

describe("field writers", () => {
  test("setUserData, addSqeFlags, setOpFlags, setIoprio, setBufIndex write only their field", () => {
    const m = dirtyMemory();
    P.prepNop(m, SLOT);
    setUserData(m, SLOT, 0x89abcdef, 0x1234);
    addSqeFlags(m, SLOT, 0x04);
    addSqeFlags(m, SLOT, 0x01);
    setOpFlags(m, SLOT, 0xdeadbeef);
    setIoprio(m, SLOT, 0xbeef);
    setBufIndex(m, SLOT, 0xcafe);
    expect(decode(m.u8, SLOT)).toEqual({
      ...ZERO,
      fd: -1,
      user_data: 0x1234 * 2 ** 32 + 0x89abcdef,
      flags: 0x05,
      op_flags: 0xdeadbeef,
      ioprio: 0xbeef,
      buf_index: 0xcafe,
    });
    expect(m.u8.subarray(0, 64).every((b) => b === 0xff)).toBe(true);
  });

  test("putU64 / getU64 round-trip numbers below 2^53 and -1", () => {
    const u32 = new Uint32Array(2);
    for (const v of [0, 1, 0xffffffff, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1, 0x7f12_3456_7000]) {
      putU64(u32, 0, v);
      expect(getU64(u32, 0)).toBe(v);
    }
    putU64(u32, 0, -1);
    expect([u32[0], u32[1]]).toEqual([0xffffffff, 0xffffffff]);
  });

  test("sqeFlags maps names to IOSQE bits", () => {
    expect(sqeFlags({})).toBe(0);
    expect(sqeFlags({ fixedFile: true })).toBe(0x01);
    expect(sqeFlags({ drain: true })).toBe(0x02);
    expect(sqeFlags({ link: true })).toBe(0x04);
    expect(sqeFlags({ hardlink: true })).toBe(0x08);
    expect(sqeFlags({ async: true })).toBe(0x10);
    expect(sqeFlags({ bufferSelect: true })).toBe(0x20);
    expect(sqeFlags({ skipSuccess: true })).toBe(0x40);
    expect(sqeFlags({ link: true, fixedFile: true, skipSuccess: true })).toBe(0x45);
  });

  test("sqeMemory views the slots at a byte offset", () => {
    const buf = new ArrayBuffer(4096 + 2 * 64);
    const m = sqeMemory(buf, 4096, 2);
    expect(m.entries).toBe(2);
    expect(m.u8.byteOffset).toBe(4096);
    expect(m.u8.byteLength).toBe(128);
    expect(m.u32.length).toBe(32);
    expect(m.u16.length).toBe(64);
  });
});
