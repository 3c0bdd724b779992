// Smoke test of the VM tier: proves the suite really runs inside the guest scripts/vm.ts booted,
// with io_uring enabled and the liburing that init exported. Outside the VM it skips, saying why.
import { describe, expect } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { testIf } from "../helpers.ts";

const inVm = process.env.BUN_URING_IN_VM === "1";
const gate = inVm ? null : "BUN_URING_IN_VM is not 1, so this is not the scripts/vm.ts guest";

function readTrimmed(path: string): string {
  return readFileSync(path, "utf8").trim();
}

describe("vm guest", () => {
  testIf(gate, "runs on the booted kernel, not the host's", () => {
    const release = readTrimmed("/proc/sys/kernel/osrelease");
    console.log(`guest kernel ${release}`);
    expect(release).toMatch(/^\d+\.\d+/);
    expect(readTrimmed("/proc/sys/kernel/hostname")).toBe("bun-uring-vm");
    // init is /init from the initramfs: the root is rootfs, not a disk.
    expect(readFileSync("/proc/1/cmdline", "utf8").split("\0")).toContain("/init");
  });

  testIf(gate, "io_uring is not disabled by sysctl", () => {
    // Absent before 6.6 (no such knob: io_uring always allowed); 0 means allowed for everyone.
    const knob = "/proc/sys/kernel/io_uring_disabled";
    if (existsSync(knob)) expect(readTrimmed(knob)).toBe("0");
  });

  testIf(gate, "liburing is where init said", () => {
    const path = process.env.BUN_URING_LIBURING;
    expect(path).toBeString();
    expect(existsSync(path!)).toBe(true);
    // An ELF shared object, not an empty placeholder.
    expect(readFileSync(path!).subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  });

  testIf(gate, "memlock is unlimited and loopback is up", () => {
    const limits = readTrimmed("/proc/self/limits");
    expect(limits).toMatch(/^Max locked memory\s+unlimited\s+unlimited/m);
    const flags = Number.parseInt(readTrimmed("/sys/class/net/lo/flags"), 16);
    expect(flags & 0x1).toBe(1); // IFF_UP
  });
});
