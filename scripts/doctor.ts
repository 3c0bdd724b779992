// bun scripts/doctor.ts [--json]: which zero-copy paths work on this machine, and what to run
// where they do not. Checks the kernel and its io_uring switches, the locked-memory limit and
// capabilities, then every network interface: driver, scatter-gather / checksum / TSO offloads,
// TCP header split and hds-thresh, channels, n-tuple steering, XDP, packet taps, and whether the
// driver has the queue-management ops zero-copy receive needs. Reads ethtool's output when
// ethtool is installed, otherwise what /sys and `ip` show (and says what is unknown).
import { existsSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { basename } from "node:path";
import { c } from "../ffi/index.ts";
import { CAP_IPC_LOCK, CAP_NET_ADMIN, RLIMIT_MEMLOCK } from "../src/abi/net.ts";
import * as S from "../src/abi/setup.ts";
import * as Q from "../src/abi/sqe.ts";
import { ZCRX_FEATURE_EVENT, ZCRX_SINCE } from "../src/abi/zcrx.ts";
import { Ring } from "../src/ring/ring.ts";
import { kernelAtLeast, kernelRelease, supportedSetupFlags } from "../src/ring/kernel.ts";
import { queryZcrx } from "../src/zcrx/query.ts";
import { parseCli } from "./lib/cli.ts";

const USAGE = `usage: bun scripts/doctor.ts [--json]

Prints what this machine can do for zero-copy networking with bun-uring (SEND_ZC, ZCRX on a NIC
queue, device-less ZCRX) and, for each path that will not work, why and the command that fixes it.
  --json   one JSON object instead of the report
  -h, --help   this text`;

const asJson =
  parseCli({ name: "doctor", usage: USAGE }, process.argv.slice(2), { json: { type: "boolean" } }).values.json === true;

/** Drivers with netdev queue-management ops (the memory-provider API zcrx binds a queue with). */
const QUEUE_MGMT_DRIVERS = new Set(["bnxt_en", "gve", "mlx5_core", "fbnic", "netdevsim"]);

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return undefined;
  }
}

function run(cmd: string[]): string | undefined {
  try {
    const p = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
    return p.exitCode === 0 ? p.stdout.toString() : undefined;
  } catch {
    return undefined;
  }
}

const ethtool = ["/usr/sbin/ethtool", "/sbin/ethtool", "/usr/bin/ethtool"].find((p) => existsSync(p));

function capabilities(): { netAdmin: boolean; ipcLock: boolean } {
  const eff = /^CapEff:\s*([0-9a-f]+)/m.exec(readText("/proc/self/status") ?? "")?.[1];
  const bits = eff ? BigInt(`0x${eff}`) : 0n;
  return {
    netAdmin: ((bits >> BigInt(CAP_NET_ADMIN)) & 1n) === 1n,
    ipcLock: ((bits >> BigInt(CAP_IPC_LOCK)) & 1n) === 1n,
  };
}

function memlockBytes(): { soft: number; hard: number } {
  const rl = new BigUint64Array(2);
  if (c.getrlimit(RLIMIT_MEMLOCK, rl) !== 0) return { soft: NaN, hard: NaN };
  const n = (v: bigint) => (v === 0xffffffffffffffffn ? Infinity : Number(v));
  return { soft: n(rl[0]!), hard: n(rl[1]!) };
}

interface IoUringInfo {
  disabled: string;
  group: string | undefined;
  ringOk: boolean;
  ringError: string | undefined;
  sendZc: boolean;
  sendmsgZc: boolean;
  recvZc: boolean;
  deferTaskrun: boolean;
  cqe32: boolean;
  cqeMixed: boolean;
  zcrxQuery: boolean;
  nodev: boolean;
  import: boolean;
  flushRq: boolean;
  events: boolean;
}

