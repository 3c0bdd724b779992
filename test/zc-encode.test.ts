// Tier 1 (no kernel): encodeSendOp, the sender's pure SQE encoding, byte for byte for every shape
// a ZcSender writes. Each case fills a 4-slot SQE array and a two-block scratch area with a filler
// byte, encodes into slot 2 and scratch block 1, and reads the results back at offsets typed from
// the UAPI structs (struct io_uring_sqe, struct msghdr, struct iovec, struct sockaddr_in/in6 on
// x86-64), not taken from src/abi. The SQE fields must be what the liburing helper of the same
// shape writes (io_uring_prep_send, _send_zc, _send_zc_fixed, _sendmsg, _sendmsg_zc,
// _sendmsg_zc_fixed, with io_uring_prep_send_set_addr for a destination, and the vectorized flag
// in ioprio), every other SQE byte 0, the other slots untouched; in the scratch block the structs
// the SQE points at, and not one byte more.
import { describe, expect, test } from "bun:test";
import { sqeMemory, type SqeMemory } from "../src/ops/sqe.ts";
import { ScratchBlock, SendOp, encodeSendOp } from "../src/zc/encode.ts";
import { KIND_COPY, KIND_FIXED, KIND_MSG, KIND_VEC, KIND_ZC } from "../src/zc/records.ts";
import { sockaddr } from "../src/net/sockaddr.ts";

const FILL = 0xa5;
const SLOTS = 4;
const SLOT = 2;
/** struct io_uring_sqe field byte ranges: [offset, bytes]. */
const SQE_FIELDS = {
  opcode: [0, 1],
  flags: [1, 1],
  ioprio: [2, 2],
  fd: [4, 4],
  off: [8, 8],
  addr: [16, 8],
  len: [24, 4],
  op_flags: [28, 4],
  user_data: [32, 8],
  buf_index: [40, 2],
  personality: [42, 2],
  addr_len: [44, 2],
  pad44: [46, 2],
  addr3: [48, 8],
  pad2: [56, 8],
} as const;
type SqeField = keyof typeof SQE_FIELDS;
// struct msghdr (x86-64): name@0, namelen@8, iov@16, iovlen@24, control@32, controllen@40, flags@48.
const MSGHDR_BYTES = 56;
// Where encode.ts puts its structs in a 128-byte scratch block: the msghdr, two iovecs, the address.
const AT_MSGHDR = 0,
  AT_IOV = 56,
  AT_DEST = 88;
const BLOCK = 128;
/** Scratch block 1 of the test area: a fake kernel address (nothing is dereferenced). */
const SCRATCH_ADDR = 0x7f00_1234_0000 + BLOCK;

// Operands whose bytes all differ and whose addresses need both u32 halves.
const FD = 9;
const BUF = 0x7f12_3456_7000;
const BODY = 0x7f22_0000_0100;
const LEN = 5000;
const BODY_LEN = 1200;
const IOVECS = 0x7f33_0000_0040;
const MSG_FLAGS = 0x4000 | 0x100; // MSG_NOSIGNAL | MSG_WAITALL
const ZC_FLAGS = 1 << 3; // IORING_SEND_ZC_REPORT_USAGE
const FIXED_BUF = 1 << 2; // IORING_RECVSEND_FIXED_BUF
const VECTORIZED = 1 << 5; // IORING_SEND_VECTORIZED
const OP_SENDMSG = 9,
  OP_SEND = 26,
  OP_SEND_ZC = 47,
  OP_SENDMSG_ZC = 48;

