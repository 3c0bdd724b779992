// Tier 3: scripts/rx.ts end to end on a kernel with device-less zcrx (the VM's newest kernel):
// its --self loopback sender, RECV_ZC receive and --verify, and the JSON it prints.
import { describe, expect } from "bun:test";
import { join } from "node:path";
import { queryZcrx } from "../../src/zcrx/query.ts";
import { kernelAtLeast, kernelRelease } from "../../src/ring/kernel.ts";
import { testIf } from "../helpers.ts";

const root = join(import.meta.dir, "..", "..");
// In the VM on 7.1+ it runs whatever the library's probe says (a broken probe must fail).
const gate =
  queryZcrx()?.nodev === true || (process.env.BUN_URING_IN_VM === "1" && kernelAtLeast("7.1"))
    ? null
    : `ZCRX_REG_NODEV needs Linux 7.1+ (this kernel is ${kernelRelease()}); run it with \`bun scripts/vm.ts --kernel newest test/vm/zcrx-rx-script.test.ts\``;

describe("scripts/rx.ts", () => {
  testIf(
    gate,
    "--nodev --self 8M --verify --json receives and verifies every byte",
    () => {
      const p = Bun.spawnSync(
        [process.execPath, "scripts/rx.ts", "--nodev", "--self", "8M", "--verify", "--json", "-p", "0", "-S", "1M"],
        { cwd: root, stdout: "pipe", stderr: "pipe" },
      );
      const err = p.stderr.toString();
      expect(err).toBe("");
      expect(p.exitCode).toBe(0);
      const r = JSON.parse(p.stdout.toString());
      console.log(`zcrx-vm-rx: ${JSON.stringify(r)}`);
      expect(r.mode).toBe("zcrx-nodev");
      expect(r.bytes).toBe(8 * 1024 * 1024);
      expect(r.verified).toBe(true);
      expect(r.zcrx.refills_consumed).toBeGreaterThanOrEqual(r.chunks - 256);
      // Device-less zcrx copies every byte, and on 7.2 the kernel's counters say so.
      if (kernelAtLeast("7.2")) {
        expect(r.zcrx.placement).toBe("copied");
        expect(r.zcrx.copy_bytes).toBe(8 * 1024 * 1024);
        // copy_count counts copy operations, one per received fragment, which a copy can spread
        // over several chunks (7.2.13: 384 for 2,176 chunks here).
        expect(r.zcrx.copy_count).toBeGreaterThan(0);
        expect(r.zcrx.copy_count).toBeLessThanOrEqual(r.chunks);
      } else expect(r.zcrx.placement).toBe("unknown");
    },
    120_000,
  );
});
