// What this kernel can do, probed once per process: its release, the setup flags it accepts
// (IORING_REGISTER_QUERY where the kernel has it, else one trial setup per flag), the opcodes it
// supports (IORING_REGISTER_PROBE on a live ring), and what SEND_ZC accepts (a SEND_ZC on fd -1
// on a private ring: nothing is sent).
import { readFileSync } from "node:fs";
import { addressOf, c, sys } from "../../ffi/index.ts";
import * as S from "../abi/setup.ts";
import * as R from "../abi/register.ts";
import * as Q from "../abi/sqe.ts";
import { EBADF } from "../abi/errno.ts";
import {
  prepRecvMultishot,
  prepRecvSetLimit,
  prepSendZc,
  prepSendZcSetNotifUserData,
  prepSendmsgZc,
} from "../ops/prep.ts";
import { allocShared } from "./memory.ts";
// A probe that sends opens a private Ring: ring.ts imports this file too, and each side uses the
// other only inside functions, never while the modules load.
import { Ring } from "./ring.ts";

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
  S.IORING_SETUP_CQSIZE,
  S.IORING_SETUP_CLAMP,
  S.IORING_SETUP_R_DISABLED,
  S.IORING_SETUP_SUBMIT_ALL,
  S.IORING_SETUP_COOP_TASKRUN,
  S.IORING_SETUP_TASKRUN_FLAG,
  S.IORING_SETUP_CQE32,
  S.IORING_SETUP_SINGLE_ISSUER,
  S.IORING_SETUP_DEFER_TASKRUN,
  S.IORING_SETUP_NO_MMAP,
  S.IORING_SETUP_NO_SQARRAY,
  S.IORING_SETUP_CQE_MIXED,
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

/** What the kernel answered to SEND_ZC ioprio flags, by flag word (one probe per process). */
const zcFlagProbes = new Map<number, boolean>();

/** Whether this kernel accepts the SEND_ZC ioprio flags `zcFlags`. A SEND_ZC on fd -1 carrying
 * the flags: io_send_zc_prep refuses unknown flags with EINVAL before the file is looked up, so
 * EBADF means they were accepted. It runs on a private ring (kernel memory, closed at once), so it
 * may be called anywhere, inside a completion handler too; cached per process. */
export function probeSendZcFlags(zcFlags: number): boolean {
  const known = zcFlagProbes.get(zcFlags);
  if (known !== undefined) return known;
  const ok = sendZcOnBadFd({ zcFlags }).res === -EBADF;
  zcFlagProbes.set(zcFlags, ok);
  return ok;
}

/** Whether this kernel accepts IORING_SEND_ZC_REPORT_USAGE (6.2, and backported: Debian's 6.1
 * has it); see probeSendZcFlags. */
export function probeReportUsage(): boolean {
  return probeSendZcFlags(Q.IORING_SEND_ZC_REPORT_USAGE);
}

/** What a SEND_ZC on fd -1 answered: the first CQE's res and flags, and where its notification
 * came (under the send's own user_data, under the addr3 entry, or none seen). */
export interface BadFdSendZc {
  res: number;
  flags: number;
  notification: "send" | "addr3" | "none";
}

let notifUserData: BadFdSendZc | undefined;

/** What SEND_ZC answered with a non-zero addr3 (sqe bytes 48..55), probed once per process. */
export function probeNotifUserDataAnswer(): BadFdSendZc {
  if (notifUserData === undefined) notifUserData = sendZcOnBadFd({ addr3: true });
  return notifUserData;
}

/** Whether SEND_ZC / SENDMSG_ZC post their notification under a user_data of its own, taken from
 * a non-zero sqe->addr3 (Linux 7.1, commit cb9487333652 "io_uring/zctx: separate notification
 * user_data"; no flag goes with it). Probed, not read from the version, since distributions
 * backport: a SEND_ZC on fd -1 whose addr3 names a second op-table entry. Kernels without it
 * refuse a non-zero addr3 in io_send_zc_prep (EINVAL, before the file is looked up); kernels
 * with it pass the SQE to the file lookup (EBADF) and, where the first CQE has F_MORE, post the
 * notification under addr3. Nothing is sent. */