const V4 = sockaddr({ host: "127.0.0.1", port: 4242 });
const V6 = sockaddr({ host: "::1", port: 4243 });
/** sockaddr_in: family 2 (LE u16), port big-endian, 127.0.0.1, 8 zero bytes. */
const V4_BYTES = [2, 0, 0x10, 0x92, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
/** sockaddr_in6: family 10, port, flowinfo 0, ::1, scope_id 0. */
const V6_BYTES = [10, 0, 0x10, 0x93, 0, 0, 0, 0, ...new Array(15).fill(0), 1, 0, 0, 0, 0];

function readLe(u8: Uint8Array, at: number, bytes: number): number {
  let v = 0;
  for (let i = bytes - 1; i >= 0; i--) v = v * 256 + u8[at + i]!;
  return v;
}

interface Encoded {
  sqe: Record<SqeField, number>;
  sqes: Uint8Array;
  scratch: Uint8Array;
  opcode: number;
}

function encode(fill: (op: SendOp) => void): Encoded {
  const m: SqeMemory = sqeMemory(new ArrayBuffer(SLOTS * 64), 0, SLOTS);
  m.u8.fill(0xff);
  const area = new Uint8Array(2 * BLOCK).fill(FILL);
  const scratch = new ScratchBlock();
  scratch.bytes = area;
  scratch.view = new DataView(area.buffer);
  scratch.offset = BLOCK;
  scratch.address = SCRATCH_ADDR;
  const op = new SendOp();
  op.fd = FD;
  op.msgFlags = MSG_FLAGS;
  op.zcFlags = ZC_FLAGS;
  fill(op);
  // Unmanaged SQE memory: any slot may be prepared (a ring's getSqe would hand one out).
  const opcode = encodeSendOp(m, SLOT, op, scratch);
  const sqe = {} as Record<SqeField, number>;
  for (const [name, [at, bytes]] of Object.entries(SQE_FIELDS))
    sqe[name as SqeField] = readLe(m.u8, SLOT * 64 + at, bytes);
  return { sqe, sqes: m.u8, scratch: area.subarray(BLOCK), opcode };
}

function expectSqe(e: Encoded, want: Partial<Record<SqeField, number>>): void {
  const full = {} as Record<SqeField, number>;
  for (const name of Object.keys(SQE_FIELDS) as SqeField[]) full[name] = want[name] ?? 0;
  expect(e.sqe).toEqual(full);
  expect(e.opcode).toBe(full.opcode);
  for (let s = 0; s < SLOTS; s++) {
    if (s === SLOT) continue;
    expect(e.sqes.subarray(s * 64, s * 64 + 64).every((b) => b === 0xff)).toBe(true);
  }
}

/** The scratch block must hold exactly `regions` (byte offset → bytes); every other byte keeps FILL. */
function expectScratch(e: Encoded, regions: [at: number, bytes: number[]][]): void {
  const want = new Array(BLOCK).fill(FILL);
  for (const [at, bytes] of regions) bytes.forEach((b, i) => (want[at + i] = b));
  expect(Array.from(e.scratch)).toEqual(want);
}

function le(value: number, bytes: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes; i++) {
    out.push(value % 256);
    value = Math.floor(value / 256);
  }
  return out;
}

/** struct msghdr bytes: name, namelen, iov, iovlen; control, controllen and flags 0. */
function msghdr(name: number, namelen: number, iov: number, iovlen: number): number[] {
  const b = [...le(name, 8), ...le(namelen, 4), 0, 0, 0, 0, ...le(iov, 8), ...le(iovlen, 8)];
  while (b.length < MSGHDR_BYTES) b.push(0);
  return b;
}

const iovec = (base: number, len: number) => [...le(base, 8), ...le(len, 8)];

function single(kind: number, dest: typeof V4 | null = null) {
  return (op: SendOp) => {
    op.kind = kind;
    op.address = BUF;
    op.length = LEN;
    op.bufIndex = 7;
    op.dest = dest;
  };
}

function gathered(kind: number, vectorized: boolean) {
  return (op: SendOp) => {
    op.kind = kind;
    op.count = 5;
    op.iovecs = IOVECS;
    op.vectorized = vectorized;
    op.bufIndex = 3;
  };
}

function twoPart(kind: number, dest: typeof V4 | null = null) {
  return (op: SendOp) => {
    op.kind = kind;
    op.address = BUF;
    op.length = LEN + BODY_LEN;
    op.address2 = BODY;
    op.length2 = BODY_LEN;
    op.dest = dest;
  };
}

describe("encodeSendOp: one send", () => {
  test("copy: io_uring_prep_send", () => {
    const e = encode(single(KIND_COPY));
    expectSqe(e, { opcode: OP_SEND, fd: FD, addr: BUF, len: LEN, op_flags: MSG_FLAGS });
    expectScratch(e, []);
  });
  test("zc: io_uring_prep_send_zc with the zc flags in ioprio", () => {
    const e = encode(single(KIND_ZC));
    expectSqe(e, { opcode: OP_SEND_ZC, fd: FD, addr: BUF, len: LEN, op_flags: MSG_FLAGS, ioprio: ZC_FLAGS });
    expectScratch(e, []);
  });
  test("fixed: io_uring_prep_send_zc_fixed (FIXED_BUF and buf_index)", () => {
    const e = encode(single(KIND_FIXED));
    expectSqe(e, {
      opcode: OP_SEND_ZC,
      fd: FD,
      addr: BUF,
      len: LEN,
      op_flags: MSG_FLAGS,
      ioprio: ZC_FLAGS | FIXED_BUF,
      buf_index: 7,
    });
    expectScratch(e, []);
  });
  test("copy to an IPv4 destination: io_uring_prep_send_set_addr, the sockaddr in the scratch block", () => {
    const e = encode(single(KIND_COPY, V4));
    expectSqe(e, {
      opcode: OP_SEND,
      fd: FD,
      addr: BUF,
      len: LEN,
      op_flags: MSG_FLAGS,
      off: SCRATCH_ADDR + AT_DEST,
      addr_len: 16,
    });
    expectScratch(e, [[AT_DEST, V4_BYTES]]);
  });
  test("zc to an IPv6 destination", () => {
    const e = encode(single(KIND_ZC, V6));
    expectSqe(e, {
      opcode: OP_SEND_ZC,
      fd: FD,
      addr: BUF,
      len: LEN,
      op_flags: MSG_FLAGS,
      ioprio: ZC_FLAGS,
      off: SCRATCH_ADDR + AT_DEST,
      addr_len: 28,
    });
    expectScratch(e, [[AT_DEST, V6_BYTES]]);
  });
  test("fixed to a destination", () => {
    const e = encode(single(KIND_FIXED, V4));
    expectSqe(e, {
      opcode: OP_SEND_ZC,
      fd: FD,
      addr: BUF,
      len: LEN,
      op_flags: MSG_FLAGS,
      ioprio: ZC_FLAGS | FIXED_BUF,
      buf_index: 7,
      off: SCRATCH_ADDR + AT_DEST,
      addr_len: 16,
    });
    expectScratch(e, [[AT_DEST, V4_BYTES]]);
  });
});