function ioUring(): IoUringInfo {
  const disabled = readText("/proc/sys/kernel/io_uring_disabled") ?? "absent (kernel before 6.6: always enabled)";
  const group = readText("/proc/sys/kernel/io_uring_group");
  let ringOk = false,
    ringError: string | undefined;
  let ops = { sendZc: false, sendmsgZc: false, recvZc: false };
  try {
    const ring = Ring.create({ entries: 4 });
    ringOk = true;
    ops = {
      sendZc: ring.supports(Q.IORING_OP_SEND_ZC),
      sendmsgZc: ring.supports(Q.IORING_OP_SENDMSG_ZC),
      recvZc: ring.supports(Q.IORING_OP_RECV_ZC),
    };
    ring.close();
  } catch (e) {
    ringError = (e as Error).message;
  }
  const flags = ringOk ? supportedSetupFlags() : 0;
  const q = ringOk ? queryZcrx() : null;
  return {
    disabled,
    group,
    ringOk,
    ringError,
    ...ops,
    deferTaskrun: (flags & S.IORING_SETUP_DEFER_TASKRUN) !== 0,
    cqe32: (flags & S.IORING_SETUP_CQE32) !== 0,
    cqeMixed: (flags & S.IORING_SETUP_CQE_MIXED) !== 0,
    zcrxQuery: q !== null,
    nodev: q?.nodev === true,
    import: q?.import === true,
    flushRq: q?.flushRq === true,
    events: ((q?.features ?? 0) & ZCRX_FEATURE_EVENT) !== 0,
  };
}

/** "name: value" lines of ethtool output, split at its section headers. */
function ethtoolFields(out: string | undefined): {
  preset: Map<string, string>;
  current: Map<string, string>;
  all: Map<string, string>;
} {
  const preset = new Map<string, string>(),
    current = new Map<string, string>(),
    all = new Map<string, string>();
  let section = all;
  for (const line of (out ?? "").split("\n")) {
    if (/^Pre-set maximums/i.test(line)) section = preset;
    else if (/^Current hardware settings/i.test(line)) section = current;
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1]!.trim().toLowerCase(),
      val = m[2]!.trim();
    section.set(key, val);
    if (!all.has(key)) all.set(key, val);
  }
  return { preset, current, all };
}

interface Nic {
  name: string;
  ifindex: number;
  virtual: boolean;
  driver: string | undefined;
  operstate: string | undefined;
  rxQueues: number;
  xdp: boolean | undefined;
  packetTaps: number;
  queueMgmt: boolean | "unknown";
  sg: string | undefined;
  csum: string | undefined;
  tso: string | undefined;
  tcpDataSplit: string | undefined;
  hdsThresh: string | undefined;
  channelsCombined: string | undefined;
  channelsMax: string | undefined;
  ntuple: string | undefined;
  zcrxProblems: string[];
  zcrxFixes: string[];
}

function packetTapsByIfindex(): Map<number, number> {
  const m = new Map<number, number>();
  const lines = (readText("/proc/net/packet") ?? "").split("\n").slice(1);
  for (const l of lines) {
    const cols = l.trim().split(/\s+/);
    // sk RefCnt Type Proto Iface R Rmem User Inode: the interface index is the fifth column.
    const iface = Number(cols[4]);
    if (Number.isInteger(iface)) m.set(iface, (m.get(iface) ?? 0) + 1);
  }
  return m;
}

