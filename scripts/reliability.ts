// bun scripts/reliability.ts (npm run reliability) — the bad-input table, a fuzz run and the fault
// tests, with one summary.
//
//   bun scripts/reliability.ts [--sequences N (2000)] [--seed S (1)] [--chunks K (4)] [--json]
//
// The fuzz runs in K child processes (seeds S..S+K-1, N/K sequences each), so a segfault in one
// is counted as a crash with its seed instead of ending the run. With --json the last line is one
// JSON object: sequences, operations, errors_seen (by errno name), crashes, leaks, violations,
// and the bad-input / fault test counts. Exit status 0 only when everything passed, crashes and
// leaks are 0 and no invariant broke.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { countsFromBunTest, runEcho, type Counts } from "./lib/summary.ts";
import type { FuzzReport } from "./fuzz.ts";

const root = join(import.meta.dir, "..");

interface Args {
  sequences: number;
  seed: number;
  chunks: number;
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { sequences: 2000, seed: 1, chunks: 4, json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [k, inline] = arg.includes("=") ? (arg.split("=", 2) as [string, string]) : [arg, undefined];
    const num = () => {
      const v = Number(inline ?? argv[++i]);
      if (!Number.isInteger(v) || v < 0) {
        console.error(`reliability: ${k} needs an integer >= 0`);
        process.exit(2);
      }
      return v;
    };
    if (k === "--sequences") a.sequences = num();
    else if (k === "--seed") a.seed = num();
    else if (k === "--chunks") a.chunks = Math.max(1, num());
    else if (k === "--json") a.json = true;
    else if (k === "--help") {
      console.log("usage: bun scripts/reliability.ts [--sequences N (2000)] [--seed S (1)] [--chunks K (4)] [--json]");
      process.exit(0);
    } else {
      console.error(`reliability: unknown argument ${arg}`);
      process.exit(2);
    }
  }
  return a;
}

/** Run a child, collect its output; `quiet` keeps it off our stdout (for --json). */
function run(cmd: string[], quiet: boolean) {
  return runEcho(cmd, { FORCE_COLOR: "0" }, { quiet, cwd: root });
}

function testFiles(prefix: string): string[] {
  return readdirSync(join(root, "test"))
    .filter((f) => f.startsWith(prefix) && f.endsWith(".test.ts"))
    .map((f) => join("test", f));
}

async function bunTest(files: string[], quiet: boolean): Promise<Counts & { crashed: boolean }> {
  if (files.length === 0) return { passed: 0, failed: 0, skipped: 0, crashed: false };
  const r = await run([process.execPath, "test", ...files], quiet);
  const counts = countsFromBunTest(r.text);
  // A signal (segfault) or a runner failure with no failed test counts as a crash.
  const crashed = r.signal !== null || (r.code !== 0 && counts.failed === 0);
  return { ...counts, crashed };
}

const args = parseArgs(process.argv.slice(2));
const started = performance.now();
const log = (s: string) => {
  if (!args.json) console.log(s);
};

log("== bad input (test/badinput*.test.ts)");
const badinput = await bunTest(testFiles("badinput"), args.json);

log(`== fuzz: ${args.sequences} sequences in ${args.chunks} child processes`);
const errorsSeen: Record<string, number> = {};
let sequences = 0,
  operations = 0,
  cqes = 0,
  crashes = 0,
  leaks = 0,
  foreign = 0,
  sendZc = 0,
  strayNotifs = 0;
