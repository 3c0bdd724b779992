// bench/server.ts in its --quick mode: the JSON it prints has every row, server and ratio, and every
// server echoed every byte correctly. No timing is checked (figures vary run to run); a server
// that corrupts, drops or resets is what fails. The client's byte check is tested on its own too,
// against a server that changes one byte.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { compileC } from "../bench/lib/harness.ts";
import { testIf } from "./helpers.ts";

const ROOT = join(import.meta.dir, "..");
/** Four servers, four workloads, fresh processes each: generous for a loaded 2-CPU host. */
const RUN_TIMEOUT_MS = 180_000;

const noGcc = Bun.which("gcc") ? null : "gcc is not installed (the benchmark compiles its C server and client)";
const hasNode = Bun.which("node") !== null;
if (!hasNode) console.log("bench-server: node is not installed; the node:net server is left out of the run");

const SERVERS = hasNode ? ["bun-uring", "bun", "node", "c-epoll"] : ["bun-uring", "bun", "c-epoll"];
const ROW_IDS = ["pingpong_p50_us", "pingpong_p99_us", "stream_1conn_mib_s", "stream_200conns_mib_s", "rps_1000conns"];

interface BenchJson {
  servers: string[];
  rows: {
    id: string;
    unit: string;
    better: string;
    values: Record<string, number | null>;
    failures: Record<string, string>;
  }[];
  ratios: Record<string, Record<string, number | null>>;
  goals: Record<string, string>;
  echoed_ok: Record<string, boolean>;
  failures: { server: string; workload: string; failure: string }[];
  profile: { workload: string; servers: Record<string, { client_cpu_share: number | null }> }[];
}

async function runBench(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const proc = Bun.spawn([process.execPath, join(ROOT, "bench/server.ts"), ...args], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  const killer = setTimeout(() => proc.kill(), RUN_TIMEOUT_MS);
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(killer);
  return { code, out: out.trim(), err: err.trim() };
}

describe("bench/server.ts", () => {
  testIf(
    noGcc,
    "--quick --json: every row and ratio for every server, and every server echoed correctly",
    async () => {
      const r = await runBench(["--quick", "--json", "--servers", SERVERS.join(",")]);
      expect(r.code).toBe(0);
      const j = JSON.parse(r.out) as BenchJson;
      expect(j.servers).toEqual(SERVERS);
      expect(j.rows.map((x) => x.id)).toEqual(ROW_IDS);
      expect(Object.keys(j.ratios)).toEqual(ROW_IDS);
      for (const id of ROW_IDS) expect(j.goals[id]).toMatch(/^(<=|>=) \d/);
      // Failures first, so a corrupting server shows its reason rather than a missing number.
      expect(j.failures).toEqual([]);
      expect(j.echoed_ok).toEqual(Object.fromEntries(SERVERS.map((s) => [s, true])));
      for (const row of j.rows) {
        expect(row.failures).toEqual({});
        for (const s of SERVERS) {
          expect(row.values[s]).toBeGreaterThan(0);
          expect(j.ratios[row.id]![s]).toBeCloseTo(row.values[s]! / row.values.bun!, 9);
        }
      }
      expect(j.profile.map((p) => p.workload)).toEqual(["pingpong", "stream_1", "stream_many", "rps"]);
    },
    RUN_TIMEOUT_MS,
  );

  testIf(
    noGcc,
    "the client fails a server that changes one byte of the echo, naming where",
    async () => {
      const bin = await compileC("echo_epoll", "c/echo_epoll.c");
      // Echoes faithfully except the 1000th byte of each connection, which it flips.
      const server = Bun.listen<{ seen: number }>({
        hostname: "127.0.0.1",
        port: 0,
        socket: {
          open(s) {
            s.data = { seen: 0 };
          },
          data(s, chunk) {
            const out = new Uint8Array(chunk);
            const at = 999 - s.data.seen;
            if (at >= 0 && at < out.length) out[at]! ^= 0xff;
            s.data.seen += out.length;
            s.write(out);
          },
        },
      });
      try {
        const proc = Bun.spawn([bin, "client", "127.0.0.1", String(server.port), "1", "64", "64", "20", "100", "1"], {
          stdout: "pipe",
          stderr: "pipe",
        });
        const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
        expect(code).toBe(1);
        const j = JSON.parse(out.trim()) as { ok: boolean; error: string };
        expect(j.ok).toBe(false);
        // Byte 999 of the stream is byte 39 of the 16th 64-byte message (message 15).
        expect(j.error).toMatch(
          /^echo differs on connection 0, message 15 \(64 bytes\), at byte 39 of it: got 0x[0-9a-f]{2}, sent 0x[0-9a-f]{2}$/,
        );
      } finally {
        server.stop(true);
      }
    },
    30_000,
  );
});
