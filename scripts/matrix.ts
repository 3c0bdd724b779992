// bun scripts/matrix.ts — the kernel matrix: the test suite and the feature probe under each kernel
// of scripts/vm.ts, one feature × kernel table at the end.
//
//   bun scripts/matrix.ts [--kernels newest,stable,oldstable,host] [--suite full|matrix]
//                         [--timeout S (per kernel, 1500)] [--offline] [--json] [--write-doc]
//
// Suites: "full" is every test file (test/*.test.ts, test/vm/*.test.ts); "matrix" (the default)
// leaves out the slowest file that exercises no kernel difference (the long fuzz run), to fit the
// CI budget: see MATRIX_EXCLUDE. Inside each VM the probe
// (test/fixtures/reliability-probe.test.ts) prints the kernel's feature rows; the table shows them
// as yes/no with each kernel's pass/fail/skip counts, the run time, and every distinct skip reason
// (a feature the kernel lacks must be a skip naming the version that has it). --write-doc saves
// the table to docs/kernel-matrix.md.
import { readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { runInVm, type RunResult } from "./vm/run.ts";
import { DEFAULT_MODULES, KERNELS, type KernelArg, type VmOptions } from "./vm/options.ts";
import type { ProbeReport } from "./probe.ts";
import { closingLine } from "./lib/summary.ts";

const root = join(import.meta.dir, "..");
const PROBE_FILE = "test/fixtures/reliability-probe.test.ts";

/** Files the "matrix" suite leaves out: they test nothing that differs between kernels and cost
 * the most under TCG. */
const MATRIX_EXCLUDE = new Set(["test/fuzz.test.ts"]);

interface Args {
  kernels: KernelArg[];
  suite: "full" | "matrix";
  timeoutSec: number;
  offline: boolean;
  json: boolean;
  writeDoc: boolean;
  files: string[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    kernels: ["newest", "stable", "oldstable", "host"],
    suite: "matrix",
    timeoutSec: 1500,
    offline: false,
    json: false,
    writeDoc: false,
    files: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) usage(`${arg} needs a value`);
      return v!;
    };
    if (arg === "--kernels") {
      const ks = value()
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      for (const k of ks)
        if (!(KERNELS as string[]).includes(k)) usage(`unknown kernel ${k}; choose from ${KERNELS.join(", ")}`);
      a.kernels = ks as KernelArg[];
    } else if (arg === "--suite") {
      const s = value();
      if (s !== "full" && s !== "matrix") usage("--suite must be full or matrix");
      a.suite = s as Args["suite"];
    } else if (arg === "--timeout") {
      a.timeoutSec = Number(value());
      if (!(a.timeoutSec > 0)) usage("--timeout needs a positive number of seconds");
    } else if (arg === "--offline") a.offline = true;
    else if (arg === "--json") a.json = true;
    else if (arg === "--write-doc") a.writeDoc = true;
    else if (arg === "--help" || arg === "-h") usage();
    else if (arg.startsWith("-")) usage(`unknown option ${arg}`);
    else a.files.push(arg);
  }
  return a;
}

function usage(err?: string): never {
  const text =
    "usage: bun scripts/matrix.ts [--kernels newest,stable,oldstable,host] [--suite full|matrix] [--timeout S] [--offline] [--json] [--write-doc] [files...]\n";
  if (err) {
    process.stderr.write(`matrix: ${err}\n${text}`);
    process.exit(2);
  }
  process.stdout.write(text);
  process.exit(0);
}

/** The suite's files, relative to the project root, with the probe first. */
export function suiteFiles(suite: "full" | "matrix"): string[] {
  const list = (dir: string) =>
    readdirSync(join(root, dir))
      .filter((f) => f.endsWith(".test.ts"))
      .sort()
      .map((f) => `${dir}/${f}`);
  const all = [...list("test"), ...list("test/vm")];
  return [PROBE_FILE, ...all.filter((f) => suite === "full" || !MATRIX_EXCLUDE.has(f))];
}

export interface KernelRun {
  choice: KernelArg;
  kernel: string;
  accel: string;
  passed: number;
  failed: number;
  skipped: number;
  exitCode: number;
  seconds: number;
  bootSeconds?: number;
  error?: string;
  probe: ProbeReport | null;
  /** Names of failed tests ("(fail) file > name" lines). */
  failures: string[];
  /** Distinct skip reasons printed by testIf/describeIf ("skip: name — reason"). */
  skips: string[];
}

