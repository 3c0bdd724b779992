// The examples run as the user runs them (`bun scripts/examples/X.ts`), check their own output,
// and exit 0; this suite runs each and checks the line it prints.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { kernelAtLeast } from "../src/ring/kernel.ts";

const ROOT = join(import.meta.dir, "..");
/** Each example is a fresh process (and Workers): generous under the VM tier's emulated CPU. */
const EXAMPLE_TIMEOUT_MS = 60_000;
/** Device-less ZCRX (ZCRX_REG_NODEV) exists from Linux 7.1: there the ZCRX examples must run end
 * to end; before, they must explain the refusal and exit 0. */
const NODEV = kernelAtLeast("7.1");

async function run(script: string, args: string[] = []): Promise<{ code: number | null; out: string; err: string }> {
  const proc = Bun.spawn([process.execPath, join(ROOT, "scripts/examples", script), ...args], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  const killer = setTimeout(() => proc.kill(), 60_000);
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(killer);
  return { code, out: out.trim(), err: err.trim() };
}

describe("examples", () => {
  test(
    "echo: server and verifying client, byte-exact, nothing left in flight",
    async () => {
      const r = await run("echo.ts", ["--conns", "3", "--bytes", "100000"]);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      expect(r.out).toMatch(
        /^echo: 3 connections x 100000 bytes echoed byte-exact \(300000 bytes, .* ms\), 0 operations in flight$/,
      );
    },
    EXAMPLE_TIMEOUT_MS,
  );

  test(
    "file-server: SEND_ZC from a registered pool, received byte-exact",
    async () => {
      const r = await run("file-server.ts", ["--bytes", "1000000", "--chunk", "65536", "--buffers", "4"]);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      expect(r.out).toMatch(
        /^file-server: 1000000 bytes sent with SEND_ZC from 4 registered 65536-byte buffers, received byte-exact; 16 fixed-buffer sends/,
      );
    },
    EXAMPLE_TIMEOUT_MS,
  );

  test(
    "zcrx-receiver without a NIC explains why it cannot run and exits 0",
    async () => {
      const r = await run("zcrx-receiver.ts");
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^zcrx-receiver: cannot run here — no ZCRX-capable NIC was given/);
      expect(r.out).toContain("--simulate");
    },
    EXAMPLE_TIMEOUT_MS,
  );

  test(
    `zcrx-receiver --nodev: ${NODEV ? "device-less ZCRX end to end" : "the kernel's refusal, explained (ZCRX_REG_NODEV needs 7.1+, RECV_ZC 6.15+)"}`,
    async () => {
      const r = await run("zcrx-receiver.ts", ["--nodev", "--size", "1000000"]);
      expect(r.code).toBe(0);
      if (NODEV)
        expect(r.out).toMatch(
          /^zcrx-receiver \(ZCRX_REG_NODEV\): 1000000 bytes in \d+ chunks, read in place and released, byte-exact$/,
        );
      // Before 6.15 the kernel has no ZCRX at all, and the refusal names that version instead.
      else
        expect(r.out).toMatch(
          /^zcrx-receiver: cannot run here — IORING_REGISTER_ZCRX_IFQ: EOPNOTSUPP \((ZCRX_REG_NODEV needs Linux 7\.1|.*needs Linux 6\.15)/,
        );
    },
    EXAMPLE_TIMEOUT_MS,
  );

  test(
    `worker-per-queue --nodev: ${NODEV ? "a device-less ifq per Worker" : "the kernel's refusal, explained"}`,
    async () => {
      const r = await run("worker-per-queue.ts", ["--nodev", "--workers", "2", "--bytes", "300000"]);
      expect(r.code).toBe(0);
      if (NODEV)
        expect(r.out).toMatch(
          /^worker-per-queue \(nodev\): 2 Workers, each with its own ring, received 600000 bytes byte-exact/,
        );
      else expect(r.out).toMatch(/^worker-per-queue \(nodev\): cannot run here — IORING_REGISTER_ZCRX_IFQ: EOPNOTSUPP/);
    },
    EXAMPLE_TIMEOUT_MS,
  );

  test(
    "zcrx-receiver --simulate: the receive path against the simulated kernel, every buffer back",
    async () => {
      const r = await run("zcrx-receiver.ts", ["--simulate", "--size", "1000000"]);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      expect(r.out).toBe(
        "zcrx-receiver (simulated kernel): 1000000 bytes in 245 chunks, read in place and released, byte-exact; every buffer back in the simulated kernel",
      );
    },
    EXAMPLE_TIMEOUT_MS,
  );

  test(
    "worker-per-queue: one ring per Worker, each Worker's bytes intact",
    async () => {
      const r = await run("worker-per-queue.ts", ["--workers", "2", "--bytes", "500000"]);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      expect(r.out).toMatch(
        /^worker-per-queue \(socket\): 2 Workers, each with its own ring, received 1000000 bytes byte-exact/,
      );
    },
    EXAMPLE_TIMEOUT_MS,
  );

  test(
    "worker-per-queue --simulate: a simulated zcrx queue per Worker",
    async () => {
      const r = await run("worker-per-queue.ts", ["--simulate", "--workers", "2", "--bytes", "300000"]);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(
        /^worker-per-queue \(simulate\): 2 Workers, each with its own simulated queue, received 600000 bytes byte-exact/,
      );
    },
    EXAMPLE_TIMEOUT_MS,
  );

  test(
    "a bad flag makes an example exit non-zero with the reason",
    async () => {
      const r = await run("echo.ts", ["--no-such-flag"]);
      expect(r.code).not.toBe(0);
      expect(r.err.trim()).toBe("echo: unknown option --no-such-flag (--help for usage)");
    },
    EXAMPLE_TIMEOUT_MS,
  );
});

describe("scripts/tx.ts refuses bad values with a message, not a stack trace", () => {
  const cases: Array<[string[], RegExp]> = [
    [["-C", "5000"], /^tx: --cpu must be a CPU number/],
    [["-C", "1.5"], /^tx: --cpu must be a CPU number/],
    [["--receiver-cpu", "4096"], /^tx: --receiver-cpu must be a CPU number/],
    [["-s", "99999999M"], /^tx: --size must be at most 1073741824 bytes/],
    [["-s", "abc"], /^tx: --size: not a size: abc/],
    [["-p", "70000"], /^tx: --port must be an integer 0\.\.65535/],
    [["-D", "localhost", "-p", "9000"], /^tx: --dest must be a numeric IPv4/],
    [["--no-such-flag"], /^tx: unknown option --no-such-flag \(--help for usage\)\n$/],
    [["-m", "fast"], /^tx: unknown mode fast/],
  ];
  for (const [args, message] of cases) {
    test(
      `tx ${args.join(" ")}`,
      async () => {
        const proc = Bun.spawn([process.execPath, join(ROOT, "scripts/tx.ts"), ...args, "-t", "0.2"], {
          cwd: ROOT,
          stdout: "pipe",
          stderr: "pipe",
        });
        const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
        expect(code).toBe(2);
        expect(err).toMatch(message);
        // One line: the message, no usage dump, no stack trace.
        expect(err.trim().split("\n")).toHaveLength(1);
      },
      EXAMPLE_TIMEOUT_MS,
    );
  }
});

describe("every lab tool follows the shared command-line convention (scripts/lib/cli.ts)", () => {
  const tools = [
    "scripts/tx.ts",
    "scripts/rx.ts",
    "scripts/doctor.ts",
    "scripts/probe.ts",
    "scripts/zcrx-setup.ts",
    "scripts/fuzz.ts",
    "scripts/soak.ts",
    "scripts/vm.ts",
    "scripts/examples/echo.ts",
    "bench/alloc.ts",
  ];
  async function runTool(path: string, args: string[]) {
    const proc = Bun.spawn([process.execPath, join(ROOT, path), ...args], {
      cwd: ROOT,
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    return { out, err, code };
  }
  for (const path of tools) {
    const name = path.replace(/^.*\//, "").replace(/\.ts$/, "");
    test(
      `${name}: a bad flag is one line and exit 2; --help is the usage and exit 0`,
      async () => {
        const bad = await runTool(path, ["--no-such-flag"]);
        expect(bad.code).toBe(2);
        expect(bad.err).toBe(`${name}: unknown option --no-such-flag (--help for usage)\n`);
        const help = await runTool(path, ["--help"]);
        expect(help.code).toBe(0);
        expect(help.out).toMatch(/^usage:/);
        expect(help.out).toContain("--help");
      },
      EXAMPLE_TIMEOUT_MS,
    );
  }

  test(
    "rx: -R is no longer refill entries (tx and liburing use -R for the receiver); --rq is",
    async () => {
      const r = await runTool("scripts/rx.ts", ["-R", "64"]);
      expect(r.code).toBe(2);
      expect(r.err).toBe("rx: unknown option -R (--help for usage)\n");
    },
    EXAMPLE_TIMEOUT_MS,
  );

  test(
    "tx: a refused connection is one line and exit 1, no stack trace",
    async () => {
      // Port 1 on loopback: nothing listens there (a privileged port no test binds).
      const r = await runTool("scripts/tx.ts", ["-D", "127.0.0.1", "-p", "1", "-t", "0.1", "--json"]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^tx: IORING_OP_CONNECT: ECONNREFUSED \(fd \d+ to 127\.0\.0\.1:1\)[^\n]*\n$/);
    },
    EXAMPLE_TIMEOUT_MS,
  );

  test(
    "tx udp: a missing receiver is ECONNREFUSED on the connected socket, exit 1, not a run that looks fine",
    async () => {
      const r = await runTool("scripts/tx.ts", ["udp", "-D", "127.0.0.1", "-p", "1", "-t", "2", "--json"]);
      expect(r.code).toBe(1);
      expect(r.out).toBe("");
      expect(r.err).toMatch(/^tx: no receiver at udp 127\.0\.0\.1:1: [^\n]*ECONNREFUSED[^\n]*\n$/);
    },
    EXAMPLE_TIMEOUT_MS,
  );
});

describe("npm start's comparison (tx --compare, shortened to one size and 0.2 s runs)", () => {
  test(
    "plan and columns first, a Bun row, no zero-copy row without '(copied)' when the kernel copied, a verdict, exit 0",
    async () => {
      const proc = Bun.spawn([process.execPath, join(ROOT, "scripts/tx.ts"), "--compare", "-s", "4K", "-t", "0.2"], {
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
      expect(err).toBe("");
      expect(code).toBe(0);
      const lines = out.trim().split("\n");
      // The plan and its expected duration come before any result.
      expect(lines[0]).toMatch(/^tx: 6 runs on loopback \(127\.0\.0\.1\) of 0\.2 s each, about \d+ s in all/);
      expect(out.indexOf("columns: mode")).toBeLessThan(out.indexOf("\nnonzc "));
      const rows = lines.filter((l) => /^(nonzc|zc|zc-fixed|mixed|adaptive|bun)[ (]/.test(l));
      expect(rows.map((l) => l.split(" ")[0])).toEqual(["nonzc", "zc", "zc-fixed", "mixed", "adaptive", "bun"]);
      for (const row of rows.filter((l) => !/^(nonzc|bun) /.test(l))) {
        const cells = row
          .replace(/^\S+ \(copied\)/, "MODE")
          .trim()
          .split(/\s+/);
        // cells: MODE size bytes s MB/s ops/s CPU% user sys zc% copied% errors note...
        if (cells[10] === "100.0") expect(row).toMatch(/^\S+ \(copied\) /);
      }
      expect(lines[lines.length - 1]).toMatch(
        /^verdict: bun-uring (wins|does not win) on this machine at 4096 bytes per send: .*CPU per MB: sender \d+ µs vs Bun's \d+ µs, receiver \d+ µs vs Bun's \d+ µs\.$/,
      );
    },
    EXAMPLE_TIMEOUT_MS,
  );
});
