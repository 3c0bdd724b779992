// Why IORING_REGISTER_ZCRX_IFQ failed, and the command that fixes it. The causes follow the
// kernel's checks in io_uring/zcrx.c io_register_zcrx_ifq and net/core/netdev_rx_queue.c
// __net_mp_open_rxq, in the order they run.
import { existsSync, readFileSync } from "node:fs";
import { errnoName } from "../abi/errno.ts";

/** What the caller asked for, so the hint can name the interface and queue. */
export interface RegisterContext {
  ifname: string | undefined;
  ifindex: number;
  rxq: number;
  nodev: boolean;
  /** What the ring lacks for zcrx (zcrxRingProblem), when the caller skipped that check. */
  ringProblem?: string | null;
}

function isVirtual(ifname: string): boolean {
  // A netdev without a parent device (lo, veth, bridge, tun) has no /sys/class/net/IF/device.
  return existsSync(`/sys/class/net/${ifname}`) && !existsSync(`/sys/class/net/${ifname}/device`);
}

function driverOf(ifname: string): string | undefined {
  try {
    const uevent = readFileSync(`/sys/class/net/${ifname}/device/uevent`, "utf8");
    return /^DRIVER=(.*)$/m.exec(uevent)?.[1];
  } catch {
    return undefined;
  }
}

/** The usual cause of `errno` from IORING_REGISTER_ZCRX_IFQ, with the command that fixes it. */
export function explainRegisterError(errno: number, ctx: RegisterContext): string {
  const dev = ctx.ifname ?? (ctx.nodev ? "(no device)" : `ifindex ${ctx.ifindex}`);
  const IF = ctx.ifname ?? "IF";
  const q = ctx.rxq;
  switch (errnoName(errno)) {
    case "EPERM":
      return 'registering a zcrx needs CAP_NET_ADMIN: run as root, or grant it with `setcap cap_net_admin+ep "$(command -v bun)"`';
    case "EINVAL":
      if (ctx.ringProblem) return `${ctx.ringProblem}: create it with Ring.create({ deferTaskrun: true, cqe32: true })`;
      if (ctx.nodev)
        return "the kernel refused the device-less (ZCRX_REG_NODEV) layout: rx_buf_len must be 0 (one page) and the ring needs DEFER_TASKRUN with CQE32 or CQE_MIXED";
      return (
        `${dev} must split headers from payload with no threshold: \`ethtool -G ${IF} tcp-data-split on\` and ` +
        `\`ethtool -G ${IF} hds-thresh 0\` (see \`ethtool -g ${IF}\`); also the ring needs DEFER_TASKRUN with CQE32 or CQE_MIXED, ` +
        "and rq_entries must be 1..32768"
      );
    case "EOPNOTSUPP": {
      if (ctx.ifname && isVirtual(ctx.ifname)) {
        return (
          `${ctx.ifname} is a virtual device (no parent device): zero-copy receive needs a NIC whose driver has queue-management ops ` +
          "(bnxt, gve, mlx5, fbnic). Without one, use the device-less mode: nodev: true (ZCRX_REG_NODEV, Linux 7.1+; data is copied into the area)"
        );
      }
      const drv = ctx.ifname ? driverOf(ctx.ifname) : undefined;
      return (
        `the driver of ${dev}${drv ? ` (${drv})` : ""} has no queue-management ops, so a queue cannot be given a memory provider ` +
        `(check \`ethtool -i ${IF}\`; drivers with them: bnxt, gve, mlx5, fbnic), or rx_buf_len is not supported by it`
      );
    }
    case "EEXIST":
      return `rx queue ${q} of ${dev} is already bound to a memory provider (another zcrx or devmem), or an XDP program is attached: \`ip link set ${IF} xdp off\`, or pick another queue`;
    case "ERANGE":
      return `rx queue ${q} does not exist on ${dev}: list channels with \`ethtool -l ${IF}\` and add them with \`ethtool -L ${IF} combined N\`; then steer the flow to it with \`ethtool -N ${IF} ntuple on\` and \`ethtool -N ${IF} flow-type tcp6 dst-port PORT action ${q}\``;
    case "EBUSY":
      return `rx queue ${q} of ${dev} is in use by AF_XDP (or leased to a virtual device): close that socket or pick another queue (\`ethtool -l ${IF}\`)`;
    case "ENODEV":
      return `no network device ${dev} in this network namespace: list them with \`ip -br link\``;
    case "ENOMEM":
      return "the area is pinned and charged to RLIMIT_MEMLOCK: raise it with `ulimit -l unlimited` (containers: --ulimit memlock=-1), or use a smaller area";
    case "EFAULT":
      return "the kernel could not read or write a registration struct or the area: the area must be writable, page-aligned memory";
    default:
      return "";
  }
}
