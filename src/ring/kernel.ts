// What this kernel can do, probed once per process: its release, the setup flags it accepts
// (IORING_REGISTER_QUERY where the kernel has it, else one trial setup per flag), and the
// opcodes it supports (IORING_REGISTER_PROBE on a live ring).
import { readFileSync } from "node:fs";
import { addressOf, c, sys } from "../../ffi/index.ts";
import * as S from "../abi/setup.ts";
import * as R from "../abi/register.ts";
import { allocShared } from "./memory.ts";

let release: string | undefined;

/** The running kernel's release string ("6.18.44-fc"). */
export function kernelRelease(): string {
  if (release === undefined) {
    try {
      release = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
    } catch {
      release = "unknown";
    }
  }
  return release;
}

/** Numeric [major, minor] of a release string. */
export function parseKernelVersion(rel: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

/** Whether the running kernel is at least `version` ("6.11"). */
export function kernelAtLeast(version: string, rel = kernelRelease()): boolean {
  const [a, b] = parseKernelVersion(rel);
  const [x, y] = parseKernelVersion(version);
  return a > x || (a === x && b >= y);
}

/** What IORING_REGISTER_QUERY(IO_URING_QUERY_OPCODES) reports (6.18+), or null before that. */
export interface QueryOpcodes {
  nrRequestOpcodes: number;
  nrRegisterOpcodes: number;
  features: number;
  setupFlags: number;
  enterFlags: number;
  sqeFlags: number;
}

let queried: QueryOpcodes | null | undefined;

export function queryOpcodes(): QueryOpcodes | null {
  if (queried !== undefined) return queried;
  const hdr = new Uint8Array(R.QUERY_HDR.size);
  const data = new Uint8Array(R.QUERY_OPCODE.size);
  const hv = new DataView(hdr.buffer);
  hv.setBigUint64(R.QUERY_HDR.query_data, BigInt(addressOf(data)), true);
  hv.setUint32(R.QUERY_HDR.query_op, R.IO_URING_QUERY_OPCODES, true);
  hv.setUint32(R.QUERY_HDR.size_, R.QUERY_OPCODE.size, true);
  // fd -1: the query needs no ring (the kernel accepts it only for QUERY).
  const ret = sys.io_uring_register(0xffffffff, R.IORING_REGISTER_QUERY, hdr, 0);
  if (ret < 0 || hv.getInt32(R.QUERY_HDR.result, true) < 0) {
    queried = null;
    return queried;
  }
  const dv = new DataView(data.buffer);
  queried = {
    nrRequestOpcodes: dv.getUint32(R.QUERY_OPCODE.nr_request_opcodes, true),
    nrRegisterOpcodes: dv.getUint32(R.QUERY_OPCODE.nr_register_opcodes, true),
    features: Number(dv.getBigUint64(R.QUERY_OPCODE.feature_flags, true)),
    setupFlags: Number(dv.getBigUint64(R.QUERY_OPCODE.ring_setup_flags, true)),
    enterFlags: Number(dv.getBigUint64(R.QUERY_OPCODE.enter_flags, true)),
    sqeFlags: Number(dv.getBigUint64(R.QUERY_OPCODE.sqe_flags, true)),
  };
  return queried;
}

/** Flags a trial needs alongside the one under test (the kernel refuses them alone). */
const COMPANIONS: Readonly<Record<number, number>> = {
  [S.IORING_SETUP_TASKRUN_FLAG]: S.IORING_SETUP_COOP_TASKRUN,
  [S.IORING_SETUP_DEFER_TASKRUN]: S.IORING_SETUP_SINGLE_ISSUER,
};

/** The setup flags bun-uring uses, tried one by one on kernels without REGISTER_QUERY. */
const TRIED = [
  S.IORING_SETUP_CQSIZE, S.IORING_SETUP_CLAMP, S.IORING_SETUP_R_DISABLED, S.IORING_SETUP_SUBMIT_ALL,
  S.IORING_SETUP_COOP_TASKRUN, S.IORING_SETUP_TASKRUN_FLAG, S.IORING_SETUP_CQE32,
  S.IORING_SETUP_SINGLE_ISSUER, S.IORING_SETUP_DEFER_TASKRUN, S.IORING_SETUP_NO_MMAP,
  S.IORING_SETUP_NO_SQARRAY, S.IORING_SETUP_CQE_MIXED,
];

function trySetup(flags: number): boolean {
  const params = new Uint8Array(S.PARAMS.size);
  const dv = new DataView(params.buffer);
  dv.setUint32(S.PARAMS.flags, flags, true);
  dv.setUint32(S.PARAMS.cq_entries, 4, true);
  let hold;
  if (flags & S.IORING_SETUP_NO_MMAP) {
    // A real page for each region: a kernel that knows NO_MMAP must be able to pin them.
    hold = [allocShared(4096), allocShared(4096)];
    dv.setBigUint64(S.PARAMS.sq_off + S.SQRING_OFFSETS.user_addr, BigInt(hold[0]!.address), true);
    dv.setBigUint64(S.PARAMS.cq_off + S.CQRING_OFFSETS.user_addr, BigInt(hold[1]!.address), true);
  }
  const fd = sys.io_uring_setup(2, params);
  if (fd >= 0) c.close(fd);
  return fd >= 0;
}

let setupMask: number | undefined;

/** Mask of IORING_SETUP_* flags this kernel accepts. */
export function supportedSetupFlags(): number {
  if (setupMask !== undefined) return setupMask;
  const q = queryOpcodes();
  if (q) {
    setupMask = q.setupFlags;
    return setupMask;
  }
  let mask = 0;
  for (const f of TRIED) if (trySetup(f | (COMPANIONS[f] ?? 0))) mask |= f;
  setupMask = mask;
  return mask;
}

let opcodeTable: Uint8Array | undefined;

/** Supported opcodes (1 = supported), from IORING_REGISTER_PROBE on `ringFd`; cached. */
export function probeOpcodes(ringFd: number): Uint8Array {
  if (opcodeTable) return opcodeTable;
  const n = 256;
  const buf = new Uint8Array(R.PROBE.size + n * R.PROBE_OP.size);
  const ret = sys.io_uring_register(ringFd, R.IORING_REGISTER_PROBE, buf, n);
  const table = new Uint8Array(n);
  if (ret >= 0) {
    const dv = new DataView(buf.buffer);
    const len = buf[R.PROBE.ops_len]!;
    for (let i = 0; i < len; i++) {
      const base = R.PROBE.ops + i * R.PROBE_OP.size;
      if (dv.getUint16(base + R.PROBE_OP.flags, true) & R.IO_URING_OP_SUPPORTED) table[buf[base + R.PROBE_OP.op]!] = 1;
    }
  }
  opcodeTable = table;
  return table;
}