const violations: string[] = [];
const crashedSeeds: number[] = [];
const per = Math.ceil(args.sequences / args.chunks);
for (let i = 0; i < args.chunks; i++) {
  const n = Math.min(per, args.sequences - i * per);
  if (n <= 0) break;
  const seed = args.seed + i;
  const r = await run(
    [process.execPath, join(root, "scripts", "fuzz.ts"), "--sequences", String(n), "--seed", String(seed), "--json"],
    true,
  );
  const last = r.text.trim().split("\n").pop() ?? "";
  let rep: FuzzReport | undefined;
  try {
    rep = JSON.parse(last) as FuzzReport;
  } catch {
    rep = undefined;
  }
  if (!rep || r.signal !== null) {
    crashes++;
    crashedSeeds.push(seed);
    log(
      `  seed ${seed}: CRASH (${r.signal ?? `exit ${r.code}`}); last output: ${r.text.trim().split("\n").slice(-3).join(" | ")}`,
    );
    continue;
  }
  sequences += rep.sequences;
  operations += rep.operations;
  cqes += rep.cqes;
  leaks += rep.leaks;
  foreign += rep.foreign_errors;
  sendZc += rep.send_zc;
  strayNotifs += rep.stray_notifs;
  violations.push(...rep.violations);
  for (const [k, v] of Object.entries(rep.errors_seen)) errorsSeen[k] = (errorsSeen[k] ?? 0) + v;
  log(
    `  seed ${seed}: ${rep.sequences} sequences, ${rep.operations} operations, ${rep.violations.length} violations, ${rep.seconds.toFixed(1)} s`,
  );
}

log("== faults (test/faults*.test.ts)");
const faults = await bunTest(testFiles("faults"), args.json);

const seconds = (performance.now() - started) / 1000;
const ok =
  badinput.failed === 0 &&
  !badinput.crashed &&
  faults.failed === 0 &&
  !faults.crashed &&
  crashes === 0 &&
  leaks === 0 &&
  violations.length === 0 &&
  foreign === 0;
if (!args.json) {
  console.log("");
  console.log("reliability summary");
  console.log(
    `  bad input   ${badinput.passed} passed, ${badinput.failed} failed, ${badinput.skipped} skipped${badinput.crashed ? " (runner CRASHED)" : ""}`,
  );
  console.log(
    `  fuzz        ${sequences} sequences, ${operations} operations, ${cqes} CQEs, ${sendZc} SEND_ZC (${strayNotifs} stray notifications)`,
  );
  console.log(
    `  errors seen ${
      Object.entries(errorsSeen)
        .sort((x, y) => y[1] - x[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(", ") || "none"
    }`,
  );
  console.log(
    `  crashes ${crashes}${crashedSeeds.length ? ` (seeds ${crashedSeeds.join(", ")})` : ""}, leaks ${leaks}, invariant violations ${violations.length}, foreign exceptions ${foreign}`,
  );
  for (const v of violations.slice(0, 20)) console.log(`    ${v}`);
  console.log(
    `  faults      ${faults.passed} passed, ${faults.failed} failed, ${faults.skipped} skipped${faults.crashed ? " (runner CRASHED)" : ""}`,
  );
  console.log(`  ${seconds.toFixed(1)} s — ${ok ? "OK" : "FAILED"}`);
  console.log(
    `${badinput.passed + faults.passed + (crashes + leaks + violations.length + foreign === 0 ? 1 : 0)} passed, ${badinput.failed + faults.failed + (crashes + leaks + violations.length + foreign === 0 ? 0 : 1)} failed${badinput.skipped + faults.skipped ? `, ${badinput.skipped + faults.skipped} skipped` : ""}`,
  );
} else {
  console.log(
    JSON.stringify({
      sequences,
      operations,
      cqes,
      errors_seen: errorsSeen,
      crashes,
      leaks,
      violations: violations.length,
      foreign_errors: foreign,
      send_zc: sendZc,
      stray_notifs: strayNotifs,
      crashed_seeds: crashedSeeds,
      badinput: {
        passed: badinput.passed,
        failed: badinput.failed,
        skipped: badinput.skipped,
        crashed: badinput.crashed,
      },
      faults: { passed: faults.passed, failed: faults.failed, skipped: faults.skipped, crashed: faults.crashed },
      seconds: Number(seconds.toFixed(1)),
      ok,
    }),
  );
}
process.exit(ok ? 0 : 1);