describe("encodeSendOp: gathered sends (iovecs the sender wrote)", () => {
  test("copy, vectorized: SEND with IORING_SEND_VECTORIZED, addr = iovecs, len = count", () => {
    const e = encode(gathered(KIND_COPY, true));
    expectSqe(e, { opcode: OP_SEND, fd: FD, addr: IOVECS, len: 5, op_flags: MSG_FLAGS, ioprio: VECTORIZED });
    expectScratch(e, []);
  });
  test("zc, vectorized: SEND_ZC with VECTORIZED and the zc flags", () => {
    const e = encode(gathered(KIND_ZC, true));
    expectSqe(e, {
      opcode: OP_SEND_ZC,
      fd: FD,
      addr: IOVECS,
      len: 5,
      op_flags: MSG_FLAGS,
      ioprio: ZC_FLAGS | VECTORIZED,
    });
    expectScratch(e, []);
  });
  test("copy without vectorized sends: io_uring_prep_sendmsg over a msghdr in the scratch block", () => {
    const e = encode(gathered(KIND_COPY, false));
    expectSqe(e, { opcode: OP_SENDMSG, fd: FD, addr: SCRATCH_ADDR + AT_MSGHDR, len: 1, op_flags: MSG_FLAGS });
    expectScratch(e, [[AT_MSGHDR, msghdr(0, 0, IOVECS, 5)]]);
  });
  test("zc without vectorized sends: io_uring_prep_sendmsg_zc", () => {
    const e = encode(gathered(KIND_ZC, false));
    expectSqe(e, {
      opcode: OP_SENDMSG_ZC,
      fd: FD,
      addr: SCRATCH_ADDR + AT_MSGHDR,
      len: 1,
      op_flags: MSG_FLAGS,
      ioprio: ZC_FLAGS,
    });
    expectScratch(e, [[AT_MSGHDR, msghdr(0, 0, IOVECS, 5)]]);
  });
  test("fixed: io_uring_prep_sendmsg_zc_fixed, vectorized or not (iovecs inside the registered buffer)", () => {
    for (const vectorized of [true, false]) {
      const e = encode(gathered(KIND_FIXED, vectorized));
      expectSqe(e, {
        opcode: OP_SENDMSG_ZC,
        fd: FD,
        addr: SCRATCH_ADDR + AT_MSGHDR,
        len: 1,
        op_flags: MSG_FLAGS,
        ioprio: ZC_FLAGS | FIXED_BUF,
        buf_index: 3,
      });
      expectScratch(e, [[AT_MSGHDR, msghdr(0, 0, IOVECS, 5)]]);
    }
  });
});