async function runKernel(choice: KernelArg, files: string[], a: Args, echo: boolean): Promise<KernelRun> {
  let out = "";
  const opts: VmOptions = {
    kernel: choice,
    timeoutSec: a.timeoutSec,
    memMb: 2048,
    json: false,
    offline: a.offline,
    env: {},
    modules: [...DEFAULT_MODULES],
    files,
    projectDir: root,
  };
  const r: RunResult = await runInVm(opts, {
    write: (t) => {
      out += t;
      if (echo) process.stdout.write(t);
    },
    log: (l) => {
      if (echo) process.stderr.write(`vm[${choice}]: ${l}\n`);
    },
  });
  let probe: ProbeReport | null = null;
  const failures: string[] = [];
  const skips = new Set<string>();
  for (const raw of out.split("\n")) {
    // Strip ANSI colours the guest's bun may print.
    const line = raw.replace(/\x1b\[[0-9;]*m/g, "");
    const p = line.indexOf("bun-uring-probe: ");
    if (p >= 0) {
      try {
        probe = JSON.parse(line.slice(p + "bun-uring-probe: ".length)) as ProbeReport;
      } catch {
        probe = null;
      }
    }
    const f = /^\(fail\) (.*?)(?: \[[\d.]+m?s\])?$/.exec(line.trim());
    if (f) failures.push(f[1]!);
    const s = /^skip: .*? — (.*)$/.exec(line.trim());
    if (s) skips.add(s[1]!);
  }
  return {
    choice,
    kernel: r.kernel,
    accel: r.accel,
    passed: r.passed,
    failed: r.failed,
    skipped: r.skipped,
    exitCode: r.exitCode,
    seconds: r.seconds,
    bootSeconds: r.bootSeconds,
    error: r.error,
    probe,
    failures: [...new Set(failures)],
    skips: [...skips].sort(),
  };
}

/** The feature × kernel table as markdown. */
export function renderTable(runs: KernelRun[]): string {
  const features: string[] = [];
  for (const r of runs)
    for (const f of r.probe?.features ?? []) if (!features.includes(f.feature)) features.push(f.feature);
  const since = new Map<string, string>();
  for (const r of runs) for (const f of r.probe?.features ?? []) since.set(f.feature, f.since);
  const head = ["feature (since)", ...runs.map((r) => `${r.choice}: ${r.kernel || "?"}`)];
  const rows: string[][] = [];
  for (const feat of features) {
    rows.push([
      `${feat} (${since.get(feat)})`,
      ...runs.map((r) => {
        const f = r.probe?.features.find((x) => x.feature === feat);
        return f ? (f.available ? "yes" : "no") : "?";
      }),
    ]);
  }
  rows.push(["tests passed / failed / skipped", ...runs.map((r) => `${r.passed} / ${r.failed} / ${r.skipped}`)]);
  rows.push([
    "run time (s), accel",
    ...runs.map(
      (r) => `${r.seconds} ${r.accel}${r.bootSeconds !== undefined ? ` (boot ${r.bootSeconds.toFixed(1)})` : ""}`,
    ),
  ]);
  rows.push(["exit", ...runs.map((r) => (r.error ? `${r.exitCode}: ${r.error}` : String(r.exitCode)))]);
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

function renderDoc(runs: KernelRun[], a: Args, files: string[]): string {
  const date = new Date().toISOString().slice(0, 16).replace("T", " ");
  const parts: string[] = [];
  parts.push("# Kernel matrix");
  parts.push("");
  parts.push(
    `Last run: ${date} UTC, \`bun scripts/matrix.ts --suite ${a.suite} --kernels ${a.kernels.join(",")}\` (${files.length} test files; the feature rows come from scripts/probe.ts inside each kernel).`,
  );
  parts.push("");
  parts.push(
    `Suite "${a.suite}": ${a.suite === "full" ? "every test file" : `every test file of test/ and test/vm/ except ${[...MATRIX_EXCLUDE].join(", ")} (a long fuzz run that exercises no kernel difference; \`npm run reliability\` runs it)`}. Guests run under QEMU with KVM when usable, else TCG; the run time column is the whole run per kernel, boot included. A "no" in a feature row must show up as skips that name the version (see each kernel's skip reasons), never as failures.`,
  );
  parts.push("");
  parts.push(renderTable(runs));
  for (const r of runs) {
    parts.push("");
    parts.push(`## ${r.choice} (${r.kernel || "did not boot"})`);
    if (r.failures.length) {
      parts.push("");
      parts.push("Failed:");
      for (const f of r.failures) parts.push(`- ${f}`);
    }
    if (r.skips.length) {
      parts.push("");
      parts.push("Skip reasons:");
      for (const s of r.skips) parts.push(`- ${s}`);
    }
    if (!r.failures.length && !r.skips.length) parts.push("", "No failures, no skips.");
  }
  parts.push("");
  return parts.join("\n");
}

if (import.meta.main) {
  const a = parseArgs(process.argv.slice(2));
  const files = a.files.length ? [PROBE_FILE, ...a.files] : suiteFiles(a.suite);
  const runs: KernelRun[] = [];
  for (const k of a.kernels) {
    if (!a.json) console.log(`== ${k}: ${files.length} files`);
    let r = await runKernel(k, files, a, !a.json);
    // A guest that never booted says nothing about the suite: under TCG a Debian kernel now and
    // then panics during early boot (seen: __hrtimer_start_range_ns on 7.2), so boot once more.
    if (!r.kernel && r.error?.includes("did not boot")) {
      if (!a.json) console.log(`== ${k}: the guest did not boot (${r.error}); one more try`);
      r = await runKernel(k, files, a, !a.json);
    }
    runs.push(r);
    if (!a.json)
      console.log(
        `== ${k}: kernel ${r.kernel || "?"}, ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped, ${r.seconds} s (${r.accel})${r.error ? ` — ${r.error}` : ""}`,
      );
  }
  const table = renderTable(runs);
  if (a.writeDoc) {
    mkdirSync(join(root, "docs"), { recursive: true });
    writeFileSync(join(root, "docs", "kernel-matrix.md"), renderDoc(runs, a, files));
  }
  if (a.json) {
    console.log(JSON.stringify({ suite: a.suite, files: files.length, runs }));
  } else {
    console.log("");
    console.log(table);
    for (const r of runs) {
      if (r.failures.length) console.log(`\n${r.choice} failures:\n  ${r.failures.join("\n  ")}`);
    }
  }
  const ok = runs.every((r) => r.exitCode === 0 && r.failed === 0);
  // The closing line CI reads: every kernel's counts summed; a kernel whose run failed without a
  // failing test (no boot, timeout) counts as one failure.
  const total = { passed: 0, failed: 0, skipped: 0 };
  for (const r of runs) {
    total.passed += r.passed;
    total.skipped += r.skipped;
    total.failed += r.failed > 0 ? r.failed : r.exitCode === 0 ? 0 : 1;
  }
  if (!a.json) console.log(closingLine(total));
  process.exit(ok ? 0 : 1);
}
