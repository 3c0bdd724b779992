// bun scripts/probe.ts [--json] — what this kernel's io_uring offers bun-uring, one row per
// feature: setup flags (IORING_REGISTER_QUERY or trial setups), opcodes (IORING_REGISTER_PROBE),
// SEND_ZC flags (a probe SEND_ZC on fd -1: io_send_zc_prep refuses unknown ioprio flags with
// EINVAL before it looks up the file, so EBADF means the flag is known), REGISTER_QUERY, and
// ZCRX registration flags (IO_URING_QUERY_ZCRX). The kernel matrix (scripts/matrix.ts) runs this
// inside each VM; the rows are its feature table.
import { Ring } from "../src/ring/ring.ts";
import * as S from "../src/abi/setup.ts";
import * as Q from "../src/abi/sqe.ts";
import { prepSendZc } from "../src/ops/index.ts";
import { kernelRelease, supportedSetupFlags, queryOpcodes } from "../src/ring/kernel.ts";
import { queryZcrx } from "../src/zcrx/query.ts";
import { parseCli } from "./lib/cli.ts";
import { errnoName } from "../src/abi/errno.ts";

export interface FeatureRow {
  /** Row name in the matrix table. */
  feature: string;
  available: boolean;
  /** The first kernel version that has it (for the skip message). */
  since: string;
  /** How it was decided. */
  how: string;
}

export interface ProbeReport {
  kernel: string;
  features: FeatureRow[];
}

/** A SEND_ZC on fd -1 with `zcFlags` in ioprio: EBADF when the kernel knows the flags. */
function sendZcFlagKnown(ring: Ring, zcFlags: number): { known: boolean; res: string } {
  if (!ring.supports(Q.IORING_OP_SEND_ZC)) return { known: false, res: "no SEND_ZC" };
  let res = 1;
  const slot = ring.getSqe();
  prepSendZc(ring.sq, slot, -1, 0, 0, 0, zcFlags);
  ring.track(
    slot,
    (_d: null, r: number) => {
      if (res === 1) res = r;
    },
    null,
  );
  ring.runUntil(() => ring.ops.inflight === 0, 5000);
  return { known: res === -9, res: res < 0 ? errnoName(-res) : String(res) };
}

export function probe(): ProbeReport {
  const setup = supportedSetupFlags();
  const ring = Ring.create({ entries: 8 });
  try {
    const op = (name: string, opcode: number, since: string): FeatureRow => ({
      feature: name,
      available: ring.supports(opcode),
      since,
      how: "IORING_REGISTER_PROBE",
    });
    const flag = (name: string, value: number, since: string): FeatureRow => ({
      feature: name,
      available: (setup & value) !== 0,
      since,
      how: queryOpcodes() ? "IORING_REGISTER_QUERY" : "trial io_uring_setup",
    });
    const usage = sendZcFlagKnown(ring, Q.IORING_SEND_ZC_REPORT_USAGE);
    const vectorized = sendZcFlagKnown(ring, Q.IORING_SEND_VECTORIZED);
    const zq = queryZcrx();
    const features: FeatureRow[] = [
      flag("NO_MMAP", S.IORING_SETUP_NO_MMAP, "6.5"),
      flag("NO_SQARRAY", S.IORING_SETUP_NO_SQARRAY, "6.6"),
      flag("DEFER_TASKRUN", S.IORING_SETUP_DEFER_TASKRUN, "6.1"),
      flag("CQE32", S.IORING_SETUP_CQE32, "5.19"),
      flag("CQE_MIXED", S.IORING_SETUP_CQE_MIXED, "6.18"),
      op("SEND_ZC", Q.IORING_OP_SEND_ZC, "6.0"),
      op("SENDMSG_ZC", Q.IORING_OP_SENDMSG_ZC, "6.1"),
      {
        feature: "SEND_ZC_REPORT_USAGE",
        available: usage.known,
        since: "6.2",
        how: `SEND_ZC probe on fd -1 answered ${usage.res}`,
      },
      {
        feature: "SEND_VECTORIZED",
        available: vectorized.known,
        since: "6.17",
        how: `SEND_ZC probe on fd -1 answered ${vectorized.res}`,
      },
      op("SOCKET", Q.IORING_OP_SOCKET, "5.19"),
      op("BIND", Q.IORING_OP_BIND, "6.11"),
      op("LISTEN", Q.IORING_OP_LISTEN, "6.11"),
      op("RECV_ZC", Q.IORING_OP_RECV_ZC, "6.15"),
      {
        feature: "REGISTER_QUERY",
        available: ring.capabilities.query,
        since: "6.18",
        how: "IORING_REGISTER_QUERY(IO_URING_QUERY_OPCODES)",
      },
      {
        feature: "ZCRX NODEV",
        available: zq?.nodev ?? false,
        since: "7.1",
        how: zq ? "IO_URING_QUERY_ZCRX register_flags" : "IO_URING_QUERY_ZCRX not answered",
      },
    ];
    return { kernel: kernelRelease(), features };
  } finally {
    ring.close();
  }
}

const USAGE = `usage: bun scripts/probe.ts [--json]

One row per io_uring feature bun-uring uses: available or not, the kernel version that has it,
and how it was found out.
  --json       one JSON object instead of the table
  -h, --help   this text`;

if (import.meta.main) {
  const json =
    parseCli({ name: "probe", usage: USAGE }, process.argv.slice(2), { json: { type: "boolean" } }).values.json ===
    true;
  const r = probe();
  if (json) {
    console.log(JSON.stringify(r));
  } else {
    console.log(`kernel ${r.kernel}`);
    const w = Math.max(...r.features.map((f) => f.feature.length));
    for (const f of r.features)
      console.log(`  ${f.feature.padEnd(w)}  ${f.available ? "yes" : `no (${f.since}+)`}  — ${f.how}`);
  }
}