function nics(): Nic[] {
  const taps = packetTapsByIfindex();
  const ipJson = run(["ip", "-j", "-d", "link", "show"]);
  const ipInfo = new Map<string, Record<string, unknown>>();
  if (ipJson) for (const l of JSON.parse(ipJson) as Record<string, unknown>[]) ipInfo.set(String(l.ifname), l);
  const out: Nic[] = [];
  for (const name of readdirSync("/sys/class/net").sort()) {
    const sys = `/sys/class/net/${name}`;
    const virtual = !existsSync(`${sys}/device`);
    let driver: string | undefined;
    try {
      driver = basename(readlinkSync(`${sys}/device/driver`));
    } catch {
      driver = undefined;
    }
    const ifindex = Number(readText(`${sys}/ifindex`) ?? 0);
    const rxQueues = existsSync(`${sys}/queues`)
      ? readdirSync(`${sys}/queues`).filter((q) => q.startsWith("rx-")).length
      : 0;
    const info = ipInfo.get(name);
    const xdp = info ? "xdp" in info : undefined;
    const k = ethtool ? ethtoolFields(run([ethtool, "-k", name])).all : undefined;
    const g = ethtool ? ethtoolFields(run([ethtool, "-g", name])) : undefined;
    const l = ethtool ? ethtoolFields(run([ethtool, "-l", name])) : undefined;
    const i = ethtool ? ethtoolFields(run([ethtool, "-i", name])).all : undefined;
    if (!driver && i?.get("driver")) driver = i.get("driver");
    const nic: Nic = {
      name,
      ifindex,
      virtual,
      driver,
      operstate: readText(`${sys}/operstate`),
      rxQueues,
      xdp,
      packetTaps: (taps.get(ifindex) ?? 0) + (taps.get(0) ?? 0),
      queueMgmt: virtual ? false : driver ? QUEUE_MGMT_DRIVERS.has(driver) : "unknown",
      sg: k?.get("scatter-gather"),
      csum: k?.get("tx-checksumming"),
      tso: k?.get("tcp-segmentation-offload"),
      tcpDataSplit: g?.current.get("tcp data split") ?? g?.all.get("tcp data split"),
      hdsThresh: g?.current.get("hds thresh") ?? g?.all.get("hds thresh"),
      channelsCombined: l?.current.get("combined"),
      channelsMax: l?.preset.get("combined"),
      ntuple: k?.get("ntuple-filters"),
      zcrxProblems: [],
      zcrxFixes: [],
    };
    judgeZcrx(nic);
    out.push(nic);
  }
  return out;
}

const on = (v: string | undefined) => v !== undefined && /^on\b/.test(v);

function judgeZcrx(n: Nic): void {
  const p = n.zcrxProblems,
    f = n.zcrxFixes;
  if (n.virtual) {
    p.push(`${n.name} is a virtual device (no parent device): the kernel refuses it (EOPNOTSUPP)`);
    return;
  }
  if (n.queueMgmt === false) {
    p.push(`driver ${n.driver} has no queue-management ops (EOPNOTSUPP); ZCRX needs bnxt_en, gve, mlx5_core or fbnic`);
    return;
  }
  if (n.queueMgmt === "unknown") p.push("driver unknown: cannot tell whether it has queue-management ops");
  if (!ethtool) {
    p.push("ethtool is not installed: header split, hds-thresh, channels and n-tuple cannot be read");
    f.push("apt-get install ethtool");
    return;
  }
  if (n.tcpDataSplit === undefined) p.push("ethtool does not report TCP data split (too old an ethtool or driver)");
  else if (!on(n.tcpDataSplit)) {
    p.push(`TCP data split is ${n.tcpDataSplit} (EINVAL at registration)`);
    f.push(`ethtool -G ${n.name} tcp-data-split on`);
  }
  if (n.hdsThresh !== undefined && n.hdsThresh !== "0") {
    p.push(`hds-thresh is ${n.hdsThresh}, must be 0 (EINVAL at registration)`);
    f.push(`ethtool -G ${n.name} hds-thresh 0`);
  }
  const combined = Number(n.channelsCombined ?? n.rxQueues);
  if (combined < 2) {
    p.push(`${combined} channel(s): a zcrx queue needs a channel of its own beside the default traffic`);
    f.push(`ethtool -L ${n.name} combined ${Math.max(2, Number(n.channelsMax ?? 2))}`);
  }
  if (!on(n.ntuple)) {
    p.push(`n-tuple filters are ${n.ntuple ?? "unknown"}: flows cannot be steered to the zcrx queue`);
    f.push(`ethtool -K ${n.name} ntuple on`);
  }
  if (n.xdp) {
    p.push("an XDP program is attached (EEXIST at registration)");
    f.push(`ip link set ${n.name} xdp off`);
  }
  if (p.length && f.length)
    f.push(`or all at once: bun scripts/zcrx-setup.ts -i ${n.name} -q ${Math.max(1, combined - 1)}`);
}

const kernel = kernelRelease();
const caps = capabilities();
const memlock = memlockBytes();
const iou = ioUring();
const nicList = nics();