export function probeNotifUserData(): boolean {
  const a = probeNotifUserDataAnswer();
  return a.res === -EBADF && a.notification !== "send";
}

/** A SEND_ZC (or SENDMSG_ZC, msghdr at address 0) on fd -1 with ioprio `zcFlags` and, with
 * `addr3`, a second op-table entry's user_data in sqe->addr3, on a private ring closed at once;
 * res 0 when the ring lacks the opcode. Nothing is sent: io_send_zc_prep checks the flags and
 * addr3 before the file is looked up, so EBADF says the SQE passed and EINVAL that it did not. */
export function sendZcOnBadFd(o: { zcFlags?: number; addr3?: boolean; opcode?: number }): BadFdSendZc {
  const zcFlags = o.zcFlags ?? 0,
    addr3 = o.addr3 === true,
    opcode = o.opcode ?? Q.IORING_OP_SEND_ZC;
  const out: BadFdSendZc = { res: 0, flags: 0, notification: "none" };
  return onProbeRing((ring) => {
    if (!ring.supports(opcode)) return out;
    let first = false;
    const onSend = (_: null, res: number, flags: number) => {
      if (flags & Q.IORING_CQE_F_NOTIF) {
        out.notification = "send";
        return;
      }
      first = true;
      out.res = res;
      out.flags = flags;
    };
    const slot = ring.begin(onSend, null);
    const ud = ring.userDataOf(slot);
    const notifUd = addr3
      ? ring.ops.add(
          (_: null, _res: number, flags: number) => {
            if (flags & Q.IORING_CQE_F_NOTIF) out.notification = "addr3";
          },
          null,
          undefined,
        )
      : 0;
    if (opcode === Q.IORING_OP_SENDMSG_ZC) prepSendmsgZc(ring.sq, slot, -1, 0, 0, zcFlags);
    else prepSendZc(ring.sq, slot, -1, 0, 0, 0, zcFlags);
    if (addr3) prepSendZcSetNotifUserData(ring.sq, slot, notifUd);
    // The first CQE answers; with F_MORE its notification follows, and where it lands is the
    // answer of the addr3 probe (the flags probe needs only the first CQE).
    ring.runUntil(() => first && (!addr3 || !(out.flags & Q.IORING_CQE_F_MORE) || out.notification !== "none"), 5000);
    if (ring.ops.isLive(ud)) ring.ops.cancelUnsubmitted(ud);
    if (addr3 && ring.ops.isLive(notifUd)) ring.ops.cancelUnsubmitted(notifUd);
    return out;
  });
}

/** Run `probe` on a private ring of its own, closed after it. */
function onProbeRing<T>(probe: (ring: Ring) => T): T {
  const ring = Ring.create({ entries: 4, memory: "mmap", registerRingFd: false });
  try {
    return probe(ring);
  } finally {
    ring.close();
  }
}

let recvLimit: boolean | undefined;

/** Whether a multishot RECV takes a byte limit in sqe->optlen (prepRecvSetLimit). Probed with a
 * multishot RECV on fd -1 whose optlen is 1, on a private ring closed at once: kernels without the
 * limit read those bytes as file_index and refuse them in io_recvmsg_prep (EINVAL, before the file
 * is looked up); kernels with it pass the SQE on to the file lookup (EBADF). Nothing is received.
 * A probe that fails (its ring cannot be made: out of fds or memory right now) answers false
 * and is asked again next time. */
export function probeRecvLimit(): boolean {
  if (recvLimit !== undefined) return recvLimit;
  try {
    recvLimit = onProbeRing((ring) => {
      let res = 0;
      const slot = ring.begin((_: null, r: number) => void (res = r), null);
      prepRecvMultishot(ring.sq, slot, -1, 0, 0);
      prepRecvSetLimit(ring.sq, slot, 1);
      ring.submitAndWait(1);
      ring.completions();
      return res === -EBADF;
    });
  } catch {
    return false;
  }
  return recvLimit;
}
