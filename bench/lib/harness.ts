// What every benchmark shares: statistics, the printed table, flags, C baselines compiled at bench
// time against the system liburing, CPU time, and the dated result files in bench/results/.
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { kernelRelease } from "../../src/ring/kernel.ts";
import { parseCli, usageExit } from "../../scripts/lib/cli.ts";

export const BENCH_DIR = resolve(import.meta.dir, "..");
export const RESULTS_DIR = join(BENCH_DIR, "results");
const BUILD_DIR = join(BENCH_DIR, "build");

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

/** Nearest-rank percentile (p in 0..100) of a non-empty list. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[rank]!;
}

/** Print rows under headers, columns aligned; numbers get `digits` decimals. */
export function printTable(
  headers: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<string | number>>,
  digits = 2,
): void {
  const cells = rows.map((r) =>
    r.map((v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(digits)) : v)),
  );
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: readonly string[]) =>
    r.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join("  ");
  console.log(line(headers));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of cells) console.log(line(r));
}

export type FlagSpec = Record<
  string,
  { type: "number" | "string" | "boolean"; default?: number | string | boolean; help: string }
>;

/** Parse `--name value` / `--name=value` / `--flag` against a spec, through the tools' shared
 * convention (scripts/lib/cli.ts): `--help` prints the usage and the spec, a wrong flag is a
 * one-line usage error (exit 2). */
export function parseFlags<T extends Record<string, number | string | boolean>>(
  argv: readonly string[],
  spec: FlagSpec,
  usage: string,
): T {
  const help = [
    usage,
    ...Object.entries(spec).map(
      ([k, v]) =>
        `  --${k}${v.type === "boolean" ? "" : ` <${v.type}>`}  ${v.help}${v.default !== undefined ? ` (default ${v.default})` : ""}`,
    ),
    "  -h, --help  this text",
  ].join("\n");
  const cli = { name: basename(process.argv[1] ?? "bench").replace(/\.ts$/, ""), usage: help };
  const options = Object.fromEntries(
    Object.entries(spec).map(([k, v]) => [
      k,
      { type: v.type === "boolean" ? ("boolean" as const) : ("string" as const) },
    ]),
  );
  const { values } = parseCli(cli, [...argv], options);
  const out: Record<string, number | string | boolean> = {};
  for (const [k, v] of Object.entries(spec)) if (v.default !== undefined) out[k] = v.default;
  for (const [k, raw] of Object.entries(values as Record<string, string | boolean | undefined>)) {
    if (raw === undefined || k === "help") continue;
    if (spec[k]!.type === "number") {
      const n = Number(raw);
      if (typeof raw !== "string" || raw.trim() === "" || !Number.isFinite(n))
        usageExit(cli, `--${k} must be a number, got ${raw}`);
      out[k] = n;
    } else out[k] = raw;
  }
  return out as T;
}

/** Process CPU time so far (user and system seconds). */
export function cpuTimes(): { user_s: number; sys_s: number } {
  const u = process.resourceUsage();
  return { user_s: u.userCPUTime / 1e6, sys_s: u.systemCPUTime / 1e6 };
}

function run(cmd: string[]): { code: number; out: string } {
  const p = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? 1, out: p.stdout.toString() + p.stderr.toString() };
}

/** liburing's headers, installed with apt-get when missing (the baselines need them to compile). */
function ensureLiburingHeaders(): void {
  if (existsSync("/usr/include/liburing.h")) return;
  console.error("bench: /usr/include/liburing.h missing, installing liburing-dev with apt-get");
  let r = run(["apt-get", "install", "-y", "-q", "liburing-dev"]);
  if (r.code !== 0) {
    run(["apt-get", "update", "-q"]);
    r = run(["apt-get", "install", "-y", "-q", "liburing-dev"]);
  }
  if (r.code !== 0) throw new Error(`cannot install liburing-dev (needed for the C baselines): ${r.out.slice(-400)}`);
}

/** Compile a C baseline with gcc -O2 against the system liburing; rebuilt when the source is newer
 * than the binary. Returns the binary's path. */
export async function compileC(name: string, sourcePath: string, extraArgs: readonly string[] = []): Promise<string> {
  ensureLiburingHeaders();
  mkdirSync(BUILD_DIR, { recursive: true });
  const src = resolve(BENCH_DIR, sourcePath);
  const bin = join(BUILD_DIR, name);
  if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(src).mtimeMs) return bin;
  const r = run(["gcc", "-O2", "-Wall", "-o", bin, src, ...extraArgs, "-luring"]);
  if (r.code !== 0) throw new Error(`gcc failed for ${basename(src)}:\n${r.out}`);
  return bin;
}

/** Today's date as YYYY-MM-DD (UTC). */
export function today(): string {
  return new Date().toISOString().slice(0, 10);
}

/** Write a benchmark's JSON to bench/results/<name>-<date>.json, with the date and kernel added.
 * Returns the path. */
export function recordResult(name: string, json: Record<string, unknown>): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}-${today()}.json`);
  const body = { date: today(), kernel: kernelRelease(), ...json };
  writeFileSync(path, JSON.stringify(body, null, 2) + "\n");
  return path;
}

/** Make sure a directory for an output file exists. */
export function ensureDirFor(path: string): void {
  mkdirSync(dirname(path), { recursive: true });
}