// ---- verdict ----
interface Path {
  path: string;
  works: boolean;
  why: string;
  fix: string[];
}
const paths: Path[] = [];
const iouFix: string[] = [];
if (!iou.ringOk) {
  if (iou.disabled !== "0" && !iou.disabled.startsWith("absent")) iouFix.push("sysctl -w kernel.io_uring_disabled=0");
  iouFix.push("check seccomp / container policy (docker: --security-opt seccomp=unconfined)");
}
const physical = nicList.filter((n) => !n.virtual);
paths.push({
  path: "SEND_ZC / SENDMSG_ZC (zero-copy send)",
  works: iou.sendZc,
  why: !iou.ringOk
    ? `io_uring is unavailable: ${iou.ringError}`
    : !iou.sendZc
      ? `IORING_OP_SEND_ZC needs Linux 6.0 (this kernel is ${kernel})`
      : physical.length === 0
        ? "available, but every interface here is virtual or loopback, where the kernel copies (REPORT_USAGE says copied)"
        : `available; truly zero-copy only on ${physical.map((n) => n.name).join(", ")} with scatter-gather on${physical.some((n) => n.sg === undefined) ? " (scatter-gather unknown without ethtool)" : ""}, and copied when a packet tap is open`,
  fix: !iou.ringOk ? iouFix : !iou.sendZc ? ["upgrade to Linux 6.0 or newer"] : [],
});
const zcrxNics = nicList.filter((n) => n.zcrxProblems.length === 0);
function zcrxFixesOrAdvice(): string[] {
  const fixes = [
    ...(!caps.netAdmin ? ['run as root, or: setcap cap_net_admin+ep "$(command -v bun)"'] : []),
    ...nicList.flatMap((n) => n.zcrxFixes),
  ];
  if (zcrxNics.length === 0 && !nicList.some((n) => n.zcrxFixes.length > 0)) {
    fixes.push(
      "no setting fixes this machine: use a NIC whose driver has queue-management ops (bnxt_en, gve, mlx5_core, fbnic), or device-less ZCRX (nodev: true) on Linux 7.1+",
    );
  }
  return fixes;
}
const recvZcWhy = !iou.recvZc
  ? `IORING_OP_RECV_ZC needs Linux ${ZCRX_SINCE.recvZc} (this kernel is ${kernel})`
  : undefined;
paths.push({
  path: "ZCRX on a NIC queue (zero-copy receive)",
  works: !recvZcWhy && zcrxNics.length > 0 && caps.netAdmin,
  why:
    recvZcWhy ??
    (!caps.netAdmin
      ? "registering needs CAP_NET_ADMIN (EPERM)"
      : zcrxNics.length > 0
        ? `ready: ${zcrxNics.map((n) => n.name).join(", ")}`
        : `no capable NIC: ${nicList.map((n) => `${n.name}: ${n.zcrxProblems[0]}`).join("; ")}`),
  fix: recvZcWhy ? [`upgrade to Linux ${ZCRX_SINCE.recvZc} or newer`] : zcrxFixesOrAdvice(),
});
paths.push({
  path: "ZCRX device-less (ZCRX_REG_NODEV: RECV_ZC without a NIC, data copied)",
  works: iou.nodev && caps.netAdmin,
  why: iou.nodev
    ? caps.netAdmin
      ? "available"
      : "needs CAP_NET_ADMIN (EPERM)"
    : `ZCRX_REG_NODEV needs Linux ${ZCRX_SINCE.nodev} (this kernel is ${kernel}${iou.zcrxQuery ? ", whose IO_URING_QUERY_ZCRX lacks it" : ", which cannot answer IO_URING_QUERY_ZCRX"})`,
  fix: iou.nodev
    ? []
    : [`run the RECV_ZC tests on Linux ${ZCRX_SINCE.nodev}+ in a VM: bun scripts/vm.ts --kernel newest --suite vm`],
});
paths.push({
  path: "ZCRX simulator (src/testing, for bun test suites)",
  works: true,
  why: "always available: no kernel support needed",
  fix: [],
});
const areaHint = 64 * 1024 * 1024;
const memlockNote = caps.ipcLock
  ? "CAP_IPC_LOCK: pinned areas are not charged to RLIMIT_MEMLOCK"
  : memlock.soft >= areaHint
    ? "enough for a 64 MiB area"
    : `only ${memlock.soft} bytes: a zcrx area or registered buffers beyond it fail with ENOMEM; raise it with \`ulimit -l unlimited\` (containers: --ulimit memlock=-1)`;