describe("encodeSendOp: header and body", () => {
  test("SENDMSG_ZC: a msghdr pointing at two iovecs in the scratch block", () => {
    const e = encode(twoPart(KIND_MSG));
    expectSqe(e, {
      opcode: OP_SENDMSG_ZC,
      fd: FD,
      addr: SCRATCH_ADDR + AT_MSGHDR,
      len: 1,
      op_flags: MSG_FLAGS,
      ioprio: ZC_FLAGS,
    });
    expectScratch(e, [
      [AT_MSGHDR, msghdr(0, 0, SCRATCH_ADDR + AT_IOV, 2)],
      [AT_IOV, [...iovec(BUF, LEN), ...iovec(BODY, BODY_LEN)]],
    ]);
  });
  test("SENDMSG_ZC to a destination: msg_name / msg_namelen, not addr2", () => {
    const e = encode(twoPart(KIND_MSG, V6));
    expectSqe(e, {
      opcode: OP_SENDMSG_ZC,
      fd: FD,
      addr: SCRATCH_ADDR + AT_MSGHDR,
      len: 1,
      op_flags: MSG_FLAGS,
      ioprio: ZC_FLAGS,
    });
    expectScratch(e, [
      [AT_MSGHDR, msghdr(SCRATCH_ADDR + AT_DEST, 28, SCRATCH_ADDR + AT_IOV, 2)],
      [AT_IOV, [...iovec(BUF, LEN), ...iovec(BODY, BODY_LEN)]],
      [AT_DEST, V6_BYTES],
    ]);
  });
  test("vectorized SEND_ZC: addr = the two iovecs, no msghdr", () => {
    const e = encode(twoPart(KIND_VEC));
    expectSqe(e, {
      opcode: OP_SEND_ZC,
      fd: FD,
      addr: SCRATCH_ADDR + AT_IOV,
      len: 2,
      op_flags: MSG_FLAGS,
      ioprio: ZC_FLAGS | VECTORIZED,
    });
    expectScratch(e, [[AT_IOV, [...iovec(BUF, LEN), ...iovec(BODY, BODY_LEN)]]]);
  });
  test("vectorized SEND_ZC to a destination: addr2 / addr_len", () => {
    const e = encode(twoPart(KIND_VEC, V4));
    expectSqe(e, {
      opcode: OP_SEND_ZC,
      fd: FD,
      addr: SCRATCH_ADDR + AT_IOV,
      len: 2,
      op_flags: MSG_FLAGS,
      ioprio: ZC_FLAGS | VECTORIZED,
      off: SCRATCH_ADDR + AT_DEST,
      addr_len: 16,
    });
    expectScratch(e, [
      [AT_IOV, [...iovec(BUF, LEN), ...iovec(BODY, BODY_LEN)]],
      [AT_DEST, V4_BYTES],
    ]);
  });
});

describe("encodeSendOp: the notification's own user_data (sqe->addr3, 7.1)", () => {
  const NOTIF_UD = 2 ** 45 + 77;
  const withNotif = (fill: (op: SendOp) => void) => (op: SendOp) => {
    fill(op);
    op.notifUserData = NOTIF_UD;
  };
  test("SEND_ZC, fixed and vectorized SEND_ZC carry it in addr3, nothing else changes", () => {
    expectSqe(encode(withNotif(single(KIND_ZC))), {
      opcode: OP_SEND_ZC,
      fd: FD,
      addr: BUF,
      len: LEN,
      op_flags: MSG_FLAGS,
      ioprio: ZC_FLAGS,
      addr3: NOTIF_UD,
    });
    expectSqe(encode(withNotif(single(KIND_FIXED))), {
      opcode: OP_SEND_ZC,
      fd: FD,
      addr: BUF,
      len: LEN,
      op_flags: MSG_FLAGS,
      ioprio: ZC_FLAGS | FIXED_BUF,
      buf_index: 7,
      addr3: NOTIF_UD,
    });
    expectSqe(encode(withNotif(gathered(KIND_ZC, true))), {
      opcode: OP_SEND_ZC,
      fd: FD,
      addr: IOVECS,
      len: 5,
      op_flags: MSG_FLAGS,
      ioprio: ZC_FLAGS | VECTORIZED,
      addr3: NOTIF_UD,
    });
  });
  test("SENDMSG_ZC carries it too (io_send_zc_prep serves both opcodes)", () => {
    const e = encode(withNotif(twoPart(KIND_MSG, V4)));
    expectSqe(e, {
      opcode: OP_SENDMSG_ZC,
      fd: FD,
      addr: SCRATCH_ADDR + AT_MSGHDR,
      len: 1,
      op_flags: MSG_FLAGS,
      ioprio: ZC_FLAGS,
      addr3: NOTIF_UD,
    });
  });
  test("a copying SEND has no notification: addr3 stays 0", () => {
    expectSqe(encode(withNotif(single(KIND_COPY))), {
      opcode: OP_SEND,
      fd: FD,
      addr: BUF,
      len: LEN,
      op_flags: MSG_FLAGS,
    });
    expectSqe(encode(withNotif(gathered(KIND_COPY, false))), {
      opcode: OP_SENDMSG,
      fd: FD,
      addr: SCRATCH_ADDR + AT_MSGHDR,
      len: 1,
      op_flags: MSG_FLAGS,
    });
  });
});

describe("encodeSendOp: what the sockaddr codec wrote is what the test expects", () => {
  test("IPv4 and IPv6 bytes", () => {
    expect(Array.from(V4.bytes)).toEqual(V4_BYTES);
    expect(Array.from(V6.bytes)).toEqual(V6_BYTES);
  });
});
