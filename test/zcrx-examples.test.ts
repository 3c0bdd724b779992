// scripts/examples/zcrx-async.ts and worker-per-queue.ts's shared-queue mode run as the user runs
// them and check their own bytes; this suite runs them and checks the line they print (the
// synchronous zcrx-receiver.ts and the other worker-per-queue modes are in examples.test.ts).
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { kernelAtLeast } from "../src/ring/kernel.ts";

const ROOT = join(import.meta.dir, "..");
const EXAMPLE_TIMEOUT_MS = 60_000;
/** ZCRX_REG_NODEV exists from Linux 7.1: there --nodev must run end to end; before, explain. */
const NODEV = kernelAtLeast("7.1");

async function run(
  args: string[],
  script = "zcrx-async.ts",
): Promise<{ code: number | null; out: string; err: string }> {
  const proc = Bun.spawn([process.execPath, join(ROOT, "scripts/examples", script), ...args], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  const killer = setTimeout(() => proc.kill(), EXAMPLE_TIMEOUT_MS);
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(killer);
  return { code, out: out.trim(), err: err.trim() };
}

describe("zcrx-async example", () => {
  test(
    "--simulate: recvZc() over the simulated kernel, byte-exact, batched refills, assertClean passes",
    async () => {
      const r = await run(["--simulate", "--size", "2000000"]);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      const m =
        /^zcrx-async \(simulated kernel\): 2000000 bytes in 489 chunks, byte-exact, all released; 489 refills in (\d+) publishes \(([\d.]+) per publish\), (\d+) times the area ran dry$/.exec(
          r.out,
        );
      expect(m).not.toBeNull();
      expect(Number(m![2])).toBeGreaterThanOrEqual(32);
    },
    EXAMPLE_TIMEOUT_MS,
  );

  test(
    "without a mode it explains what it needs and exits 0",
    async () => {
      const r = await run([]);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(
        /^zcrx-async: cannot run here without --nodev or --simulate — device-less ZCRX \(ZCRX_REG_NODEV\) needs Linux 7\.1\+/,
      );
    },
    EXAMPLE_TIMEOUT_MS,
  );

  test(
    `--nodev: ${NODEV ? "device-less ZCRX through the async API end to end" : "the kernel's refusal, explained"}`,
    async () => {
      const r = await run(["--nodev", "--size", "1000000"]);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      if (NODEV)
        expect(r.out).toMatch(
          /^zcrx-async \(ZCRX_REG_NODEV\): 1000000 bytes in \d+ chunks, byte-exact, all released; \d+ refills in \d+ publishes/,
        );
      else
        expect(r.out).toMatch(
          /^zcrx-async: cannot run here — IORING_REGISTER_ZCRX_IFQ: EOPNOTSUPP \((ZCRX_REG_NODEV needs Linux 7\.1|.*needs Linux 6\.15)/,
        );
    },
    EXAMPLE_TIMEOUT_MS,
  );
});

describe("worker-per-queue --shared", () => {
  test(
    `--nodev --shared: ${NODEV ? "one device-less queue imported by every Worker's ring" : "the kernel's refusal, explained"}`,
    async () => {
      const r = await run(["--nodev", "--shared", "--workers", "2", "--bytes", "300000"], "worker-per-queue.ts");
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      if (NODEV)
        expect(r.out).toMatch(
          /^worker-per-queue \(nodev, shared queue\): 2 Workers, each with its own ring, one queue shared through ZCRX_REG_IMPORT, received 600000 bytes byte-exact/,
        );
      else
        expect(r.out).toMatch(
          /^worker-per-queue \(nodev, shared queue\): cannot run here — IORING_REGISTER_ZCRX_IFQ: EOPNOTSUPP/,
        );
    },
    EXAMPLE_TIMEOUT_MS,
  );

  test(
    "--shared without a queue to share is a usage error",
    async () => {
      const r = await run(["--shared"], "worker-per-queue.ts");
      expect(r.code).toBe(2);
      expect(r.err).toBe("worker-per-queue: --shared needs --nodev or -i IFNAME -q RXQ (a ZCRX queue to share)");
    },
    EXAMPLE_TIMEOUT_MS,
  );
});