const report = {
  kernel,
  kernel_at_least: {
    "6.0": kernelAtLeast("6.0"),
    "6.15": kernelAtLeast("6.15"),
    "6.18": kernelAtLeast("6.18"),
    "7.1": kernelAtLeast("7.1"),
  },
  io_uring: iou,
  memlock: { soft: memlock.soft, hard: memlock.hard, note: memlockNote },
  capabilities: { cap_net_admin: caps.netAdmin, cap_ipc_lock: caps.ipcLock },
  ethtool: ethtool ?? null,
  nics: nicList,
  verdict: paths,
};

if (asJson) {
  console.log(JSON.stringify(report, (_k, v) => (v === Infinity ? "unlimited" : v)));
  process.exit(0);
}

const yes = (b: boolean) => (b ? "yes" : "no");
console.log(`kernel           ${kernel}`);
console.log(
  `io_uring         ${iou.ringOk ? "works" : `fails: ${iou.ringError}`}; kernel.io_uring_disabled = ${iou.disabled}${iou.group ? `, io_uring_group = ${iou.group}` : ""}`,
);
console.log(
  `opcodes          SEND_ZC ${yes(iou.sendZc)}, SENDMSG_ZC ${yes(iou.sendmsgZc)}, RECV_ZC ${yes(iou.recvZc)}`,
);
console.log(
  `ring flags       DEFER_TASKRUN ${yes(iou.deferTaskrun)}, CQE32 ${yes(iou.cqe32)}, CQE_MIXED ${yes(iou.cqeMixed)}`,
);
console.log(
  `zcrx query       ${iou.zcrxQuery ? `NODEV ${yes(iou.nodev)}, IMPORT ${yes(iou.import)}, ZCRX_CTRL flush ${yes(iou.flushRq)}, copy reporting (events) ${iou.events ? "yes" : `no (needs Linux ${ZCRX_SINCE.events})`}` : `not answered (IO_URING_QUERY_ZCRX needs Linux ${ZCRX_SINCE.query})`}`,
);
console.log(`memlock          ${memlock.soft === Infinity ? "unlimited" : `${memlock.soft} bytes`} — ${memlockNote}`);
console.log(`capabilities     CAP_NET_ADMIN ${yes(caps.netAdmin)}, CAP_IPC_LOCK ${yes(caps.ipcLock)}`);
console.log(
  `ethtool          ${ethtool ?? "not installed (apt-get install ethtool): offloads, header split, channels and n-tuple are unknown"}`,
);
console.log("");
for (const n of nicList) {
  const v = (x: string | undefined) => x ?? "?";
  console.log(
    `${n.name} (ifindex ${n.ifindex}, ${n.virtual ? "virtual" : `driver ${v(n.driver)}`}, ${v(n.operstate)}, ${n.rxQueues} rx queue(s))`,
  );
  console.log(`  offloads       sg ${v(n.sg)}, tx-csum ${v(n.csum)}, tso ${v(n.tso)}`);
  console.log(`  header split   tcp-data-split ${v(n.tcpDataSplit)}, hds-thresh ${v(n.hdsThresh)}`);
  console.log(
    `  channels       combined ${v(n.channelsCombined)} of ${v(n.channelsMax)}; ntuple ${v(n.ntuple)}; XDP ${n.xdp === undefined ? "?" : yes(n.xdp)}; packet taps ${n.packetTaps}`,
  );
  console.log(`  queue mgmt     ${n.queueMgmt === "unknown" ? "unknown" : yes(n.queueMgmt)}`);
  console.log(`  zcrx           ${n.zcrxProblems.length === 0 ? "ready" : n.zcrxProblems.join("; ")}`);
  for (const f of n.zcrxFixes) console.log(`    fix: ${f}`);
}
console.log("\nverdict");
for (const p of paths) {
  console.log(`  ${p.works ? "[yes]" : "[no] "} ${p.path}: ${p.why}`);
  for (const f of p.fix) console.log(`          run: ${f}`);
}
