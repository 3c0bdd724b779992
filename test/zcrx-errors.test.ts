// Tier 1: every registration errno the kernel's zcrx path returns is explained with the command
// that fixes it (io_uring/zcrx.c io_register_zcrx_ifq, net/core/netdev_rx_queue.c).
import { describe, expect, test } from "bun:test";
import { explainRegisterError } from "../src/zcrx/errors.ts";
import { ERRNO } from "../src/abi/errno.ts";

const nic = { ifname: "eth9", ifindex: 7, rxq: 3, nodev: false };

describe("explainRegisterError", () => {
  const table: Array<[string, RegExp[]]> = [
    ["EPERM", [/CAP_NET_ADMIN/, /setcap cap_net_admin\+ep/]],
    ["EINVAL", [/ethtool -G eth9 tcp-data-split on/, /ethtool -G eth9 hds-thresh 0/, /DEFER_TASKRUN/]],
    ["EEXIST", [/already bound/, /ip link set eth9 xdp off/]],
    ["ERANGE", [/rx queue 3 does not exist/, /ethtool -L eth9 combined N/, /ethtool -N eth9 ntuple on/, /action 3/]],
    ["EBUSY", [/AF_XDP/, /ethtool -l eth9/]],
    ["ENODEV", [/ip -br link/]],
    ["ENOMEM", [/RLIMIT_MEMLOCK/, /ulimit -l unlimited/]],
    ["EOPNOTSUPP", [/queue-management ops/, /ethtool -i eth9/]],
    ["EFAULT", [/page-aligned/]],
  ];
  for (const [name, patterns] of table) {
    test(`${name} names the cause and the fix`, () => {
      const hint = explainRegisterError(ERRNO[name]!, nic);
      for (const p of patterns) expect(hint).toMatch(p);
    });
  }

  test("EOPNOTSUPP on a virtual device points at NODEV", () => {
    expect(explainRegisterError(ERRNO.EOPNOTSUPP!, { ...nic, ifname: "lo" })).toMatch(
      /lo is a virtual device.*ZCRX_REG_NODEV, Linux 7\.1/,
    );
  });

  test("EINVAL with a ring problem names the ring, not ethtool", () => {
    const hint = explainRegisterError(ERRNO.EINVAL!, {
      ...nic,
      ringProblem: "the ring lacks IORING_SETUP_DEFER_TASKRUN",
    });
    expect(hint).toMatch(/lacks IORING_SETUP_DEFER_TASKRUN.*deferTaskrun: true/);
    expect(hint).not.toMatch(/ethtool/);
  });

  test("EINVAL for device-less zcrx talks about rx_buf_len and ring flags", () => {
    expect(explainRegisterError(ERRNO.EINVAL!, { ifname: undefined, ifindex: 0, rxq: 0, nodev: true })).toMatch(
      /ZCRX_REG_NODEV.*rx_buf_len/,
    );
  });

  test("an errno with no known cause on this path gives no hint", () => {
    expect(explainRegisterError(ERRNO.ESPIPE!, nic)).toBe("");
  });
});
